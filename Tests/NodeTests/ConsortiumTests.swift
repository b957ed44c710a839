import Composition
import EtcdOrdering
import Foundation
import LedgerCore
import LedgerTesting
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import ContractKit
import Node
import Server
import Standards
import Store
import Synchronization
import Testing

/// The consortium network: blocks ordered through etcd, executed and certified by every
/// organisation's validator, forged blocks refused, equivocation kept as evidence, a stopped node catching up.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ConsortiumTests {
    /// Transactions sent to any node end up in the same blocks on every node; each block gets a quorum
    /// certificate of the validators' votes that verifies offline.
    @Test func fourValidatorsAgreeAndFinalise() async throws {
        try await withNetwork(nodes: 4, contracts: .careLedger, capabilities: HostedCapabilities.careLedger) { net in
            let alice = SigningKey()
            let receipts = try await withThrowingTaskGroup(of: [Receipt].self) { group in
                for i in 0..<4 {
                    group.addTask { try await net.node(i).submit((0..<25).map { try net.tx(alice, i * 100 + $0) }) }
                }
                var all: [Receipt] = []
                for try await r in group { all += r }
                return all
        }
        #expect(receipts.count == 100)
        #expect(receipts.allSatisfy { $0.status == .committed })
        let top = receipts.map(\.height).max()!
        for node in net.running { #expect(await node.waitFinal(top, timeout: .seconds(30)), "node \(node.publicKey.did) did not finalise \(top)") }

        // The same chain everywhere, block by block, with the same leaf for every transaction.
        let reference = net.node(0)
        for h in 1...top {
            let hash = try reference.store.block(height: h)!.header.hash
            for node in net.running { #expect(try node.store.block(height: h)?.header.hash == hash, "height \(h)") }
        }
        for r in receipts {
            for node in net.running { #expect(try node.store.transaction(id: r.transactionID)?.leafIndex == r.leafIndex) }
        }
        // The certificate of the top block: a quorum (3 of 4) of validator votes, checkable with the genesis alone.
        #expect(net.genesis.quorum == 3)
        let header = try reference.store.block(height: top)!.header
        let certificate = try #require(try reference.certificate(height: top))
        try certificate.verify(header: header, validators: net.genesis.validators)
        #expect(certificate.votes.count >= 3)
        // The final checkpoint is a C2SP note cosigned by the quorum: it verifies with the validators' vkeys
        // (here, from genesis), offline.
        let finalNote = try reference.finalCheckpoint()
        let vkeys = try net.genesis.validators.map { try NoteVerifier(name: net.genesis.origin, publicKey: $0) }
        #expect(try SignedNote(finalNote).verify(quorum: 3, of: vkeys) == 3)
        #expect(throws: LedgerError.code("no_quorum")) { try SignedNote(finalNote).verify(quorum: 4, of: vkeys) }
        let finalCheckpoint = try Checkpoint.verify(note: finalNote, verifier: vkeys.first { v in (try? SignedNote(finalNote).verify(v)) != nil }!)
        #expect(finalCheckpoint.size == (try reference.store.block(height: reference.lastFinalHeight)!.header.logSize))
        let forgedNote = finalNote.replacingOccurrences(of: "\n\(finalCheckpoint.size)\n", with: "\n\(finalCheckpoint.size + 1)\n")
        #expect(throws: LedgerError.self) { try SignedNote(forgedNote).verify(quorum: 1, of: vkeys) }
        // Tampering with a vote breaks the certificate.
        let short = QuorumCertificate(votes: Array(certificate.votes.prefix(2)))
        #expect(throws: LedgerError.code("bad_certificate")) { try short.verify(header: header, validators: net.genesis.validators) }
        // A replayed transaction is refused by every node.
        await #expect(throws: LedgerError.code("replayed_nonce")) { try await net.node(2).submit(try net.tx(alice, 0)) }
        // Two different transactions with one (author, nonce) sent to two nodes at once: one commits,
        // the other is answered replayed_nonce (it never hangs).
        let bob = SigningKey()
        let pair = [
            (net.node(0), try notaryTx(bob, nonce: 7, document: "first", chain: net.chainID)),
            (net.node(1), try notaryTx(bob, nonce: 7, document: "second", chain: net.chainID)),
        ]
        let outcomes: [String] = try await withDeadline(seconds: 30) {
            await withTaskGroup(of: String.self) { group in
                for (node, tx) in pair {
                    group.addTask {
                        do { return try await node.submit(tx).status == .committed ? "committed" : "failed" } catch let e as LedgerError { return e.code } catch { return "\(error)" }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(outcomes.sorted() == ["committed", "replayed_nonce"])
        }
    }

    /// Proposals that are not a validator's, badly signed, or with a state root the nodes do not compute
    /// are refused by every node and kept as evidence, and the chain goes on; a validator that votes for
    /// two blocks at one height is caught.
    @Test func forgedBlocksAreRefusedAndEquivocationDetected() async throws {
        try await withNetwork(nodes: 4, contracts: .careLedger, capabilities: HostedCapabilities.careLedger) { net in
            let alice = SigningKey()
            let first = try await net.node(0).submit(try net.tx(alice, 1))
            for node in net.running { #expect(await node.waitFinal(first.height), "\(node.publicKey.did.suffix(6)): final \(node.lastFinalHeight), head \(node.height), waited for \(first.height)") }

            let slots = EtcdBlockLog(client: net.etcd.client, chainID: net.chainID)
            func nextSlot() async throws -> UInt64 { (try await slots.entries(from: 1).entries.map(\.height).max() ?? 0) + 1 }
            let head = net.node(0).latestBlock.header
            func header(proposer: PublicKey, stateRoot: Hash) -> BlockHeader {
                BlockHeader(
                    chainID: net.chainID, height: head.height + 1, previousHash: head.hash, timeMillis: head.timeMillis + 1, logSize: head.logSize,
                    logRoot: head.logRoot, stateRoot: stateRoot, transactionCount: 0, transactionsHash: BlockHeader.transactionsHash([]),
                    proposer: proposer)
        }
        let outsider = SigningKey()
        let validator3 = try net.key(3)
        // 1. Proposed by a key that is not a validator.
        let h1 = header(proposer: outsider.publicKey, stateRoot: head.stateRoot)
        #expect(try await slots.propose(height: try await nextSlot(), entry: BlockProposal(header: h1, signature: outsider.signature(for: h1.encoded), transactions: []).encoded))
        // 2. Claims a validator as proposer but is signed by someone else.
        let h2 = header(proposer: validator3.publicKey, stateRoot: head.stateRoot)
        #expect(try await slots.propose(height: try await nextSlot(), entry: BlockProposal(header: h2, signature: outsider.signature(for: h2.encoded), transactions: []).encoded))
        // 3. Really signed by validator 3, but with a state root no honest node computes.
        let h3 = header(proposer: validator3.publicKey, stateRoot: Hash.sha256(Array("forged".utf8)))
        #expect(try await slots.propose(height: try await nextSlot(), entry: BlockProposal(header: h3, signature: validator3.signature(for: h3.encoded), transactions: []).encoded))

        // The chain goes on past the refused slots, with the same blocks everywhere.
        let second = try await net.node(1).submit(try net.tx(alice, 2))
        #expect(second.height == head.height + 1)
        for node in net.running {
            #expect(await node.waitFinal(second.height))
            #expect(try node.store.block(height: second.height)?.header.hash == net.node(1).store.block(height: second.height)?.header.hash)
            #expect(try node.store.block(height: second.height)?.header.stateRoot != h3.stateRoot)
        }
        for node in net.running {
            try await eventually("evidence of the three forged proposals") {
                let kinds = Set(try node.store.evidence().map(\.kind))
                return kinds.isSuperset(of: ["invalid_proposal", "bad_signature", "state_mismatch"])
            }
            let mismatch = try #require(try node.store.evidence().first { $0.kind == "state_mismatch" })
            #expect(mismatch.validator == validator3.publicKey.did)
        }
        // Each piece of evidence raised the alarm once on each node (the metric operators watch).
        for i in net.directories.indices { #expect(net.alarms(i) >= 3, "node \(i) raised \(net.alarms(i)) alarms") }

        // Block equivocation: the proposer of a committed block signs another block for the same height.
        let committed = try net.node(0).store.block(height: second.height)!.header
        let proposerIndex = try #require(try net.directories.indices.first { try net.key($0).publicKey == committed.proposer })
        let proposerKey = try net.key(proposerIndex)
        let twin = BlockHeader(
            chainID: committed.chainID, height: committed.height, previousHash: committed.previousHash, timeMillis: committed.timeMillis + 5,
            logSize: committed.logSize, logRoot: committed.logRoot, stateRoot: committed.stateRoot, transactionCount: committed.transactionCount,
            transactionsHash: committed.transactionsHash, proposer: committed.proposer)
        let raws = try net.node(0).store.transactions(of: net.node(0).store.block(height: second.height)!).map(\.transaction.encoded)
        #expect(try await slots.propose(height: try await nextSlot(), entry: BlockProposal(header: twin, signature: proposerKey.signature(for: twin.encoded), transactions: raws).encoded))
        for node in net.running {
            try await eventually("block equivocation evidence with both signed headers") {
                try node.store.evidence().contains { $0.kind == "block_equivocation" && $0.validator == committed.proposer.did && $0.second != nil }
            }
        }

        // Equivocation: validator 3 also signs a vote for another block at a height it already voted for.
        let other = header(proposer: validator3.publicKey, stateRoot: Hash.sha256(Array("other".utf8)))
        let fake = BlockVote(header: BlockHeader(
            chainID: net.chainID, height: first.height, previousHash: other.previousHash, timeMillis: other.timeMillis, logSize: other.logSize,
            logRoot: other.logRoot, stateRoot: other.stateRoot, transactionCount: 0, transactionsHash: other.transactionsHash, proposer: other.proposer),
            signer: validator3, origin: net.genesis.origin)
        try await net.etcd.client.put(
            "/careledger/\(net.chainID)/votes/\(String(format: "%020llu", first.height))/\(validator3.publicKey.did)/\(fake.blockHash.hex)", fake.encoded)
        for node in net.running {
            try await eventually("equivocation evidence on every node") {
                try node.store.evidence().contains { $0.kind == "equivocation" && $0.validator == validator3.publicKey.did && $0.second != nil }
            }
        }
        // A second vote cast while a node is down: when it starts, the votes of final heights are no
        // longer in its memory; it reads the recent ones back from etcd and checks them against the
        // blocks' stored quorum certificates.
        let restarted = 2
        let certified = try #require(try net.node(restarted).certificate(height: second.height))
        let keys = try net.directories.indices.map { try net.key($0) }
        let signer = try #require(keys.first { key in certified.votes.contains { $0.validator == key.publicKey } })
        let late = BlockVote(header: BlockHeader(
            chainID: net.chainID, height: second.height, previousHash: other.previousHash, timeMillis: other.timeMillis + 1, logSize: other.logSize,
            logRoot: other.logRoot, stateRoot: other.stateRoot, transactionCount: 0, transactionsHash: other.transactionsHash, proposer: other.proposer),
            signer: signer, origin: net.genesis.origin)
        let keptBefore = try net.node(restarted).store.evidence().count
        await net.stop(restarted)
        try await net.etcd.client.put(
            "/careledger/\(net.chainID)/votes/\(String(format: "%020llu", second.height))/\(signer.publicKey.did)/\(late.blockHash.hex)", late.encoded)
        try net.start(restarted)
        try await eventually("equivocation against the stored certificate, after a restart") {
            try net.node(restarted).store.evidence().contains {
                $0.kind == "equivocation" && $0.validator == signer.publicKey.did && $0.height == second.height && ($0.first == late.encoded || $0.second == late.encoded)
            }
        }
        // A vote by a non-validator is ignored (no evidence names it).
        #expect(try net.node(0).store.evidence().allSatisfy { $0.validator != outsider.publicKey.did || $0.kind != "equivocation" })
        // Every piece of evidence a node kept raised its alarm exactly once (the restarted node's
        // metrics count from its restart).
        for i in net.directories.indices {
            #expect(net.alarms(i) == (try net.node(i).store.evidence().count) - (i == restarted ? keptBefore : 0), "node \(i)")
        }
        }
    }

    /// The validator leading block proposal stops: another takes the lease over and the three others
    /// keep finalising (3 of 4 is a quorum). It restarts and catches up, verifying every block. Then the
    /// etcd leader is killed: ordering resumes after the election with nothing lost or applied twice.
    @Test func aStoppedNodeCatchesUpAndOrderingSurvivesTheEtcdLeader() async throws {
        try await withNetwork(nodes: 4, contracts: .careLedger, capabilities: HostedCapabilities.careLedger, etcdMembers: 3) { net in
            let alice = SigningKey()
            _ = try await net.node(0).submit((0..<10).map { try net.tx(alice, $0) })
            // Stop the node that leads block proposal: another validator takes the lease over.
            let leaderDID = try #require(try await net.node(0).orderingLeader())
            let victim = try #require(try net.directories.indices.first { try net.key($0).publicKey.did == leaderDID })
            let others = net.directories.indices.filter { $0 != victim }
            let stoppedAt = ContinuousClock.now
            await net.stop(victim)
            trace("leading node \(victim) stopped")
            var acknowledged = try await net.node(others[0]).submit((0..<20).map { try net.tx(alice, 100 + $0) })
            trace("first commit without the leader after \(ContinuousClock.now - stoppedAt)")
            for round in 1..<5 {
                acknowledged += try await net.node(others[round % 3]).submit((0..<20).map { try net.tx(alice, 100 + round * 20 + $0) })
            }
            let top = acknowledged.map(\.height).max()!
            for i in others { #expect(await net.node(i).waitFinal(top), "node \(i) without node \(victim)") }
            #expect(try await net.node(others[0]).orderingLeader() != leaderDID)
            trace("final without node \(victim)")

            try net.start(victim)
            let caughtUp = net.node(victim)
            try await eventually("node \(victim) catches up to \(top)") { caughtUp.height >= top }
            for h in 1...top { #expect(try caughtUp.store.block(height: h)?.header.hash == net.node(others[0]).store.block(height: h)?.header.hash) }
            trace("node \(victim) caught up")

            // Kill the etcd leader; ordering resumes through the other members.
            let leader = try #require(await net.etcd.cluster.leaderIndex())
            net.etcd.cluster.kill(member: leader)
            trace("etcd leader killed")
            let after = try await net.node(1).submit((0..<20).map { try net.tx(alice, 1000 + $0) })
            acknowledged += after
            trace("committed after the kill")
            let last = after.map(\.height).max()!
            for node in net.running { #expect(await node.waitFinal(last, timeout: .seconds(60)), "\(node.publicKey.did.suffix(6)): final \(node.lastFinalHeight), head \(node.height), waited for \(last)") }
            trace("final after the kill")
            // Every acknowledged transaction is on every node, exactly once, at the same leaf.
            for node in net.running {
                #expect(try node.store.transactionCount() == UInt64(10 + acknowledged.count))
                for r in acknowledged { #expect(try node.store.transaction(id: r.transactionID)?.leafIndex == r.leafIndex) }
            }
        }
        trace("shut down")
    }

    /// A node down while etcd's history was compacted past it catches up from a peer's API, checking
    /// every block's quorum certificate and re-executing it, then follows etcd again.
    @Test func aNodeBehindCompactedHistoryCatchesUpFromPeers() async throws {
        try await withNetwork(nodes: 4, contracts: .careLedger, capabilities: HostedCapabilities.careLedger, http: true, tune: { c in
            c.etcdCompactEvery = 4
            c.etcdRetainSlots = 2
        }) { net in
            let alice = SigningKey()
            _ = try await net.node(0).submit(try net.tx(alice, 0))
            await net.stop(3)
            var top: UInt64 = 0
            for round in 1...12 { top = max(top, try await net.node(round % 3).submit(try net.tx(alice, round)).height) }
            for i in 0..<3 { #expect(await net.node(i).waitFinal(top)) }
            // etcd no longer holds the first slots.
            let slots = EtcdBlockLog(client: net.etcd.client, chainID: net.chainID)
            let first = try await slots.entries(from: 0).entries.map(\.height).min() ?? 0
            #expect(first > 2, "etcd still holds slot \(first)")
            // The served blocks carry certificates that verify.
            let data = try await memberGet(net.url(0) + "/v1/sync/blocks?from=1&limit=3", as: net.node(1))
            let served = try JSONValue.parse(Array(data))
            #expect(served["blocks"]?.arrayValue?.count == 3)
            // Final blocks without their own certificate (a node marks lower heights final with a higher
            // one's) are taken when a later certified block of the batch vouches for them by hash links.
            #expect(top >= 7)
            for i in 0..<3 { try net.node(i).store.unsafeExecute("DELETE FROM certificates WHERE height BETWEEN 3 AND 5") }

            try net.start(3)
            let node3 = net.node(3)
            try await eventually("node 3 catches up from its peers") { node3.height >= top }
            for h in 1...top {
                #expect(try node3.store.block(height: h)?.header.hash == net.node(0).store.block(height: h)?.header.hash)
            }
            #expect(try node3.certificate(height: 2) != nil)
            #expect(try node3.certificate(height: 4) == nil, "taken on the strength of a later certificate")
            // And then it follows etcd again: a new block reaches it and is final everywhere.
            let after = try await net.node(0).submit(try net.tx(alice, 100))
            for node in net.running { #expect(await node.waitFinal(after.height), "\(node.publicKey.did.suffix(6)): final \(node.lastFinalHeight), head \(node.height), waited for \(after.height)") }
            #expect(node3.height >= after.height)
        }
    }
}

/// Governance: the validator set and the members change only by proposals a
/// majority of the active members approves; finality follows the new validator set from the next block.
@Suite(.serialized, .timeLimit(.minutes(5))) struct GovernanceTests {
    func governance(_ net: ConsortiumNet, _ signer: SigningKey, _ action: String, _ payload: JSONValue, via node: Int = 0) async throws -> Receipt {
        try await net.node(node).submit(
            try Transaction(chainID: net.chainID, signer: signer, nonce: UInt64.random(in: 0..<UInt64.max), contract: "governance", action: action, payload: payload))
    }

    /// A node governance removed keeps the consortium secret, but no longer reads whole blocks; a new
    /// node not yet named on chain does, with the secret's proof.
    @Test func removedNodesLoseWholeLedgerAccess() async throws {
        try await withNetwork(nodes: 4, contracts: .careLedger, capabilities: HostedCapabilities.careLedger, http: true) { net in
            try await net.waitServing()
            // A final block as the API serves it: final, with a certificate of a quorum of distinct validators for it.
            let receipt = try await net.node(0).submit(try net.tx(SigningKey(), 1))
            #expect(await net.node(1).waitFinal(receipt.height))
            let (data, _) = try await URLSession.shared.data(from: URL(string: net.url(1) + "/v1/blocks/\(receipt.height)")!)
            let block = try JSONValue.parse(Array(data))
            #expect(block["final"] == .bool(true))
            let certificate = try #require(block["certificate"])
            let hash = try #require(try net.node(1).store.block(height: receipt.height)).header.hash.hex
            #expect(certificate["blockHash"] == .string(hash))
            let signers = Set((certificate["votes"]?.arrayValue ?? []).compactMap { $0["blockHash"] == .string(hash) ? $0["validator"]?.stringValue : nil })
            #expect(signers.count >= 3, "a quorum of 3 of 4")
            #expect(signers.isSubset(of: Set(try net.directories.indices.map { try net.key($0).publicKey.did })))
            let m = net.members
            let url = net.url(0) + "/v1/sync/blocks?from=1&limit=1"
            let secret = try net.directories[0].consortiumSecret(create: false)
            let newcomer = PeerCredentials(key: SigningKey(), access: MemberAccess(secret: secret))
            #expect(try await memberStatus(url, net.node(3).peerCredentials) == 200)
            #expect(try await memberStatus(url, newcomer) == 200)
            #expect(try await memberStatus(url, PeerCredentials(key: SigningKey(), access: MemberAccess(secret: .random()))) == 403)

            let v3 = try net.key(3).publicKey.did
            let proposal = try await governance(net, m[0], "propose", .object(["kind": .string("remove_validator"), "subject": .string(v3)]))
            _ = try await governance(net, m[1], "approve", .object(["proposal": .string(proposal.transactionID.hex)]))
            let applied = try await governance(net, m[2], "approve", .object(["proposal": .string(proposal.transactionID.hex)]))
            #expect(applied.result["status"]?.stringValue == "applied")
            try await eventually("node 0 applied the change") { net.node(0).height >= applied.height }
            #expect(try await memberStatus(url, net.node(3).peerCredentials) == 403, "the removed validator's node, with a valid secret proof")
            #expect(try await memberStatus(url, newcomer) == 200)
        }
    }

    @Test func validatorSetAndMembersChangeByMajority() async throws {
        try await withNetwork(nodes: 4, contracts: .careLedger, capabilities: HostedCapabilities.careLedger) { net in
            let m = net.members
            let v3 = try net.key(3).publicKey.did
            #expect(net.node(0).validators.count == 4)
            // Bad payloads are refused at admission.
            await #expect(throws: LedgerError.code("bad_payload")) {
                _ = try await governance(net, m[0], "propose", .object(["kind": .string("crown_king"), "subject": .string(v3)]))
            }
            await #expect(throws: LedgerError.code("bad_payload")) {
                _ = try await governance(net, m[0], "propose", .object(["kind": .string("rotate_validator_key"), "subject": .string(v3)]))
            }
            // Someone who is not a member cannot propose.
            let outsider = try await governance(net, SigningKey(), "propose", .object(["kind": .string("remove_validator"), "subject": .string(v3)]))
            #expect(outsider.status == .failed && outsider.errorCode == "not_a_member")

            // Remove validator 3: 3 approvals of 4 are needed (more than half).
            let proposal = try await governance(net, m[0], "propose", .object(["kind": .string("remove_validator"), "subject": .string(v3)]))
            #expect(proposal.status == .committed && proposal.result["status"]?.stringValue == "open")
            let id = proposal.transactionID.hex
            let again = try await governance(net, m[0], "approve", .object(["proposal": .string(id)]))
            #expect(again.errorCode == "already_approved")
            let second = try await governance(net, m[1], "approve", .object(["proposal": .string(id)]), via: 1)
            #expect(second.result["status"]?.stringValue == "open")
            #expect(net.node(2).validators.count == 4)
            let third = try await governance(net, m[2], "approve", .object(["proposal": .string(id)]), via: 2)
            #expect(third.result["status"]?.stringValue == "applied")
            let closed = try await governance(net, m[3], "approve", .object(["proposal": .string(id)]))
            #expect(closed.errorCode == "proposal_closed")
            for node in net.running {
                try await eventually("every node applies the change") { node.height >= third.height }
                #expect(node.validators.count == 3 && !node.validators.map(\.did).contains(v3))
            }
            #expect(!net.node(3).isValidator)

            // Blocks after the change are certified by the three remaining validators (a quorum of 3 of 3).
            let later = try await net.node(3).submit(try net.tx(SigningKey(), 1))
            for node in net.running { #expect(await node.waitFinal(later.height), "\(node.publicKey.did.suffix(6)): final \(node.lastFinalHeight), head \(node.height), waited for \(later.height)") }
            let header = try net.node(0).store.block(height: later.height)!.header
            let certificate = try #require(try net.node(0).certificate(height: later.height))
            try certificate.verify(header: header, validators: net.node(0).validators)
            #expect(!certificate.votes.map(\.validator.did).contains(v3))
            // Checked against a set without one of its voters, it fails.
            let withoutVoter = net.node(0).validators.filter { $0 != certificate.votes[0].validator } + [SigningKey().publicKey]
            #expect(throws: LedgerError.code("bad_certificate")) { try certificate.verify(header: header, validators: withoutVoter) }

            // Suspend member 3: the majority is now counted over 3 active members (2 approvals), and it can no longer propose.
            let suspend = try await governance(net, m[0], "propose", .object(["kind": .string("suspend_member"), "subject": .string(m[3].publicKey.did)]))
            let suspended = try await governance(net, m[1], "approve", .object(["proposal": .string(suspend.transactionID.hex)]))
            #expect(suspended.result["status"]?.stringValue == "open")
            let applied = try await governance(net, m[2], "approve", .object(["proposal": .string(suspend.transactionID.hex)]))
            #expect(applied.result["status"]?.stringValue == "applied")
            let refused = try await governance(net, m[3], "propose", .object(["kind": .string("add_validator"), "subject": .string(v3)]))
            #expect(refused.errorCode == "not_a_member")
            // Two of the three active members bring validator 3 back.
            let back = try await governance(net, m[0], "propose", .object(["kind": .string("add_validator"), "subject": .string(v3)]))
            let backApplied = try await governance(net, m[1], "approve", .object(["proposal": .string(back.transactionID.hex)]))
            #expect(backApplied.result["status"]?.stringValue == "applied")
            try await eventually("node 3 is a validator again") { net.node(3).isValidator }
            let last = try await net.node(0).submit(try net.tx(SigningKey(), 2))
            for node in net.running { #expect(await node.waitFinal(last.height), "\(node.publicKey.did.suffix(6)): final \(node.lastFinalHeight), head \(node.height), waited for \(last.height)") }

            // The offline auditor re-executes node 1's chain, following the validator set through the
            // governance changes, and verifies every stored certificate.
            await net.stop(1)
            let report = try ChainAuditor.audit(directory: net.directories[1], contracts: .careLedger)
            #expect(report.finalHeight >= last.height)

            // Reopened (nothing remembered in memory), node 1 still knows which set was in force at each
            // height, from the changes in its store: votes for old heights are checked against those.
            let configuration = NodeConfiguration()
            let reopened = try LedgerNode(
                directory: net.directories[1], contracts: .careLedger, ordering: EtcdOrderingService(endpoints: net.etcd.cluster.clientURLs), configuration: configuration)
            defer { reopened.close() }
            func set(_ h: UInt64) -> Set<String> { Set(reopened.validators(forHeight: h).map(\.did)) }
            #expect(set(1).count == 4 && set(third.height).count == 4)
            #expect(set(third.height + 1).count == 3 && !set(third.height + 1).contains(v3))
            #expect(set(backApplied.height).count == 3 && set(backApplied.height + 1).count == 4 && set(last.height).contains(v3))
        }
    }
}

/// The governance contract alone: a configurable threshold, the guards on the sets, expiry.
@Suite struct GovernanceContractTests {
    /// Operator powers (admitting organisations, recording access events) follow the validator set
    /// governance keeps: a validator it adds gains them, one it removes loses them.
    @Test func operatorPowersFollowTheValidatorSet() throws {
        let members = (0..<3).map { _ in SigningKey() }
        let genesisOperator = SigningKey()
        let chain = MemoryChain(
            contracts: .careLedger,
            governance: GovernanceContract(members: members.map(\.publicKey.did), validators: [genesisOperator.publicKey.did]))
        let original = chain.operatorKey
        let added = SigningKey()
        func admit(_ by: SigningKey) -> Receipt {
            chain.run(by, "identity", "register", .object([
                "role": .string("organisation"), "subject": .string(SigningKey().publicKey.did), "name": .string("Org"),
                "encryptionKey": .string(Base64.encode(EncryptionKey().publicKey)),
            ]))
        }
        func access(_ by: SigningKey) -> Receipt {
            chain.run(by, "audit", "access", .object([
                "patient": .string(SigningKey().publicKey.did), "reader": .string(SigningKey().publicKey.did), "records": .array([]),
                "purpose": .string("treatment"), "outcome": .string("deny"),
            ]))
        }
        func pass(_ kind: String, _ subject: String) -> Receipt {
            let p = chain.run(members[0], "governance", "propose", .object(["kind": .string(kind), "subject": .string(subject)]))
            return chain.run(members[1], "governance", "approve", .object(["proposal": .string(p.transactionID.hex)]))
        }
        // Genesis: the chain's operators.
        #expect(admit(original).status == .committed)
        #expect(admit(added).errorCode == "forbidden")
        #expect(access(added).errorCode == "forbidden")
        // Governance sets the validators: from then on they are the operators.
        #expect(pass("add_validator", added.publicKey.did).result["status"]?.stringValue == "applied")
        #expect(admit(added).status == .committed)
        #expect(access(added).status == .committed)
        #expect(admit(genesisOperator).status == .committed)
        #expect(admit(original).errorCode == "forbidden", "a genesis operator outside the validator set governance keeps")
        #expect(pass("remove_validator", genesisOperator.publicKey.did).result["status"]?.stringValue == "applied")
        #expect(admit(genesisOperator).errorCode == "forbidden")
        #expect(access(genesisOperator).errorCode == "forbidden")
        #expect(access(added).status == .committed)
    }

    @Test func thresholdGuardsAndExpiry() throws {
        let members = (0..<4).map { _ in SigningKey() }
        let validators = (0..<2).map { _ in SigningKey().publicKey.did }
        // More than 3/4 of 4 active members: all four must approve.
        let chain = MemoryChain(
            contracts: .careLedger,
            governance: GovernanceContract(members: members.map(\.publicKey.did), validators: validators, threshold: (3, 4), expiryBlocks: 10))
        let newcomer = SigningKey().publicKey.did
        let p = chain.run(members[0], "governance", "propose", .object(["kind": .string("admit_member"), "subject": .string(newcomer)]))
        #expect(p.status == .committed)
        for (i, m) in members.enumerated().dropFirst() {
            let r = chain.run(m, "governance", "approve", .object(["proposal": .string(p.transactionID.hex)]))
            #expect(r.result["status"]?.stringValue == (i == 3 ? "applied" : "open"), "after \(i + 1) approvals")
        }
        let admitted = try JSONValue.parse(chain.state[GovernanceContract.membersKey]!).arrayValue!.compactMap { $0["did"]?.stringValue }
        #expect(admitted.contains(newcomer))
        // A change that can never apply is refused when proposed.
        let twice = chain.run(members[0], "governance", "propose", .object(["kind": .string("admit_member"), "subject": .string(newcomer)]))
        #expect(twice.errorCode == "already_member")
        let unknown = chain.run(members[0], "governance", "propose", .object(["kind": .string("remove_validator"), "subject": .string(newcomer)]))
        #expect(unknown.errorCode == "not_a_validator")
        #expect(chain.run(members[0], "governance", "approve", .object(["proposal": .string(String(repeating: "a", count: 64))])).errorCode == "unknown_proposal")
        // The last validator cannot go: remove one, then the other is refused.
        func pass(_ kind: String, _ subject: String) -> Receipt {
            let p = chain.run(members[0], "governance", "propose", .object(["kind": .string(kind), "subject": .string(subject)]))
            var last = p
            for m in members.dropFirst() { last = chain.run(m, "governance", "approve", .object(["proposal": .string(p.transactionID.hex)])) }
            return last
        }
        // 5 members now (the newcomer has not approved): 4 of 5 is not more than 3/4… it is: 4/5 = 0.8 > 0.75.
        #expect(pass("remove_validator", validators[0]).result["status"]?.stringValue == "applied")
        #expect(try JSONValue.parse(chain.state[GovernanceContract.validatorsKey]!) == .array([.string(validators[1])]))
        let lastOne = chain.run(members[0], "governance", "propose", .object(["kind": .string("remove_validator"), "subject": .string(validators[1])]))
        #expect(lastOne.errorCode == "last_validator")
        // Rotation replaces the key in place.
        let rotated = SigningKey().publicKey.did
        let r = chain.run(members[0], "governance", "propose", .object(["kind": .string("rotate_validator_key"), "subject": .string(validators[1]), "key": .string(rotated)]))
        for m in members.dropFirst() { chain.run(m, "governance", "approve", .object(["proposal": .string(r.transactionID.hex)])) }
        #expect(try JSONValue.parse(chain.state[GovernanceContract.validatorsKey]!) == .array([.string(rotated)]))
        // A proposal left open past its expiry closes as expired.
        let stale = chain.run(members[0], "governance", "propose", .object(["kind": .string("suspend_member"), "subject": .string(newcomer)]))
        for _ in 0..<11 { chain.run(members[0], "notary", "record", .object(["hash": .string(Hash.sha256(Array("\(chain.height)".utf8)).hex), "label": .string("tick")])) }
        let late = chain.run(members[1], "governance", "approve", .object(["proposal": .string(stale.transactionID.hex)]))
        #expect(late.result["status"]?.stringValue == "expired")
    }

    /// Member changes: suspend and reinstate, rotate a member's key (the old key loses its vote, the new
    /// one has it), remove; the last active member cannot go.
    @Test func memberChanges() throws {
        let a = SigningKey(), b = SigningKey()
        // Two members, more than half: both must approve.
        let chain = MemoryChain(
            contracts: .careLedger,
            governance: GovernanceContract(members: [a.publicKey.did, b.publicKey.did], validators: [SigningKey().publicKey.did]))
        func pass(_ payload: JSONValue, by first: SigningKey, _ second: SigningKey?) -> Receipt {
            let p = chain.run(first, "governance", "propose", payload)
            guard let second, p.status == .committed else { return p }
            return chain.run(second, "governance", "approve", .object(["proposal": .string(p.transactionID.hex)]))
        }
        func members() throws -> [String: String] {
            Dictionary(uniqueKeysWithValues: try JSONValue.parse(chain.state[GovernanceContract.membersKey]!).arrayValue!.map {
                ($0["did"]!.stringValue!, $0["status"]!.stringValue!)
            })
        }
        let rotated = SigningKey()
        let rotation = pass(.object(["kind": .string("rotate_member_key"), "subject": .string(b.publicKey.did), "key": .string(rotated.publicKey.did)]), by: a, b)
        #expect(rotation.result["status"]?.stringValue == "applied")
        #expect(try members() == [a.publicKey.did: "active", rotated.publicKey.did: "active"])
        #expect(chain.run(b, "governance", "propose", .object(["kind": .string("remove_member"), "subject": .string(a.publicKey.did)])).errorCode == "not_a_member")
        // Suspend the rotated member (one active member left), reinstate it by that member alone, then remove it.
        #expect(pass(.object(["kind": .string("suspend_member"), "subject": .string(rotated.publicKey.did)]), by: a, rotated).result["status"]?.stringValue == "applied")
        #expect(try members()[rotated.publicKey.did] == "suspended")
        #expect(pass(.object(["kind": .string("suspend_member"), "subject": .string(a.publicKey.did)]), by: a, nil).errorCode == "last_member")
        #expect(pass(.object(["kind": .string("reinstate_member"), "subject": .string(rotated.publicKey.did)]), by: a, nil).result["status"]?.stringValue == "applied")
        #expect(try members()[rotated.publicKey.did] == "active")
        #expect(pass(.object(["kind": .string("remove_member"), "subject": .string(rotated.publicKey.did)]), by: a, rotated).result["status"]?.stringValue == "applied")
        #expect(try members() == [a.publicKey.did: "active"])
        #expect(pass(.object(["kind": .string("remove_member"), "subject": .string(a.publicKey.did)]), by: a, nil).errorCode == "last_member")
        // The keys removed or rotated out are recorded as revoked (whole-ledger reads refuse them); admitting one again clears it.
        #expect(chain.state[GovernanceContract.revokedKey(b.publicKey.did)] != nil, "rotated out")
        #expect(chain.state[GovernanceContract.revokedKey(rotated.publicKey.did)] != nil, "removed")
        #expect(chain.state[GovernanceContract.revokedKey(a.publicKey.did)] == nil)
        #expect(pass(.object(["kind": .string("admit_member"), "subject": .string(rotated.publicKey.did)]), by: a, nil).result["status"]?.stringValue == "applied")
        #expect(chain.state[GovernanceContract.revokedKey(rotated.publicKey.did)] == nil)
    }

    /// Votes against and withdrawal: a proposal closes as rejected once it can no longer pass, a
    /// member votes once, only the proposer withdraws, and a closed proposal takes no more votes.
    @Test func rejectAndWithdraw() throws {
        let members = (0..<4).map { _ in SigningKey() }
        // More than half of 4: three approvals pass; two rejections leave at most two: rejected.
        let chain = MemoryChain(
            contracts: .careLedger, governance: GovernanceContract(members: members.map(\.publicKey.did), validators: [SigningKey().publicKey.did]))
        let subject = SigningKey().publicKey.did
        func propose(_ by: SigningKey) -> String {
            chain.run(by, "governance", "propose", .object(["kind": .string("admit_member"), "subject": .string(subject)])).transactionID.hex
        }
        func vote(_ by: SigningKey, _ action: String, _ id: String, reason: String? = nil) -> Receipt {
            var o: [String: JSONValue] = ["proposal": .string(id)]
            if let reason { o["reason"] = .string(reason) }
            return chain.run(by, "governance", action, .object(o))
        }
        let p1 = propose(members[0])
        let first = vote(members[1], "reject", p1, reason: "not vetted")
        #expect(first.result["status"]?.stringValue == "open")
        #expect(first.result["rejections"] == .array([.string(members[1].publicKey.did)]))
        #expect(vote(members[1], "reject", p1).errorCode == "already_voted")
        #expect(vote(members[1], "approve", p1).errorCode == "already_voted")
        #expect(vote(members[0], "reject", p1).errorCode == "already_voted", "the proposer approved already")
        #expect(vote(members[2], "reject", p1).result["status"]?.stringValue == "rejected")
        #expect(vote(members[3], "approve", p1).errorCode == "proposal_closed")
        #expect(chain.state[GovernanceContract.membersKey] == nil, "nothing applied")
        // Withdrawal: the proposer only.
        let p2 = propose(members[0])
        #expect(vote(members[1], "withdraw", p2).errorCode == "forbidden")
        let withdrawn = vote(members[0], "withdraw", p2, reason: "superseded")
        #expect(withdrawn.result["status"]?.stringValue == "withdrawn")
        #expect(withdrawn.result["closeReason"] == .string("superseded"))
        #expect(vote(members[1], "approve", p2).errorCode == "proposal_closed")
        // A rejection that leaves the proposal passable keeps it open; approvals still apply it.
        let p3 = propose(members[0])
        #expect(vote(members[3], "reject", p3).result["status"]?.stringValue == "open")
        #expect(vote(members[1], "approve", p3).result["status"]?.stringValue == "open")
        #expect(vote(members[2], "approve", p3).result["status"]?.stringValue == "applied")
        #expect(chain.run(members[0], "governance", "reject", .object(["proposal": .string(p3), "extra": .int(1)])).errorCode == "bad_payload")
    }

    @Test func thresholdComesFromGenesis() throws {
        let g = Genesis(chainID: "t", proposer: SigningKey().publicKey, timeMillis: 1, governanceThreshold: (2, 3))
        let back = try Genesis(json: g.json)
        #expect(back.governanceThreshold == (2, 3))
        #expect(try Genesis(json: Genesis(chainID: "t", proposer: SigningKey().publicKey, timeMillis: 1).json).governanceThreshold == (1, 2))
        var bad = g.json.objectValue!
        bad["governanceThreshold"] = .array([.int(3), .int(2)])
        #expect(throws: LedgerError.code("bad_genesis")) { try Genesis(json: .object(bad)) }
    }
}

/// State snapshots: a new node starts from a peer's snapshot, checked against genesis
/// alone (the validator set followed through governance, certificates, state and log roots), then follows.
@Suite(.serialized, .timeLimit(.minutes(5))) struct SnapshotTests {
    @Test func aNewNodeStartsFromACheckedSnapshot() async throws {
        try await withNetwork(nodes: 4, contracts: .careLedger, capabilities: HostedCapabilities.careLedger, http: true) { net in
            let m = net.members
            let alice = SigningKey()
            for i in 0..<5 { _ = try await net.node(i % 3).submit(try net.tx(alice, i)) }
            // A validator-set change, so the snapshot must carry its proof.
            let v3 = try net.key(3).publicKey.did
            func gov(_ k: SigningKey, _ action: String, _ payload: JSONValue) async throws -> Receipt {
                try await net.node(0).submit(
                    try Transaction(chainID: net.chainID, signer: k, nonce: UInt64.random(in: 0..<UInt64.max), contract: "governance", action: action, payload: payload))
            }
            let p = try await gov(m[0], "propose", .object(["kind": .string("remove_validator"), "subject": .string(v3)]))
            _ = try await gov(m[1], "approve", .object(["proposal": .string(p.transactionID.hex)]))
            let applied = try await gov(m[2], "approve", .object(["proposal": .string(p.transactionID.hex)]))
            #expect(applied.result["status"]?.stringValue == "applied")
            let last = try await net.node(1).submit(try net.tx(alice, 10))
            for node in net.running { #expect(await node.waitFinal(last.height), "\(node.publicKey.did.suffix(6)): final \(node.lastFinalHeight), head \(node.height), waited for \(last.height)") }

            // A fifth organisation's node: genesis and the consortium secret, its own key, no history.
            let base = (net.directories[0].path as NSString).deletingLastPathComponent
            func freshDirectory(_ name: String) throws -> DataDirectory {
                let d = DataDirectory("\(base)/\(name)")
                try FileManager.default.createDirectory(atPath: d.path, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: net.directories[0].genesis, toPath: d.genesis)
                try FileManager.default.copyItem(atPath: net.directories[0].secret, toPath: d.secret)
                try KeyFile.save(SigningKey(), to: d.nodeKey)
                return d
            }
            let data = try await memberGet(net.url(0) + "/v1/sync/snapshot", as: net.node(1))
            let snapshot = try JSONValue.parse(Array(data))
            let height = UInt64(try #require(snapshot["height"]?.intValue))
            #expect(height >= last.height)

            // Tampered snapshots are refused: a state value changed, a certificate cut short, a validator change dropped.
            func tampered(_ field: String, _ value: JSONValue) -> JSONValue {
                var o = snapshot.objectValue!
                o[field] = value
                return .object(o)
            }
            var state = snapshot["state"]!.arrayValue!
            state[0] = .array([state[0].arrayValue![0], .string(Base64.encode(Array("forged".utf8)))])
            let certificate = try QuorumCertificate(encoded: try Base64.decode(snapshot["certificate"]!.stringValue!))
            let cut = QuorumCertificate(votes: Array(certificate.votes.prefix(1)))
            // …or one transaction left out of the history (it would let its nonce be replayed).
            var reader = BinaryReader(try Base64.decode(snapshot["transactions"]!.stringValue!))
            var raws: [[UInt8]] = []
            while !reader.isAtEnd { raws.append(try reader.readBytes()) }
            var fewer = BinaryWriter()
            for raw in raws.dropFirst() { fewer.writeBytes(raw) }
            // Each refused with the code for its reason: the state root, the quorum, the validator set the
            // state names (the certificate alone still passes under genesis's set), the log root.
            let refusals: [(what: String, snapshot: JSONValue, code: String)] = [
                ("a state value changed", tampered("state", .array(state)), "bad_snapshot"),
                ("a certificate cut to one vote", tampered("certificate", .string(Base64.encode(cut.encoded))), "bad_certificate"),
                ("the validator change dropped", tampered("validatorChanges", .array([])), "bad_snapshot"),
                ("a transaction left out", tampered("transactions", .string(Base64.encode(fewer.bytes))), "bad_snapshot"),
            ]
            for (i, refusal) in refusals.enumerated() {
                let d = try freshDirectory("tampered-\(i)")
                #expect(throws: LedgerError.code(refusal.code), "\(refusal.what)") { try LedgerNode.installSnapshot(refusal.snapshot, in: d, contracts: .careLedger) }
                #expect(try BlockStore(path: d.database).latestHeight() == nil, "nothing installed from a refused snapshot")
            }

            let joiner = try freshDirectory("node-new")
            #expect(try await LedgerNode.installSnapshot(from: net.url(0), in: joiner, contracts: .careLedger) == height)
            var configuration = NodeConfiguration()
            configuration.peers = [net.url(0)]
            let node = try LedgerNode(
                directory: joiner, contracts: .careLedger, ordering: EtcdOrderingService(endpoints: net.etcd.cluster.clientURLs), configuration: configuration)
            let task = Task { await node.run() }
            defer { task.cancel() }
            #expect(node.height == height)
            #expect(try node.store.block(height: 1) == nil, "no history replayed")
            #expect(!node.isValidator && node.validators.count == 3)
            // It follows the chain from there, and refuses a replay of a transaction from before the snapshot.
            let next = try await net.node(0).submit(try net.tx(alice, 11))
            try await eventually("the new node follows") { node.height >= next.height }
            #expect(try node.store.block(height: next.height)?.header.hash == net.node(0).store.block(height: next.height)?.header.hash)
            await #expect(throws: LedgerError.code("replayed_nonce")) { try await node.submit(try net.tx(alice, 3)) }
            task.cancel()
            await task.value
            node.close()
        }
    }
}
