import ContractKit
import LedgerCore

/// A consent grant on chain, with FHIR Consent semantics: who (grantee: practitioner, organisation
/// or delegate), why (purposes of use), what (resource types, `*` for all), when (period), and
/// whether it permits or denies.
///
/// A delegation (`delegate`) lets its grantee act for the patient within its types, purposes and
/// period: read and write her records of those types and read her access log. Anything more is a
/// right the patient names in `actions`: `grant` (give consents), `revoke` (withdraw them), `erase`
/// (erase records of the delegation's types), `delegate` (give delegations). Whatever a delegate
/// grants is bounded by the delegation it rests on (`parent`), ends no later than it, and falls when
/// it is revoked or ends. Recovery set-up is the patient's alone.
public struct ConsentGrant: Sendable, Hashable {
    public static let purposes: Set<String> = ["treatment", "payment", "research", "emergency"]
    /// The rights a delegation may carry beyond reading and writing within its scope.
    public static let delegateActions: Set<String> = ["grant", "revoke", "erase", "delegate"]

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
    /// A delegation's rights beyond its scope (`delegateActions`); empty for other grants.
    public let actions: [String]
    /// The delegate who gave this grant for the patient, and the delegation it rests on (nil when the
    /// patient gave it herself).
    public let grantedBy: String?
    public let parent: String?
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
        if delegate { o["actions"] = .array(actions.map { .string($0) }) }
        if let grantedBy { o["grantedBy"] = .string(grantedBy) }
        if let parent { o["parent"] = .string(parent) }
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
        // A delegation written before delegations named their rights carries none.
        actions = (json["actions"]?.arrayValue ?? []).compactMap(\.stringValue)
        grantedBy = json["grantedBy"]?.stringValue
        parent = json["parent"]?.stringValue
        active = json["status"]?.stringValue == "active"
        revokedAtHeight = json["revokedAtHeight"]?.intValue
        time = json["time"]?.intValue
        revokedTime = json["revokedTime"]?.intValue
    }

    init(
        id: String, patient: String, grantee: String, purposes: [String], resourceTypes: [String], categories: [String], start: Int64?, end: Int64?,
        permit: Bool, delegate: Bool, actions: [String] = [], grantedBy: String? = nil, parent: String? = nil
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
        self.actions = actions
        self.grantedBy = grantedBy
        self.parent = parent
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
    func applies(to actors: Set<String>, purpose: String, resourceType: String, time: Int64, grants: [String: ConsentGrant]) -> Bool {
        actors.contains(grantee) && purposes.contains(purpose) && covers(resourceType) && inForce(at: time, grants: grants)
    }

    /// Whether the grant is in force at `time`: active, within its period, and, when a delegate gave a
    /// permit, resting on a delegation of hers that is itself in force and still carries the right she
    /// used (`grants`: the patient's grants by id). A deny a delegate gave stands on its own.
    func inForce(at time: Int64, grants: [String: ConsentGrant], depth: Int = 0) -> Bool {
        guard active, start.map({ time >= $0 }) ?? true, end.map({ time < $0 }) ?? true else { return false }
        guard permit, let parent else { return true }
        guard depth < 16, let delegation = grants[parent], delegation.delegate, delegation.permit, delegation.grantee == grantedBy,
            delegation.actions.contains("grant"), !delegate || delegation.actions.contains("delegate")
        else { return false }
        return delegation.inForce(at: time, grants: grants, depth: depth + 1)
    }

    /// Whether everything `other` permits or denies lies within this delegation: its types (a
    /// category counts by its types), its purposes, its end, and for a delegation its rights.
    func bounds(_ other: ConsentGrant) -> Bool {
        let types = other.resourceTypes.allSatisfy { $0 == "*" ? resourceTypes.contains("*") : covers($0) }
        let categories = other.categories.allSatisfy { c in
            self.categories.contains(c) || (Self.categoryTypes[c]?.allSatisfy { covers($0) } ?? false)
        }
        let ending = end.map { mine in other.end.map { $0 <= mine } ?? false } ?? true
        let rights = !other.delegate || (actions.contains("delegate") && Set(other.actions).isSubset(of: actions))
        return types && categories && Set(other.purposes).isSubset(of: purposes) && ending && rights
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
        let byID = byID(grants)
        let applicable = grants.filter { $0.applies(to: actors, purpose: purpose, resourceType: resourceType, time: time, grants: byID) }
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
        if mayActFor(patient: patient, actor: did, grants: grants, time: time, resourceType: resourceType) { return true }
        return ConsentGrant.purposes.sorted().contains { purpose in
            evaluate(grants: grants, patient: patient, reader: did, readerGroups: groups, purpose: purpose, resourceType: resourceType, time: time).permitted
        }
    }

    /// Whether `actor` may act for `patient` at `time`: she herself, or a delegate whose delegation is
    /// in force and, where asked, carries the right `action` and covers `resourceType`.
    public static func mayActFor(
        patient: String, actor: String, grants: [ConsentGrant], time: Int64, action: String? = nil, resourceType: String? = nil
    ) -> Bool {
        actor == patient || !delegations(of: actor, grants: grants, time: time, action: action, resourceType: resourceType).isEmpty
    }

    /// The delegations of `actor` in force at `time` that carry `action` and cover `resourceType` (when given).
    public static func delegations(
        of actor: String, grants: [ConsentGrant], time: Int64, action: String? = nil, resourceType: String? = nil
    ) -> [ConsentGrant] {
        let byID = byID(grants)
        return grants.filter { g in
            g.delegate && g.permit && g.grantee == actor && g.inForce(at: time, grants: byID) && (action.map { g.actions.contains($0) } ?? true)
                && (resourceType.map { g.covers($0) } ?? true)
        }
    }

    static func byID(_ grants: [ConsentGrant]) -> [String: ConsentGrant] {
        var out: [String: ConsentGrant] = [:]
        for g in grants where out[g.id] == nil { out[g.id] = g }
        return out
    }
}

