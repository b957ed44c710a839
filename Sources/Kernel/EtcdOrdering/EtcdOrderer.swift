import Foundation
import LedgerCore
import Node
import Logging
import Store
import Synchronization

/// Orders a consortium node's blocks through etcd and certifies them.
///
/// Keys under `/careledger/<chain id>/`:
/// - `queue/<time><node>…`: batches of admitted transactions each node forwards (one value per batch);
/// - `blocks/<slot>`: the decided proposals, one per slot, written with a compare-and-swap that only
///   succeeds while the slot is free (`EtcdBlockLog`); the valid proposals, in slot order, are the chain;
/// - `leader`: the elected proposer, held with a lease (`EtcdElection`);
/// - `votes/<height>/<validator>/<block hash>`: each validator's signed vote for the block it executed.
///
/// Every node applies every decided slot: it checks the proposer's signature and validator membership,
/// the link to its head, every transaction's signature, re-executes the block and accepts it only when
/// it computes exactly the proposed header (state root, log root…). A slot that fails any check is
/// skipped by every honest node alike (the checks are deterministic) and kept as evidence. A block is
/// final when a quorum of validators voted for it; the quorum certificate is stored with the block.
final class EtcdOrderer: Sendable {
    let node: LedgerNode
    let client: EtcdClient
    let slots: EtcdBlockLog
    let election: EtcdElection
    let prefix: String
    let me: String
    private let appliedSlot: Mutex<UInt64>
    /// Whether the head is exactly what applying the slots up to `appliedSlot` in order gives. It is
    /// not after catching up from peers or starting from a snapshot: then a proposal for a height past
    /// the next one means blocks are still missing here (retry), not that the proposal is invalid.
    private let exact: Mutex<Bool>
    /// Read etcd's compaction floor on the next catch-up (at start, and after a lost proposal).
    private let checkFloor = Mutex(true)
    /// The floor key was created (or found) by an earlier proposal of this node.
    private let floorExists = Mutex(false)
    /// This node decided the last slot it knows of: its next proposal need not read the slots first
    /// (a slot decided meanwhile by another leader makes that proposal's compare-and-swap fail, and
    /// the one after reads them).
    private let decidedLast = Mutex(false)
    private let votes = Mutex<[UInt64: [PublicKey: BlockVote]]>([:])
    private let lastCertificate = Mutex<(height: UInt64, certificate: QuorumCertificate)?>(nil)
    private let sequence = Atomic<UInt64>(0)
    private let logger: Logger

    static let slotMetaKey = "etcd.slot"

    init(node: LedgerNode, client: EtcdClient) {
        self.node = node
        self.client = client
        slots = EtcdBlockLog(client: client, chainID: node.genesis.chainID)
        election = EtcdElection(client: EtcdClient(endpoints: client.endpoints, timeout: .seconds(2)), chainID: node.genesis.chainID, ttlSeconds: 3)
        prefix = "/careledger/\(node.genesis.chainID)/"
        me = node.publicKey.did
        let stored = (try? node.store.meta(Self.slotMetaKey)).flatMap { UInt64(String(decoding: $0, as: UTF8.self)) } ?? 0
        appliedSlot = Mutex(stored)
        exact = Mutex(!(stored == 0 && ((try? node.store.firstHeight()) ?? 0) > 0))
        logger = node.logger
    }

