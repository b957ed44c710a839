import Foundation
import LedgerCore
import Node
import Logging
import Store
import Synchronization

/// Applying: every node checks and executes every decided slot, in slot order.
extension EtcdOrderer {
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
    func catchUpPastFloor() async throws {
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

    func advance(to slot: UInt64) { appliedSlot.withLock { $0 = max($0, slot) } }

    func refuse(slot: UInt64, height: UInt64, validator: String, kind: String, detail: String, first: [UInt8], second: [UInt8]? = nil) {
        advance(to: slot)
        node.alarm(height: height, validator: validator, kind: kind, detail: "slot \(slot): \(detail)", first: first, second: second)
    }
}
