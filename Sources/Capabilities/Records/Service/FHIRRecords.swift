import ContractKit
import Crypto
import Foundation
import Hummingbird
import LedgerCore
import Node
import Server
import RecordsContract
import Standards

/// Clinical resources through `/fhir`, for the practitioners of the organisation the node acts for:
/// create (POST), update (PUT with If-Match), read, vread, `_history`, search by patient/subject and
/// `_lastUpdated`. Patients are `Patient/<multibase>` for `did:key:<multibase>`.
struct FHIRRecords: Sendable {
    let fhir: FHIRAPI
    let acting: ActingOrganisation

    var records: RecordsService { fhir.records }
    var node: LedgerNode { fhir.records.node }


    /// The patient a resource is about: Patient.id, or its `subject`/`patient` reference.
    static func patientDID(of resource: JSONValue) throws(LedgerError) -> String {
        let type = resource["resourceType"]?.stringValue ?? ""
        let reference: String?
        if type == "Patient" {
            reference = resource["id"]?.stringValue.map { "Patient/\($0)" }
        } else {
            reference = (resource["subject"] ?? resource["patient"])?["reference"]?.stringValue
        }
        guard let reference, reference.hasPrefix("Patient/") else {
            throw LedgerError("bad_resource", "the resource must name its patient as Patient/<did:key multibase> in subject or patient")
        }
        let did = "did:key:" + reference.dropFirst("Patient/".count)
        _ = try PublicKey(did: did)
        return did
    }

    /// The did of a Patient being created: its identifier with system urn:ietf:rfc:3986, else its id.
    static func patientDIDForCreate(_ resource: JSONValue) throws -> String {
        let identifiers = resource["identifier"]?.arrayValue ?? []
        if let did = identifiers.first(where: { $0["system"]?.stringValue == FHIRAPI.didSystem })?["value"]?.stringValue {
            return try PublicKey(did: did).did
        }
        guard let id = resource["id"]?.stringValue, let key = try? PublicKey(did: "did:key:" + id) else {
            throw LedgerError("unknown_patient", "a Patient names her did: an identifier with system \(FHIRAPI.didSystem), or id = the did's multibase")
        }
        return key.did
    }

    /// The authenticated user must be the organisation or one of its practitioners.
    func user(_ request: Request) throws -> String {
        let did = try fhir.auth.authenticate(request)
        let organisation = try records.principal(did)?.organisation
        guard did == acting.did || organisation == acting.did else {
            throw LedgerError("forbidden", "this node's FHIR facade serves the practitioners of \(acting.did)")
        }
        return did
    }

    func body(_ request: Request) async throws -> JSONValue {
        if let type = request.headers[.contentType]?.lowercased(), !type.hasPrefix("application/fhir+json"), !type.hasPrefix("application/json") {
            throw LedgerError("unsupported_media_type", "send application/fhir+json")
        }
        let value = try await fhir.api.jsonBody(request)
        let issues = FHIRValidator.validate(value)
        if !issues.isEmpty { throw FHIRInvalid(issues: issues) }
        return value
    }

    /// Seals and commits a version; answers the stored resource.
    func write(_ resource: JSONValue, id: String, version: Int64, user: String, requester: String? = nil) async throws -> JSONValue {
        let type = resource["resourceType"]!.stringValue!
        try Self.refuseLedgerOwned(type)
        let patient = try Self.patientDID(of: resource)
        try checkReferences(resource, patient: patient, inBundle: [], expression: type)
        var stored = resource.objectValue!
        stored["id"] = .string(id)
        stored["meta"] = Self.meta(stored["meta"], version: version, lastUpdated: FHIRFormat.instant(Int64(records.node.now)))
        var recipients: [String: [UInt8]] = [acting.did: acting.encryption.publicKey]
        for p in try records.recipients(patient: patient, resourceType: type, custodian: acting.did) { recipients[p.did] = p.encryptionKey }
        let sealed = try SealedVersion(resource: JSONValue.object(stored).canonicalBytes, recordID: id, version: version, recipients: recipients)
        for (hash, blob) in sealed.uploads { try records.vault.put(saltedHash: hash, blob: blob) }
        let result = try await commit("put", sealed.putPayload(
            recordID: id, patient: patient, resourceType: type, version: version, custodian: acting.did, parties: parties(type, user: user, requester: requester, resource: resource),
            onBehalfOf: user == acting.did ? nil : user))
        // Waiting for an endorsement (another party's signature): answered flagged, as reads flag it.
        if result["status"] == .string("pending") {
            var meta = stored["meta"]?.objectValue ?? [:]
            meta["tag"] = .array((meta["tag"]?.arrayValue ?? []) + [Self.pendingTag])
            stored["meta"] = .object(meta)
        }
        return .object(stored)
    }

