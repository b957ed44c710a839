import ContractKit
import Foundation
import LedgerCore
import LedgerTesting
import Node
import NotaryContract
import Store
import Testing

@Suite struct NodeTests {
    func configuration() -> NodeConfiguration {
        var c = NodeConfiguration()
        c.blockSize = 50
        c.blockInterval = .milliseconds(5)
        return c
    }

    @Test func commitsProvesAndRejects() async throws {
        let chain = try TempChain()
        let clock = TestClock()
        let node = try LedgerNode(directory: chain.directory, contracts: .notary, configuration: configuration(), clock: clock.function)
        let alice = SigningKey()
        try await withRunningNode(node) {
            let txs = try (0..<120).map { try notaryTx(alice, nonce: UInt64($0), document: "d\($0)") }
            let receipts = try await node.submit(txs)
            #expect(receipts.count == 120)
            #expect(receipts.allSatisfy { $0.status == .committed })
            #expect(Set(receipts.map(\.leafIndex)) == Set(0..<120))
            #expect(node.logSize == 120)

            // A second record of a committed hash fails deterministically with its own receipt.
            let again = try await node.submit([try notaryTx(alice, nonce: 1000, document: "d7")])
            #expect(again[0].status == .failed)
            #expect(again[0].errorCode == "already_notarized")

            // Replays, other chains, bad signatures, unknown contracts and actions are refused at the door.
            await #expect(throws: BatchRejection.self) { try await node.submit([txs[3]]) }
            do {
                _ = try await node.submit([txs[3]])
            } catch let r as BatchRejection {
                #expect(r.first.code == "replayed_nonce")
            }
            let other = try notaryTx(alice, nonce: 5000, document: "x", chain: "other-chain")
            #expect(try await rejection(node, [other]) == "wrong_chain")
            let forged = try Transaction(
                chainID: "test-chain", author: SigningKey().publicKey, nonce: 1, contract: "notary", action: "record",
                payload: txs[0].payload, signature: txs[0].signature)
            #expect(try await rejection(node, [forged]) == "bad_signature")
            let unknown = try Transaction(chainID: "test-chain", signer: alice, nonce: 6000, contract: "nope", action: "record", payload: .object([:]))
            #expect(try await rejection(node, [unknown]) == "unknown_contract")
            let badAction = try Transaction(chainID: "test-chain", signer: alice, nonce: 6001, contract: "notary", action: "erase", payload: .object([:]))
            #expect(try await rejection(node, [badAction]) == "unknown_action")
            let badPayload = try Transaction(chainID: "test-chain", signer: alice, nonce: 6002, contract: "notary", action: "record", payload: .object(["hash": .string("zz")]))
            #expect(try await rejection(node, [badPayload]) == "bad_payload")

            // A batch with one bad transaction admits none of them.
            let good = try notaryTx(alice, nonce: 7000, document: "batch-good")
            #expect(try await rejection(node, [good, forged]) == "bad_signature")
            #expect(try node.store.transaction(id: good.id) == nil)
            #expect(try await node.submit([good])[0].status == .committed)

            // Inclusion proofs verify against the signed checkpoint.
            let verifier = try NoteVerifier(vkey: node.noteVerifier.vkey)
            let checkpoint = try Checkpoint.verify(note: node.checkpoint, verifier: verifier, origin: chain.genesis.origin)
            #expect(checkpoint.size == node.logSize)
            for receipt in receipts.prefix(10) {
                let stored = try #require(try node.store.transaction(id: receipt.transactionID))
                let proof = try node.inclusionProof(leafIndex: stored.leafIndex, treeSize: checkpoint.size)
                try MerkleProof.verifyInclusion(
                    leafHash: stored.transaction.leafHash.bytes, leafIndex: stored.leafIndex, treeSize: checkpoint.size,
                    proof: proof.map(\.bytes), root: checkpoint.rootHash.bytes)
            }
            let old = try #require(try node.store.block(height: 1))
            let oldCheckpoint = try Checkpoint.verify(note: old.checkpoint, verifier: verifier)
            let consistency = try node.consistencyProof(from: oldCheckpoint.size, to: checkpoint.size)
            try MerkleProof.verifyConsistency(
                size1: oldCheckpoint.size, size2: checkpoint.size, root1: oldCheckpoint.rootHash.bytes, root2: checkpoint.rootHash.bytes,
                proof: consistency.map(\.bytes))
            #expect(throws: LedgerError.code("tree_size_too_large")) { try node.inclusionProof(leafIndex: 0, treeSize: node.logSize + 1) }

            // State proofs: membership of a notarised hash, absence of another.
            let key = "notary/\(Hash.sha256(Array("d5".utf8)).hex)"
            let (block, value, proof, salt) = try node.state(key: key)
            #expect(salt == nil, "a notarised hash is public state")
            #expect(value != nil)
            try proof.verify(root: block.header.stateRoot, key: Array(key.utf8), value: value)
            let missing = "notary/\(Hash.sha256(Array("never".utf8)).hex)"
            let (block2, value2, proof2, _) = try node.state(key: missing)
            #expect(value2 == nil)
            try proof2.verify(root: block2.header.stateRoot, key: Array(missing.utf8), value: nil)
        }

        // Restart: same head, nonces still used, audit passes.
        let height = node.height
        let root = node.latestBlock.header.logRoot
        // A second node on the same data directory is refused while the first has it open.
        #expect(throws: LedgerError.code("data_locked")) { try LedgerNode(directory: chain.directory, contracts: .notary) }
        node.close()
        let reopened = try LedgerNode(directory: chain.directory, contracts: .notary, configuration: configuration(), clock: clock.function)
        #expect(reopened.height == height)
        #expect(reopened.latestBlock.header.logRoot == root)
        try await withRunningNode(reopened) {
            let replay = try notaryTx(alice, nonce: 3, document: "d3")
            let code = try await rejection(reopened, [replay])
            #expect(code == "replayed_nonce")
        }
        let report = try ChainAuditor.audit(directory: chain.directory, contracts: .notary)
        #expect(report.transactions == 122)
        #expect(report.blocks == height + 1)
    }

