import ClaimsContract
import ContractKit
import Crypto
import Foundation
import Hummingbird
import LedgerCore
import Node
import Server
import ServiceLifecycle
import App

/// What the claims capability needs of the records capability, supplied by the composition: the sealed
/// FHIR Claim, read as the insurer for payment.
public protocol ClaimRecords: Sendable {
    /// The current version of the Claim record `id`, read (consent-checked, audited) and opened as `reader`.
    func read(claim id: String, as reader: ActingOrganisation, host: LedgerAPI) async throws -> JSONValue
}

/// Insurance claims on a node: who may read a claim's state and transactions, who hears its news,
/// `GET /v1/claims/{id}`, and the payer service that adjudicates the claims of the insurers this node
/// acts for as they arrive (and again after an appeal).
public struct ClaimsCapability: NodeCapability {
    let records: any ClaimRecords

    public init(records: any ClaimRecords) { self.records = records }

    public var appContribution: AppContribution {
        let module = "/app/claims/claims.js"
        return AppContribution(
            pages: [
                AppPage(id: "claims", title: "Claims", roles: ["organisation"], module: module,
                        summary: "an insurer's work queue (pended, adjudicated, paid) and a provider's claims with their status"),
                AppPage(id: "my-claims", title: "My claims", roles: ["patient"], module: module,
                        summary: "what your insurer paid on each claim, and why, in plain words"),
            ], files: Self.webFiles)
    }

    static let webFiles = AppContribution.files(in: .module, prefix: "claims")

    public var openAPIRoutes: [OpenAPIRoute] {
        [
            OpenAPIRoute(method: "get", path: "/v1/claims",
                         summary: "The claims the caller is patient, provider or insurer of, newest first (at most 200), each with its plan's currency; status filters",
                         parameters: [("status", "query", false, "queued, pended, adjudicated, paid or appealed")], responseType: "application/json", hasBody: false,
                         schemas: ["status": OpenAPIDocument.oneOf(["queued", "pended", "adjudicated", "paid", "appealed"])]),
            OpenAPIRoute(method: "get", path: "/v1/claims/{id}",
                         summary: "A claim on the ledger: parties, lines (date of service, submitted), status and history, the adjudication (amounts, CARC reasons, policy version per line, payment instruction), payments (its patient, provider and insurer)",
                         parameters: [("id", "path", true, "claim id")], responseType: "application/json", hasBody: false),
        ]
    }

    public func addRoutes(to router: Router<LedgerRequestContext>, api: LedgerAPI) {
        router.get("/v1/claims") { request, _ in
            await api.handle {
                let did = try api.auth.authenticate(request)
                let status = request.uri.queryParameters.get("status").map { String($0) }
                if let status, !Self.statuses.contains(status) {
                    throw LedgerError("bad_parameter", "status is one of \(Self.statuses.sorted().joined(separator: ", "))")
                }
                var found: [JSONValue] = []
                for key in try api.node.store.stateKeys(prefix: "claims/claim/", limit: 1_000_000) {
                    guard let claim = try api.node.stateJSON(key), [claim["patient"], claim["provider"], claim["insurer"]].contains(.string(did)),
                        status == nil || claim["status"]?.stringValue == status
                    else { continue }
                    found.append(try Self.withCurrency(claim, node: api.node))
                }
                found.sort { ($0["time"]?.intValue ?? 0) > ($1["time"]?.intValue ?? 0) }
                return JSONResponse.make(.object(["claims": .array(Array(found.prefix(200)))]))
            }
        }
        router.get("/v1/claims/:id") { request, context in
            await api.handle {
                let did = try api.auth.authenticate(request)
                let id = context.parameters.get("id") ?? ""
                let claim = try api.node.stateJSON(ClaimState.key(id))
                // The same answer for a claim that does not exist and one the caller may not see.
                guard let claim, [claim["patient"], claim["provider"], claim["insurer"]].contains(.string(did)) else {
                    throw LedgerError("forbidden", "claim \(id) is served to its patient, provider and insurer")
                }
                return JSONResponse.make(try Self.withCurrency(claim, node: api.node))
            }
        }
    }

    static let statuses: Set<String> = ["queued", "pended", "adjudicated", "paid", "appealed"]

    /// A claim with its plan's currency and the currency's minor unit (to show its amounts).
    static func withCurrency(_ claim: JSONValue, node: LedgerNode) throws -> JSONValue {
        guard var o = claim.objectValue, let insurer = claim["insurer"]?.stringValue, let plan = claim["plan"]?.stringValue,
            let currency = try node.stateJSON(ClaimsContract.planKey(insurer: insurer, plan: plan))?["currency"]?.stringValue
        else { return claim }
        o["currency"] = .string(currency)
        o["minorDigits"] = .int(Int64(ClaimsPolicy.currencies[currency] ?? 2))
        return .object(o)
    }

