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

    /// The root of a compressed sparse Merkle tree over `leaves` (sorted by key hash), computed
    /// directly from the definition: the reference the tree is checked against.
    static func naiveRoot(_ leaves: ArraySlice<(key: Hash, value: Hash)>, depth: Int = 0) -> Hash {
        if leaves.isEmpty { return .zero }
        if leaves.count == 1 { return Hash.sha256(prefix: 0, leaves.first!.key, leaves.first!.value) }
        let split = leaves.firstIndex { $0.key.bit(depth) } ?? leaves.endIndex
        return Hash.sha256(prefix: 1, naiveRoot(leaves[leaves.startIndex..<split], depth: depth + 1), naiveRoot(leaves[split...], depth: depth + 1))
    }

    /// Versions share storage: every version taken along the way keeps its root and proofs while
    /// later ones change, each root equals the definition's, and once versions are dropped their
    /// nodes are freed (an emptied tree holds none).
    @Test func versionsAgainstTheDefinitionAndNothingLeaks() throws {
        var rng = SplitMix64(seed: 23)
        var tree = SparseMerkleTree()
        var reference: [Hash: Hash] = [:]
        var kept: [(tree: SparseMerkleTree, root: Hash, sample: (key: Hash, value: Hash?))] = []
        for round in 0..<80 {
            var batch: [(keyHash: Hash, valueHash: Hash?)] = []
            for _ in 0..<Int.random(in: 1...(round < 10 ? 300 : 40), using: &rng) {
                let key = Hash.sha256(Array("k\(Int.random(in: 0..<500, using: &rng))".utf8))
                let value: Hash? = Int.random(in: 0..<4, using: &rng) == 0 ? nil : Hash.sha256(Array("v\(rng.next())".utf8))
                batch.append((key, value))
                reference[key] = value
            }
            tree.update(batch: batch)
            let leaves = reference.map { (key: $0.key, value: $0.value) }.sorted { $0.key < $1.key }
            #expect(tree.root == Self.naiveRoot(leaves[...]), "round \(round)")
            #expect(tree.count == reference.count)
            if round % 7 == 0, let probe = batch.first {
                kept.append((tree, tree.root, (probe.keyHash, reference[probe.keyHash])))
            }
        }
        for k in kept {
            #expect(k.tree.root == k.root)
            let proof = k.tree.proof(keyHash: k.sample.key)
            try proof.verify(root: k.root)
            #expect(proof.provenValueHash == k.sample.value)
        }
        let withVersions = tree.storedNodes
        kept.removeAll()
        #expect(tree.storedNodes < withVersions)
        // One version left: as many nodes as the same content built at once (the tree's shape depends on its content only).
        var fresh = SparseMerkleTree()
        fresh.update(batch: reference.map { ($0.key, $0.value) })
        #expect(fresh.root == tree.root)
        #expect(tree.storedNodes == fresh.storedNodes)
        #expect(tree.storedNodes >= 2 * tree.count - 1)
        tree.update(batch: reference.keys.map { ($0, nil) })
        #expect(tree.root == .zero)
        #expect(tree.count == 0)
        #expect(tree.storedNodes == 0)
    }

    /// Proofs read from a version on other threads while the tree is updated stay valid for that version.
    @Test func readersDuringUpdates() async throws {
        var tree = SparseMerkleTree()
        tree.set(batch: (0..<2000).map { (key: "k\($0)", value: Array("v\($0)".utf8)) })
        let snapshot = tree
        let root = snapshot.root
        let failures = await withTaskGroup(of: Int.self) { group in
            for t in 0..<3 {
                group.addTask {
                    var bad = 0
                    for i in 0..<3000 {
                        let key = Array("k\((i * 7 + t) % 2500)".utf8)
                        let proof = snapshot.proof(key: key)
                        let expected: [UInt8]? = (i * 7 + t) % 2500 < 2000 ? Array("v\((i * 7 + t) % 2500)".utf8) : nil
                        if (try? proof.verify(root: root, key: key, value: expected)) == nil { bad += 1 }
                    }
                    return bad
                }
            }
            var writer = tree
            for round in 0..<200 {
                writer.set(batch: (0..<50).map { (key: "k\(($0 * 13 + round) % 2500)", value: round % 3 == 0 ? nil : Array("w\(round)".utf8)) })
            }
            #expect(writer.root != root)
            return await group.reduce(0, +)
        }
        #expect(failures == 0)
        #expect(snapshot.root == root)
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
