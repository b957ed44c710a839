import ContractKit
import Foundation
import LedgerCore
import Logging
import Metrics
import Store
import Synchronization

/// The committed head: what readers see.
struct Head: Sendable {
    var block: StoredBlock
    var state: SparseMerkleTree
}

/// A complete single-process node: durable store, mempool, solo ordering, deterministic
/// execution through the registered contracts, checkpoints.
public final class LedgerNode: Sendable {
    public let genesis: Genesis
    public let store: BlockStore
    public let registry: ContractRegistry
    /// Where this node's blocks are ordered.
    public let ordering: any Ordering
    /// How state entries become leaves of the state tree (private ones salted with the consortium secret).
    public let stateHashing: StateLeafHashing
    /// The consortium secret, from which each use derives its key.
    public let secret: ConsortiumSecret
    public let configuration: NodeConfiguration
    public let noteVerifier: NoteVerifier
    let key: SigningKey
    /// The node's key, for node-signed transactions of the services on this node (alerts, access events).
    package var signingKey: SigningKey { key }
    /// This node's credentials for reading peers' ledger APIs (its key and the consortium member proof).
    public let peerCredentials: PeerCredentials
    let noteSigner: NoteSigner
    let mempool: Mempool
    let head: Mutex<Head>
    /// The committed state values, in memory, so execution reads cost no database round trip.
    let stateCache: StateCache
    /// Committed events, for the server-sent event streams.
    public let events = EventHub()
    /// Run after each commit with the block's events, before receipts are delivered, in the order they
    /// were first set (the vault's erasure and custodian replication hooks). They must not block.
    let afterCommit = Mutex<[(name: String, hook: @Sendable (UInt64, [JSONValue]) -> Void)]>([])

    /// Sets the hook named `name` (replacing the one of that name: one per service, however many
    /// services are built over this node).
    public func setAfterCommit(_ name: String, _ hook: @escaping @Sendable (UInt64, [JSONValue]) -> Void) {
        afterCommit.withLock { hooks in
            if let i = hooks.firstIndex(where: { $0.name == name }) { hooks[i].hook = hook } else { hooks.append((name, hook)) }
        }
    }
    let log: Mutex<MerkleLog>
    let clock: @Sendable () -> UInt64
    package let logger: Logger
    let committedCounter: Counter
    let failedCounter: Counter
    let blockCounter: Counter
    let heightGauge: Gauge
    let commitTimer: Metrics.Timer
    let alarmCounter: Counter
    /// Held while this node has the data directory open: a second node on it is refused.
    let directoryLock: DirectoryLock
    /// Serialises block preparation and commit (the etcd leader's proposals and the applier).
    package let commitLock = AsyncLock()
    let parsedJSON = ParsedStateCache<JSONValue>()
    let parsedPrincipals = ParsedStateCache<Principal>()
    /// The highest height with a quorum certificate.
    let finalHeight: Mutex<UInt64>
    let finalWaiters = Mutex<[(UInt64, UUID, CheckedContinuation<Void, Never>)]>([])

    /// The validator set for the next block: genesis's, as changed by governance transactions since.
    public var validators: [PublicKey] {
        let cache = stateCache
        let dids = (try? GovernanceContract.validators(in: { cache.value(forKey: $0) }, initial: genesis.validators.map(\.did))) ?? []
        return dids.compactMap { try? PublicKey(did: $0) }
    }
    /// The validator set that certified (or will certify) the block at `height`: the set in force when
    /// it was executed — the one left by the last validator change below `height` (kept in the store,
    /// so this holds after a restart too), or genesis's.
    public func validators(forHeight height: UInt64) -> [PublicKey] {
        validatorChanges.withLock { $0.last { $0.height < height }?.validators } ?? genesis.validators
    }
    /// Every validator-set change in height order: the block that made it and the set after it.
    let validatorChanges: Mutex<[(height: UInt64, validators: [PublicKey])]>