    /// Signs a `records` action with the organisation's key and waits for it; a failed receipt throws the contract's error.
    @discardableResult
    func commit(_ action: String, _ payload: JSONValue) async throws -> JSONValue {
        let receipt = try await node.submit(
            try Transaction(
                chainID: node.genesis.chainID, signer: acting.signing, contract: "records",
                action: action, payload: payload))
        guard receipt.status == .committed else { throw LedgerError(receipt.errorCode ?? "failed", receipt.errorMessage ?? "write refused") }
        return receipt.result
    }

    /// Endorsing parties for types with a policy: through the facade the organisation performs; the
    /// requester (the ordering practitioner) is `?requester=<did>` when she is someone else — the version
    /// then stays pending until she endorses it with her own key (`records.endorse`) — or else the
    /// authenticated practitioner herself (she signed in with her key; the organisation signs for her).
    /// The performing lab is the organisation the resource names as `performer` (`Organization/<id>` of a
    /// did:key), or this node's organisation; the requester is `?requester=` or the signed-in user.
    func parties(_ type: String, user: String, requester: String? = nil, resource: JSONValue? = nil) -> [String: String] {
        guard EndorsementPolicy.requiredParties[type] != nil else { return [:] }
        var performer = acting.did
        for p in resource?["performer"]?.arrayValue ?? [] {
            guard let reference = p["reference"]?.stringValue, reference.hasPrefix("Organization/"),
                let did = try? PublicKey(did: "did:key:" + reference.dropFirst("Organization/".count)).did
            else { continue }
            performer = did
            break
        }
        return ["performer": performer, "requester": requester ?? user]
    }

    /// The `requester` query parameter: a did.
    static func requester(_ request: Request) throws -> String? {
        guard let text = request.uri.queryParameters.get("requester") else { return nil }
        return try PublicKey(did: String(text)).did
    }

    /// Whether the facade can open a read (its key wrapped for this organisation): what it cannot is
    /// not released, and the access event says so.
    var releasable: @Sendable (RecordRead) -> Bool {
        let did = acting.did
        return { $0.keys[did] != nil }
    }

    /// Opens a read with the organisation's key.
    func open(_ read: RecordRead) throws -> JSONValue {
        guard let wrapped = read.keys[acting.did] else {
            throw LedgerError("no_key_for_reader", "this version's key is not wrapped for \(acting.did)")
        }
        let context = RecordEntry.context(id: read.record.id, version: read.version.version)
        let key = try KeyWrap.unwrap(wrapped, with: acting.encryption, context: context)
        let resource = try JSONValue.parse(try ContentCipher.open(read.ciphertext, key: key, context: context))
        guard read.version.status == .pending, case .object(var o) = resource else { return resource }
        // A version waiting for its endorsements is served flagged as such (meta.tag), never as current.
        var meta = o["meta"]?.objectValue ?? [:]
        meta["tag"] = .array((meta["tag"]?.arrayValue ?? []) + [Self.pendingTag])
        o["meta"] = .object(meta)
        return .object(o)
    }

    static let pendingTag: JSONValue = .object([
        "system": .string("urn:careledger:version-status"), "code": .string("pending"),
        "display": .string("awaiting the endorsements its policy requires"),
    ])

