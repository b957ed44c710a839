import ContractKit
import LedgerCore
import Standards

/// What the chain holds about one version of a record: never the content, only the salted hash of
/// its ciphertext (the salt lives in the custodian's vault), who wrote and endorsed it, who has its
/// content key, and the salted hashes of the key envelopes (the content key wrapped with HPKE for each
/// of them, kept in the vaults beside the ciphertext so that erasure can destroy them).
public struct RecordVersion: Sendable, Hashable {
    public enum Status: String, Sendable { case pending, current, superseded }
    public let version: Int64
    public let saltedHash: String
    public let author: String
    public var endorsements: [String]
    public let required: [String]
    public var status: Status
    /// The key envelopes, the put's then each share's: the salted hash of each, and whose keys it holds
    /// (a reader takes from an envelope only the keys of the recipients it lists, the first for each).
    public var keyEnvelopes: [KeyEnvelopeRef]
    /// The salted hashes of the version's vault blobs: its ciphertext, then its key envelopes.
    public var blobs: [String] { [saltedHash] + keyEnvelopes.map(\.hash) }
    /// Whose content key is wrapped (the patient, the custodian, grantees): the envelopes' recipients.
    public var recipients: [String] { Array(Set(keyEnvelopes.flatMap(\.recipients))).sorted() }
    public let height: Int64
    public let time: Int64
    /// The practitioner an organisation's node wrote for.
    public var onBehalfOf: String?
    /// The height of the latest re-wrap of the patient's key (after a rotation of hers), if any.
    public var rewrapped: Int64?

    /// Whether the patient's wrapped key of this version may predate her current keys (current from
    /// height `keysFrom`; 0 when she never rotated): written up to that block and not re-wrapped since.
    public func needsRewrap(keysFrom: Int64) -> Bool {
        guard keysFrom > 0 else { return false }
        if let rewrapped, rewrapped >= keysFrom { return false }
        return height <= keysFrom
    }

    public var json: JSONValue {
        .object([
            "version": .int(version), "saltedHash": .string(saltedHash), "author": .string(author), "onBehalfOf": onBehalfOf.map { .string($0) } ?? .null,
            "endorsements": .array(endorsements.map { .string($0) }), "required": .array(required.map { .string($0) }),
            "status": .string(status.rawValue), "recipients": .array(recipients.map { .string($0) }),
            "keyEnvelopes": .array(keyEnvelopes.map(\.json)),
            "height": .int(height), "time": .int(time),
        ].merging(rewrapped.map { ["rewrapped": .int($0)] } ?? [:]) { a, _ in a })
    }

    public init(json: JSONValue) throws(LedgerError) {
        guard let version = json["version"]?.intValue, let saltedHash = json["saltedHash"]?.stringValue,
            let author = json["author"]?.stringValue, let status = json["status"]?.stringValue.flatMap(Status.init(rawValue:))
        else { throw LedgerError("corrupt_state", "bad record version") }
        self.version = version
        self.saltedHash = saltedHash
        self.author = author
        self.status = status
        endorsements = (json["endorsements"]?.arrayValue ?? []).compactMap(\.stringValue)
        required = (json["required"]?.arrayValue ?? []).compactMap(\.stringValue)
        keyEnvelopes = (json["keyEnvelopes"]?.arrayValue ?? []).compactMap(KeyEnvelopeRef.init(json:))
        height = json["height"]?.intValue ?? 0
        time = json["time"]?.intValue ?? 0
        onBehalfOf = json["onBehalfOf"]?.stringValue
        rewrapped = json["rewrapped"]?.intValue
    }

    init(version: Int64, saltedHash: String, author: String, endorsements: [String], required: [String], status: Status,
         keyEnvelopes: [KeyEnvelopeRef], height: Int64, time: Int64) {
        self.version = version
        self.saltedHash = saltedHash
        self.author = author
        self.endorsements = endorsements
        self.required = required
        self.status = status
        self.keyEnvelopes = keyEnvelopes
        self.height = height
        self.time = time
    }
}

