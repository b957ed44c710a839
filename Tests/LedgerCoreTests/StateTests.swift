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