    /// Consent, AuditEvent and Provenance are the ledger's own data: a consent is a grant the patient
    /// signs (`consent.grant`), access events are recorded by the custodian node, provenance is derived
    /// from the chain. None is written as a record.
    static func refuseLedgerOwned(_ type: String) throws {
        switch type {
        case "Consent":
            throw LedgerError("method_not_allowed", "a Consent is a grant the patient signs with her key: careledger consent grant, or consent.grant through POST /v1/transactions")
        case "AuditEvent", "Provenance":
            throw LedgerError("method_not_allowed", "\(type) resources come from the ledger itself and are read-only")
        case "Bundle":
            throw LedgerError("method_not_allowed", "a Bundle is posted to /fhir as a transaction, not stored")
        default: return
        }
    }

    /// Every relative reference to a patient-compartment type this server stores must resolve: a
    /// registered patient (`Patient/<multibase>`), a record of that type of the same patient, or an
    /// entry of the same Bundle; an unresolved `urn:uuid:` is refused too. References to directory types (Organization,
    /// Practitioner, Location…), contained (`#`), absolute URLs and conditional references are kept as given.
    func checkReferences(_ resource: JSONValue, patient: String, inBundle: Set<String>, expression: String) throws {
        var issues: [FHIRIssue] = []
        func missing(_ reference: String, _ path: String) {
            issues.append(FHIRIssue(severity: .error, code: "not-found", diagnostics: "reference target \(reference) does not exist", expression: path))
        }
        func walk(_ value: JSONValue, _ path: String) throws {
            switch value {
            case .object(let o):
                for (key, child) in o.sorted(by: { $0.key < $1.key }) {
                    if key == "reference", let r = child.stringValue {
                        if r.hasPrefix("urn:uuid:") { missing(r, path + ".reference"); continue }
                        guard !r.hasPrefix("#"), !r.hasPrefix("http://"), !r.hasPrefix("https://"), !r.hasPrefix("urn:"), !r.contains("?") else { continue }
                        let parts = r.split(separator: "/").map(String.init)
                        guard parts.count >= 2, FHIRAPI.clinicalTypes.contains(parts[0]) else { continue }
                        let target = "\(parts[0])/\(parts[1])"
                        if inBundle.contains(target) { continue }
                        if parts[0] == "Patient", try records.principal("did:key:" + parts[1])?.role == .patient { continue }
                        // A record of the same patient: another patient's record is not a target (and not disclosed).
                        if let target = try records.record(parts[1]), target.resourceType == parts[0], target.patient == patient { continue }
                        missing(r, path + ".reference")
                    } else if key != "contained" {
                        try walk(child, path + "." + key)
                    }
                }
            case .array(let a): for (i, child) in a.enumerated() { try walk(child, "\(path)[\(i)]") }
            default: return
            }
        }
        try walk(resource, expression)
        if !issues.isEmpty { throw FHIRInvalid(issues: issues) }
    }

    func respond(_ resource: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var response = FHIRAPI.respond(resource, status: status)
        if let v = resource["meta"]?["versionId"]?.stringValue { response.headers[.eTag] = "W/\"\(v)\"" }
        if status == .created, let type = resource["resourceType"]?.stringValue, let id = resource["id"]?.stringValue,
            let v = resource["meta"]?["versionId"]?.stringValue
        {
            response.headers[.location] = "/fhir/\(type)/\(id)/_history/\(v)"
        }
        return response
    }

    /// The client's meta (tags, profiles, security labels) with the server's versionId and lastUpdated.
    static func meta(_ given: JSONValue?, version: Int64, lastUpdated: String) -> JSONValue {
        var meta = given?.objectValue ?? [:]
        meta["versionId"] = .string(String(version))
        meta["lastUpdated"] = .string(lastUpdated)
        return .object(meta)
    }