/// One key envelope of a version on chain: its salted hash and the recipients whose keys it holds.
public struct KeyEnvelopeRef: Sendable, Hashable {
    public let hash: String
    public var recipients: [String]

    public init(hash: String, recipients: [String]) {
        self.hash = hash
        self.recipients = recipients
    }

    init?(json: JSONValue) {
        guard let hash = json["hash"]?.stringValue else { return nil }
        self.hash = hash
        recipients = (json["recipients"]?.arrayValue ?? []).compactMap(\.stringValue)
    }

    var json: JSONValue { .object(["hash": .string(hash), "recipients": .array(recipients.map { .string($0) })]) }
}

/// A record: one FHIR resource of a patient, held by a custodian organisation, in versions.
public struct RecordEntry: Sendable, Hashable {
    public let id: String
    public let patient: String
    public let resourceType: String
    public let custodian: String
    public var versions: [RecordVersion]
    /// Height of the erasure, when the patient had the record erased, and its transaction.
    public var erasedAtHeight: Int64?
    public var erasureTransaction: String?

    /// The version in force: the latest whose endorsement policy is satisfied.
    public var current: RecordVersion? { versions.last { $0.status == .current } }

    public var json: JSONValue {
        .object([
            "id": .string(id), "patient": .string(patient), "resourceType": .string(resourceType), "custodian": .string(custodian),
            "currentVersion": current.map { .int($0.version) } ?? .null, "versions": .array(versions.map(\.json)),
            "erasedAtHeight": erasedAtHeight.map { .int($0) } ?? .null,
            "erasureTransaction": erasureTransaction.map { .string($0) } ?? .null,
        ])
    }

    public init(json: JSONValue) throws(LedgerError) {
        guard let id = json["id"]?.stringValue, let patient = json["patient"]?.stringValue,
            let resourceType = json["resourceType"]?.stringValue, let custodian = json["custodian"]?.stringValue
        else { throw LedgerError("corrupt_state", "bad record") }
        self.id = id
        self.patient = patient
        self.resourceType = resourceType
        self.custodian = custodian
        versions = try (json["versions"]?.arrayValue ?? []).map { (v) throws(LedgerError) in try RecordVersion(json: v) }
        erasedAtHeight = json["erasedAtHeight"]?.intValue
        erasureTransaction = json["erasureTransaction"]?.stringValue
    }

    init(id: String, patient: String, resourceType: String, custodian: String) {
        self.id = id
        self.patient = patient
        self.resourceType = resourceType
        self.custodian = custodian
        versions = []
    }

    public static func key(_ id: String) -> String { "records/\(id)" }
    public static func indexKey(patient: String) -> String { "records/by-patient/\(patient)" }
    /// Which record a vault blob (a ciphertext or a key envelope) belongs to: a blob is claimed once, so
    /// that no record can point at (and on erasure destroy) another's.
    public static func blobKey(_ hash: String) -> String { "records/blob/\(hash)" }

    /// The record content key context (authenticated by the content cipher and the key wrap).
    public static func context(id: String, version: Int64) -> String { SealedVersion.context(id: id, version: version) }
}

/// Endorsement policies: which parties must sign before a version becomes current.
public enum EndorsementPolicy {
    /// The roles named in `parties` whose endorsement each resource type needs, besides the author.
    public static let requiredParties: [String: [String]] = [
        "DiagnosticReport": ["performer", "requester"],  // the lab organisation and the ordering practitioner
    ]

    /// Resource types a practitioner authors (a diagnosis): written by a practitioner — with her own key
    /// or through her organisation's node naming her (`onBehalfOf`) — or by the patient (or her delegate)
    /// about herself, never by an organisation or a device alone.
    public static let practitionerAuthored: Set<String> = ["Condition"]