    public func services(api: LedgerAPI) -> [any Service] {
        api.organisations.isEmpty ? [] : [PayerService(payer: Payer(host: api, records: records))]
    }

    /// A claim's state names its parties; an accumulator its patient and insurer; a duplicate key its insurer.
    public func audience(ofStateKey key: String, value: JSONValue?, node: LedgerNode) throws -> Audience? {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 3, parts[0] == "claims" else { return nil }
        switch parts[1] {
        case "claim":
            let parties = [value?["provider"], value?["insurer"]].compactMap { $0?.stringValue }
            return Audience(patients: Set([value?["patient"]?.stringValue].compactMap { $0 }), parties: Set(parties))
        case "accumulator" where parts.count == 5:
            return Audience(patients: [parts[4]], parties: [parts[2]])
        default:
            return nil
        }
    }

    /// A lifecycle transaction concerns the claim's patient, provider and insurer.
    public func audience(ofTransaction tx: Transaction, node: LedgerNode) throws -> Audience? {
        guard tx.contract == "claims", let id = tx.payload["claim"]?.stringValue else { return nil }
        let claim = try node.stateJSON(ClaimState.key(id))
        let patient = (claim?["patient"] ?? tx.payload["patient"])?.stringValue
        let parties = [claim?["provider"], claim?["insurer"], tx.payload["insurer"]].compactMap { $0?.stringValue }
        return Audience(patients: Set([patient].compactMap { $0 }), parties: Set(parties))
    }

    /// A claim's news goes to its provider and insurer (and, as every patient's event, to her).
    public func concerns(_ event: JSONValue, did: String, node: LedgerNode) -> Bool {
        guard event["type"]?.stringValue?.hasPrefix("claims.") == true else { return false }
        return event["provider"]?.stringValue == did || event["insurer"]?.stringValue == did
    }
}

/// Adjudicates the claims of the insurers a node acts for: reads the sealed Claim as the insurer,
/// runs the rule (`Adjudication.run`) with the member's accumulators from the ledger, the policy version
/// in force for each line and the insurer's duplicate keys, and commits `claims.adjudicate` signed with
/// the insurer's key. A claim whose record cannot be read or does not match its lines on the ledger is
/// pended, saying why.
public struct Payer: Sendable {
    let host: LedgerAPI
    let records: any ClaimRecords

    var node: LedgerNode { host.node }

    /// The claims waiting for an insurer this node acts for (queued, or appealed).
    func waiting() throws -> [JSONValue] {
        try node.store.stateKeys(prefix: "claims/claim/", limit: 1_000_000).compactMap { key in
            guard let claim = try node.stateJSON(key), ["queued", "appealed"].contains(claim["status"]?.stringValue ?? ""),
                let insurer = claim["insurer"]?.stringValue, host.organisations[insurer] != nil
            else { return nil }
            return claim
        }
    }

    /// Adjudicates every claim waiting; answers how many were decided.
    @discardableResult
    public func sweep() async -> Int {
        var decided = 0
        for claim in (try? waiting()) ?? [] where await adjudicate(claim) { decided += 1 }
        return decided
    }