    /// Replaces every reference found in `map` (fullUrl → Type/id), at any depth.
    static func rewrite(_ value: JSONValue, _ map: [String: String]) -> JSONValue {
        switch value {
        case .object(let o):
            var out: [String: JSONValue] = [:]
            for (k, v) in o {
                if k == "reference", let r = v.stringValue, let mapped = map[r] {
                    out[k] = .string(mapped)
                } else {
                    out[k] = rewrite(v, map)
                }
            }
            return .object(out)
        case .array(let a): return .array(a.map { rewrite($0, map) })
        default: return value
        }
    }

    /// A FHIR transaction Bundle (POST entries, PUT entries with ids): all entries commit in one
    /// ledger transaction or none does. The patient is named by a Patient entry whose identifier is
    /// her did (system urn:ietf:rfc:3986), or by the entries' references to Patient/<multibase>;
    /// entries without a patient reference (Organization, Practitioner…) are filed under her record.
    func transaction(_ bundle: JSONValue, user: String, requester: String? = nil) async throws -> JSONValue {
        guard bundle["type"]?.stringValue == "transaction", let entries = bundle["entry"]?.arrayValue, !entries.isEmpty else {
            throw LedgerError("bad_resource", "POST /fhir takes a Bundle of type transaction with entries")
        }
        var map: [String: String] = [:]
        var patients: Set<String> = []
        var planned: [(resource: JSONValue, type: String, id: String, version: Int64, method: String)] = []
        for (i, entry) in entries.enumerated() {
            guard let resource = entry["resource"], let type = resource["resourceType"]?.stringValue else {
                throw LedgerError("bad_resource", "entry \(i) has no resource")
            }
            let method = entry["request"]?["method"]?.stringValue ?? "POST"
            guard method == "POST" || method == "PUT" else { throw LedgerError("not_supported", "entry \(i): only POST and PUT are supported in transactions") }
            try Self.refuseLedgerOwned(type)
            var id: String
            if type == "Patient" {
                let identifiers = resource["identifier"]?.arrayValue ?? []
                guard let did = identifiers.first(where: { $0["system"]?.stringValue == FHIRAPI.didSystem })?["value"]?.stringValue,
                    try records.principal(did)?.role == .patient
                else { throw LedgerError("unknown_patient", "entry \(i): a Patient needs an identifier (system \(FHIRAPI.didSystem)) with the did of a registered patient") }
                patients.insert(did)
                id = String(did.dropFirst("did:key:".count))
            } else if method == "PUT", let given = resource["id"]?.stringValue {
                id = given
            } else {
                id = UUID().uuidString.lowercased()
            }
            let existing = try records.record(id)
            if method == "POST" && existing != nil && type != "Patient" { id = UUID().uuidString.lowercased() }
            let version = Int64((try records.record(id)?.versions.count ?? 0) + 1)
            if let fullUrl = entry["fullUrl"]?.stringValue {
                map[fullUrl] = "\(type)/\(id)"
                // A RESTful fullUrl (…/Type/id) also resolves the Bundle's relative references Type/id (FHIR R4 §2.36.4.1).
                let parts = fullUrl.split(separator: "/")
                if fullUrl.hasPrefix("http"), parts.count >= 2, parts[parts.count - 2] == type { map["\(type)/\(parts[parts.count - 1])"] = "\(type)/\(id)" }
            }
            planned.append((resource, type, id, version, method))
        }
        for item in planned {
            let rewritten = Self.rewrite(item.resource, map)
            if item.type != "Patient", let did = try? Self.patientDID(of: rewritten) { patients.insert(did) }
        }
        guard patients.count == 1, let patient = patients.first else {
            throw LedgerError("bad_resource", "a transaction Bundle is about exactly one patient (found \(patients.count))")
        }
        var recipientsByType: [String: [String: [UInt8]]] = [:]
        let session = KeyWrapSession()
        var puts: [JSONValue] = []
        var answers: [JSONValue] = []
        let now = FHIRFormat.instant(Int64(records.node.now))
        let inBundle = Set(map.values)
        for (i, item) in planned.enumerated() {
            try checkReferences(Self.rewrite(item.resource, map), patient: patient, inBundle: inBundle, expression: "Bundle.entry[\(i)].resource")
        }
        for item in planned {
            var stored = Self.rewrite(item.resource, map).objectValue!
            stored["id"] = .string(item.id)
            stored["meta"] = Self.meta(stored["meta"], version: item.version, lastUpdated: now)
            if recipientsByType[item.type] == nil {
                var r: [String: [UInt8]] = [acting.did: acting.encryption.publicKey]
                for p in try records.recipients(patient: patient, resourceType: item.type, custodian: acting.did) { r[p.did] = p.encryptionKey }
                recipientsByType[item.type] = r
            }
            let sealed = try SealedVersion(
                resource: JSONValue.object(stored).canonicalBytes, recordID: item.id, version: item.version, recipients: recipientsByType[item.type]!,
                session: session)
            for (hash, blob) in sealed.uploads { try records.vault.put(saltedHash: hash, blob: blob) }
            puts.append(sealed.putPayload(
                recordID: item.id, patient: patient, resourceType: item.type, version: item.version, custodian: acting.did,
                parties: parties(item.type, user: user, requester: requester, resource: .object(stored)), onBehalfOf: user == acting.did ? nil : user))
            answers.append(.object(["response": .object([
                "status": .string(item.version == 1 ? "201 Created" : "200 OK"), "location": .string("\(item.type)/\(item.id)/_history/\(item.version)"),
                "etag": .string("W/\"\(item.version)\""), "lastModified": .string(now),
            ])]))
        }
        try await commit("bundle", .object(["puts": .array(puts)]))
        return .object(["resourceType": .string("Bundle"), "type": .string("transaction-response"), "entry": .array(answers)])
    }