    /// What each party role must be: the lab performing a report is an organisation, the ordering
    /// practitioner a practitioner.
    public static let partyRoles: [String: Principal.Role] = ["performer": .organisation, "requester": .practitioner]

    static func required(resourceType: String, author: String, parties: [String: String], context: ExecutionContext) throws(LedgerError) -> [String] {
        var out = [author]
        for role in requiredParties[resourceType] ?? [] {
            guard let did = parties[role] else {
                throw LedgerError("bad_payload", "a \(resourceType) names its \(role) in parties")
            }
            let principal = try Principal.load(did, from: context)
            guard let principal, partyRoles[role].map({ $0 == principal.role }) ?? true else {
                throw LedgerError("bad_party", "the \(role) of a \(resourceType) must be a registered \(partyRoles[role]?.rawValue ?? "principal")")
            }
            if !out.contains(did) { out.append(did) }
        }
        return out
    }
}

/// `records`: versions of encrypted FHIR records.
///
/// - `put` `{"recordId", "patient", "resourceType", "version", "saltedHash", "custodian", "recipients": [did], "keys",
///   "parties"?: {role: did}}`: the author is the patient, or holds (herself or through her organisation) an active
///   `treatment` permit for the resource type. The version is the previous one plus 1; the recipients of its content
///   key include the patient and the custodian (escrow for break-the-glass reads); `keys` is the salted hash of the key
///   envelope in the vault (the wrapped keys never enter the log); a record keeps its custodian.
/// - `endorse` `{"recordId", "version"}`: a required party endorses; the version becomes current when all have.
/// - `share` `{"recordId", "version", "recipients", "keys"}`: the patient (or a delegate) adds an envelope of keys for new grantees.
/// - `bundle` `{"puts": [put payloads]}`: several puts in one transaction, all or none (FHIR transaction Bundles).
/// - `rewrap` `{"patient", "versions": [{"recordId", "version", "keys"}]}` (1 to 1000): after the patient rotated her keys,
///   an envelope (`keys`, a vault blob's salted hash) holding the version's content key wrapped for her new encryption key
///   becomes her key for it, in place of every earlier one; signed by the patient, or by the custodian organisation of
///   each record listed (from its escrow key). Never for a frozen key.
/// - A frozen patient (`Principal.frozen`) receives no new wrapped key: a put for her leaves her out of the recipients
///   (the custodian's escrow keeps the version for her re-wrap after her rotation), and no share lists her.
/// - `erase` `{"recordId"}`: the patient (or a delegate) has a record erased: every node destroys the vault blobs
///   (ciphertexts and key envelopes, with their salts, so the salted hashes left in the log link to nothing),
///   the state drops the recipients, reads answer 410 Gone, and the committed receipt is the signed erasure receipt.
public struct RecordsContract: Contract {
    public let name = "records"
    public var privateStatePrefixes: [String] { ["records/"] }
    public let actions = ["put", "endorse", "share", "erase", "bundle", "rewrap"]

    public init() {}

    static let putFields: Set<String> = ["recordId", "patient", "resourceType", "version", "saltedHash", "custodian", "recipients", "keys", "parties", "onBehalfOf"]

