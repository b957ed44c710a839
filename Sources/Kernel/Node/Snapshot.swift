import ContractKit
import Foundation
import LedgerCore
import Store

/// State snapshots: a node joining a chain whose history
/// is long starts from a peer's snapshot instead of re-executing it, and checks it against nothing but
/// genesis.
///
/// A snapshot at a final height H holds: block H's header, proposer signature and quorum certificate;
/// every governance change of the validator set up to H, each as the header of the block that made it,
/// that block's certificate and a state proof of `governance/validators` against its state root; the
/// whole state at H; the committed transactions (canonical bytes, in log order), from which the log's
/// leaves and the used (author, nonce) pairs are derived.
///
/// Checks on installing: walking from genesis's validator set, each change's certificate verifies with
/// the set before it and its proof gives the next set; block H's certificate verifies with the set in
/// force, which must be the set the state names; the state rebuilt from the entries has H's state root;
/// the transactions give H's log size and root (so the replay-protection set is exactly the chain's).
/// Only a node with the full history serves snapshots.
extension LedgerNode {
    static func validatorChangeKey(_ height: UInt64) -> String { "validators@" + String(repeating: "0", count: 20 - String(height).count) + String(height) }

    static func validatorChange(proof: StateProof, value: [UInt8]) -> [UInt8] {
        JSONValue.object(["proof": proof.json, "value": .string(Base64.encode(value))]).canonicalBytes
    }

    /// A snapshot of the head, once it is final (waits for that up to `timeout`, holding block commits back).
    public func snapshot(timeout: Duration = .seconds(10)) async throws -> JSONValue {
        await commitLock.lock()
        defer { commitLock.unlock() }
        let block = latestBlock
        let height = block.header.height
        guard await waitFinal(height, timeout: timeout), let certificate = try certificate(height: height) else {
            throw LedgerError("not_final", "block \(height) is not final yet; retry")
        }
        var changes: [JSONValue] = []
        for (key, value) in try store.meta(prefix: "validators@") {
            guard let h = UInt64(key.dropFirst("validators@".count)), h <= height, let changed = try store.block(height: h),
                let changedCertificate = try store.certificate(height: h)
            else { continue }
            var o = try JSONValue.parse(value).objectValue ?? [:]
            o["height"] = .int(Int64(h))
            o["header"] = .string(Base64.encode(changed.header.encoded))
            o["certificate"] = .string(Base64.encode(changedCertificate))
            changes.append(.object(o))
        }
        let state = stateCache.all.sorted { $0.key < $1.key }.map { JSONValue.array([.string($0.key), .string(Base64.encode($0.value))]) }
        guard (try store.firstHeight()) == 0 else {
            throw LedgerError("no_full_history", "this node started from a snapshot: take snapshots from a node with the full history")
        }
        var transactions = BinaryWriter(capacity: 1 << 20)
        var count: UInt64 = 0
        try store.forEachTransaction { leaf, _, raw in
            guard leaf < block.header.logSize else { return }
            transactions.writeBytes(raw)
            count += 1
        }
        guard count == block.header.logSize else { throw LedgerError("internal_error", "the store holds \(count) of \(block.header.logSize) transactions") }
        return .object([
            "chainId": .string(genesis.chainID), "height": .int(Int64(height)),
            "header": .string(Base64.encode(block.header.encoded)), "signature": .string(Base64.encode(block.signature)),
            "certificate": .string(Base64.encode(certificate.encoded)), "validatorChanges": .array(changes), "state": .array(state),
            "transactions": .string(Base64.encode(transactions.bytes)),
        ])
    }

