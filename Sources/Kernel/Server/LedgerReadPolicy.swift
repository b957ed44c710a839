import ContractKit
import HTTPTypes
import Hummingbird
import LedgerCore
import Node
import RecordsContract

/// Who may read the ledger's own data over the API.
///
/// No health data is on the chain, but the metadata about a patient is personal data too: her
/// consents, who read her records and when, which records a custodian holds for her, her
/// guardians. So the transactions of the patient-scoped contracts (`records`, `consent`, `audit`,
/// `recovery`) and the state under `records/`, `consent/`, `audit/` and `recovery/` are served only
/// to an authenticated caller who is
/// - a consortium node or member: an operator or validator key in force, an active governance member, or a
///   node proving it holds the consortium secret (`MemberAccess`) — they hold the whole chain anyway;
/// - the patient concerned or one of her active delegates;
/// - a party named in it: the transaction's author, a grantee, the reader of an access event, a
///   guardian or the requester of a key recovery.
/// Anything else gets 403 `forbidden`; no request gets 404 for private data it may not read, so
/// the answer does not say whether it exists. Everything else (notary, identity, governance,
/// supply, block headers, checkpoints, consistency proofs) stays public to the consortium's users.
/// Whole blocks and snapshots (`/v1/sync/…`) are for consortium nodes and members only.
struct LedgerReadPolicy: Sendable {
    let node: LedgerNode
    let records: RecordsService
    let auth: AuthService
    /// The hosted capabilities, which say who may read their private entries and transactions.
    let capabilities: [any NodeCapability]

    /// Whether `key` is private state (under a prefix a contract declares private).
    func isPrivate(stateKey key: String) -> Bool { node.stateHashing.isPrivate(key) }

    /// Whether `did` is a consortium node or member: it may read everything.
    /// A key governance removed or rotated out, or a suspended member, is refused even when it proves it
    /// holds the consortium secret.
    func isMember(_ did: String, request: Request) -> Bool {
        if node.isOperator(did) || node.validators.contains(where: { $0.did == did }) { return true }
        let members = (try? GovernanceContract.members(in: { node.stateValue(forKey: $0) }, initial: node.genesis.governanceMembers)) ?? []
        if let member = members.first(where: { $0.did == did }) { return member.status == "active" }
        if node.stateValue(forKey: GovernanceContract.revokedKey(did)) != nil { return false }
        if let proof = request.headers[MemberAccess.headerName], node.peerCredentials.access.verify(did: did, proof: proof) { return true }
        return false
    }

    /// The authenticated caller, when she may read whole blocks (`/v1/sync/…`).
    func requireMember(_ request: Request) throws -> String {
        let did = try auth.authenticate(request)
        guard isMember(did, request: request) else {
            throw LedgerError("forbidden", "whole blocks and snapshots are served to consortium nodes and members only")
        }
        return did
    }

    /// Checks that the caller may read `tx` (its payload, raw bytes, result).
    func authorize(_ tx: Transaction, request: Request) throws {
        guard node.registry.privateContracts.contains(tx.contract) else { return }
        let did = try auth.authenticate(request)
        if did == tx.author.did || isMember(did, request: request) { return }
        let p = tx.payload
        var patients = Set<String>()
        var parties = Set<String>()
        if let patient = p["patient"]?.stringValue { patients.insert(patient) }
        for put in p["puts"]?.arrayValue ?? [] { if let patient = put["patient"]?.stringValue { patients.insert(patient) } }
        var resourceType = p["resourceType"]?.stringValue
        if let id = p["recordId"]?.stringValue, let entry = try json(RecordEntry.key(id)), let patient = entry["patient"]?.stringValue {
            patients.insert(patient)
            resourceType = resourceType ?? entry["resourceType"]?.stringValue
        }
        if let grant = p["grant"]?.stringValue, let patient = try json(ConsentGrant.idKey(grant))?["patient"]?.stringValue { patients.insert(patient) }
        // Written by the patient herself when it names nobody else (her own consent, her recovery set-up).
        if patients.isEmpty { patients.insert(tx.author.did) }
        for key in ["grantee", "reader"] { if let d = p[key]?.stringValue { parties.insert(d) } }
        for capability in capabilities {
            if let more = try capability.parties(ofTransaction: tx, patients: patients, node: node) { parties.formUnion(more) }
        }
        try allow(did, patients: patients, parties: parties, what: "this transaction", resourceType: tx.contract == "records" ? resourceType : nil)
    }

    /// Checks that the caller may read the state entry `key` (whose current value is `value`).
    func authorize(stateKey key: String, value: [UInt8]?, request: Request) throws {
        guard isPrivate(stateKey: key) else { return }
        let did = try auth.authenticate(request)
        if isMember(did, request: request) { return }
        let parts = key.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let parsed = value.flatMap { try? JSONValue.parse($0) }
        var patients = Set<String>()
        var parties = Set<String>()
        for capability in capabilities {
            if let audience = try capability.audience(ofStateKey: key, node: node) {
                patients.formUnion(audience.patients)
                parties.formUnion(audience.parties)
            }
        }
        switch (parts[0], parts.count > 1 ? parts[1] : "") {
        case ("records", "by-patient") where parts.count > 2: patients.insert(parts[2])
        case ("consent", "by-id"): break
        case ("audit", "break-glass") where parts.count > 3:
            patients.insert(parts[2])
            parties.insert(parts[3])
        case ("audit", "review") where parts.count > 2, ("audit", "erasure") where parts.count > 2: patients.insert(parts[2])
        case ("records", _), ("consent", _), ("audit", _):
            if parts[0] != "records", parts.count > 1 { patients.insert(parts[1]) }
        default: break
        }
        if let patient = parsed?["patient"]?.stringValue { patients.insert(patient) }
        for field in ["grantee", "reader"] { if let d = parsed?[field]?.stringValue { parties.insert(d) } }
        guard !patients.isEmpty else { throw LedgerError("forbidden", "\(key) is served to consortium nodes and members only") }
        // A record's entry is served to a delegate only within her delegation's types.
        try allow(did, patients: patients, parties: parties, what: key, resourceType: parts[0] == "records" ? parsed?["resourceType"]?.stringValue : nil)
    }

    /// A named party, or someone who may act for every patient it concerns (a bundle naming two
    /// patients is not served to one of them) — for a record, a delegate whose delegation covers its type.
    func allow(_ did: String, patients: Set<String>, parties: Set<String>, what: String, resourceType: String? = nil) throws {
        if parties.contains(did) { return }
        let now = Int64(records.node.now)
        if !patients.isEmpty,
            try patients.allSatisfy({ patient in
                ConsentPolicy.mayActFor(patient: patient, actor: did, grants: try records.grants(patient: patient), time: now, resourceType: resourceType)
            })
        {
            return
        }
        throw LedgerError("forbidden", "\(what) concerns a patient: it is served to her, her delegates, the parties it names and consortium members")
    }

    func json(_ key: String) throws -> JSONValue? { try node.stateJSON(key) }
}

extension MemberAccess {
    static let headerName = HTTPField.Name(MemberAccess.header)!
}