    func register(on router: Router<LedgerRequestContext>) {
        router.post("/fhir") { request, _ in
            await fhir.handle {
                let user = try user(request)
                // `?requester=` names the ordering practitioner of the Bundle's DiagnosticReports.
                return FHIRAPI.respond(try await transaction(try await body(request), user: user, requester: try Self.requester(request)))
            }
        }
        router.post("/fhir/:type") { request, context in
            await fhir.handle {
                let user = try user(request)
                var resource = try await body(request)
                guard resource["resourceType"]?.stringValue == context.parameters.get("type") else {
                    throw LedgerError("bad_resource", "resourceType does not match the URL")
                }
                // A Patient is filed under her did's multibase (as in transactions), named by its id or by an
                // identifier with the did (system urn:ietf:rfc:3986); other types get a fresh id.
                var id = UUID().uuidString.lowercased()
                if resource["resourceType"] == .string("Patient") {
                    let did = try Self.patientDIDForCreate(resource)
                    guard try records.principal(did)?.role == .patient else { throw LedgerError("unknown_patient", "\(did) is not a registered patient") }
                    id = String(did.dropFirst("did:key:".count))
                    guard try records.record(id) == nil else {
                        throw LedgerError("version_conflict", "Patient/\(id) exists: update it with PUT and If-Match")
                    }
                    if var o = resource.objectValue {
                        o["id"] = .string(id)
                        resource = .object(o)
                    }
                }
                return respond(try await write(resource, id: id, version: 1, user: user, requester: try Self.requester(request)), status: .created)
            }
        }
        router.put("/fhir/:type/:id") { request, context in
            await fhir.handle {
                let user = try user(request)
                let resource = try await body(request)
                let id = context.parameters.get("id") ?? ""
                guard resource["resourceType"]?.stringValue == context.parameters.get("type"), resource["id"]?.stringValue == id else {
                    throw LedgerError("bad_resource", "resourceType and id must match the URL")
                }
                let existing = try records.record(id)
                let next = Int64((existing?.versions.count ?? 0) + 1)
                if let match = request.headers[.ifMatch] {
                    let expected = "W/\"\(next - 1)\""
                    guard match == expected || match == "\"\(next - 1)\"" else {
                        throw LedgerError("precondition_failed", "If-Match \(match) does not match the current version \(expected)")
                    }
                }
                return respond(
                    try await write(resource, id: id, version: next, user: user, requester: try Self.requester(request)), status: existing == nil ? .created : .ok)
            }
        }
        router.get("/fhir/:type/:id") { request, context in
            await fhir.handle {
                let user = try user(request)
                let read = try await records.read(recordID: context.parameters.get("id") ?? "", readerDID: user, purpose: purpose(request), reason: reason(request), releasable: releasable)
                guard read.record.resourceType == context.parameters.get("type") else { throw LedgerError("not_found", "no such resource") }
                return respond(try open(read))
            }
        }
        router.get("/fhir/:type/:id/_history/:vid") { request, context in
            await fhir.handle {
                let user = try user(request)
                guard let vid = Int64(context.parameters.get("vid") ?? "") else { throw LedgerError("not_found", "no such version") }
                let read = try await records.read(recordID: context.parameters.get("id") ?? "", readerDID: user, purpose: purpose(request), reason: reason(request), version: vid, releasable: releasable)
                guard read.record.resourceType == context.parameters.get("type") else { throw LedgerError("not_found", "no such resource") }
                return respond(try open(read))
            }
        }
        router.get("/fhir/:type/:id/_history") { request, context in
            await fhir.handle {
                let user = try user(request)
                let id = context.parameters.get("id") ?? ""
                guard let record = try records.record(id), record.resourceType == context.parameters.get("type") else {
                    throw LedgerError("not_found", "no such resource")
                }
                var entries: [JSONValue] = []
                for v in record.versions.reversed() {
                    let read = try await records.read(recordID: id, readerDID: user, purpose: purpose(request), reason: reason(request), version: v.version, releasable: releasable)
                    entries.append(.object(["resource": try open(read), "request": .object(["method": .string(v.version == 1 ? "POST" : "PUT"), "url": .string("\(record.resourceType)/\(id)")])]))
                }
                return FHIRAPI.respond(.object(["resourceType": .string("Bundle"), "type": .string("history"), "total": .int(Int64(entries.count)), "entry": .array(entries)]))
            }
        }
        router.get("/fhir/:type") { request, context in
            await fhir.handle {
                let user = try user(request)
                let type = context.parameters.get("type") ?? ""
                guard FHIRValidator.supported.contains(type) else { throw LedgerError("not_supported", "\(type) is not supported") }
                guard let reference = request.uri.queryParameters.get("patient") ?? request.uri.queryParameters.get("subject") else {
                    throw LedgerError("missing_parameter", "search by patient=Patient/<id> or subject=Patient/<id>")
                }
                let patient = "did:key:" + (reference.hasPrefix("Patient/") ? String(reference.dropFirst(8)) : reference)
                _ = try PublicKey(did: patient)
                let handled: Set<String> = ["patient", "subject", "purpose", "reason"]
                let search = try FHIRSearch(request.uri.queryParameters.filter { !handled.contains(String($0.key)) }.map { (String($0.key), String($0.value)) })
                let (reads, _) = try await records.timeline(patient: patient, readerDID: user, purpose: purpose(request), reason: reason(request), resourceType: type, releasable: releasable)
                var candidates: [(resource: JSONValue, lastUpdated: Int64)] = []
                for read in reads where read.record.resourceType == type {
                    // Versions this organisation cannot open were left out (and not logged as released) by the timeline.
                    candidates.append((try open(read), read.version.time))
                }
                let (page, total) = search.apply(candidates)
                return FHIRAPI.respond(FHIRAPI.searchset(page, total: total))
            }
        }
    }

    func purpose(_ request: Request) -> String { request.uri.queryParameters.get("purpose") ?? "treatment" }

    /// The stated reason of a break-the-glass read (`purpose=emergency&reason=…`).
    func reason(_ request: Request) -> String? { request.uri.queryParameters.get("reason").map { String($0) } }
}

/// A resource refused by validation: answered as an OperationOutcome listing every issue.