    var queuePrefix: String { prefix + "queue/" }
    var votesPrefix: String { prefix + "votes/" }

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.forwardLoop() }
            group.addTask { await self.applyLoop() }
            group.addTask { await self.voteLoop() }
            group.addTask { await self.leaderLoop() }
            await group.waitForAll()
        }
    }

    // MARK: forwarding admitted transactions

    /// Sends the node's admitted transactions to the ordering queue; retries until etcd takes them.
    func forwardLoop() async {
        while !Task.isCancelled {
            let batch = await node.nextForwardBatch()
            if batch.isEmpty { continue }
            for chunk in Self.chunks(batch, maxBytes: node.configuration.maxProposalBytes) {
                var w = BinaryWriter(capacity: chunk.reduce(16) { $0 + $1.encoded.count + 3 })
                w.writeVarint(UInt64(chunk.count))
                for tx in chunk { w.writeBytes(tx.encoded) }
                let key = queuePrefix + EtcdBlockLog.padded(node.now) + "-" + String(node.publicKey.did.suffix(8)) + "-"
                    + EtcdBlockLog.padded(sequence.add(1, ordering: .relaxed).newValue)
                while !Task.isCancelled {
                    do {
                        try await client.put(key, w.bytes)
                        break
                    } catch {
                        logger.warning("cannot forward transactions to etcd; retrying", metadata: ["error": "\(error)"])
                        try? await Task.sleep(for: .milliseconds(200))
                    }
                }
            }
        }
    }

    static func chunks(_ txs: [Transaction], maxBytes: Int) -> [[Transaction]] {
        var out: [[Transaction]] = [[]]
        var size = 0
        for tx in txs {
            if size + tx.encoded.count > maxBytes && !out[out.count - 1].isEmpty {
                out.append([])
                size = 0
            }
            out[out.count - 1].append(tx)
            size += tx.encoded.count
        }
        return out
    }

    static func decodeBatch(_ bytes: [UInt8]) -> [Transaction] {
        var r = BinaryReader(bytes)
        guard let count = try? r.readVarint(), count <= 1 << 20 else { return [] }
        var txs: [Transaction] = []
        for _ in 0..<count {
            guard let raw = try? r.readBytes(limit: 1 << 20), let tx = try? Transaction(encoded: raw) else { return txs }
            txs.append(tx)
        }
        return txs
    }

    // MARK: applying decided slots

    func applyLoop() async {
        while !Task.isCancelled {
            do {
                let revision = try await catchUp()
                for try await decided in slots.watch(fromRevision: revision + 1) {
                    // The watch carries the decided proposals: apply them from it when they are the next
                    // slots (no second read of the same bytes); anything else goes through a range read.
                    await node.commitLock.lock()
                    defer { node.commitLock.unlock() }
                    for (slot, entry) in decided.sorted(by: { $0.height < $1.height }) {
                        let next = appliedSlot.withLock { $0 } + 1
                        if slot < next { continue }
                        if slot == next {
                            try await apply(slot: slot, entry: entry)
                        } else {
                            _ = try await catchUpLocked()
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("etcd watch of decided blocks failed; re-reading", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(300))
            }
        }
    }

    /// Applies every decided slot after the last applied one, in order; answers the etcd revision read at.
    @discardableResult
    func catchUp() async throws -> Int64 {
        await node.commitLock.lock()
        defer { node.commitLock.unlock() }
        return try await catchUpLocked()
    }

    /// `catchUp` with the node's commit lock already held.
    func catchUpLocked() async throws -> Int64 {
        var revision: Int64 = 0
        // Slots are decided one after the other, so a hole before the first one etcd returns means
        // compaction; the floor is read then (and once at start, or after a lost proposal), not per block.
        if checkFloor.withLock({ $0 }) { try await catchUpPastFloor() }
        while true {
            let from = appliedSlot.withLock { $0 } + 1
            let (entries, rev) = try await slots.entries(from: from, limit: 32)
            revision = rev
            if entries.isEmpty { return revision }
            if let first = entries.first, first.height > from {
                try await catchUpPastFloor()
                continue
            }
            for (slot, entry) in entries where slot >= from {
                try await apply(slot: slot, entry: entry)
            }
        }
    }

    /// Slots at or below etcd's floor were compacted away: what this node lacks from them comes from peers.
    private func catchUpPastFloor() async throws {
        if let floorText = try await client.get(slots.floorKey).map({ String(decoding: $0.value, as: UTF8.self) }), let floor = UInt64(floorText),
            floor > appliedSlot.withLock({ $0 })
        {
            let synced = try await syncFromPeers()
            logger.info("caught up from peers past compacted etcd history", metadata: ["blocks": "\(synced)", "height": "\(node.height)"])
            advance(to: floor)
            exact.withLock { $0 = false }
            try node.store.setMeta(Self.slotMetaKey, Array(String(floor).utf8))
        }
        checkFloor.withLock { $0 = false }
    }

    /// Applies or skips one decided slot (the commit lock is held).
    func apply(slot: UInt64, entry: [UInt8]) async throws {
        let proposal: BlockProposal
        do {
            proposal = try BlockProposal(encoded: entry)
        } catch {
            refuse(slot: slot, height: node.height + 1, validator: "unknown", kind: "invalid_proposal", detail: "undecodable: \(error)", first: entry)
            return
        }
        var outcome = try await node.applyProposal(proposal, meta: [(Self.slotMetaKey, Array(String(slot).utf8))])
        if case .gap = outcome {
            // Blocks before this one are missing here: fetch them from peers, then try again.
            _ = try? await syncFromPeers()
            outcome = try await node.applyProposal(proposal, meta: [(Self.slotMetaKey, Array(String(slot).utf8))])
        }
        if case .gap = outcome, !exact.withLock({ $0 }) {
            // Behind after a catch-up: the blocks before it are not final at the peers yet. Not a bad
            // proposal; try again later rather than skip a slot the others applied.
            throw LedgerError("behind", "slot \(slot) is for height \(proposal.header.height); this node is at \(node.height) and its peers do not serve the blocks between yet")
        }
        switch outcome {
        case .committed(let header):
            advance(to: slot)
            exact.withLock { $0 = true }
            await castVote(header)
        case .alreadyCommitted:
            advance(to: slot)
        case .refused(let kind, let detail, let other):
            refuse(
                slot: slot, height: proposal.header.height, validator: proposal.header.proposer.did, kind: kind, detail: detail, first: entry,
                second: other)
        case .gap(let height):
            refuse(
                slot: slot, height: height, validator: proposal.header.proposer.did, kind: "invalid_proposal",
                detail: "for height \(height) while this node is at \(node.height) and no peer serves the blocks between",
                first: entry)
        }
    }

    /// Blocks from the configured peers; votes for the blocks synced are not cast (they are final already).
    func syncFromPeers() async throws -> Int {
        let peers = node.configuration.peers
        guard !peers.isEmpty else {
            throw LedgerError("behind_compacted_history", "this node needs blocks etcd no longer holds: give it peers (--peer URL)")
        }
        return try await node.syncFromPeers(peers)
    }

    private func advance(to slot: UInt64) { appliedSlot.withLock { $0 = max($0, slot) } }

    private func refuse(slot: UInt64, height: UInt64, validator: String, kind: String, detail: String, first: [UInt8], second: [UInt8]? = nil) {
        advance(to: slot)
        node.alarm(height: height, validator: validator, kind: kind, detail: "slot \(slot): \(detail)", first: first, second: second)
    }

    // MARK: leading

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
    private func waitForQueueWrite(after revision: Int64, atMost limit: Duration) async {
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
        async let vote: Void = castVote(prepared.header)
        try await deleteQueued(consumed)
        await vote
        if slot % UInt64(node.configuration.etcdCompactEvery) == 0 { await compact() }
        return nil
    }

    private func deleteQueued(_ keys: [String]) async throws {
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
            logger.warning("etcd compaction failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: votes and finality

    func voteKey(_ vote: BlockVote) -> String {
        votesPrefix + EtcdBlockLog.padded(vote.height) + "/" + vote.validator.did + "/" + vote.blockHash.hex
    }

    /// Signs and publishes this validator's vote for a block it committed.
    func castVote(_ header: BlockHeader) async {
        guard node.isValidator else { return tryFinalize() }
        let vote = node.vote(for: header)
        record(vote)
        for attempt in 0..<20 {
            do {
                try await client.put(voteKey(vote), vote.encoded)
                return
            } catch {
                if Task.isCancelled { return }
                logger.warning("cannot publish a vote; retrying", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    func voteLoop() async {
        while !Task.isCancelled {
            do {
                // Votes of the last final heights too (etcd keeps them a while): one cast while this node
                // was down is checked against the certificates it stored.
                let final = node.lastFinalHeight
                let from = final + 1 - min(final, Self.recheckedFinalHeights)
                let (kvs, revision) = try await client.range(from: votesPrefix + EtcdBlockLog.padded(from), withinPrefix: votesPrefix)
                for kv in kvs { if let vote = try? BlockVote(encoded: kv.value) { record(vote) } }
                for try await events in client.watch(prefix: votesPrefix, fromRevision: revision + 1) {
                    for e in events where e.kind == .put { if let vote = try? BlockVote(encoded: e.kv.value) { record(vote) } }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("etcd watch of votes failed; re-reading", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(300))
            }
        }
    }

    /// Takes a vote in: invalid ones are ignored, a second different vote of one validator at one height
    /// is kept as equivocation evidence; then any height with a quorum becomes final.
    func record(_ vote: BlockVote) {
        guard vote.chainID == node.genesis.chainID, node.validators(forHeight: vote.height).contains(vote.validator), vote.isSignatureValid else { return }
        var conflict: BlockVote? = votes.withLock { all in
            if let earlier = all[vote.height]?[vote.validator] {
                return earlier.blockHash == vote.blockHash ? nil : earlier
            }
            all[vote.height, default: [:]][vote.validator] = vote
            return nil
        }
        if conflict == nil { conflict = certifiedVote(conflictingWith: vote) }
        if let conflict {
            node.alarm(
                height: vote.height, validator: vote.validator.did, kind: "equivocation",
                detail: "two votes at height \(vote.height): \(conflict.blockHash.hex) and \(vote.blockHash.hex)", first: conflict.encoded,
                second: vote.encoded)
            return
        }
        // A vote for a final height (late, or read back at start) changes no height's finality.
        if vote.height > node.lastFinalHeight { tryFinalize() }
    }

    /// The validator's vote in the stored quorum certificate of a final height, when `vote` is for
    /// another block. Votes of final heights leave memory (after 1,000 heights, or a restart) and etcd
    /// (compaction); the certificate stays with the block, so a second vote is still caught.
    func certifiedVote(conflictingWith vote: BlockVote) -> BlockVote? {
        guard vote.height <= node.lastFinalHeight else { return nil }
        // Votes come in key order (by height): the last certificate read is kept for the next vote.
        let cached = lastCertificate.withLock { $0?.height == vote.height ? $0?.certificate : nil }
        guard let certificate = cached ?? (try? node.certificate(height: vote.height)) else { return nil }
        if cached == nil { lastCertificate.withLock { $0 = (vote.height, certificate) } }
        guard let signed = certificate.votes.first(where: { $0.validator == vote.validator }), signed.blockHash != vote.blockHash else { return nil }
        return signed
    }

    /// Final heights whose votes a node reads back from etcd when it starts.
    static let recheckedFinalHeights: UInt64 = 1_000

    /// Makes final every committed height whose block has a quorum of votes (its certificate stored).
    func tryFinalize() {
        let head = node.height, final = node.lastFinalHeight
        guard head > final else { return }
        let candidates: [(UInt64, [BlockVote])] = votes.withLock { all in
            all.keys.filter { $0 > final && $0 <= head }.sorted().map { ($0, Array(all[$0]!.values)) }
        }
        var certified: [(UInt64, QuorumCertificate)] = []
        for (height, heightVotes) in candidates {
            guard let block = try? node.store.block(height: height) else { continue }
            let hash = block.header.hash
            let quorum = Quorum.size(validators: node.validators(forHeight: height).count)
            let groups = Dictionary(grouping: heightVotes, by: \.blockHash)
            if let (other, _) = groups.first(where: { $0.key != hash && $0.value.count >= quorum }) {
                node.alarm(
                    height: height, validator: me, kind: "fork",
                    detail: "a quorum signed block \(other.hex) at height \(height); this node committed \(hash.hex)", first: nil, second: nil)
                continue
            }
            let forMine = groups[hash] ?? []
            if forMine.count >= quorum { certified.append((height, QuorumCertificate(votes: Array(forMine.prefix(quorum))))) }
        }
        guard let top = certified.last?.0 else { return }
        votes.withLock { all in for h in all.keys where h + 1000 < top { all[h] = nil } }
        let node = self.node
        Task {
            do {
                for (height, certificate) in certified { try await node.store.saveCertificate(height: height, certificate.encoded) }
                node.markFinal(top)
            } catch {
                node.logger.error("cannot store a quorum certificate", metadata: ["height": "\(top)", "error": "\(error)"])
            }
        }
    }
}