    /// Checks `snapshot` against the genesis in `directory` and installs it into the directory's empty
    /// store; answers the snapshot's height. The node is opened afterwards as usual.
    @discardableResult
    public static func installSnapshot(_ snapshot: JSONValue, in directory: DataDirectory, contracts: ContractSet) throws -> UInt64 {
        let genesis = try Genesis.load(directory.genesis)
        try genesis.requireSigned()
        func bytes(_ field: String, in o: JSONValue = snapshot) throws -> [UInt8] {
            guard let text = o[field]?.stringValue else { throw LedgerError("bad_snapshot", "the snapshot lacks \(field)") }
            return try Base64.decode(text)
        }
        guard snapshot["chainId"]?.stringValue == genesis.chainID else { throw LedgerError("bad_snapshot", "the snapshot is of another chain") }
        let header = try BlockHeader(encoded: try bytes("header"))
        let certificate = try QuorumCertificate(encoded: try bytes("certificate"))
        // The validator set, followed from genesis through each proven change before H.
        var validators = genesis.validators
        var pendingAtH: [PublicKey]?
        let changes = (snapshot["validatorChanges"]?.arrayValue ?? []).sorted { ($0["height"]?.intValue ?? 0) < ($1["height"]?.intValue ?? 0) }
        for change in changes {
            let changed = try BlockHeader(encoded: try bytes("header", in: change))
            guard changed.chainID == genesis.chainID, changed.height <= header.height else { throw LedgerError("bad_snapshot", "a validator change is out of range") }
            try QuorumCertificate(encoded: try bytes("certificate", in: change)).verify(header: changed, validators: validators)
            let value = try bytes("value", in: change)
            try StateProof(json: change["proof"] ?? .null).verify(root: changed.stateRoot, key: Array(GovernanceContract.validatorsKey.utf8), value: value)
            let next = try validatorSet(value)
            guard !next.isEmpty else { throw LedgerError("bad_snapshot", "a validator change leaves no validator") }
            if changed.height == header.height { pendingAtH = next } else { validators = next }
        }
        try certificate.verify(header: header, validators: validators)
        // The state and the log, rebuilt and checked against block H.
        var tree = SparseMerkleTree()
        var state: [(String, [UInt8])] = []
        for entry in snapshot["state"]?.arrayValue ?? [] {
            guard let pair = entry.arrayValue, pair.count == 2, let key = pair[0].stringValue, let text = pair[1].stringValue else {
                throw LedgerError("bad_snapshot", "a state entry is not [key, base64 value]")
            }
            state.append((key, try Base64.decode(text)))
        }
        let hashing = genesis.registry(contracts).stateHashing(secret: try directory.consortiumSecret(create: false))
        tree.set(batch: state.map { (key: $0.0, value: $0.1) }, hashing: hashing)
        guard tree.root == header.stateRoot else { throw LedgerError("bad_snapshot", "the state does not give block \(header.height)'s state root") }
        // The set the state names must be the one the proven changes lead to (no change left out).
        let named = Dictionary(state, uniquingKeysWith: { a, _ in a })
        let inState = try GovernanceContract.validators(in: { named[$0] }, initial: genesis.validators.map(\.did))
        guard inState == (pendingAtH ?? validators).map(\.did) else {
            throw LedgerError("bad_snapshot", "the validator set in the state is not the one its proven changes lead to")
        }
        // The transactions: their leaves must give block H's log, and they name the used nonces.
        var reader = BinaryReader(try bytes("transactions"))
        var merkle = MerkleLog()
        var leaves: [[UInt8]] = []
        var nonces: [([UInt8], UInt64)] = []
        var seen: Set<NonceKey> = []
        while !reader.isAtEnd {
            let tx = try Transaction(encoded: try reader.readBytes(limit: 1 << 20))
            guard tx.chainID == genesis.chainID else { throw LedgerError("bad_snapshot", "a transaction of another chain") }
            guard seen.insert(NonceKey(tx.author, tx.nonce)).inserted else { throw LedgerError("bad_snapshot", "a nonce used twice") }
            merkle.append(leafHash: tx.leafHash)
            leaves.append(tx.leafHash.bytes)
            nonces.append((tx.author.rawRepresentation, tx.nonce))
        }
        guard merkle.size == header.logSize, merkle.root == header.logRoot else {
            throw LedgerError("bad_snapshot", "the transactions do not give block \(header.height)'s log root")
        }
        // Installed: block H signed by its proposer, this node's own checkpoint of it.
        let key = try KeyFile.load(directory.nodeKey)
        let signer = try NoteSigner(name: genesis.noteKeyName, key: key)
        let checkpoint = try signer.sign(text: Checkpoint(origin: genesis.origin, size: header.logSize, rootHash: header.logRoot).text)
        let signature = try bytes("signature")
        guard header.proposer.isValidSignature(signature, for: header.encoded) else { throw LedgerError("bad_snapshot", "block \(header.height)'s signature does not verify") }
        let store = try BlockStore(path: directory.database)
        defer { try? store.close() }
        var meta: [(String, [UInt8])] = [("snapshot.height", Array(String(header.height).utf8))]
        for change in changes {
            guard let h = change["height"]?.intValue, let proof = change["proof"], let value = change["value"]?.stringValue else { continue }
            meta.append((validatorChangeKey(UInt64(h)), JSONValue.object(["proof": proof, "value": .string(value)]).canonicalBytes))
        }
        try store.installSnapshot(
            block: StoredBlock(header: header, signature: signature, checkpoint: checkpoint), certificate: certificate.encoded, state: state,
            leaves: leaves, nonces: nonces, meta: meta)
        return header.height
    }

    /// Fetches a snapshot from a peer's API and installs it (see `installSnapshot`).
    public static func installSnapshot(from peer: String, in directory: DataDirectory, contracts: ContractSet) async throws -> UInt64 {
        let base = peer.hasSuffix("/") ? String(peer.dropLast()) : peer
        let json = try await PeerClient.get("\(base)/v1/sync/snapshot", credentials: try PeerCredentials(directory: directory))
        return try installSnapshot(json, in: directory, contracts: contracts)
    }
}
