import ContractKit
import Foundation
import LedgerCore
import Node
import RecordsContract
import Standards
import Synchronization

/// What a reader gets for one record: the metadata, and for the current version the ciphertext
/// and the content key wrapped for the reader (end-to-end: the node never sees the content key).
public struct RecordRead: Sendable {
    public let record: RecordEntry
    public let version: RecordVersion
    public let ciphertext: [UInt8]
    public let wrappedKey: WrappedKey
    /// Whose key the wrapped key is for (the reader, or her organisation).
    public let keyHolder: String
    /// Every wrapped key of the version (from its key envelopes), by recipient.
    public let keys: [String: WrappedKey]

    public var json: JSONValue {
        .object([
            "recordId": .string(record.id), "patient": .string(record.patient), "resourceType": .string(record.resourceType),
            "custodian": .string(record.custodian), "version": .int(version.version), "author": .string(version.author),
            "time": .int(version.time), "status": .string(version.status.rawValue),
            "ciphertext": .string(Base64.encode(ciphertext)), "wrappedKey": wrappedKey.json, "keyHolder": .string(keyHolder),
            "context": .string(RecordEntry.context(id: record.id, version: version.version)),
        ])
    }

    /// `json`'s canonical bytes, written without building and sorting a dictionary (a timeline
    /// writes a thousand of these).
    public func write(into out: inout [UInt8]) {
        func member(_ key: String, _ value: String) {
            out.append(contentsOf: key.utf8)
            JSONValue.writeString(value, into: &out)
        }
        member(#"{"author":"#, version.author)
        out.append(contentsOf: #","ciphertext":""#.utf8)
        Base64.encode(ciphertext, into: &out)
        out.append(UInt8(ascii: "\""))
        member(#","context":"#, RecordEntry.context(id: record.id, version: version.version))
        member(#","custodian":"#, record.custodian)
        member(#","keyHolder":"#, keyHolder)
        member(#","patient":"#, record.patient)
        member(#","recordId":"#, record.id)
        member(#","resourceType":"#, record.resourceType)
        member(#","status":"#, version.status.rawValue)
        out.append(contentsOf: #","time":\#(version.time),"version":\#(version.version),"wrappedKey":"#.utf8)
        wrappedKey.write(into: &out)
        out.append(UInt8(ascii: "}"))
    }

    /// `{"records":[…],"withheld":n}` for a timeline, its records written on every core.
    public static func timelineBytes(_ reads: [RecordRead], withheld: Int) async -> [UInt8] {
        let chunks = await Parallel.mapChunks(reads) { slice in
            var out: [UInt8] = []
            out.reserveCapacity(2048 * slice.count)
            for i in slice.indices {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                slice[i].write(into: &out)
            }
            return out
        }
        var out = Array(#"{"records":["#.utf8)
        out.reserveCapacity(chunks.reduce(64) { $0 + $1.count })
        for chunk in chunks { out.append(contentsOf: chunk) }
        out.append(contentsOf: Array(#"],"withheld":\#(withheld)}"#.utf8))
        return out
    }
}

/// Reads of health data: consent checked against the latest committed state, an access event
/// committed to the ledger for every attempt (granted or denied), then the ciphertext and the
/// key wrapped for the reader.
public struct RecordsService: Sendable {
    public let node: LedgerNode
    public let vault: Vault
    /// How long a break-the-glass access lasts.
    public let breakGlassWindowMillis: Int64
    /// Denied reads per reader and patient: the first few recorded in detail, the rest aggregated.
    public let deniedReads: DeniedReads
    /// Parsed record entries, valid while their state bytes are unchanged.
    let parsed = ParsedRecords()
    /// The encryption keys of the custodian organisations this node acts for: every version's content
    /// key is wrapped for its custodian, so this node can answer a break-the-glass read of the records
    /// it holds by re-wrapping the key for the emergency reader.
    let custodianKeys: [String: EncryptionKey]
    /// The signing keys of those organisations (the node signs their escrow re-wraps after a patient's rotation).
    let custodianSigners: [String: SigningKey]
    /// Custodian fetches in flight (bounded), and blobs no peer served lately.
    let fetching = PeerFetchState()

    public init(
        node: LedgerNode, vault: Vault, breakGlassWindowMillis: Int64 = 4 * 3600 * 1000, custodianKeys: [String: EncryptionKey] = [:],
        custodianSigners: [String: SigningKey] = [:], deniedReads: DeniedReads = DeniedReads()
    ) {
        self.custodianSigners = custodianSigners
        self.deniedReads = deniedReads
        self.node = node
        self.vault = vault
        self.breakGlassWindowMillis = breakGlassWindowMillis
        self.custodianKeys = custodianKeys
    }

    /// Consent, else break-the-glass: an emergency read by a practitioner with a stated reason opens a
    /// time-boxed window; reads inside an open window need no new reason. Returns the decision and
    /// the break-the-glass fields for the access event.
    func authorise(patient: String, resourceType: String?, reader: Principal, grants: [ConsentGrant], purpose: String, reason: String?)
        throws(LedgerError) -> (ConsentDecision, [String: JSONValue])
    {
        // Counted in Unicode scalars, as JSON Schema counts a string's length.
        if let reason, !(10...1024).contains(reason.unicodeScalars.count) {
            throw LedgerError("bad_parameter", "a break-the-glass reason is 10 to 1024 characters")
        }
        let now = Int64(node.now)
        let consent = ConsentPolicy.evaluate(
            grants: grants, patient: patient, reader: reader.did, readerGroups: reader.groups, purpose: purpose,
            resourceType: resourceType ?? "*", time: now)
        guard !consent.permitted, purpose == "emergency" else { return (consent, [:]) }
        if let open = try json(AuditContract.breakGlassKey(patient: patient, reader: reader.did)), let until = open["until"]?.intValue, until > now {
            return (ConsentDecision(permitted: true, grant: nil, reason: "break-the-glass window open until \(until)"),
                    ["breakGlass": .bool(true), "until": .int(until), "reason": .string(reason ?? "within an open break-the-glass window")])
        }
        guard reader.role == .practitioner else { return (consent, [:]) }
        guard let reason else {
            throw LedgerError("break_glass_reason_required", "an emergency access without consent needs a stated reason (10 characters or more)")
        }
        return (ConsentDecision(permitted: true, grant: nil, reason: "break-the-glass: \(reason)"),
                ["breakGlass": .bool(true), "until": .int(now + breakGlassWindowMillis), "reason": .string(reason)])
    }

    func json(_ key: String) throws(LedgerError) -> JSONValue? { try node.stateJSON(key) }

    /// The principal registered under `did` (parsed once per version of its state entry: every
    /// authenticated request looks its caller up).
    /// Whether a committed transaction refers to the vault blob `hash` that `uploader` uploaded: a
    /// record version's ciphertext or key envelope (claimed once, under `records/blob/<hash>`).
    public func claimsUpload(_ hash: Hash, uploader: String) -> Bool {
        node.stateValue(forKey: RecordEntry.blobKey(hash.hex)) != nil
    }

    public func principal(_ did: String) throws(LedgerError) -> Principal? { try node.principal(did) }

    public func record(_ id: String) throws(LedgerError) -> RecordEntry? {
        let key = RecordEntry.key(id)
        guard let bytes = node.stateValue(forKey: key) else { return nil }
        return try parsed.entries.value(key, bytes) { (bytes) throws(LedgerError) in try RecordEntry(json: try JSONValue.parse(bytes)) }
    }

    public func recordIDs(patient: String) throws(LedgerError) -> [String] {
        (try json(RecordEntry.indexKey(patient: patient))?["records"]?.arrayValue ?? []).compactMap(\.stringValue)
    }

    public func grants(patient: String) throws(LedgerError) -> [ConsentGrant] {
        try ConsentPolicy.grants(patient: patient) { (key) throws(LedgerError) in try json(key) }
    }

    func check(purpose: String) throws(LedgerError) {
        guard ConsentGrant.purposes.contains(purpose) else {
            throw LedgerError("bad_parameter", "purpose must be one of \(ConsentGrant.purposes.sorted().joined(separator: ", "))")
        }
    }

    /// Who a writer must wrap a new version's key for: the patient, and every principal with an
    /// active treatment permit for the type (organisations included), with their encryption keys.
    /// With `custodian`, the custodian organisation too (it holds every version's key in escrow).
    public func recipients(patient: String, resourceType: String, custodian: String? = nil) throws(LedgerError) -> [Principal] {
        guard let p = try principal(patient), p.role == .patient else { throw LedgerError("not_found", "no patient \(patient)") }
        var out = [p]
        if let custodian {
            guard let c = try principal(custodian), c.role == .organisation else { throw LedgerError("unknown_custodian", "\(custodian) is not a registered organisation") }
            out.append(c)
        }
        let grants = try grants(patient: patient)
        for g in grants where g.active && g.permit {
            guard let grantee = try principal(g.grantee) else { continue }
            // A care team's members read with their own keys.
            var candidates = [grantee]
            if grantee.role == .careteam {
                candidates = []
                for did in grantee.members { if let member = try principal(did) { candidates.append(member) } }
            }
            for candidate in candidates where !out.contains(where: { $0.did == candidate.did }) {
                if ConsentPolicy.mayReceiveKeys(
                    did: candidate.did, groups: candidate.groups, patient: patient, resourceType: resourceType, grants: grants,
                    time: Int64(node.now))
                {
                    out.append(candidate)
                }
            }
        }
        return out
    }

    /// Whether `did` reviews the break-the-glass accesses of `organisation`'s people: the organisation's
    /// own key, or one of its practitioners with the `privacy-officer` duty.
    public func isPrivacyOfficer(_ did: String, of organisation: String) throws(LedgerError) -> Bool {
        if did == organisation { return try principal(did)?.role == .organisation }
        guard let p = try principal(did) else { return false }
        return p.organisation == organisation && p.duties.contains("privacy-officer")
    }

}

/// A cache of parsed record entries keyed by state key, checked against the current state bytes.
final class ParsedRecords: Sendable {
    let entries = ParsedStateCache<RecordEntry>(capacity: 100_000)
    /// Parsed key envelopes by salted hash (their blobs are immutable), and the hashes erasure destroyed:
    /// a parse that finishes after the erasure is not kept.
    private let envelopes = Mutex<(parsed: [Hash: [String: WrappedKey]], destroyed: Set<Hash>)>(([:], []))

    func envelope(_ hash: Hash) -> [String: WrappedKey]? { envelopes.withLock { $0.parsed[hash] } }

    func store(envelope hash: Hash, _ keys: [String: WrappedKey]) {
        envelopes.withLock { e in
            guard !e.destroyed.contains(hash) else { return }
            if e.parsed.count > 200_000 { e.parsed.removeAll(keepingCapacity: true) }
            e.parsed[hash] = keys
        }
    }

    func forget(envelope hash: Hash) {
        envelopes.withLock { e in
            e.parsed.removeValue(forKey: hash)
            if e.destroyed.count < 1_000_000 { e.destroyed.insert(hash) }
        }
    }
}

