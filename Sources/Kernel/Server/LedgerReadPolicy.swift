import ContractKit
import HTTPTypes
import Hummingbird
import LedgerCore
import Node

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
/// The kernel holds the rule; each capability says, for its own contracts and state, which patients
/// an entry concerns, who else it names, and who acts for a patient (`NodeCapability`).
/// Anything else gets 403 `forbidden`; no request gets 404 for private data it may not read, so
/// the answer does not say whether it exists. Everything else (notary, identity, governance,
/// supply, block headers, checkpoints, consistency proofs) stays public to the consortium's users.
/// Whole blocks and snapshots (`/v1/sync/…`) are for consortium nodes and members only.
package struct LedgerReadPolicy: Sendable {
    let node: LedgerNode
    let auth: AuthService
    /// The hosted capabilities, which say who may read their private entries and transactions.
    let capabilities: [any NodeCapability]

    /// Whether `key` is private state (under a prefix a contract declares private).
    func isPrivate(stateKey key: String) -> Bool { node.stateHashing.isPrivate(key) }

    /// Whether `did` is a consortium node or member: it may read everything.
    /// A key governance removed or rotated out, or a suspended member, is refused even when it proves it
    /// holds the consortium secret.
    package func isMember(_ did: String, request: Request) -> Bool {
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
        let author = node.principal(everSignedBy: tx.author.did)
        if did == author || isMember(did, request: request) { return }
        var audience = Audience(patients: [], parties: [])
        if let patient = tx.payload["patient"]?.stringValue { audience.patients.insert(patient) }
        for capability in capabilities {
            if let more = try capability.audience(ofTransaction: tx, node: node) { audience.add(more) }
        }
        // Written by the patient herself when it names nobody else (her own consent, her recovery set-up).
        if audience.patients.isEmpty { audience.patients.insert(author) }
        try allow(did, audience, what: "this transaction")
    }

    /// Checks that the caller may read the state entry `key` (whose current value is `value`).
    func authorize(stateKey key: String, value: [UInt8]?, request: Request) throws {
        guard isPrivate(stateKey: key) else { return }
        let did = try auth.authenticate(request)
        if isMember(did, request: request) { return }
        let parsed = value.flatMap { try? JSONValue.parse($0) }
        var audience = Audience(patients: [], parties: [])
        if let patient = parsed?["patient"]?.stringValue { audience.patients.insert(patient) }
        for capability in capabilities {
            if let more = try capability.audience(ofStateKey: key, value: parsed, node: node) { audience.add(more) }
        }
        guard !audience.patients.isEmpty else { throw LedgerError("forbidden", "\(key) is served to consortium nodes and members only") }
        try allow(did, audience, what: key)
    }

    /// A named party, or someone who may act for every patient it concerns (a bundle naming two
    /// patients is not served to one of them) — for a record, a delegate whose delegation covers its type.
    func allow(_ did: String, _ audience: Audience, what: String) throws {
        if audience.parties.contains(did) { return }
        if !audience.patients.isEmpty,
            try audience.patients.allSatisfy({ patient in
                try patient == did || capabilities.contains { try $0.mayActFor(patient: patient, actor: did, resourceType: audience.resourceType, node: node) }
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