    /// The validator-set changes recorded in the store's meta (`validators@<height>`), in height order.
    static func validatorChanges(in store: BlockStore) throws -> [(height: UInt64, validators: [PublicKey])] {
        try store.meta(prefix: "validators@").compactMap { key, value in
            guard let height = UInt64(key.dropFirst("validators@".count)),
                let encoded = try JSONValue.parse(value)["value"]?.stringValue
            else { return nil }
            return (height, try Self.validatorSet(try Base64.decode(encoded)))
        }.sorted { $0.height < $1.height }
    }

    /// The validators a `governance/validators` state value names.
    static func validatorSet(_ value: [UInt8]) throws -> [PublicKey] {
        try (JSONValue.parse(value).arrayValue ?? []).map { (v: JSONValue) throws(LedgerError) in try PublicKey(did: v.stringValue ?? "") }
    }
    public var publicKey: PublicKey { key.publicKey }
    public var isValidator: Bool { validators.contains(key.publicKey) }
    /// Whether `did` is a consortium operator now (see `OperatorSet`: genesis's, then the validators governance set).
    public func isOperator(_ did: String) -> Bool {
        let cache = stateCache
        return (try? OperatorSet(genesis.operators).contains(did) { (key: String) throws(LedgerError) -> [UInt8]? in cache.value(forKey: key) }) ?? false
    }

