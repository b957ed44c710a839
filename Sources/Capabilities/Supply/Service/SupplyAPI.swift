import ContractKit
import Foundation
import Hummingbird
import LedgerCore
import Node
import Server
import Standards
import Store
import SupplyContract

/// `/v1/supply`: EPCIS ingestion, pack verification (and dispensing), recalls, recall reports and
/// alerts. Writes are signed by the caller's organisation key, which this node must hold (a node
/// acts for its own organisation; a development node for the demo organisations).
struct SupplyAPI: Sendable {
    let api: LedgerAPI
    let supply: SupplyService
    /// Writes the MedicationDispense of a dispensed pack to the patient's record (the records capability).
    let records: any DispenseRecording

    var auth: AuthService { api.auth }
    var organisations: [String: ActingOrganisation] { api.organisations }

    var node: LedgerNode { supply.node }

    /// The authenticated user and the organisation it acts for (itself, or the organisation of a practitioner/device).
    func caller(_ request: Request) throws -> (user: String, organisation: String) {
        let did = try auth.authenticate(request)
        return (did, try supply.organisation(of: did))
    }

    /// The signing key of the caller's organisation. Not inlined: inlining it into the async
    /// handlers crashes the Swift 6.3.1 optimiser (coroutine splitting) in release builds.
    @inline(never)
    func organisationKey(_ request: Request) throws -> SigningKey { try signer(for: try caller(request).organisation) }

    func signer(for organisation: String) throws -> SigningKey { try actingOrganisation(organisation).signing }

    func actingOrganisation(_ organisation: String) throws -> ActingOrganisation {
        guard let acting = organisations[organisation] else {
            throw LedgerError("not_acting_for", "this node does not hold the key of \(organisation); use that organisation's node")
        }
        return acting
    }

    /// Closing the loop: a MedicationDispense in the patient's record (when she consents to the
    /// pharmacy writing it), written through the same path as the FHIR facade, and remembered on this
    /// node so that a recall of the lot reaches her and her prescriber.
    func recordDispense(
        _ result: PackVerification, scan: GS1ElementString, patient: String, prescriber: String?, user: String, acting: ActingOrganisation, height: UInt64
    ) async throws -> JSONValue {
        guard let gtin = result.gtin, let serial = scan.serial, let packKey = result.packKey else { return .null }
        // A random id: one derived from the pack or the block would let anyone holding the chain link the record to the pack.
        let id = "md-" + Hex.encode(RandomBytes.make(12))
        var medication: [String: JSONValue] = [
            "resourceType": .string("Medication"), "id": .string("pack"),
            "code": .object([
                "coding": .array([.object(["system": .string("https://www.gs1.org/gtin"), "code": .string(gtin)])]),
                "text": .string(result.productName ?? gtin),
            ]),
        ]
        var batch: [String: JSONValue] = [:]
        if let lot = scan.lot { batch["lotNumber"] = .string(lot) }
        if let expiry = scan.expiry { batch["expirationDate"] = .string(expiry.iso) }
        if !batch.isEmpty { medication["batch"] = .object(batch) }
        let resource: JSONValue = .object([
            "resourceType": .string("MedicationDispense"), "id": .string(id), "status": .string("completed"),
            "contained": .array([.object(medication)]),
            "identifier": .array([.object(["system": .string("https://id.gs1.org"), "value": .string("https://id.gs1.org/01/\(gtin)/21/\(serial)")])]),
            "medicationReference": .object(["reference": .string("#pack")]),
            "subject": .object(["reference": .string(FHIRFormat.patientReference(patient))]),
            "whenHandedOver": .string(FHIRFormat.instant(Int64(LedgerNode.systemClock()))),
        ])
        let issues = FHIRValidator.validate(resource)
        guard issues.isEmpty else { throw LedgerError("internal_error", "MedicationDispense is invalid: \(issues)") }
        do {
            try await records.write(medicationDispense: resource, id: id, user: user, acting: acting, host: api)
        } catch let error as LedgerError {
            return .object(["written": .bool(false), "reason": .string(error.code)])
        }
        // The lot the pack was commissioned in (the scan may not carry AI 10).
        if let lotKey = try supply.item(packKey)?.lot {
            try supply.noteDispensed(
                LocalIndex.Dispensed(lotKey: lotKey, patient: patient, prescriber: prescriber, recordID: id, gtin: gtin, height: height))
        }
        return .object(["written": .bool(true), "id": .string(id), "resourceType": .string("MedicationDispense")])
    }

