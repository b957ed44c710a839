import LedgerCore

/// A consent grant on chain, with FHIR Consent semantics: who (grantee: practitioner, organisation
/// or delegate), why (purposes of use), what (resource types, `*` for all), when (period), and
/// whether it permits or denies. A delegate (caregiver) may grant and revoke for the patient.
public struct ConsentGrant: Sendable, Hashable {
    public static let purposes: Set<String> = ["treatment", "payment", "research", "emergency"]

    public let id: String
    public let patient: String
    public let grantee: String
    public let purposes: [String]
    public let resourceTypes: [String]
    /// Named groups of resource types (`categories` below): the grant covers their types too.
    public let categories: [String]
    public let start: Int64?
    public let end: Int64?
    public let permit: Bool
    public let delegate: Bool
    public var active: Bool
    public var revokedAtHeight: Int64?
    /// Block times (ms) of the grant and of its revocation.
    public var time: Int64?
    public var revokedTime: Int64?
    /// When the grant last changed: its revocation, or its grant.
    public var lastUpdated: Int64 { revokedTime ?? time ?? 0 }

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(id), "patient": .string(patient), "grantee": .string(grantee),
            "purposes": .array(purposes.map { .string($0) }), "resourceTypes": .array(resourceTypes.map { .string($0) }),
            "categories": .array(categories.map { .string($0) }),
            "decision": .string(permit ? "permit" : "deny"), "delegate": .bool(delegate),
            "status": .string(active ? "active" : "revoked"),
        ]
        if let start { o["start"] = .int(start) }
        if let end { o["end"] = .int(end) }
        if let revokedAtHeight { o["revokedAtHeight"] = .int(revokedAtHeight) }
        if let time { o["time"] = .int(time) }
        if let revokedTime { o["revokedTime"] = .int(revokedTime) }
        return .object(o)
    }

    public init(json: JSONValue) throws(LedgerError) {
        guard let id = json["id"]?.stringValue, let patient = json["patient"]?.stringValue, let grantee = json["grantee"]?.stringValue
        else { throw LedgerError("corrupt_state", "bad consent record") }
        self.id = id
        self.patient = patient
        self.grantee = grantee
        purposes = (json["purposes"]?.arrayValue ?? []).compactMap(\.stringValue)
        resourceTypes = (json["resourceTypes"]?.arrayValue ?? []).compactMap(\.stringValue)
        categories = (json["categories"]?.arrayValue ?? []).compactMap(\.stringValue)
        start = json["start"]?.intValue
        end = json["end"]?.intValue
        permit = json["decision"]?.stringValue != "deny"
        delegate = json["delegate"]?.boolValue ?? false
        active = json["status"]?.stringValue == "active"
        revokedAtHeight = json["revokedAtHeight"]?.intValue
        time = json["time"]?.intValue
        revokedTime = json["revokedTime"]?.intValue
    }

    init(
        id: String, patient: String, grantee: String, purposes: [String], resourceTypes: [String], categories: [String], start: Int64?, end: Int64?,
        permit: Bool, delegate: Bool
    ) {
        self.id = id
        self.patient = patient
        self.grantee = grantee
        self.purposes = purposes
        self.resourceTypes = resourceTypes
        self.categories = categories
        self.start = start
        self.end = end
        self.permit = permit
        self.delegate = delegate
        active = true
        revokedAtHeight = nil
    }

    /// Consent categories: named groups of FHIR resource types a patient can grant or deny at once.
    public static let categoryTypes: [String: Set<String>] = [
        "clinical": ["Condition", "Procedure", "Encounter", "CarePlan", "AllergyIntolerance"],
        "medications": ["MedicationRequest", "MedicationDispense"],
        "immunizations": ["Immunization"],
        "laboratory": ["Observation", "DiagnosticReport", "Specimen"],
        "imaging": ["ImagingStudy"],
        "financial": ["Claim", "ExplanationOfBenefit"],
        "demographics": ["Patient"],
        "devices": ["Device"],
    ]

    /// Whether the grant covers a resource type: `*`, the type itself, or one of its categories.
    public func covers(_ resourceType: String) -> Bool {
        resourceTypes.contains("*") || resourceTypes.contains(resourceType)
            || categories.contains { Self.categoryTypes[$0]?.contains(resourceType) == true }
    }

    /// Whether this grant speaks about (actor, purpose, type) at `time`.
    func applies(to actors: Set<String>, purpose: String, resourceType: String, time: Int64) -> Bool {
        active && actors.contains(grantee) && purposes.contains(purpose) && covers(resourceType)
            && (start.map { time >= $0 } ?? true) && (end.map { time < $0 } ?? true)
    }

    static func key(patient: String, id: String) -> String { "consent/\(patient)/\(id)" }
    /// Consent id → patient, so a consent can be read by its id alone.
    public static func idKey(_ id: String) -> String { "consent/by-id/\(id)" }
    static func indexKey(patient: String) -> String { "consent/\(patient)" }
}