    /// The payer's duplicate key of a line: HMAC-SHA256 of patient, provider, service and day under a key
    /// derived from the insurer's signing key (opaque to everyone else).
    static func duplicateKey(_ claim: ClaimInput, _ line: ClaimLine, insurer: ActingOrganisation) -> String {
        let key = SymmetricKey(data: SHA256.hash(data: Array("careledger claims duplicate key\n".utf8) + insurer.signing.seed))
        let message = [claim.patient, claim.provider, line.system, line.code, line.date.description].joined(separator: "\n")
        return HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: key).map { String(format: "%02x", $0) }.joined()
    }

    func adjudicate(_ stored: JSONValue) async -> Bool {
        guard let id = stored["id"]?.stringValue, let insurerDID = stored["insurer"]?.stringValue, let insurer = host.organisations[insurerDID],
            let plan = stored["plan"]?.stringValue, let record = stored["record"]?.stringValue
        else { return false }
        do {
            guard let planEntry = try node.stateJSON(ClaimsContract.planKey(insurer: insurerDID, plan: plan)),
                let currency = planEntry["currency"]?.stringValue, let digits = ClaimsPolicy.currencies[currency],
                let start = planEntry["year"]?["start"]?.stringValue.flatMap({ CivilDate($0) }), let end = planEntry["year"]?["end"]?.stringValue.flatMap({ CivilDate($0) })
            else { throw LedgerError("not_found", "plan \(plan) is not on the ledger") }
            let resource: JSONValue
            do {
                resource = try await records.read(claim: record, as: insurer, host: host)
            } catch {
                return await pend(id, insurer: insurer, missing: ["the Claim record \(record) could not be read: \(error)"])
            }
            let claim: ClaimInput
            do {
                claim = try ClaimInput(json: resource, path: "", minorDigits: digits, currency: currency)
            } catch {
                return await pend(id, insurer: insurer, signals: ["claim_unreadable: \(error)"])
            }
            let onLedger = (stored["lines"]?.arrayValue ?? []).map { "\($0["sequence"]?.intValue ?? 0)/\($0["date"]?.stringValue ?? "")/\($0["submitted"]?.intValue ?? 0)" }
            guard Set(claim.lines.map { "\($0.sequence)/\($0.date)/\($0.submitted)" }) == Set(onLedger) else {
                return await pend(id, insurer: insurer, signals: ["claim_mismatch: the sealed claim's lines differ from those submitted on the ledger"])
            }
            var policies: [Int64: ClaimsPolicy] = [:]
            func policy(_ line: ClaimLine) -> ClaimsPolicy? {
                guard let version = ClaimsContract.inForce(plan: planEntry, on: line.date) else { return nil }
                if let known = policies[version] { return known }
                let json = try? node.stateJSON(ClaimsContract.policyKey(insurer: insurerDID, plan: plan, version: version))?["policy"]
                policies[version] = json.flatMap { try? ClaimsPolicy(json: $0) }
                return policies[version]
            }
            let accumulatorKey = ClaimState.accumulatorKey(insurer: insurerDID, plan: plan, patient: claim.patient)
            var accumulator = Adjudication.Accumulator(json: try node.stateJSON(accumulatorKey))
            for previous in stored["adjudication"]?["lines"]?.arrayValue ?? [] {
                accumulator.deductible -= previous["deductible"]?.intValue ?? 0
                accumulator.outOfPocket -= (previous["deductible"]?.intValue ?? 0) + (previous["copay"]?.intValue ?? 0) + (previous["coinsurance"]?.intValue ?? 0)
            }
            var accumulators = [claim.patient: accumulator]
            let earlier: (ClaimInput, ClaimLine) -> Bool = { c, line in
                let owner = (try? node.stateJSON(ClaimState.seenKey(insurer: insurerDID, key: Self.duplicateKey(c, line, insurer: insurer))))??["claim"]?.stringValue
                return owner != nil && owner != id
            }
            let result = Adjudication.run([claim], policy: policy, planYear: (start, end), accumulators: &accumulators, earlier: earlier)[0]
            let seen = zip(claim.lines, result.items).filter { !$0.1.denied }.map { Self.duplicateKey(claim, $0.0, insurer: insurer) }
            let payload: JSONValue = .object(["claim": .string(id), "lines": .array(result.items.map(\.json)), "seen": .array(seen.map { .string($0) })])
            let receipt = try await submit("adjudicate", payload, insurer: insurer)
            if receipt.status != .committed {
                node.logger.error("claim adjudication refused", metadata: ["claim": "\(id)", "error": "\(receipt.errorCode ?? "?")"])
                return false
            }
            return true
        } catch {
            node.logger.error("claim adjudication failed", metadata: ["claim": "\(id)", "error": "\(error)"])
            return false
        }
    }

    func pend(_ id: String, insurer: ActingOrganisation, missing: [String] = [], signals: [String] = []) async -> Bool {
        let payload: JSONValue = .object([
            "claim": .string(id), "missing": .array(missing.map { .string(String($0.prefix(256))) }), "signals": .array(signals.map { .string(String($0.prefix(256))) }),
        ])
        return (try? await submit("pend", payload, insurer: insurer))?.status == .committed
    }

    func submit(_ action: String, _ payload: JSONValue, insurer: ActingOrganisation) async throws -> Receipt {
        let tx = try Transaction(chainID: node.genesis.chainID, signer: insurer.signing, contract: "claims", action: action, payload: payload)
        return try await node.submit(tx)
    }
}

/// Runs the payer at start (claims that arrived while the node was down) and on every claim event.
struct PayerService: Service {
    let payer: Payer

    func run() async throws {
        await cancelWhenGracefulShutdown {
            let hub = payer.node.events
            await payer.sweep()
            while !Task.isCancelled {
                for await event in hub.subscribe() {
                    guard let type = event.body["type"]?.stringValue, type == "claims.queued" || type == "claims.appealed" else { continue }
                    await payer.sweep()
                }
                if hub.isFinished { break }
                await payer.sweep()  // a stream that fell behind ended: look at the ledger again
            }
        }
    }
}