    /// Milliseconds since the Unix epoch from the system clock.
    public static let systemClock: @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) }

    /// Opens the node whose data is in `directory` (created by `Consortium.create`).
    public init(
        directory: DataDirectory, contracts: ContractSet, ordering: any Ordering = SoloOrdering(), configuration: NodeConfiguration = .init(),
        clock: @escaping @Sendable () -> UInt64 = LedgerNode.systemClock, metrics: (any MetricsFactory)? = nil,
        logger: Logger = Logger(label: "careledger.node")
    ) throws {
        let genesis = try Genesis.load(directory.genesis)
        try genesis.requireSigned()
        directoryLock = try DirectoryLock(path: directory.path + "/node.lock")
        let key = try KeyFile.load(directory.nodeKey)
        // A consortium node may be an observer (a key no validator set names yet); a solo node is the validator.
        if ordering.isSolo && key.publicKey != genesis.proposer && !genesis.validators.contains(key.publicKey) {
            throw LedgerError("wrong_node_key", "node.key is neither the proposer nor a validator named in genesis.json")
        }
        self.genesis = genesis
        self.key = key
        let secret = try directory.consortiumSecret()
        self.secret = secret
        peerCredentials = PeerCredentials(key: key, access: MemberAccess(secret: secret))
        self.registry = genesis.registry(contracts)
        stateHashing = self.registry.stateHashing(secret: secret)
        self.ordering = ordering
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        noteSigner = try NoteSigner(name: genesis.noteKeyName, key: key)
        noteVerifier = noteSigner.verifier
        let store = try BlockStore(path: directory.database)
        self.store = store
        mempool = Mempool(capacity: configuration.mempoolCapacity)
        let factory = metrics ?? MetricsSystem.factory
        committedCounter = Counter(label: "careledger_transactions_committed_total", dimensions: [], factory: factory)
        failedCounter = Counter(label: "careledger_transactions_failed_total", dimensions: [], factory: factory)
        blockCounter = Counter(label: "careledger_blocks_committed_total", dimensions: [], factory: factory)
        heightGauge = Gauge(label: "careledger_height", dimensions: [], factory: factory)
        commitTimer = Metrics.Timer(label: "careledger_block_commit_seconds", dimensions: [], factory: factory)
        alarmCounter = Counter(label: "careledger_alarms_total", dimensions: [], factory: factory)

        // Genesis block on first start.
        if try store.latestHeight() == nil {
            let header = genesis.header
            let checkpoint = try noteSigner.sign(text: Checkpoint(origin: genesis.origin, size: 0, rootHash: MerkleHash.empty).text)
            let block = StoredBlock(header: header, signature: key.signature(for: header.encoded), checkpoint: checkpoint)
            try store.commitNow(block: block, transactions: [], writes: [], events: [])
        }
        guard let latest = try store.latestHeight(), let block = try store.block(height: latest) else {
            throw LedgerError("corrupt_store", "no blocks in the store")
        }
        guard block.header.chainID == genesis.chainID else {
            throw LedgerError("corrupt_store", "the store belongs to chain \(block.header.chainID)")
        }
        // Rebuild the log and the state tree from the committed rows and check them against the head.
        var merkle = MerkleLog()
        var nonces: [NonceKey] = []
        // A node started from a snapshot holds the earlier leaf hashes and used nonces, not the transactions.
        try store.forEachSnapshotLeaf { merkle.append(leafHash: try Hash($0)) }
        try store.forEachSnapshotNonce { author, nonce in nonces.append(NonceKey(try PublicKey(rawRepresentation: author), nonce)) }
        try store.forEachTransaction { _, _, raw in
            let tx = try Transaction(encoded: raw)
            merkle.append(leafHash: tx.leafHash)
            nonces.append(NonceKey(tx.author, tx.nonce))
        }
        var tree = SparseMerkleTree()
        var values: [String: [UInt8]] = [:]
        var loaded: [(key: String, value: [UInt8]?)] = []
        try store.forEachState { key, value in
            loaded.append((key, value))
            values[key] = value
        }
        tree.set(batch: loaded, hashing: stateHashing)
        stateCache = StateCache(values)
        guard merkle.size == block.header.logSize, merkle.root == block.header.logRoot else {
            throw LedgerError("corrupt_store", "log rebuilt from the store does not match block \(latest)")
        }
        guard tree.root == block.header.stateRoot else {
            throw LedgerError("corrupt_store", "state rebuilt from the store does not match block \(latest)")
        }
        mempool.markCommitted(nonces)
        finalHeight = Mutex(try store.latestCertifiedHeight() ?? 0)
        validatorChanges = Mutex(try Self.validatorChanges(in: store))
        head = Mutex(Head(block: block, state: tree))
        log = Mutex(merkle)
        heightGauge.record(Int64(latest))
        if ordering.isSolo && validators != [key.publicKey] {
            throw LedgerError(
                "needs_etcd", "this chain has \(validators.count) validators: its blocks are ordered through etcd (--etcd), not solo")
        }
    }

    // MARK: state

    public var pendingCount: Int { mempool.count }

    /// A committed state value (latest block).
    public func stateValue(forKey key: String) -> [UInt8]? { stateCache.value(forKey: key) }

    /// A committed state entry parsed as JSON: the one way every service reads one (parsed values are
    /// cached while the entry's bytes are unchanged).
    public func stateJSON(_ key: String) throws(LedgerError) -> JSONValue? {
        guard let bytes = stateCache.value(forKey: key) else { return nil }
        return try parsedJSON.value(key, bytes) { (bytes) throws(LedgerError) in try JSONValue.parse(bytes) }
    }

    /// The principal a signing key signs for now (committed state), or why it may not (`Signers`).
    public func principal(signedBy keyDID: String) throws(LedgerError) -> String {
        try Signers.principal(signedBy: keyDID) { key in stateCache.value(forKey: key) }
    }

    /// The principal a signing key signs or signed for (whether current, retired or frozen): the
    /// author of a transaction it signed.
    public func principal(everSignedBy keyDID: String) -> String {
        (try? stateJSON(Signers.key(keyDID)))??["principal"]?.stringValue ?? keyDID
    }

    /// The principal registered under `did` (parsed once per version of its entry: every
    /// authenticated request looks its caller up).
    public func principal(_ did: String) throws(LedgerError) -> Principal? {
        let key = Principal.key(did)
        guard let bytes = stateCache.value(forKey: key) else { return nil }
        return try parsedPrincipals.value(key, bytes) { (bytes) throws(LedgerError) in try Principal(json: try JSONValue.parse(bytes)) }
    }

    // MARK: ordering

    /// Whether this node admitted `tx` itself (signature already checked) and it is not committed yet.
    func admittedHere(_ tx: Transaction) -> Bool { mempool.isPending(tx.id) }

    /// Whether `tx` (by author and nonce) is in a committed block.
    package func isCommitted(_ tx: Transaction) -> Bool { mempool.isCommitted(tx) }

    /// Admitted transactions to forward to the ordering service (etcd mode).
    /// Forwarding waits at most 2 ms to gather a batch: the block interval is the leader's to apply.
    package func nextForwardBatch() async -> [Transaction] {
        await mempool.nextBatch(
            maxCount: configuration.blockSize, maxDelay: min(configuration.blockInterval, .milliseconds(2)), limit: configuration.maxBlockTransactions)
    }

    /// The did of the node that leads block proposal now (this node in solo ordering; nil when none leads).
    public func orderingLeader() async throws -> String? { try await ordering.leader(self) }

    /// Milliseconds since the Unix epoch from the node's clock (the system clock unless one was injected).
    public var now: UInt64 { clock() }
    func stopAdmission(_ error: LedgerError) { mempool.close(error) }

    // MARK: queries

    /// Releases the data directory (the node must not be used afterwards); a stopped node's process may reopen it.
    public func close() { directoryLock.release() }

    public var height: UInt64 { head.withLock { $0.block.header.height } }
    public var latestBlock: StoredBlock { head.withLock { $0.block } }
    public var checkpoint: String { head.withLock { $0.block.checkpoint } }

    /// The committed log size (proofs are served for sizes up to this).
    public var logSize: UInt64 { head.withLock { $0.block.header.logSize } }

    public func inclusionProof(leafIndex: UInt64, treeSize: UInt64) throws(LedgerError) -> [Hash] {
        let committed = logSize
        guard treeSize <= committed else {
            throw LedgerError("tree_size_too_large", "tree size \(treeSize) exceeds the committed log size \(committed)")
        }
        return try log.withLock { (log) throws(LedgerError) in try log.inclusionProof(leafIndex: leafIndex, treeSize: treeSize) }
    }

    public func consistencyProof(from: UInt64, to: UInt64) throws(LedgerError) -> [Hash] {
        let committed = logSize
        guard to <= committed else { throw LedgerError("tree_size_too_large", "tree size \(to) exceeds the committed log size \(committed)") }
        return try log.withLock { (log) throws(LedgerError) in try log.consistencyProof(from: from, to: to) }
    }

    public func root(size: UInt64) throws(LedgerError) -> Hash {
        try log.withLock { (log) throws(LedgerError) in try log.root(size: size) }
    }

    /// A state value with its proof against the state root of the block it was read at, and the
    /// salt of its leaf when the entry is private (nil for a public one).
    public func state(key: String) throws -> (block: StoredBlock, value: [UInt8]?, proof: StateProof, salt: [UInt8]?) {
        let salt = stateHashing.salt(key)
        for _ in 0..<10 {
            let snapshot = head.withLock { $0 }
            let value = stateCache.value(forKey: key)
            let proof = snapshot.state.proof(keyHash: StateLeafHashing.keyHash(key, salt: salt))
            if proof.provenValueHash == value.map({ StateLeafHashing.valueHash($0, salt: salt) }) { return (snapshot.block, value, proof, salt) }
        }
        throw LedgerError("busy", "state changed while it was read; retry")
    }
}

extension MerkleLog {
    /// Drops leaves past `size` (used only to undo an append whose block failed to commit).
    mutating func truncate(to size: UInt64) {
        guard size < self.size else { return }
        var rebuilt = MerkleLog()
        for i in 0..<size { rebuilt.append(leafHash: leafHash(at: i)) }
        self = rebuilt
    }
}