/// A consent decision and the grant it rests on.
public struct ConsentDecision: Sendable, Hashable {
    public let permitted: Bool
    public let grant: String?
    public let reason: String

    public init(permitted: Bool, grant: String?, reason: String) {
        self.permitted = permitted
        self.grant = grant
        self.reason = reason
    }
}

/// Consent evaluation against the state: the patient always reads her own data; an active deny
/// grant for the actor overrides any permit; otherwise an active permit grant for the reader or
/// her organisation is needed.
public enum ConsentPolicy {
    public static func grants(patient: String, state: (String) throws(LedgerError) -> JSONValue?) throws(LedgerError) -> [ConsentGrant] {
        guard let index = try state(ConsentGrant.indexKey(patient: patient))?["grants"]?.arrayValue else { return [] }
        var out: [ConsentGrant] = []
        for id in index.compactMap(\.stringValue) {
            if let g = try state(ConsentGrant.key(patient: patient, id: id)) { out.append(try ConsentGrant(json: g)) }
        }
        return out
    }

    public static func evaluate(
        grants: [ConsentGrant], patient: String, reader: String, readerGroups: [String], purpose: String, resourceType: String,
        time: Int64
    ) -> ConsentDecision {
        if reader == patient { return ConsentDecision(permitted: true, grant: nil, reason: "the patient herself") }
        let actors = Set([reader] + readerGroups)
        let applicable = grants.filter { $0.applies(to: actors, purpose: purpose, resourceType: resourceType, time: time) }
        if let deny = applicable.first(where: { !$0.permit }) {
            return ConsentDecision(permitted: false, grant: deny.id, reason: "denied by consent \(deny.id)")
        }
        if let permit = applicable.first(where: { $0.permit }) {
            return ConsentDecision(permitted: true, grant: permit.id, reason: "consent \(permit.id)")
        }
        return ConsentDecision(permitted: false, grant: nil, reason: "no consent covers \(purpose) access to \(resourceType)")
    }

    /// Whether a new version's content key may be wrapped for `did` (with its groups: organisation and
    /// care teams): the patient, her delegates, and whoever consent permits to read the type for some
    /// purpose at `time` (a deny for the type wins). The records contract refuses any other recipient,
    /// so a revoked party never receives a later key.
    public static func mayReceiveKeys(
        did: String, groups: [String], patient: String, resourceType: String, grants: [ConsentGrant], time: Int64
    ) -> Bool {
        if mayActFor(patient: patient, actor: did, grants: grants, time: time) { return true }
        return ConsentGrant.purposes.sorted().contains { purpose in
            evaluate(grants: grants, patient: patient, reader: did, readerGroups: groups, purpose: purpose, resourceType: resourceType, time: time).permitted
        }
    }

    /// Whether `actor` may act for `patient` at `time`: she herself, or a delegate whose grant is active
    /// and within its period.
    public static func mayActFor(patient: String, actor: String, grants: [ConsentGrant], time: Int64) -> Bool {
        actor == patient
            || grants.contains {
                $0.active && $0.delegate && $0.permit && $0.grantee == actor && ($0.start.map { time >= $0 } ?? true) && ($0.end.map { time < $0 } ?? true)
            }
    }
}

/// `consent`: the patient's grants and revocations.
///
/// - `grant` `{"patient"?: did, "grantee": did, "purposes": [...], "resourceTypes"?: [...|"*"], "categories"?: [...], "start"?: ms, "end"?: ms,
///   "decision"?: "permit"|"deny", "delegate"?: bool}` → the grant id (from the transaction id);
/// - `revoke` `{"patient"?: did, "grant": id}`: takes effect at the block that commits it.
/// The author must be the patient or one of her active delegates.
public struct ConsentContract: Contract {
    public let name = "consent"
    public let actions = ["grant", "revoke"]