    func register(on router: Router<LedgerRequestContext>) {
        router.post("/v1/supply/epcis") { request, _ in await api.handle { try await ingest(request) } }
        router.post("/v1/supply/verify") { request, _ in await api.handle { try await verify(request) } }
        router.post("/v1/supply/recalls") { request, _ in await api.handle { try await recall(request) } }
        router.get("/v1/supply/recalls/report") { request, _ in await api.handle { try report(request) } }
        router.get("/v1/supply/notices") { request, _ in await api.handle { try notices(request) } }
        router.get("/v1/supply/alerts") { request, _ in await api.handle { try alerts(request) } }
        router.get("/v1/supply/documents/:id") { request, context in
            await api.handle {
                let caller = try auth.authenticate(request)
                return JSONResponse.make(try await supply.document(id: context.parameters.get("id") ?? "", requesterDID: caller))
            }
        }
    }

    func ingest(_ request: Request) async throws -> Response {
        let key = try organisationKey(request)
        let bytes = try await LedgerAPI.body(request, limit: api.configuration.maxBodyBytes)
        let result = try await supply.ingest(document: try JSONValue.parse(bytes), as: bytes, author: key)
        return JSONResponse.make(result, status: .created)
    }

    func verify(_ request: Request) async throws -> Response {
        let who = try verifier(request)
        let body = try await api.jsonBody(request)
        switch try verifyStep(who, body: body) {
        case .answered(let answer): return JSONResponse.make(answer)
        case .dispense(let pack):
            return JSONResponse.make(try await dispense(pack, body: body, user: who.user, organisation: who.organisation))
        }
    }

    /// The caller of a verification, who must be a registered principal.
    func verifier(_ request: Request) throws -> (user: String, organisation: String) {
        let who = try caller(request)
        guard try node.principal(who.user) != nil else {
            throw LedgerError("forbidden", "verification is for registered principals (patients, practitioners, organisations, devices)")
        }
        return who
    }

    /// What a verification request's body asks: answered at once (one scan, or a bulk of scans), or a
    /// dispense, which waits for its block.
    enum VerifyStep {
        case answered(JSONValue)
        case dispense(GS1ElementString)
    }

    func verifyStep(_ who: (user: String, organisation: String), body: JSONValue) throws -> VerifyStep {
        let today = GS1Date(millis: LedgerNode.systemClock())
        func scan(_ value: JSONValue?) throws -> GS1ElementString {
            guard let text = value?.stringValue else { throw LedgerError("bad_request", "scan must be the scanned text") }
            return try GS1ElementString.parse(text, today: today)
        }
        if let list = body["scans"]?.arrayValue {
            guard (1...1000).contains(list.count), body["dispense"] == nil else {
                throw LedgerError("bad_request", "a bulk verification holds 1 to 1000 scans and does not dispense")
            }
            let parsed = try list.map(scan)
            let results = try parsed.map { try supply.verify($0, verifier: who.user).json }
            return .answered(.object(["results": .array(results)]))
        }
        let pack = try scan(body["scan"])
        guard Self.dispenses(body) else { return .answered(try supply.verify(pack, verifier: who.user).json) }
        return .dispense(pack)
    }

    static func dispenses(_ body: JSONValue) -> Bool { body["dispense"]?.boolValue == true }

