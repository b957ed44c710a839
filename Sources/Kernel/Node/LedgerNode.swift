import ContractKit
import Foundation
import LedgerCore
import Logging
import Metrics
import Store
import Synchronization

/// How a node orders and limits work.
public struct NodeConfiguration: Sendable {
    /// Cut a block when this many transactions wait…
    public var blockSize: Int = 2000
    /// …or when the oldest has waited this long.
    public var blockInterval: Duration = .milliseconds(20)
    /// Most transactions in one block.
    public var maxBlockTransactions: Int = 10_000
    /// Most transactions waiting in the mempool.
    public var mempoolCapacity: Int = 200_000
    /// Other nodes' API URLs, to catch up from when etcd no longer holds the blocks this node lacks.
    public var peers: [String] = []
    /// The leader compacts etcd every this many slots…
    public var etcdCompactEvery: Int = 1000
    /// …keeping this many recent slots (and the votes of as many recent heights).
    public var etcdRetainSlots: Int = 10_000
    /// Most bytes of transactions in one block proposed through etcd (its request limit is 1.5 MiB by default).
    public var maxProposalBytes: Int = 1 << 20

    public init() {}
}

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
    private let key: SigningKey
    /// The node's key, for node-signed transactions of the services on this node (alerts, access events).
    var signingKey: SigningKey { key }
    /// This node's credentials for reading peers' ledger APIs (its key and the consortium member proof).
    public let peerCredentials: PeerCredentials
    private let noteSigner: NoteSigner
    let mempool: Mempool
    let head: Mutex<Head>
    /// The committed state values, in memory, so execution reads cost no database round trip.
    let stateCache: StateCache
    /// Committed events, for the server-sent event streams.
    public let events = EventHub()
    /// Run after each commit with the block's events, before receipts are delivered, in the order they
    /// were first set (the vault's erasure and custodian replication hooks). They must not block.
    private let afterCommit = Mutex<[(name: String, hook: @Sendable (UInt64, [JSONValue]) -> Void)]>([])

    /// Sets the hook named `name` (replacing the one of that name: one per service, however many
    /// services are built over this node).
    public func setAfterCommit(_ name: String, _ hook: @escaping @Sendable (UInt64, [JSONValue]) -> Void) {
        afterCommit.withLock { hooks in
            if let i = hooks.firstIndex(where: { $0.name == name }) { hooks[i].hook = hook } else { hooks.append((name, hook)) }
        }
    }
    let log: Mutex<MerkleLog>
    private let clock: @Sendable () -> UInt64
    package let logger: Logger
    private let committedCounter: Counter
    private let failedCounter: Counter
    private let blockCounter: Counter
    private let heightGauge: Gauge
    private let commitTimer: Metrics.Timer
    private let alarmCounter: Counter
    /// Held while this node has the data directory open: a second node on it is refused.
    private let directoryLock: DirectoryLock
    /// Serialises block preparation and commit (the etcd leader's proposals and the applier).
    package let commitLock = AsyncLock()
    private let parsedJSON = ParsedStateCache<JSONValue>()
    private let parsedPrincipals = ParsedStateCache<Principal>()
    /// The highest height with a quorum certificate.
    private let finalHeight: Mutex<UInt64>
    private let finalWaiters = Mutex<[(UInt64, UUID, CheckedContinuation<Void, Never>)]>([])

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
    private let validatorChanges: Mutex<[(height: UInt64, validators: [PublicKey])]>

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

    // MARK: submission

    /// Stateless checks of one transaction: chain, signature, contract, action, payload.
    public func check(_ tx: Transaction) throws(LedgerError) {
        try tx.verifySignature()
        try checkContent(tx)
    }

    /// `check` without the signature.
    func checkContent(_ tx: Transaction) throws(LedgerError) {
        guard tx.chainID == genesis.chainID else {
            throw LedgerError("wrong_chain", "transaction is for chain \(tx.chainID), this node runs \(genesis.chainID)")
        }
        try registry.validate(tx)
    }

    /// Checks a batch (signatures in parallel over all cores), admits it atomically and waits
    /// until every transaction of it is committed. Throws `BatchRejection` when any is refused.
    public func submit(_ txs: [Transaction]) async throws -> [Receipt] {
        guard !txs.isEmpty else { return [] }
        let errors = await Self.checkAll(txs, check: checkContent)
        if errors.contains(where: { $0 != nil }) { throw BatchRejection(items: errors) }
        return try await mempool.submit(txs)
    }

    /// Each transaction's signature (in batches, over all cores), then `check` for those whose
    /// signature verifies: nil where both pass.
    /// `workers`: where the checks run; the background workers for transactions coming in (the block
    /// producer and the committer come first: see `BackgroundWorkers`), the cooperative pool (nil) for
    /// checks a block waits for.
    static func checkAll(
        _ txs: [Transaction], on workers: BackgroundWorkers? = .shared, check: @escaping @Sendable (Transaction) throws(LedgerError) -> Void
    ) async -> [LedgerError?] {
        await Parallel.mapChunks(txs, minimumChunk: 32, on: workers) { slice in
            zip(slice, Transaction.signatureErrors(slice)).map { (tx, signatureError) -> LedgerError? in
                if let signatureError { return signatureError }
                do throws(LedgerError) { try check(tx) } catch { return error }
                return nil
            }
        }.flatMap { $0 }
    }

    public var pendingCount: Int { mempool.count }

    /// Signs a transaction with the node's own key (for events the node records itself, such as
    /// access events), submits it and waits for its receipt.
    public func submitAsNode(contract: String, action: String, payload: JSONValue) async throws -> Receipt {
        try await submit(
            try Transaction(
                chainID: genesis.chainID, signer: key, contract: contract, action: action,
                payload: payload))
    }

    /// Submits one transaction and waits for its receipt; a refusal throws its `LedgerError`.
    public func submit(_ tx: Transaction) async throws -> Receipt {
        do {
            return try await submit([tx])[0]
        } catch let rejection as BatchRejection {
            throw rejection.first
        }
    }

    /// A committed state value (latest block).
    public func stateValue(forKey key: String) -> [UInt8]? { stateCache.value(forKey: key) }

    /// A committed state entry parsed as JSON: the one way every service reads one (parsed values are
    /// cached while the entry's bytes are unchanged).
    public func stateJSON(_ key: String) throws(LedgerError) -> JSONValue? {
        guard let bytes = stateCache.value(forKey: key) else { return nil }
        return try parsedJSON.value(key, bytes) { (bytes) throws(LedgerError) in try JSONValue.parse(bytes) }
    }

    /// The principal registered under `did` (parsed once per version of its entry: every
    /// authenticated request looks its caller up).
    public func principal(_ did: String) throws(LedgerError) -> Principal? {
        let key = Principal.key(did)
        guard let bytes = stateCache.value(forKey: key) else { return nil }
        return try parsedPrincipals.value(key, bytes) { (bytes) throws(LedgerError) in try Principal(json: try JSONValue.parse(bytes)) }
    }

    // MARK: block production (solo ordering)

    /// Orders, executes and commits blocks until cancelled: solo, or through etcd when configured.
    public func run() async {
        logger.info("node running", metadata: ["chain": "\(genesis.chainID)", "height": "\(height)", "ordering": "\(ordering.name)"])
        await ordering.run(self)
        mempool.close(LedgerError("node_stopped", "the node is shutting down"))
        events.finish()
    }

    /// Solo ordering: this node proposes every block.
    package func runSolo() async {
        // Pipelined: block h+1 is executed over block h's prepared state while h is being written
        // and synced; h+1 starts its commit only once h is durable, and receipts are delivered
        // only after their own block's commit.
        var inflight: (prepared: PreparedBlock, committed: Task<Bool, Never>)?
        while !Task.isCancelled {
            let batch = await mempool.nextBatch(
                maxCount: configuration.blockSize, maxDelay: configuration.blockInterval, limit: configuration.maxBlockTransactions)
            if batch.isEmpty { continue }
            // Executed on the producer's own thread: the block producer is the one serial stage, so it
            // competes for the CPU as a thread of its own instead of queueing behind request handlers'
            // CPU-bound work on the cooperative pool.
            let parent = inflight?.prepared
            let prepared = await withCheckedContinuation { (c: CheckedContinuation<PreparedBlock, Never>) in
                Self.producerQueue.async { c.resume(returning: self.prepare(batch, timeMillis: nil, proposer: self.key.publicKey, parent: parent)) }
            }
            if let inflight, await !inflight.committed.value {
                discard(prepared)
                mempool.fail(batch, error: LedgerError("commit_failed", "the previous block could not be committed"))
                return
            }
            let committed = Task { () -> Bool in
                do {
                    let receipts = try await commitSolo(prepared)
                    mempool.complete(batch, receipts: receipts)
                    return true
                } catch {
                    logger.error("block commit failed; stopping block production", metadata: ["error": "\(error)"])
                    mempool.fail(batch, error: LedgerError("commit_failed", "the block could not be committed: \(error)"))
                    mempool.close(LedgerError("node_stopped", "block production stopped after a commit failure"))
                    return false
                }
            }
            inflight = (prepared, committed)
        }
        if let inflight { _ = await inflight.committed.value }
    }

    static let producerQueue = DispatchQueue(label: "careledger.block-producer", qos: .userInitiated)

    /// Commits a block this node prepared alone (solo ordering: its own vote is the block's quorum certificate).
    func commitSolo(_ prepared: PreparedBlock) async throws -> [Receipt] {
        await commitLock.lock()
        defer { commitLock.unlock() }
        let vote = BlockVote(header: prepared.header, signer: key, origin: genesis.origin)
        return try await commit(prepared, signature: key.signature(for: prepared.header.encoded), certificate: QuorumCertificate(votes: [vote]))
    }

    /// A block executed but not yet committed (its leaves are appended to the in-memory log: commit it
    /// or `discard` it before preparing another).
    package struct PreparedBlock: Sendable {
        package let transactions: [Transaction]
        package let header: BlockHeader
        let execution: BlockExecution
        let tree: SparseMerkleTree
        let firstLeaf: UInt64
        let start: DispatchTime
        /// When execution, the state tree and the log were done (the rest of `prepareMicros` is waiting).
        var executed = DispatchTime.now()
    }

    /// Executes `txs` as the next block, at `timeMillis` (nil: now, never before the previous block):
    /// over the committed head, or over `parent`, a prepared block whose commit is under way (or
    /// just done: its writes are then in the committed state already, and reading them again
    /// from the overlay gives the same values).
    package func prepare(_ txs: [Transaction], timeMillis: UInt64?, proposer: PublicKey, parent: PreparedBlock? = nil) -> PreparedBlock {
        let start = DispatchTime.now()
        let previousHeader = parent?.header ?? head.withLock { $0.block.header }
        let height = previousHeader.height + 1
        let time = timeMillis ?? max(clock(), previousHeader.timeMillis)
        let firstLeaf = previousHeader.logSize
        // Transactions admitted here passed the contracts' stateless checks already.
        let admitted = mempool.pendingSubset(txs)
        let base: any StateReader = parent.map { OverlayState(base: stateCache, writes: $0.execution.writes) } ?? stateCache
        let execution = registry.execute(
            transactions: txs, height: height, timeMillis: time, firstLeafIndex: firstLeaf, base: base,
            prevalidated: { admitted.contains($0.id) })
        var tree = parent?.tree ?? head.withLock { $0.state }
        tree.set(batch: execution.writes.map { (key: $0.key, value: $0.value) }, hashing: stateHashing)
        let (logSize, logRoot) = log.withLock { log -> (UInt64, Hash) in
            for tx in txs { log.append(leafHash: tx.leafHash) }
            return (log.size, log.root)
        }
        let header = BlockHeader(
            chainID: genesis.chainID, height: height, previousHash: previousHeader.hash, timeMillis: time,
            logSize: logSize, logRoot: logRoot, stateRoot: tree.root, transactionCount: UInt64(txs.count),
            transactionsHash: BlockHeader.transactionsHash(txs.map(\.id)), proposer: proposer)
        return PreparedBlock(transactions: txs, header: header, execution: execution, tree: tree, firstLeaf: firstLeaf, start: start)
    }

    /// Undoes a prepared block that will not be committed.
    package func discard(_ prepared: PreparedBlock) { log.withLock { $0.truncate(to: prepared.firstLeaf) } }

    /// Commits a prepared block durably with its proposer's signature (and certificate, when known),
    /// publishes it and delivers the receipts of the transactions this node admitted.
    @discardableResult
    package func commit(_ prepared: PreparedBlock, signature: [UInt8], certificate: QuorumCertificate?, meta: [(String, [UInt8])] = []) async throws -> [Receipt] {
        let header = prepared.header, execution = prepared.execution, txs = prepared.transactions
        let checkpoint: String
        do {
            checkpoint = try noteSigner.sign(text: Checkpoint(origin: genesis.origin, size: header.logSize, rootHash: header.logRoot).text)
        } catch {
            discard(prepared)
            throw error
        }
        let block = StoredBlock(header: header, signature: signature, checkpoint: checkpoint)
        let outcomes = zip(txs, execution.receipts).map { tx, r in
            TransactionOutcome(
                transaction: tx, leafIndex: r.leafIndex, status: r.status.rawValue,
                result: r.status == .committed ? r.result.canonicalBytes : nil, errorCode: r.errorCode, errorMessage: r.errorMessage)
        }
        let t2 = DispatchTime.now()
        let validatorChange = execution.writes.first(where: { $0.key == GovernanceContract.validatorsKey })?.value ?? nil
        do {
            var meta = meta
            if let value = validatorChange {
                // Kept so that a restarted node, or one starting from a later snapshot, can follow the validator set from genesis.
                meta.append(
                    (Self.validatorChangeKey(header.height), Self.validatorChange(proof: prepared.tree.proof(key: Array(GovernanceContract.validatorsKey.utf8)), value: value)))
            }
            try await store.commit(
                block: block, transactions: outcomes, writes: execution.writes, events: execution.events, certificate: certificate?.encoded, meta: meta)
        } catch {
            discard(prepared)
            throw error
        }
        let t3 = DispatchTime.now()
        logger.debug(
            "block committed",
            metadata: [
                "height": "\(header.height)", "transactions": "\(txs.count)",
                "prepareMicros": "\((t2.uptimeNanoseconds - prepared.start.uptimeNanoseconds) / 1000)",
                "commitMicros": "\((t3.uptimeNanoseconds - t2.uptimeNanoseconds) / 1000)",
                "executeMicros": "\((prepared.executed.uptimeNanoseconds - prepared.start.uptimeNanoseconds) / 1000)",
            ])
        if let value = validatorChange, let set = try? Self.validatorSet(value) { validatorChanges.withLock { $0.append((header.height, set)) } }
        stateCache.apply(execution.writes)
        head.withLock { $0 = Head(block: block, state: prepared.tree) }
        let failures = execution.receipts.filter { $0.status == .failed }.count
        committedCounter.increment(by: Int64(txs.count - failures))
        failedCounter.increment(by: Int64(failures))
        blockCounter.increment()
        heightGauge.record(Int64(header.height))
        commitTimer.recordInterval(since: prepared.start)
        if certificate != nil { markFinal(header.height) }
        for (_, hook) in afterCommit.withLock({ $0 }) { hook(header.height, execution.events) }
        events.publish(height: header.height, events: execution.events)
        if !ordering.isSolo { mempool.complete(txs, receipts: execution.receipts) }
        return execution.receipts
    }

    // MARK: finality

    /// The highest final height (a quorum of validators signed it and every block below).
    public var lastFinalHeight: UInt64 { finalHeight.withLock { $0 } }

    package func markFinal(_ height: UInt64) {
        let ready = finalHeight.withLock { h -> [CheckedContinuation<Void, Never>] in
            h = max(h, height)
            return finalWaiters.withLock { waiters in
                let done = waiters.filter { $0.0 <= h }.map(\.2)
                waiters.removeAll { $0.0 <= h }
                return done
            }
        }
        for c in ready { c.resume() }
    }

    /// Waits until `height` is final (or `timeout` passes: answers false).
    public func waitFinal(_ height: UInt64, timeout: Duration = .seconds(30)) async -> Bool {
        if lastFinalHeight >= height { return true }
        let id = UUID()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = finalHeight.withLock { h -> Bool in
                if h >= height { return true }
                finalWaiters.withLock { $0.append((height, id, c)) }
                return false
            }
            if now { return c.resume() }
            Task {
                try? await Task.sleep(for: timeout)
                let late = finalWaiters.withLock { w -> CheckedContinuation<Void, Never>? in
                    guard let i = w.firstIndex(where: { $0.1 == id }) else { return nil }
                    return w.remove(at: i).2
                }
                late?.resume()
            }
        }
        return lastFinalHeight >= height
    }

    /// The stored quorum certificate of a block.
    public func certificate(height: UInt64) throws -> QuorumCertificate? {
        try store.certificate(height: height).map { try QuorumCertificate(encoded: $0) }
    }

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

    /// Keeps misbehaviour evidence (a refused proposal, an equivocation, a fork) and raises the alarm:
    /// an error in the log and `careledger_alarms_total`.
    package func alarm(height: UInt64, validator: String, kind: String, detail: String, first: [UInt8]?, second: [UInt8]?) {
        let evidence = BlockStore.Evidence(
            height: height, validator: validator, kind: kind, detail: detail, first: first, second: second, timeMillis: clock())
        let fresh = (try? store.addEvidence(evidence)) ?? true
        guard fresh else { return }
        alarmCounter.increment()
        logger.error("alarm: \(kind)", metadata: ["height": "\(height)", "validator": "\(validator)", "detail": "\(detail)"])
    }

    /// The did of the node that leads block proposal now (this node in solo ordering; nil when none leads).
    public func orderingLeader() async throws -> String? { try await ordering.leader(self) }

    package func sign(_ message: [UInt8]) -> [UInt8] { key.signature(for: message) }
    package func vote(for header: BlockHeader) -> BlockVote { BlockVote(header: header, signer: key, origin: genesis.origin) }

    /// The checkpoint of the last final block, cosigned by the validators of its quorum certificate.
    public func finalCheckpoint() throws -> String {
        let height = lastFinalHeight
        guard let block = try store.block(height: height), let certificate = try certificate(height: height) else {
            throw LedgerError("not_found", "no certified block yet")
        }
        return try certificate.cosignedCheckpoint(header: block.header, origin: genesis.origin)
    }

    /// The validators' C2SP verifier keys (the key name is the log origin).
    public var validatorVKeys: [String] { validators.compactMap { try? NoteVerifier(name: genesis.noteKeyName, publicKey: $0).vkey } }
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

