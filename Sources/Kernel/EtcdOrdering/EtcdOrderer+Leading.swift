import Foundation
import LedgerCore
import Node
import Logging
import Store
import Synchronization

/// Leading: the elected leader proposes the next block from the queue.
extension EtcdOrderer {
    /// Competes for the proposer role; while holding it, cuts blocks from the queue and proposes them.
    func leaderLoop() async {
        while !Task.isCancelled {
            // Only a validator proposes (governance may add or remove this node while it runs).
            guard node.isValidator, let lease = try? await election.tryLead(as: me) else {
                try? await Task.sleep(for: .milliseconds(500))
                continue
            }
            logger.info("leading block proposal", metadata: ["node": "\(me)"])
            let leading = Atomic<Bool>(true)
            let election = self.election
            let renewer = Task {
                // The role is given up only when etcd says the lease expired, or when no renewal got
                // through for a whole TTL (etcd extends leases across its own leader elections).
                var lastRenewal = ContinuousClock.now
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(500))
                    do {
                        if try await election.renew(lease: lease) {
                            lastRenewal = .now
                            continue
                        }
                    } catch {
                        if ContinuousClock.now - lastRenewal < .seconds(election.ttlSeconds) { continue }
                    }
                    leading.store(false, ordering: .relaxed)
                    return
                }
            }
            decidedLast.withLock { $0 = false }
            while !Task.isCancelled && leading.load(ordering: .relaxed) && node.isValidator {
                do {
                    if let revision = try await proposeOnce() {
                        // Nothing queued: wait for a queue write, at most 100 ms (the lease is watched meanwhile).
                        await waitForQueueWrite(after: revision, atMost: .milliseconds(100))
                    }
                } catch {
                    if Task.isCancelled { break }  // the node is stopping: not a failure
                    logger.warning("block proposal failed", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
            renewer.cancel()
            if Task.isCancelled { try? await election.resign(lease: lease) }
            logger.info("no longer leading", metadata: ["node": "\(me)"])
        }
    }

    /// Waits until a transaction batch is queued after `revision` (a queue read that found none), or
    /// `limit`. The watch is opened only then: a busy leader finds the queue full at every read, and a
    /// watch kept open would hand it every queued batch (megabytes of JSON) a second time for nothing.
    func waitForQueueWrite(after revision: Int64, atMost limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [client, queuePrefix] in
                do {
                    for try await _ in client.watch(prefix: queuePrefix, fromRevision: revision + 1) { return }
                } catch {
                    try? await Task.sleep(for: limit)  // etcd unreachable or compacted: no busy loop
                }
            }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Cuts one block from the queued transactions and proposes it for the next slot; answers the
    /// revision of the queue read when there was nothing to propose, nil otherwise.
    func proposeOnce() async throws -> Int64? {
        // The queue is read a few batches at a time: a proposal takes at most `maxProposalBytes`, and
        // a read of the whole queue each time read again and again what later proposals take.
        let page = 8
        var (queued, queueRevision) = try await client.range(prefix: queuePrefix, limit: page)
        if queued.isEmpty { return queueRevision }
        await node.commitLock.lock()
        var locked = true
        defer { if locked { node.commitLock.unlock() } }
        if !decidedLast.withLock({ $0 }) { _ = try await catchUpLocked() }
        decidedLast.withLock { $0 = false }
        let limit = node.configuration.maxBlockTransactions, maxBytes = node.configuration.maxProposalBytes
        var chosen: [Transaction] = []
        var consumed: [String] = []
        var seen: Set<NonceKey> = []
        var bytes = 0
        reading: while true {
            for kv in queued {
                let txs = Self.decodeBatch(kv.value)
                if !chosen.isEmpty && (chosen.count + txs.count > limit || bytes + kv.value.count > maxBytes) { break reading }
                consumed.append(kv.key)
                bytes += kv.value.count
                for tx in txs where !node.isCommitted(tx) && seen.insert(NonceKey(tx.author, tx.nonce)).inserted { chosen.append(tx) }
            }
            guard queued.count == page, let last = queued.last else { break }
            queued = try await client.range(from: last.key + "\u{0}", withinPrefix: queuePrefix, limit: page).kvs
        }
        // Whatever a faulty node queued with a bad signature or for another chain is dropped here.
        let bad = Set(await node.badTransactions(chosen).map(\.0.id))
        if !bad.isEmpty { chosen.removeAll { bad.contains($0.id) } }
        if chosen.isEmpty {
            try await deleteQueued(consumed)
            return nil
        }
        let prepared = node.prepare(chosen, timeMillis: nil, proposer: node.publicKey)
        let signature = node.sign(prepared.header.encoded)
        let proposal = BlockProposal(header: prepared.header, signature: signature, transactions: chosen.map(\.encoded))
        let slot = appliedSlot.withLock { $0 } + 1
        let won: Bool
        do {
            won = try await slots.propose(height: slot, entry: proposal.encoded, floorExists: floorExists.withLock { $0 })
            floorExists.withLock { $0 = true }
        } catch {
            node.discard(prepared)
            throw error
        }
        guard won else {
            node.discard(prepared)
            checkFloor.withLock { $0 = true }
            return nil
        }
        try await node.commit(prepared, signature: signature, certificate: nil, meta: [(Self.slotMetaKey, Array(String(slot).utf8))])
        advance(to: slot)
        decidedLast.withLock { $0 = true }
        locked = false
        node.commitLock.unlock()
        // The vote and the queue's clean-up are independent round trips to etcd.
        // The vote is awaited even when the clean-up fails: leaving it un-awaited would cancel it, and
        // a vote never published holds back finality of this height at every node.
        async let vote: Void = castVote(prepared.header)
        do {
            try await deleteQueued(consumed)
        } catch {
            await vote
            throw error
        }
        await vote
        if slot % UInt64(node.configuration.etcdCompactEvery) == 0 { await compact() }
        return nil
    }

    func deleteQueued(_ keys: [String]) async throws {
        for start in stride(from: 0, to: keys.count, by: 100) { try await client.delete(keys: Array(keys[start..<min(start + 100, keys.count)])) }
    }

    /// Keeps etcd small: slots far behind (every node has them in its store; a node further behind syncs
    /// from a peer) and votes of long-final heights go, then the history is compacted.
    func compact() async {
        let slot = appliedSlot.withLock { $0 }, final = node.lastFinalHeight
        do {
            let retain = UInt64(node.configuration.etcdRetainSlots)
            if final > retain { try await client.deleteRange(from: votesPrefix, to: votesPrefix + EtcdBlockLog.padded(final - retain)) }
            if slot > retain + 1 { try await slots.compact(keepingFrom: slot - retain) }
        } catch {
            if Task.isCancelled { return }
            logger.warning("etcd compaction failed", metadata: ["error": "\(error)"])
        }
    }
}