    func rejection(_ node: LedgerNode, _ txs: [Transaction]) async throws -> String? {
        do {
            _ = try await node.submit(txs)
            return nil
        } catch let r as BatchRejection {
            return r.first.code
        }
    }

    /// An idle node does not hold a lone transaction back for the block interval; a busy one cuts
    /// a block when `blockSize` transactions wait.
    @Test func idleNodeCutsAtOnce() async throws {
        let chain = try TempChain()
        var c = NodeConfiguration()
        c.blockSize = 10
        c.blockInterval = .seconds(3600)
        let node = try LedgerNode(directory: chain.directory, contracts: .notary, configuration: c)
        let alice = SigningKey()
        try await withRunningNode(node) {
            let lone = try notaryTx(alice, nonce: 1, document: "lone")
            let receipt = try await withDeadline(seconds: 60) { try? await node.submit([lone]) }
            #expect(receipt?.first?.status == .committed)
            #expect(node.height == 1)
            let full = try (2..<12).map { try notaryTx(alice, nonce: UInt64($0), document: "full\($0)") }
            let receipts = try await withDeadline(seconds: 60) { try? await node.submit(full) }
            #expect(receipts?.allSatisfy { $0.status == .committed } == true)
            #expect(node.logSize == 11)
        }
    }

    /// Block h+1 executes while block h commits: it must read h's writes. The second half of one
    /// submission notarises the documents of the first half again and fails, block after block, and
    /// the chain re-executes to the same roots offline.
    @Test func pipelinedBlocksSeeTheBlockBeingCommitted() async throws {
        let chain = try TempChain()
        var c = NodeConfiguration()
        c.blockSize = 10
        c.maxBlockTransactions = 10
        c.blockInterval = .milliseconds(50)
        let node = try LedgerNode(directory: chain.directory, contracts: .notary, configuration: c)
        let alice = SigningKey(), bob = SigningKey()
        try await withRunningNode(node) {
            for round in 0..<5 {
                let first = try (0..<10).map { try notaryTx(alice, nonce: UInt64(round * 10 + $0), document: "r\(round)-\($0)") }
                let again = try (0..<10).map { try notaryTx(bob, nonce: UInt64(round * 10 + $0), document: "r\(round)-\($0)") }
                let receipts = try await node.submit(first + again)
                #expect(receipts.prefix(10).allSatisfy { $0.status == .committed })
                #expect(receipts.suffix(10).allSatisfy { $0.status == .failed && $0.errorCode == "already_notarized" })
                #expect(Set(receipts.map(\.height)).count == 2, "one block each half")
            }
        }
        let report = try ChainAuditor.audit(directory: chain.directory, contracts: .notary)
        #expect(report.transactions == 100)
        #expect(report.finalHeight == node.height)
    }

    @Test func auditFindsTampering() async throws {
        let cases = [
            ("UPDATE state SET value = CAST('{\"label\":\"forged\"}' AS BLOB) WHERE rowid = (SELECT MIN(rowid) FROM state)", "state"),
            ("UPDATE transactions SET raw = CAST(X'00' || raw AS BLOB) WHERE leaf_index = 3", "transaction"),
            ("UPDATE transactions SET status = 'failed' WHERE leaf_index = 4", "receipt"),
            ("UPDATE blocks SET checkpoint = REPLACE(checkpoint, '\n4\n', '\n5\n') WHERE height = 2", "checkpoint"),
            ("DELETE FROM transactions WHERE leaf_index = 5", "count"),
            ("INSERT INTO state (key, value, height) SELECT key, value, height FROM state WHERE seq = (SELECT MIN(seq) FROM state)", "state row twice"),
            ("INSERT INTO transactions SELECT leaf_index + 100, randomblob(32), height, author, nonce + 100, raw, status, result, error_code, error_message FROM transactions WHERE leaf_index = 0", "extra row"),
        ]
        for (sql, what) in cases {
            let chain = try TempChain()
            let node = try LedgerNode(directory: chain.directory, contracts: .notary, configuration: configuration(), clock: TestClock().function)
            let alice = SigningKey()
            try await withRunningNode(node) {
                for i in 0..<4 {
                    _ = try await node.submit([try notaryTx(alice, nonce: UInt64(2 * i), document: "a\(i)"), try notaryTx(alice, nonce: UInt64(2 * i + 1), document: "b\(i)")])
                }
            }
            _ = try ChainAuditor.audit(directory: chain.directory, contracts: .notary)
            let store = try BlockStore(path: chain.directory.database)
            try store.unsafeExecute(sql)
            try store.close()
            #expect(throws: ChainAuditor.Failure.self, "tampering with \(what)") { try ChainAuditor.audit(directory: chain.directory, contracts: .notary) }
            do {
                _ = try ChainAuditor.audit(directory: chain.directory, contracts: .notary)
            } catch let f as ChainAuditor.Failure {
                #expect(f.height >= 1 && f.height <= 4, "\(what): \(f)")
                if what == "extra row" { #expect(f.reason.contains("transaction rows")) }
            }
            // A tampered store does not start either.
            node.close()
            if what == "state" || what == "count" || what == "state row twice" {
                #expect(throws: LedgerError.code("corrupt_store")) { try LedgerNode(directory: chain.directory, contracts: .notary) }
            }
        }
    }
}
