import Foundation
import LedgerCore
import Node
import Logging
import Store
import Synchronization

/// Votes and finality: each validator votes for the blocks it executed; a quorum makes a block final.
extension EtcdOrderer {
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

    /// When finality made no progress for a whole `interval` while committed heights wait: reads the
    /// votes above the final height back from etcd and publishes this validator's own votes again. A
    /// vote whose publication failed (etcd unreachable through every retry), that this node dropped (it
    /// did not know the signer's validator set yet) or that a stalled watch never delivered would
    /// otherwise hold that height back for good. A put of the same vote is idempotent; while finality
    /// stays stalled (other validators down) the wait doubles, up to 30 s.
    func republishLoop(interval: Duration = .seconds(2)) async {
        var lastSeen = node.lastFinalHeight, wait = interval
        while !Task.isCancelled {
            try? await Task.sleep(for: wait)
            let final = node.lastFinalHeight, head = node.height
            guard final == lastSeen, head > final else {
                lastSeen = final
                wait = interval
                continue
            }
            if let (kvs, _) = try? await client.range(from: votesPrefix + EtcdBlockLog.padded(final + 1), withinPrefix: votesPrefix, limit: 1024) {
                for kv in kvs { if let vote = try? BlockVote(encoded: kv.value) { record(vote) } }
            }
            let mine = votes.withLock { all in (final + 1...min(head, final + 64)).compactMap { all[$0]?[node.publicKey] } }
            if mine.isEmpty || node.lastFinalHeight > final { continue }
            if wait == interval {
                logger.info("finality stalled; publishing this validator's votes again", metadata: ["from": "\(final + 1)", "votes": "\(mine.count)"])
            }
            for vote in mine {
                if Task.isCancelled { return }
                _ = try? await client.put(voteKey(vote), vote.encoded)
            }
            wait = min(wait * 2, .seconds(30))
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
            // Votes taken in before this node knew of a validator-set change count only if their
            // signer validates this height.
            let validators = Set(node.validators(forHeight: height))
            let quorum = Quorum.size(validators: validators.count)
            let groups = Dictionary(grouping: heightVotes.filter { validators.contains($0.validator) }, by: \.blockHash)
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