/// A block's writes over the committed state: what the next block reads while that one commits.
struct OverlayState: StateReader {
    let base: StateCache
    let writes: [String: [UInt8]?]

    init(base: StateCache, writes: [(key: String, value: [UInt8]?)]) {
        self.base = base
        self.writes = Dictionary(writes.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    func value(forKey key: String) -> [UInt8]? {
        if let written = writes[key] { return written }
        return base.value(forKey: key)
    }
}

/// Committed state values in memory (the store holds the same rows durably).
final class StateCache: StateReader {
    private let values: Mutex<[String: [UInt8]]>

    init(_ values: [String: [UInt8]]) { self.values = Mutex(values) }

    func value(forKey key: String) -> [UInt8]? { values.withLock { $0[key] } }

    var all: [String: [UInt8]] { values.withLock { $0 } }

    func apply(_ writes: [(key: String, value: [UInt8]?)]) {
        values.withLock { v in for w in writes { v[w.key] = w.value } }
    }
}

/// An exclusive advisory lock (flock) on a file in the data directory, released when the node is
/// released or the process ends (even on SIGKILL).
final class DirectoryLock: Sendable {
    private let fd: Mutex<Int32>

    init(path: String) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LedgerError("io_error", "cannot open \(path)") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw LedgerError("data_locked", "another node is running on this data directory (\(path) is locked)")
        }
        self.fd = Mutex(fd)
    }

    func release() {
        fd.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    deinit { release() }
}
