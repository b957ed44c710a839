import ContractKit
import Foundation
import Hummingbird
import LedgerCore
import Node
import Server
import RecordsContract
import Standards

/// The FHIR R4 facade under `/fhir`. This release serves what comes from the ledger's own data:
/// Consent (read, search by patient) from the consent grants, AuditEvent (search by patient) from
/// the access events. Every error is an OperationOutcome. The CapabilityStatement lists exactly this.
struct FHIRAPI: Sendable {
    let api: LedgerAPI
    let records: RecordsService
    let acting: ActingOrganisation?

    var auth: AuthService { api.auth }

    static func respond(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response { FHIRHost.respond(value, status: status) }

    /// Runs `body`; errors become OperationOutcomes (`FHIRHost`).
    func handle(_ body: () async throws -> Response) async -> Response { await FHIRHost.handle(body) }
    static let didSystem = "urn:ietf:rfc:3986"

    func register(on router: Router<LedgerRequestContext>) {
        // The ledger's own types by id, served as one version each: vread of version 1 and a one-entry
        // _history give the current state (a consent's revocation, a provenance's later endorsers show in
        // it; their history is the ledger's own, in its transactions).
        for type in ["Consent", "AuditEvent", "Provenance"] {
            router.get("/fhir/\(type)/:id") { request, context in
                await handle { Self.respond(try await ledgerOwned(type, id: context.parameters.get("id") ?? "", request: request)) }
            }
            router.get("/fhir/\(type)/:id/_history/:vid") { request, context in
                await handle {
                    let id = context.parameters.get("id") ?? ""
                    guard context.parameters.get("vid") == "1" else { throw LedgerError("not_found", "\(type)/\(id) has only version 1") }
                    return Self.respond(try await ledgerOwned(type, id: id, request: request))
                }
            }
            router.get("/fhir/\(type)/:id/_history") { request, context in
                await handle {
                    let resource = try await ledgerOwned(type, id: context.parameters.get("id") ?? "", request: request)
                    let entry: JSONValue = .object([
                        "fullUrl": .string("\(type)/\(resource["id"]?.stringValue ?? "")/_history/1"), "resource": resource,
                        "request": .object(["method": .string("POST"), "url": .string(type)]), "response": .object(["status": .string("201 Created")]),
                    ])
                    return Self.respond(.object(["resourceType": .string("Bundle"), "type": .string("history"), "total": .int(1), "entry": .array([entry])]))
                }
            }
        }
        router.get("/fhir/Consent") { request, _ in
            await handle {
                let requester = try auth.authenticate(request)
                let patient = try patientParameter(request)
                let search = try searchParameters(request)
                try mayRead(patient: patient, requester: requester)
                let (page, total) = search.apply(try records.grants(patient: patient).map { (Self.consent($0), $0.lastUpdated) })
                return Self.respond(Self.searchset(page, total: total))
            }
        }
        router.get("/fhir/Provenance") { request, _ in
            await handle {
                let requester = try auth.authenticate(request)
                let query = request.uri.queryParameters
                if query.get("target") == nil, query.get("patient") != nil || query.get("subject") != nil {
                    // Every version of every record of the patient the requester may see (one metadata access event).
                    let patient = try patientParameter(request)
                    let search = try searchParameters(request)
                    let entries = try await records.metadataTimeline(patient: patient, readerDID: requester)
                    let (page, total) = search.apply(entries.flatMap { record in record.versions.map { (Self.provenance(record, $0), $0.time) } })
                    return Self.respond(Self.searchset(page, total: total))
                }
                guard let target = query.get("target"), let slash = target.firstIndex(of: "/") else {
                    throw LedgerError("missing_parameter", "search Provenance by target=Type/id or patient=Patient/<id>")
                }
                let id = String(target[target.index(after: slash)...])
                guard let known = try records.record(id), known.resourceType == String(target[..<slash]) else {
                    throw LedgerError("not_found", "\(target) is not known")
                }
                let record = try await records.metadataRead(recordID: known.id, readerDID: requester)
                return Self.respond(Self.searchset(record.versions.map { Self.provenance(record, $0) }))
            }
        }
        // Methods the facade does not serve answer 405 with an OperationOutcome (never a bare 404).
        for path in ["/fhir/:type", "/fhir/:type/:id"] {
            for method in [HTTPRequest.Method.delete, .patch] {
                router.on(RouterPath(path), method: method) { request, _ in
                    await handle { throw LedgerError("method_not_allowed", "\(request.method.rawValue) is not supported: records are versioned, never deleted (a patient erases hers with records.erase)") }
                }
            }
        }
        for type in ["Consent", "AuditEvent", "Provenance"] {
            router.post("/fhir/\(type)") { _, _ in await handle { try FHIRRecords.refuseLedgerOwned(type); return Response(status: .ok) } }
            router.put("/fhir/\(type)/:id") { _, _ in await handle { try FHIRRecords.refuseLedgerOwned(type); return Response(status: .ok) } }
        }
        router.get("/fhir/AuditEvent") { request, _ in
            await handle {
                let requester = try auth.authenticate(request)
                let patient = try patientParameter(request)
                let search = try searchParameters(request)
                let events = try records.accessLog(patient: patient, requesterDID: requester)
                let (page, total) = search.apply(events.map { (Self.auditEvent($0, patient: patient), $0["time"]?.intValue ?? 0) })
                return Self.respond(Self.searchset(page, total: total))
            }
        }
        // FHIR's $validate: checks a resource as a write would, stores nothing, answers 200 with an
        // OperationOutcome of its issues (one `informational` issue when there are none); a body that is
        // not a JSON object is no resource to check (400). The app checks
        // a form with it before sealing the record in the browser.
        router.post("/fhir/:type/$validate") { request, context in
            await handle {
                _ = try auth.authenticate(request)
                if let media = request.headers[.contentType]?.lowercased(), !media.hasPrefix("application/fhir+json"), !media.hasPrefix("application/json") {
                    throw LedgerError("unsupported_media_type", "send application/fhir+json")
                }
                let posted = try await api.jsonBody(request)
                // Not a resource at all: the operation has nothing to check (400, as a write would answer).
                guard posted.objectValue != nil else { throw FHIRInvalid(issues: FHIRValidator.validate(posted)) }
                return Self.respond(Self.validation(posted, type: context.parameters.get("type") ?? ""))
            }
        }
        if let acting {
            FHIRRecords(fhir: self, acting: acting).register(on: router)
        } else {
            router.get("/fhir/:type") { _, context in
                await handle { throw LedgerError("not_supported", "\(context.parameters.get("type") ?? "") is served only by a node acting for an organisation") }
            }
        }
    }

    /// The OperationOutcome of `$validate` for a resource (or a Parameters whose `resource` parameter
    /// holds it) posted to `/fhir/<type>/$validate`: FHIR's structural rules, the type of the path, and
    /// the patient named as a did, as a write checks them.
    static func validation(_ posted: JSONValue, type: String) -> JSONValue {
        var resource = posted
        if posted["resourceType"]?.stringValue == "Parameters",
            let inner = posted["parameter"]?.arrayValue?.first(where: { $0["name"]?.stringValue == "resource" })?["resource"]
        {
            resource = inner
        }
        var issues = FHIRValidator.validate(resource)
        if issues.isEmpty, let posted = resource["resourceType"]?.stringValue, posted != type {
            issues.append(FHIRIssue(severity: .error, code: "value", diagnostics: "the resource is a \(posted), sent to \(type)/$validate", expression: "resourceType"))
        }
        if issues.isEmpty, type != "Patient", !["Consent", "AuditEvent", "Provenance"].contains(type) {
            do {
                _ = try FHIRRecords.patientDID(of: resource)
            } catch {
                issues.append(FHIRIssue(severity: .error, code: "value", diagnostics: error.message, expression: "\(type).subject"))
            }
        }
        if issues.isEmpty {
            issues = [FHIRIssue(severity: .information, code: "informational", diagnostics: "no issues: the resource is valid", expression: "$this")]
        }
        return FHIRValidator.operationOutcome(issues)
    }

    /// The search parameters besides the patient: `_lastUpdated`, `date`, `_count`, `_sort` and the rest of `FHIRSearch`.
    func searchParameters(_ request: Request) throws -> FHIRSearch {
        try FHIRSearch(request.uri.queryParameters.filter { $0.key != "patient" && $0.key != "subject" }.map { (String($0.key), String($0.value)) })
    }

    /// A Consent, AuditEvent or Provenance by id, for a requester who may read it.
    func ledgerOwned(_ type: String, id: String, request: Request) async throws -> JSONValue {
        let requester = try auth.authenticate(request)
        switch type {
        case "Consent":
            guard let bytes = records.node.stateValue(forKey: ConsentGrant.idKey(id)), let patient = try JSONValue.parse(bytes)["patient"]?.stringValue,
                let grant = try records.grants(patient: patient).first(where: { $0.id == id })
            else { throw LedgerError("not_found", "Consent/\(id) is not known") }
            try mayRead(patient: patient, requester: requester)
            return Self.consent(grant)
        case "AuditEvent":
            // AuditEvent ids are <patient multibase>-<index in her access log>.
            guard let dash = id.lastIndex(of: "-"), let index = Int64(id[id.index(after: dash)...]),
                let patient = try? PublicKey(did: "did:key:" + id[..<dash]).did
            else { throw LedgerError("not_found", "AuditEvent/\(id) is not known") }
            let events = try records.accessLog(patient: patient, requesterDID: requester)
            guard let event = events.first(where: { $0["index"]?.intValue == index }) else { throw LedgerError("not_found", "AuditEvent/\(id) is not known") }
            return Self.auditEvent(event, patient: patient)
        default:
            // Provenance ids are <record id>-<version>.
            guard let dash = id.lastIndex(of: "-"), let version = Int64(id[id.index(after: dash)...]),
                let known = try records.record(String(id[..<dash])), known.versions.contains(where: { $0.version == version })
            else { throw LedgerError("not_found", "Provenance/\(id) is not known") }
            let record = try await records.metadataRead(recordID: known.id, readerDID: requester)
            guard let v = record.versions.first(where: { $0.version == version }) else { throw LedgerError("not_found", "Provenance/\(id) is not known") }
            return Self.provenance(record, v)
        }
    }

    /// `patient` (or `subject`) as `<did>`, `urn:ietf:rfc:3986|<did>`, or a reference `Patient/<multibase>`.
    func patientParameter(_ request: Request) throws -> String {
        let query = request.uri.queryParameters
        guard var value = (query.get("patient") ?? query.get("subject")).map({ String($0) }) else {
            throw LedgerError("missing_parameter", "search by patient: ?patient=<did> or ?patient=Patient/<id>")
        }
        if value.hasPrefix(Self.didSystem + "|") { value.removeFirst(Self.didSystem.count + 1) }
        if value.hasPrefix("Patient/") { value = "did:key:" + value.dropFirst("Patient/".count) }
        guard let did = try? PublicKey(did: value).did else {
            throw LedgerError("bad_parameter", "patient must be a did:key or Patient/<id>")
        }
        return did
    }

    func mayRead(patient: String, requester: String) throws {
        guard ConsentPolicy.mayActFor(patient: patient, actor: requester, grants: try records.grants(patient: patient), time: Int64(records.node.now)) else {
            throw LedgerError("forbidden", "only the patient or her delegate reads her consents")
        }
    }

    static func identifier(_ did: String) -> JSONValue { .object(["identifier": .object(["system": .string(didSystem), "value": .string(did)])]) }

    static let purposeCodes = ["treatment": "TREAT", "payment": "HPAYMT", "research": "HRESCH", "emergency": "ETREAT"]

    static func consent(_ g: ConsentGrant) -> JSONValue {
        var period: [String: JSONValue] = [:]
        if let start = g.start { period["start"] = .string(FHIRFormat.instant(start)) }
        if let end = g.end { period["end"] = .string(FHIRFormat.instant(end)) }
        var provision: [String: JSONValue] = [
            "type": .string(g.permit ? "permit" : "deny"),
            "actor": .array([.object([
                "role": .object(["coding": .array([.object([
                    "system": .string("http://terminology.hl7.org/CodeSystem/v3-ParticipationType"), "code": .string(g.delegate ? "DELEGATEE" : "IRCP"),
                ])])]),
                "reference": identifier(g.grantee),
            ])]),
            "purpose": .array(g.purposes.map { .object(["system": .string("http://terminology.hl7.org/CodeSystem/v3-ActReason"), "code": .string(purposeCodes[$0] ?? $0)]) }),
        ]
        if !g.resourceTypes.contains("*") {
            // Categories are groups of types: the FHIR Consent lists the types they cover.
            let types = Set(g.resourceTypes).union(g.categories.flatMap { ConsentGrant.categoryTypes[$0] ?? [] }).sorted()
            provision["class"] = .array(types.map { .object(["system": .string("http://hl7.org/fhir/resource-types"), "code": .string($0)]) })
        }
        if !period.isEmpty { provision["period"] = .object(period) }
        var meta: [String: JSONValue] = ["versionId": .string("1")]
        if g.lastUpdated > 0 { meta["lastUpdated"] = .string(FHIRFormat.instant(g.lastUpdated)) }
        return .object([
            "resourceType": .string("Consent"), "id": .string(g.id), "status": .string(g.active ? "active" : "inactive"), "meta": .object(meta),
            "scope": .object(["coding": .array([.object(["system": .string("http://terminology.hl7.org/CodeSystem/consentscope"), "code": .string("patient-privacy")])])]),
            "category": .array([.object(["coding": .array([.object(["system": .string("http://loinc.org"), "code": .string("59284-0")])])])]),
            "patient": identifier(g.patient), "provision": .object(provision),
        ])
    }

    static func auditEvent(_ e: JSONValue, patient: String) -> JSONValue {
        let permitted = e["outcome"]?.stringValue == "permit"
        let purpose = e["purpose"]?.stringValue ?? "treatment"
        var agent: [String: JSONValue] = [
            "who": identifier(e["reader"]?.stringValue ?? ""), "requestor": .bool(true),
            "purposeOfUse": .array([.object(["coding": .array([.object(["system": .string("http://terminology.hl7.org/CodeSystem/v3-ActReason"), "code": .string(purposeCodes[purpose] ?? purpose)])])])]),
        ]
        if e["breakGlass"]?.boolValue == true {
            agent["purposeOfUse"] = .array([.object(["coding": .array([.object(["system": .string("http://terminology.hl7.org/CodeSystem/v3-ActReason"), "code": .string("BTG")])])])])
        }
        var entities: [JSONValue] = [.object(["what": identifier(patient), "type": .object(["system": .string("http://terminology.hl7.org/CodeSystem/audit-entity-type"), "code": .string("1")])])]
        for r in e["records"]?.arrayValue ?? [] {
            entities.append(.object(["what": .object(["identifier": .object(["system": .string("urn:careledger:record"), "value": r])]), "type": .object(["system": .string("http://terminology.hl7.org/CodeSystem/audit-entity-type"), "code": .string("2")])]))
        }
        return .object([
            "resourceType": .string("AuditEvent"), "id": .string("\(patient.dropFirst("did:key:".count))-\(e["index"]?.intValue ?? 0)"),
            "meta": .object(["versionId": .string("1"), "lastUpdated": .string(FHIRFormat.instant(e["time"]?.intValue ?? 0))]),
            "type": .object(["system": .string("http://dicom.nema.org/resources/ontology/DCM"), "code": .string("110110"), "display": .string("Patient Record")]),
            "action": .string("R"), "recorded": .string(FHIRFormat.instant(e["time"]?.intValue ?? 0)),
            "outcome": .string(permitted ? "0" : "4"), "outcomeDesc": .string(e["reason"]?.stringValue ?? (permitted ? "permitted" : "denied")),
            "agent": .array([.object(agent)]),
            "source": .object(["observer": identifier(e["recordedBy"]?.stringValue ?? "")]),
            "entity": .array(entities),
        ])
    }

    /// The FHIR Provenance of one record version, from the chain: what, when (block time), who wrote
    /// it (and for whom), who endorsed it, and the ledger position that proves it.
    static func provenance(_ record: RecordEntry, _ v: RecordVersion) -> JSONValue {
        let authorRole: JSONValue = .object(["coding": .array([.object(["system": .string("http://terminology.hl7.org/CodeSystem/provenance-participant-type"), "code": .string("author")])])])
        var author: [String: JSONValue] = ["type": authorRole, "who": identifier(v.onBehalfOf ?? v.author)]
        if v.onBehalfOf != nil { author["onBehalfOf"] = identifier(v.author) }
        var agents: [JSONValue] = [.object(author)]
        for e in v.endorsements where e != v.author && e != v.onBehalfOf {
            agents.append(.object([
                "type": .object(["coding": .array([.object(["system": .string("http://terminology.hl7.org/CodeSystem/provenance-participant-type"), "code": .string("verifier")])])]),
                "who": identifier(e),
            ]))
        }
        return .object([
            "resourceType": .string("Provenance"), "id": .string("\(record.id)-\(v.version)"),
            "meta": .object(["versionId": .string("1"), "lastUpdated": .string(FHIRFormat.instant(v.time))]),
            "target": .array([.object(["reference": .string("\(record.resourceType)/\(record.id)/_history/\(v.version)")])]),
            "recorded": .string(FHIRFormat.instant(v.time)),
            "activity": .object(["coding": .array([.object(["system": .string("http://terminology.hl7.org/CodeSystem/v3-DataOperation"), "code": .string(v.version == 1 ? "CREATE" : "UPDATE")])])]),
            "agent": .array(agents),
            "entity": .array([.object(["role": .string("source"), "what": .object(["identifier": .object(["system": .string("urn:careledger:block-height"), "value": .string(String(v.height))])])])]),
        ])
    }

    /// A searchset Bundle; `total` is the number of matches when the page (`_count`) holds fewer.
    static func searchset(_ resources: [JSONValue], total: Int? = nil) -> JSONValue {
        .object([
            "resourceType": .string("Bundle"), "type": .string("searchset"), "total": .int(Int64(total ?? resources.count)),
            "entry": .array(resources.map { .object(["resource": $0, "search": .object(["mode": .string("match")])]) }),
        ])
    }

    static let clinicalTypes = [
        "Patient", "Observation", "Condition", "MedicationRequest", "MedicationDispense", "DiagnosticReport", "Immunization",
        "AllergyIntolerance", "Encounter", "Procedure", "CarePlan",
    ]

    /// The CapabilityStatement entries of what this facade serves: Consent, AuditEvent and Provenance
    /// from the ledger's own data, and the clinical types where the node acts for an organisation.
    func capabilityResources() -> [JSONValue] {
        func resource(_ type: String, read: Bool) -> JSONValue {
            var interactions: [JSONValue] = [.object(["code": .string("search-type")])]
            if read { interactions.insert(contentsOf: ["read", "vread", "history-instance"].map { .object(["code": .string($0)]) }, at: 0) }
            return .object([
                "type": .string(type), "interaction": .array(interactions),
                "searchParam": .array(["patient", "subject"].map { name in
                    .object(["name": .string(name), "type": .string("reference"), "documentation": .string("Patient/<id>, the patient's did:key, or urn:ietf:rfc:3986|<did>")])
                }),
            ])
        }
        func clinical(_ type: String) -> JSONValue {
            .object([
                "type": .string(type), "versioning": .string("versioned-update"), "readHistory": .bool(true), "updateCreate": .bool(true),
                "conditionalUpdate": .bool(false),
                "interaction": .array(["read", "vread", "history-instance", "create", "update", "search-type"].map { .object(["code": .string($0)]) }),
                "searchParam": .array([
                    .object(["name": .string("patient"), "type": .string("reference")]), .object(["name": .string("subject"), "type": .string("reference")]),
                    .object(["name": .string("_lastUpdated"), "type": .string("date")]), .object(["name": .string("code"), "type": .string("token")]),
                    .object(["name": .string("category"), "type": .string("token")]), .object(["name": .string("status"), "type": .string("token")]),
                    .object(["name": .string("date"), "type": .string("date")]), .object(["name": .string("_count"), "type": .string("number")]),
                    .object(["name": .string("_sort"), "type": .string("string")]),
                ]),
            ])
        }
        // Consent, AuditEvent and Provenance come from the ledger's own data: read (vread 1, _history) and search only.
        var resources = [resource("Consent", read: true), resource("AuditEvent", read: true)]
        resources.append(.object([
            "type": .string("Provenance"), "interaction": .array(["read", "vread", "history-instance", "search-type"].map { .object(["code": .string($0)]) }),
            "searchParam": .array(
                [.object(["name": .string("target"), "type": .string("reference")])]
                    + ["patient", "subject"].map { .object(["name": .string($0), "type": .string("reference")]) }
                    + [.object(["name": .string("_lastUpdated"), "type": .string("date")])]),
        ]))
        // Every type the facade stores as records (what it validates, less the ledger's own and Bundle).
        if acting != nil { resources += FHIRValidator.supported.subtracting(["Consent", "AuditEvent", "Provenance", "Bundle"]).sorted().map(clinical) }
        return resources
    }
}