/// `consent`: the patient's grants and revocations.
///
/// - `grant` `{"patient"?: did, "grantee": did, "purposes": [...], "resourceTypes"?: [...|"*"], "categories"?: [...], "start"?: ms, "end"?: ms,
///   "decision"?: "permit"|"deny", "delegate"?: bool, "actions"?: ["grant"|"revoke"|"erase"|"delegate"]}` → the grant id
///   (from the transaction id); `actions` only on a delegation;
/// - `revoke` `{"patient"?: did, "grant": id}`: takes effect at the block that commits it.
/// The author is the patient or her delegate: a delegate grants only with the right `grant` (a
/// delegation only with `delegate` too) and only within a delegation of hers (`ConsentGrant.bounds`:
/// `beyond_delegation` otherwise); she revokes with the right `revoke` what lies within it, and
/// always what she granted herself or her own delegation.
public struct ConsentContract: Contract {
    public let name = "consent"
    public var privateStatePrefixes: [String] { ["consent/"] }
    public let actions = ["grant", "revoke"]

    public init() {}

    static let grantFields: Set<String> = [
        "patient", "grantee", "purposes", "resourceTypes", "categories", "start", "end", "decision", "delegate", "actions",
    ]

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
            let actions = try p.optionalStrings("actions")
            for a in actions where !ConsentGrant.delegateActions.contains(a) {
                throw LedgerError("bad_payload", "unknown action \(a): one of \(ConsentGrant.delegateActions.sorted().joined(separator: ", "))")
            }
            if !actions.isEmpty, p.fields["delegate"]?.boolValue != true { throw LedgerError("bad_payload", "actions are the rights of a delegation") }
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
        let author = context.author, now = Int64(context.timeMillis)
        let delegations = author == patient ? [] : ConsentPolicy.delegations(of: author, grants: grants, time: now)
        if action == "revoke" {
            let id = try p.string("grant", maxLength: 64)
            guard var grant = grants.first(where: { $0.id == id }) else {
                guard author == patient || !delegations.isEmpty else { throw LedgerError("forbidden", "only the patient or her delegate manages her consent") }
                throw LedgerError("not_found", "no consent \(id)")
            }
            // The patient; a delegate giving up her own delegation; a delegate in force withdrawing a permit
            // she granted, or revoking within her delegation with the right to revoke. Lifting a deny widens
            // access, so it also takes the right to grant within the delegation.
            let lifts = !grant.permit
            let mayRevoke =
                author == patient || grant.grantee == author && grant.delegate
                || grant.grantedBy == author && !lifts && !delegations.isEmpty
                || delegations.contains {
                    $0.bounds(grant) && ($0.actions.contains("revoke") || grant.grantedBy == author) && (!lifts || $0.actions.contains("grant"))
                }
            guard mayRevoke else {
                throw LedgerError("forbidden", "only the patient, or her delegate with the right to revoke within her delegation, revokes this consent")
            }
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
        let delegate = p.fields["delegate"]?.boolValue ?? false
        var grant = ConsentGrant(
            id: id, patient: patient, grantee: grantee, purposes: try p.strings("purposes", allowed: ConsentGrant.purposes),
            resourceTypes: try p.optionalStrings("resourceTypes"), categories: try p.optionalStrings("categories"), start: try p.optionalInt("start"), end: try p.optionalInt("end"),
            permit: (try p.optionalString("decision") ?? "permit") == "permit", delegate: delegate,
            actions: delegate ? Array(Set(try p.optionalStrings("actions"))).sorted() : [])
        if author != patient {
            let granting = delegations.filter { $0.actions.contains("grant") }
            guard !granting.isEmpty else {
                throw LedgerError("forbidden", "only the patient, or her delegate with the right to grant, grants consent for her")
            }
            guard let parent = granting.first(where: { $0.bounds(grant) }) else {
                throw LedgerError(
                    "beyond_delegation",
                    "a delegate grants only within her delegation: its types, purposes and end, and a delegation only with the right to delegate and no more rights than hers")
            }
            grant = ConsentGrant(
                id: id, patient: patient, grantee: grantee, purposes: grant.purposes, resourceTypes: grant.resourceTypes, categories: grant.categories,
                start: grant.start, end: grant.end, permit: grant.permit, delegate: delegate, actions: grant.actions, grantedBy: author, parent: parent.id)
        }
        grant.time = Int64(context.timeMillis)
        context.set(ConsentGrant.key(patient: patient, id: id), grant.json)
        context.set(ConsentGrant.indexKey(patient: patient), .object(["grants": .array(grants.map { .string($0.id) } + [.string(id)])]))
        context.set(ConsentGrant.idKey(id), .object(["patient": .string(patient)]))
        context.emit(.object(["type": .string("consent.granted"), "patient": .string(patient), "grant": .string(id), "grantee": .string(grantee)]))
        return grant.json
    }
}