    public init() {}

    static let grantFields: Set<String> = ["patient", "grantee", "purposes", "resourceTypes", "categories", "start", "end", "decision", "delegate"]

    public func validate(action: String, payload: JSONValue) throws(LedgerError) {
        if action == "grant" {
            let p = try Payload(payload, allowed: Self.grantFields)
            _ = try p.optionalDID("patient")
            _ = try p.did("grantee")
            _ = try p.strings("purposes", allowed: ConsentGrant.purposes)
            let types = try p.optionalStrings("resourceTypes")
            let categories = try p.optionalStrings("categories")
            guard !(types.isEmpty && categories.isEmpty) else {
                throw LedgerError("bad_payload", "a grant names resourceTypes (\"*\" for all) or categories")
            }
            for c in categories where ConsentGrant.categoryTypes[c] == nil {
                throw LedgerError("bad_payload", "unknown category \(c): one of \(ConsentGrant.categoryTypes.keys.sorted().joined(separator: ", "))")
            }
            if let d = try p.optionalString("decision"), d != "permit" && d != "deny" {
                throw LedgerError("bad_payload", "decision must be permit or deny")
            }
            if let start = try p.optionalInt("start"), let end = try p.optionalInt("end"), end <= start {
                throw LedgerError("bad_payload", "end must be after start")
            }
            if let d = p.fields["delegate"], d.boolValue == nil { throw LedgerError("bad_payload", "delegate must be a boolean") }
        } else {
            let p = try Payload(payload, allowed: ["patient", "grant"])
            _ = try p.optionalDID("patient")
            _ = try p.string("grant", maxLength: 64)
        }
    }

    public func execute(action: String, payload: JSONValue, context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        let p = try Payload(payload, allowed: action == "grant" ? Self.grantFields : ["patient", "grant"])
        let patient = try p.optionalDID("patient") ?? context.author
        guard try Principal.load(patient, from: context)?.role == .patient else {
            throw LedgerError("unknown_patient", "\(patient) is not a registered patient")
        }
        let ctx = context
        let grants = try ConsentPolicy.grants(patient: patient) { (key) throws(LedgerError) in try ctx.json(forKey: key) }
        guard ConsentPolicy.mayActFor(patient: patient, actor: context.author, grants: grants, time: Int64(context.timeMillis)) else {
            throw LedgerError("forbidden", "only the patient or her delegate manages her consent")
        }
        if action == "revoke" {
            let id = try p.string("grant", maxLength: 64)
            guard var grant = grants.first(where: { $0.id == id }) else { throw LedgerError("not_found", "no consent \(id)") }
            guard grant.active else { throw LedgerError("already_revoked", "consent \(id) is already revoked") }
            grant.active = false
            grant.revokedAtHeight = Int64(context.height)
            grant.revokedTime = Int64(context.timeMillis)
            context.set(ConsentGrant.key(patient: patient, id: id), grant.json)
            context.emit(.object(["type": .string("consent.revoked"), "patient": .string(patient), "grant": .string(id), "grantee": .string(grant.grantee)]))
            return grant.json
        }
        let grantee = try p.did("grantee")
        guard try Principal.load(grantee, from: context) != nil else {
            throw LedgerError("unknown_principal", "grantee \(grantee) is not registered")
        }
        let id = String(context.transaction.id.hex.prefix(32))
        var grant = ConsentGrant(
            id: id, patient: patient, grantee: grantee, purposes: try p.strings("purposes", allowed: ConsentGrant.purposes),
            resourceTypes: try p.optionalStrings("resourceTypes"), categories: try p.optionalStrings("categories"), start: try p.optionalInt("start"), end: try p.optionalInt("end"),
            permit: (try p.optionalString("decision") ?? "permit") == "permit", delegate: p.fields["delegate"]?.boolValue ?? false)
        grant.time = Int64(context.timeMillis)
        context.set(ConsentGrant.key(patient: patient, id: id), grant.json)
        context.set(ConsentGrant.indexKey(patient: patient), .object(["grants": .array(grants.map { .string($0.id) } + [.string(id)])]))
        context.set(ConsentGrant.idKey(id), .object(["patient": .string(patient)]))
        context.emit(.object(["type": .string("consent.granted"), "patient": .string(patient), "grant": .string(id), "grantee": .string(grantee)]))
        return grant.json
    }
}