    static func checkRecordID(_ id: String) throws(LedgerError) {
        guard (1...64).contains(id.utf8.count), id.utf8.allSatisfy({ (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 45 || $0 == 46 }) else {
            throw LedgerError("bad_payload", "recordId is 1-64 characters of A-Z a-z 0-9 - . (a FHIR id)")
        }
    }

    /// The recipients (sorted, distinct dids) and the key envelope's salted hash.
    static func keys(_ p: Payload) throws(LedgerError) -> (recipients: [String], envelope: String) {
        guard let list = p.fields["recipients"]?.arrayValue, !list.isEmpty, list.count <= 256 else {
            throw LedgerError("bad_payload", "recipients must list 1 to 256 dids whose keys the envelope wraps")
        }
        var dids = Set<String>()
        for item in list {
            guard let did = item.stringValue else { throw LedgerError("bad_payload", "recipients holds a non-string") }
            dids.insert(try PublicKey(did: did).did)
        }
        guard dids.count == list.count else { throw LedgerError("bad_payload", "recipients lists a did twice") }
        return (dids.sorted(), try Hash(hex: try p.string("keys", maxLength: 64)).hex)
    }

    public func validate(action: String, payload: JSONValue) throws(LedgerError) {
        switch action {
        case "bundle":
            let p = try Payload(payload, allowed: ["puts"])
            guard let puts = p.fields["puts"]?.arrayValue, (1...2000).contains(puts.count) else {
                throw LedgerError("bad_payload", "puts is an array of 1 to 2000 put payloads")
            }
            for put in puts { try validate(action: "put", payload: put) }
        case "put":
            let p = try Payload(payload, allowed: Self.putFields)
            try Self.checkRecordID(try p.string("recordId"))
            _ = try p.did("patient")
            _ = try p.did("custodian")
            guard try p.string("resourceType", maxLength: 64).first?.isUppercase == true else {
                throw LedgerError("bad_payload", "resourceType must be a FHIR resource type")
            }
            guard try p.int("version") >= 1 else { throw LedgerError("bad_payload", "version starts at 1") }
            _ = try Hash(hex: try p.string("saltedHash", maxLength: 64))
            _ = try Self.keys(p)
            if let parties = p.fields["parties"] {
                guard let o = parties.objectValue, o.count <= 8 else { throw LedgerError("bad_payload", "parties maps roles to dids") }
                for (_, v) in o { _ = try PublicKey(did: v.stringValue ?? "") }
            }
        case "erase":
            let p = try Payload(payload, allowed: ["recordId"])
            try Self.checkRecordID(try p.string("recordId"))
        case "rewrap":
            let p = try Payload(payload, allowed: ["patient", "versions"])
            _ = try p.did("patient")
            guard let items = p.fields["versions"]?.arrayValue, (1...1000).contains(items.count) else {
                throw LedgerError("bad_payload", "versions lists 1 to 1000 {recordId, version, keys}")
            }
            for item in items {
                let q = try Payload(item, allowed: ["recordId", "version", "keys"])
                try Self.checkRecordID(try q.string("recordId"))
                guard try q.int("version") >= 1 else { throw LedgerError("bad_payload", "version starts at 1") }
                _ = try Hash(hex: try q.string("keys", maxLength: 64))
            }
        case "endorse":
            let p = try Payload(payload, allowed: ["recordId", "version"])
            try Self.checkRecordID(try p.string("recordId"))
            _ = try p.int("version")
        default:
            let p = try Payload(payload, allowed: ["recordId", "version", "recipients", "keys"])
            try Self.checkRecordID(try p.string("recordId"))
            _ = try p.int("version")
            _ = try Self.keys(p)
        }
    }

    public func execute(action: String, payload: JSONValue, context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        if action == "rewrap" { return try rewrap(payload, &context) }
        if action == "bundle" {
            // Each put sees the writes of the previous ones; any failure discards them all.
            var results: [JSONValue] = []
            for put in payload["puts"]?.arrayValue ?? [] { results.append(try execute(action: "put", payload: put, context: &context)) }
            return .object(["results": .array(results)])
        }
        let ctx = context
        let state: (String) throws(LedgerError) -> JSONValue? = { (key) throws(LedgerError) in try ctx.json(forKey: key) }
        let p = try Payload(payload, allowed: Self.putFields)
        let recordID = try p.string("recordId")
        let existing = try context.json(forKey: RecordEntry.key(recordID)).map { (j) throws(LedgerError) in try RecordEntry(json: j) }
        if let existing, existing.erasedAtHeight != nil {
            throw LedgerError("erased", "record \(recordID) was erased")
        }
        switch action {
        case "erase":
            guard var entry = existing else { throw LedgerError("not_found", "no record \(recordID)") }
            let grants = try ConsentPolicy.grants(patient: entry.patient, state: state)
            guard
                ConsentPolicy.mayActFor(
                    patient: entry.patient, actor: context.author, grants: grants, time: Int64(context.timeMillis), action: "erase",
                    resourceType: entry.resourceType)
            else {
                throw LedgerError("forbidden", "only the patient, or her delegate with the right to erase records of this type, erases her records")
            }
            // The ciphertexts and key envelopes every node destroys.
            let destroyed = entry.versions.flatMap(\.blobs).map { JSONValue.string($0) }
            for i in entry.versions.indices {
                for j in entry.versions[i].keyEnvelopes.indices { entry.versions[i].keyEnvelopes[j].recipients = [] }
                entry.versions[i].status = .superseded
            }
            entry.erasedAtHeight = Int64(context.height)
            entry.erasureTransaction = context.transaction.id.hex
            context.set(RecordEntry.key(recordID), entry.json)
            context.emit(.object([
                "type": .string("record.erased"), "patient": .string(entry.patient), "record": .string(recordID),
                "custodian": .string(entry.custodian), "saltedHashes": .array(destroyed),
            ]))
            return .object(["recordId": .string(recordID), "erasedAtHeight": .int(Int64(context.height)), "versions": .int(Int64(entry.versions.count))])
        case "put":
            let patient = try p.did("patient")
            let resourceType = try p.string("resourceType", maxLength: 64)
            guard try Principal.load(patient, from: context)?.role == .patient else {
                throw LedgerError("unknown_patient", "\(patient) is not a registered patient")
            }
            let custodian = try p.did("custodian")
            guard try Principal.load(custodian, from: context)?.role == .organisation else {
                throw LedgerError("unknown_custodian", "custodian \(custodian) is not a registered organisation")
            }
            guard let author = try Principal.load(context.author, from: context) else {
                throw LedgerError("unknown_principal", "the author is not registered")
            }
            let patientFrozen = try Principal.load(patient, from: context)?.frozen != nil
            let grants = try ConsentPolicy.grants(patient: patient, state: state)
            // An organisation's node may write on behalf of one of its practitioners.
            let onBehalfOf = try p.optionalDID("onBehalfOf")
            if let onBehalfOf {
                guard author.role == .organisation, try Principal.load(onBehalfOf, from: context)?.organisation == author.did else {
                    throw LedgerError("forbidden", "onBehalfOf must be a practitioner of the authoring organisation")
                }
            }
            let writer = onBehalfOf ?? author.did
            let writerGroups = try onBehalfOf.map { (did: String) throws(LedgerError) in try Principal.load(did, from: context)?.groups ?? [] } ?? author.groups
            let forHerself = ConsentPolicy.mayActFor(patient: patient, actor: writer, grants: grants, time: Int64(context.timeMillis), resourceType: resourceType)
            // The custodian holds every version's key in escrow: a writer other than the patient (or her
            // delegate) files the record with her own organisation, never hands the key to another.
            if !forHerself {
                let writerOrganisation = author.role == .organisation ? author.did : author.organisation
                guard custodian == writerOrganisation else {
                    throw LedgerError("bad_custodian", "the custodian of a record written for a patient is the writer's own organisation")
                }
            }
            if !forHerself, EndorsementPolicy.practitionerAuthored.contains(resourceType) {
                guard try Principal.load(writer, from: context)?.role == .practitioner else {
                    throw LedgerError("bad_author", "a \(resourceType) is authored by a practitioner (or the patient): an organisation names her in onBehalfOf")
                }
            }
            if !forHerself {
                let decision = ConsentPolicy.evaluate(
                    grants: grants, patient: patient, reader: writer, readerGroups: writerGroups, purpose: "treatment",
                    resourceType: resourceType, time: Int64(context.timeMillis))
                guard decision.permitted else { throw LedgerError("consent_denied", "cannot write: \(decision.reason)") }
            }
            var entry = existing ?? RecordEntry(id: recordID, patient: patient, resourceType: resourceType, custodian: custodian)
            guard entry.patient == patient, entry.resourceType == resourceType, entry.custodian == custodian else {
                throw LedgerError("record_mismatch", "record \(recordID) belongs to another patient, resource type or custodian")
            }
            let version = try p.int("version")
            let expected = Int64(entry.versions.count + 1)
            guard version == expected else {
                throw LedgerError("version_conflict", "record \(recordID) is at version \(expected - 1); the next version is \(expected)")
            }
            let (recipients, envelope) = try Self.keys(p)
            let saltedHash = try Hash(hex: try p.string("saltedHash", maxLength: 64)).hex
            guard saltedHash != envelope else { throw LedgerError("bad_payload", "the ciphertext and the key envelope are two blobs") }
            try Self.claim([saltedHash, envelope], for: recordID, &context)
            guard recipients.contains(patient) != patientFrozen else {
                throw patientFrozen
                    ? LedgerError("key_frozen", "the patient's key is frozen: it receives no new wrapped key (the custodian's escrow keeps hers)")
                    : LedgerError("bad_payload", "the patient must have a wrapped key")
            }
            // The custodian organisation holds the content key in escrow: with it, its node answers a
            // break-the-glass read (re-wrapping the key for the emergency reader alone).
            guard recipients.contains(custodian) else { throw LedgerError("bad_payload", "the custodian must have a wrapped key (break-the-glass escrow)") }
            // Keys go only to those consent lets read the type (and the patient, custodian and writer).
            for did in recipients where did != patient {
                guard try Principal.load(did, from: context)?.frozen == nil else {
                    throw LedgerError("key_frozen", "the key of \(did) is frozen: it receives no new wrapped key")
                }
            }
            for did in recipients where did != patient && did != custodian && did != author.did && did != onBehalfOf {
                let groups = try Principal.load(did, from: context)?.groups ?? []
                guard ConsentPolicy.mayReceiveKeys(
                    did: did, groups: groups, patient: patient, resourceType: resourceType, grants: grants, time: Int64(context.timeMillis))
                else { throw LedgerError("recipient_not_permitted", "no consent lets \(did) read \(resourceType): its key may not be wrapped for it") }
            }
            var parties: [String: String] = [:]
            for (role, did) in p.fields["parties"]?.objectValue ?? [:] { parties[role] = did.stringValue }
            let required = try EndorsementPolicy.required(resourceType: resourceType, author: author.did, parties: parties, context: context)
            var newVersion = RecordVersion(
                version: version, saltedHash: try Hash(hex: try p.string("saltedHash", maxLength: 64)).hex, author: author.did,
                endorsements: [author.did] + (onBehalfOf.map { [$0] } ?? []), required: required, status: .pending,
                keyEnvelopes: [KeyEnvelopeRef(hash: envelope, recipients: recipients)], height: Int64(context.height),
                time: Int64(context.timeMillis))
            newVersion.onBehalfOf = onBehalfOf
            if Set(required).isSubset(of: newVersion.endorsements) { newVersion.status = .current }
            entry.versions.append(newVersion)
            if newVersion.status == .current { Self.supersede(&entry, keeping: version) }
            if existing == nil {
                let index = try context.json(forKey: RecordEntry.indexKey(patient: patient))?["records"]?.arrayValue ?? []
                context.set(RecordEntry.indexKey(patient: patient), .object(["records": .array(index + [.string(recordID)])]))
            }
            context.set(RecordEntry.key(recordID), entry.json)
            context.emit(.object([
                "type": .string("record.written"), "patient": .string(patient), "record": .string(recordID), "version": .int(version),
                "resourceType": .string(resourceType),
                "status": .string(newVersion.status.rawValue),
            ]))
            return .object(["recordId": .string(recordID), "version": .int(version), "status": .string(newVersion.status.rawValue)])
        case "endorse":
            guard var entry = existing else { throw LedgerError("not_found", "no record \(recordID)") }
            let version = try p.int("version")
            guard let i = entry.versions.firstIndex(where: { $0.version == version }) else { throw LedgerError("not_found", "no version \(version)") }
            guard entry.versions[i].required.contains(context.author) else {
                throw LedgerError("forbidden", "the author is not a required endorser of this version")
            }
            guard entry.versions[i].status == .pending else { throw LedgerError("not_pending", "version \(version) is \(entry.versions[i].status.rawValue)") }
            if !entry.versions[i].endorsements.contains(context.author) { entry.versions[i].endorsements.append(context.author) }
            if Set(entry.versions[i].required).isSubset(of: entry.versions[i].endorsements) {
                entry.versions[i].status = .current
                Self.supersede(&entry, keeping: version)
            }
            context.set(RecordEntry.key(recordID), entry.json)
            return .object(["recordId": .string(recordID), "version": .int(version), "status": .string(entry.versions[i].status.rawValue)])
        default:
            guard var entry = existing else { throw LedgerError("not_found", "no record \(recordID)") }
            let grants = try ConsentPolicy.grants(patient: entry.patient, state: state)
            let now = Int64(context.timeMillis)
            let byDelegate = context.author != entry.patient
            guard
                ConsentPolicy.mayActFor(
                    patient: entry.patient, actor: context.author, grants: grants, time: now, action: byDelegate ? "grant" : nil,
                    resourceType: entry.resourceType)
            else {
                throw LedgerError("forbidden", "only the patient, or her delegate with the right to grant for this type, shares her keys")
            }
            let version = try p.int("version")
            guard let i = entry.versions.firstIndex(where: { $0.version == version }) else { throw LedgerError("not_found", "no version \(version)") }
            let (recipients, envelope) = try Self.keys(p)
            for did in recipients {
                guard let principal = try Principal.load(did, from: context) else { throw LedgerError("unknown_principal", "\(did) is not registered") }
                guard principal.frozen == nil else { throw LedgerError("key_frozen", "the key of \(did) is frozen: it receives no new wrapped key") }
                // A delegate hands keys only to whom consent lets read the type: no more than a grant of hers could.
                if byDelegate, !ConsentPolicy.mayReceiveKeys(
                    did: did, groups: principal.groups, patient: entry.patient, resourceType: entry.resourceType, grants: grants, time: now)
                {
                    throw LedgerError("recipient_not_permitted", "consent does not let \(did) read \(entry.resourceType)")
                }
            }
            // A share adds keys for new recipients; it never replaces a key a recipient already has.
            let already = Set(entry.versions[i].recipients).intersection(recipients)
            guard already.isEmpty else {
                throw LedgerError("already_shared", "version \(version) of \(recordID) already has a key for \(already.sorted().joined(separator: ", "))")
            }
            guard entry.versions[i].keyEnvelopes.count < 256 else { throw LedgerError("too_many_envelopes", "version \(version) has 256 key envelopes") }
            try Self.claim([envelope], for: recordID, &context)
            entry.versions[i].keyEnvelopes.append(KeyEnvelopeRef(hash: envelope, recipients: recipients))
            context.set(RecordEntry.key(recordID), entry.json)
            context.emit(.object([
                "type": .string("record.shared"), "patient": .string(entry.patient), "record": .string(recordID), "version": .int(version),
                "resourceType": .string(entry.resourceType),
            ]))
            return .object(["recordId": .string(recordID), "version": .int(version), "shared": .int(Int64(entry.versions[i].recipients.count))])
        }
    }

    /// After a rotation: each listed version's key for the patient is the one in the new envelope.
    func rewrap(_ payload: JSONValue, _ context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        let p = try Payload(payload, allowed: ["patient", "versions"])
        let patient = try p.did("patient")
        guard let principal = try Principal.load(patient, from: context), principal.role == .patient else {
            throw LedgerError("unknown_patient", "\(patient) is not a registered patient")
        }
        guard principal.frozen == nil else { throw LedgerError("key_frozen", "the key of \(patient) is frozen: it receives no new wrapped key") }
        var entries: [String: RecordEntry] = [:]
        var order: [String] = []
        for item in p.fields["versions"]?.arrayValue ?? [] {
            let q = try Payload(item, allowed: ["recordId", "version", "keys"])
            let id = try q.string("recordId"), number = try q.int("version"), envelope = try Hash(hex: try q.string("keys", maxLength: 64)).hex
            if entries[id] == nil {
                guard let json = try context.json(forKey: RecordEntry.key(id)) else { throw LedgerError("not_found", "no record \(id)") }
                entries[id] = try RecordEntry(json: json)
                order.append(id)
            }
            var entry = entries[id]!
            guard entry.patient == patient else { throw LedgerError("record_mismatch", "record \(id) is not \(patient)'s") }
            guard entry.erasedAtHeight == nil else { throw LedgerError("erased", "record \(id) was erased") }
            guard context.author == patient || context.author == entry.custodian else {
                throw LedgerError("forbidden", "a patient's keys are re-wrapped by herself, or by the custodian of the record from its escrow")
            }
            guard let i = entry.versions.firstIndex(where: { $0.version == number }) else { throw LedgerError("not_found", "record \(id) has no version \(number)") }
            guard entry.versions[i].keyEnvelopes.count < 256 else { throw LedgerError("too_many_envelopes", "version \(number) of \(id) has 256 key envelopes") }
            try Self.claim([envelope], for: id, &context)
            for j in entry.versions[i].keyEnvelopes.indices { entry.versions[i].keyEnvelopes[j].recipients.removeAll { $0 == patient } }
            entry.versions[i].keyEnvelopes.append(KeyEnvelopeRef(hash: envelope, recipients: [patient]))
            entry.versions[i].rewrapped = Int64(context.height)
            entries[id] = entry
        }
        for id in order { context.set(RecordEntry.key(id), entries[id]!.json) }
        let count = Int64(p.fields["versions"]?.arrayValue?.count ?? 0)
        context.emit(.object([
            "type": .string("record.rewrapped"), "patient": .string(patient), "versions": .int(count), "by": .string(context.author),
            "records": .array(order.map { .string($0) }),
        ]))
        return .object(["patient": .string(patient), "versions": .int(count)])
    }

    /// Claims vault blobs for a record; a blob another record (or another version) already claimed is refused.
    static func claim(_ hashes: [String], for recordID: String, _ context: inout ExecutionContext) throws(LedgerError) {
        for hash in hashes {
            guard try context.json(forKey: RecordEntry.blobKey(hash)) == nil else {
                throw LedgerError("blob_claimed", "the vault blob \(hash) already belongs to a record version")
            }
            context.set(RecordEntry.blobKey(hash), .object(["record": .string(recordID)]))
        }
    }

    /// Earlier current versions become superseded when `version` becomes current.
    static func supersede(_ entry: inout RecordEntry, keeping version: Int64) {
        for j in entry.versions.indices where entry.versions[j].status == .current && entry.versions[j].version < version {
            entry.versions[j].status = .superseded
        }
        // A later version already current keeps precedence: an older one becoming current is superseded at once.
        if entry.versions.contains(where: { $0.status == .current && $0.version > version }),
            let k = entry.versions.firstIndex(where: { $0.version == version })
        {
            entry.versions[k].status = .superseded
        }
    }
}

extension ContractSet {
    /// The patient-records capability's contracts: consent, records, audit events.
    public static let records = ContractSet { operators in [ConsentContract(), RecordsContract(), AuditContract(operators: operators)] }
}
