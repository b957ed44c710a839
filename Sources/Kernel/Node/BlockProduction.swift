import ContractKit
import Foundation
import LedgerCore
import Logging
import Metrics
import Store
import Synchronization

/// Block production: run the ordering, prepare (execute) a block, commit it.
extension LedgerNode {
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
}