    /// A single-scan, read-only verification answered on the connection's event loop (`FastRoute`):
    /// the same steps as the route (caller, principal, `Content-Digest`, the verification), without
    /// the hops between threads. Nil for anything else — a bulk, a dispense, a body that is not JSON,
    /// an RFC 9421 signed request — which goes to the router as it came.
    func fastVerify(_ head: HTTPRequest, _ buffer: ByteBuffer) -> FastRoute.Answer? {
        let bytes = Array(buffer.readableBytesView)
        guard head.headerFields[AuthService.signatureInput] == nil, let body = try? JSONValue.parse(bytes), body["scans"]?.arrayValue == nil,
            !Self.dispenses(body)
        else { return nil }
        let request = Request(head: head, body: .init(buffer: buffer))
        do {
            let who = try verifier(request)
            try LedgerAPI.checkDigest(request, body: bytes)
            guard case .answered(let answer) = try verifyStep(who, body: body) else { return nil }
            return FastRoute.Answer(status: .ok, json: answer.canonicalBytes)
        } catch {
            let error = LedgerAPI.ledgerError(error)
            return FastRoute.Answer(status: APIError.status(for: error.code), json: APIError.body(error).canonicalBytes)
        }
    }

    func dispense(_ pack: GS1ElementString, body: JSONValue, user: String, organisation: String) async throws -> JSONValue {
        let patient = try registered(body["patient"], role: .patient, code: "unknown_patient", what: "patient")
        let prescriber = try registered(body["prescriber"], role: .practitioner, code: "unknown_prescriber", what: "prescriber")
        let acting = try actingOrganisation(organisation)
        let result = try await supply.dispense(pack, verifier: user, organisation: acting.signing)
        var answer = result.json.objectValue ?? [:]
        if let patient, let height = result.dispensedAtHeight {
            answer["record"] = try await recordDispense(result, scan: pack, patient: patient, prescriber: prescriber, user: user, acting: acting, height: height)
        }
        return .object(answer)
    }

    /// The did in `value` when it names a registered principal with `role`; nil when absent.
    func registered(_ value: JSONValue?, role: Principal.Role, code: String, what: String) throws -> String? {
        guard let value else { return nil }
        guard let did = value.stringValue, try node.principal(did)?.role == role else {
            throw LedgerError(code, "\(what) must be the did of a registered \(role.rawValue)")
        }
        return did
    }

    func recall(_ request: Request) async throws -> Response {
        let (_, organisation) = try caller(request)
        let body = try await api.jsonBody(request)
        guard let gtin = body["gtin"]?.stringValue, let lot = body["lot"]?.stringValue, let reason = body["reason"]?.stringValue else {
            throw LedgerError("bad_request", "send {\"gtin\", \"lot\", \"reason\"}")
        }
        let tx = try Transaction(
            chainID: node.genesis.chainID, signer: try signer(for: organisation), contract: "supply",
            action: "recall", payload: .object(["gtin": .string(gtin), "lot": .string(supply.keys.lot(gtin: gtin, lot: lot)), "reason": .string(reason)]))
        let receipt = try await node.submit(tx)
        guard receipt.status == .committed else { throw LedgerError(receipt.errorCode ?? "refused", receipt.errorMessage ?? "") }
        return JSONResponse.make(receipt.json, status: .created)
    }

    func report(_ request: Request) throws -> Response {
        let (_, organisation) = try caller(request)
        let q = request.uri.queryParameters
        guard let gtin = q["gtin"].map(String.init), let lot = q["lot"].map(String.init) else {
            throw LedgerError("bad_request", "gtin and lot are required")
        }
        let product = try supply.product(gtin)
        let roles = try supply.party(organisation)?["roles"]?.arrayValue ?? []
        guard product?["mah"]?.stringValue == organisation || roles.contains(.string("regulator")) else {
            throw LedgerError("forbidden", "the report is for the product's MAH and regulators")
        }
        return JSONResponse.make(try supply.recallReport(gtin: gtin, lot: lot).json)
    }

    func notices(_ request: Request) throws -> Response {
        let did = try auth.authenticate(request)
        return JSONResponse.make(.object(["notices": .array(try supply.notices(for: did))]))
    }

    func alerts(_ request: Request) throws -> Response {
        let (_, organisation) = try caller(request)
        return JSONResponse.make(.object(["alerts": .array(try supply.alerts(for: organisation))]))
    }
}
