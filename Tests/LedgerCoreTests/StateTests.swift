import LedgerCore
import Testing

@Suite struct StateTests {
    @Test func membershipAndNonMembershipProofs() throws {
        var rng = SplitMix64(seed: 5)
        var tree = SparseMerkleTree()
        var reference: [String: String] = [:]
        for step in 0..<600 {
            let key = "k/\(Int.random(in: 0..<200, using: &rng))"
            if Int.random(in: 0..<4, using: &rng) == 0 {
                tree.set(key: Array(key.utf8), value: nil)
                reference[key] = nil
            } else {
                let value = "v\(step)"
                tree.set(key: Array(key.utf8), value: Array(value.utf8))
                reference[key] = value
            }
            #expect(tree.count == reference.count)
            let probe = "k/\(Int.random(in: 0..<220, using: &rng))"
            let proof = tree.proof(key: Array(probe.utf8))
            try proof.verify(root: tree.root, key: Array(probe.utf8), value: reference[probe].map { Array($0.utf8) })
            // The proof cannot claim the opposite.
            #expect(throws: LedgerError.self) {
                try proof.verify(root: tree.root, key: Array(probe.utf8), value: reference[probe] == nil ? Array("x".utf8) : nil)
            }
            // Nor hold against another root.
            if !reference.isEmpty {
                #expect(throws: LedgerError.self) { try proof.verify(root: MerkleHash.leaf([0]), key: Array(probe.utf8), value: reference[probe].map { Array($0.utf8) }) }
            }
            // JSON round trip.
            #expect(try StateProof(json: proof.json) == proof)
        }
    }

    /// A batch of writes gives the same tree (root, count, proofs) as the same writes one by one,
    /// with inserts, overwrites, deletions (of present and absent keys) and repeated keys.
    @Test func batchUpdatesEqualSequentialUpdates() throws {
        var rng = SplitMix64(seed: 11)
        var sequential = SparseMerkleTree()
        var batched = SparseMerkleTree()
        for round in 0..<60 {
            var batch: [(key: String, value: [UInt8]?)] = []
            for _ in 0..<Int.random(in: 0..<(round < 5 ? 400 : 40), using: &rng) {
                let key = "k/\(Int.random(in: 0..<300, using: &rng))"
                let value: [UInt8]? = Int.random(in: 0..<3, using: &rng) == 0 ? nil : Array("v\(Int.random(in: 0..<5, using: &rng))".utf8)
                batch.append((key, value))
            }
            for w in batch { sequential.set(key: Array(w.key.utf8), value: w.value) }
            batched.set(batch: batch)
            #expect(batched.root == sequential.root, "round \(round)")
            #expect(batched.count == sequential.count, "round \(round)")
        }
        #expect(sequential.count > 50)
        for i in 0..<300 {
            let key = Array("k/\(i)".utf8)
            #expect(batched.proof(key: key) == sequential.proof(key: key))
        }
        // Emptied by a batch, the tree is the empty tree.
        batched.set(batch: (0..<300).map { (key: "k/\($0)", value: nil) })
        #expect(batched.root == SparseMerkleTree().root)
        #expect(batched.count == 0)
    }

    @Test func rootDependsOnContentNotHistory() {
        var a = SparseMerkleTree()
        var b = SparseMerkleTree()
        let keys = (0..<100).map { "key\($0)" }
        for k in keys { a.set(key: Array(k.utf8), value: Array(k.utf8)) }
        for k in keys.reversed() { b.set(key: Array(k.utf8), value: Array(k.utf8)) }
        b.set(key: Array("extra".utf8), value: [1])
        #expect(a.root != b.root)
        b.set(key: Array("extra".utf8), value: nil)
        #expect(a.root == b.root)
        for k in keys { a.set(key: Array(k.utf8), value: nil) }
        #expect(a.root == .zero)
        #expect(a.count == 0)
    }
}
