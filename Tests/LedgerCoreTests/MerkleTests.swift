import Foundation
import LedgerCore
import Testing

@Suite struct MerkleTests {
    /// Runs `verify` on every vector of `folder`: a vector without `wantErr` must pass, one with `wantErr`
    /// must be refused with the code its reason calls for. The reason is looked up by the vector's path
    /// below `folder` (without `.json`) in `byPath` first, then by its `desc` in `byDesc`; every entry of
    /// both tables must be used by some vector.
    func checkVectors(
        _ folder: String, byPath: [String: String], byDesc: [String: String], _ verify: (String, JSONValue) throws -> Void
    ) throws {
        let files = try Vectors.files(folder)
        #expect(files.count > 40)
        var usedPaths: Set<String> = []
        var usedDescs: Set<String> = []
        for file in files {
            let v = try Vectors.json(file)
            let desc = v["desc"]?.stringValue ?? ""
            var thrown: String?
            do { try verify(file, v) } catch let error as LedgerError { thrown = error.code }
            guard v["wantErr"]?.boolValue ?? false else {
                #expect(thrown == nil, "\(file) must verify")
                continue
            }
            let path = String(file.dropFirst(folder.count + 1).dropLast(".json".count))
            let expected: String
            if let code = byPath[path] {
                usedPaths.insert(path)
                expected = code
            } else if let code = byDesc[desc] {
                usedDescs.insert(desc)
                expected = code
            } else {
                Issue.record("\(file): no expected code for the reason '\(desc)'")
                continue
            }
            #expect(thrown == expected, "\(file) (\(desc)) must be refused as \(expected)")
        }
        #expect(Set(byPath.keys) == usedPaths, "reasons by path that no vector has")
        #expect(Set(byDesc.keys) == usedDescs, "reasons by desc that no vector has")
    }

    /// Why the rejected inclusion vectors of groups 0-4 are rejected, by `desc`, as the code `verifyInclusion` gives:
    /// `bad_hash` for a leaf, root or proof element that is not 32 bytes, `bad_proof` for a proof that does not
    /// lead from the leaf at that index to the root of that tree size.
    static let inclusionByDesc: [String: String] = [
        "empty root": "bad_proof",  // the empty tree's root (32 bytes): the path leads elsewhere
        "random root": "bad_proof",
        "preceding root": "bad_proof",
        "trailing root": "bad_proof",
        "inserted component": "bad_proof",
        "removed component": "bad_proof",
        "modified proof[0] bit @3": "bad_proof",
        "modified proof[1] bit @3": "bad_proof",
        "modified proof[2] bit @3": "bad_proof",
        "leafIdx XOR @2": "bad_proof",
        "leafIdx plus @1": "bad_proof",
        "leafIdx sub @1": "bad_proof",  // 2^64-1: beyond the tree
        "treeSize div @2": "bad_proof",
        "treeSize mul @2": "bad_proof",
        "wrong leaf": "bad_hash",  // 9 bytes
        "preceding garbage": "bad_hash",  // an empty proof element
        "trailing garbage": "bad_hash",
    ]

    /// The groups `additional` and `single-entry` reuse descs with other meanings ("empty root" is an empty
    /// byte string there, or comes with a leaf index outside the tree), so their reasons are by path.
    /// A leaf index not below the tree size is refused first, before the hashes are read.
    static let inclusionByPath: [String: String] = [
        // Tree size 0: no leaf is in the tree.
        "additional/0/empty-root": "bad_proof",
        "additional/0/empty-root-and-random-leaf": "bad_proof",
        "additional/0/random-leaf": "bad_proof",
        // Leaf 0 of 1: the empty leaf (empty-root) and the empty root (random-leaf) are not hashes.
        "additional/1/empty-root": "bad_hash",
        "additional/1/empty-root-and-random-leaf": "bad_proof",
        "additional/1/random-leaf": "bad_hash",
        // Leaf 1 of 0 and leaf 2 of 1: outside the tree.
        "additional/2/empty-root": "bad_proof",
        "additional/2/empty-root-and-random-leaf": "bad_proof",
        "additional/2/random-leaf": "bad_proof",
        "additional/3/empty-root": "bad_proof",
        "additional/3/empty-root-and-random-leaf": "bad_proof",
        "additional/3/random-leaf": "bad_proof",
        // Leaf 0 of 1 with an empty leaf and/or an empty root.
        "single-entry/empty-leaf": "bad_hash",
        "single-entry/empty-root": "bad_hash",
        "single-entry/empty-root-and-leaf": "bad_hash",
    ]

    /// Why the rejected consistency vectors are rejected, by `desc`, as the code `verifyConsistency` gives.
    static let consistencyByDesc: [String: String] = [
        "empty proof": "bad_proof",
        "truncated proof": "bad_proof",
        "modified proof@0 bit @4": "bad_proof",
        "modified proof@1 bit @4": "bad_proof",
        "modified proof@2 bit @4": "bad_proof",
        "preceding proof @0": "bad_proof",
        "preceding root1": "bad_proof",
        "preceding root2": "bad_proof",
        "trailing root1": "bad_proof",
        "trailing root2": "bad_proof",
        "swapped roots": "bad_proof",
        "size1 XOR @2": "bad_proof",
        "size1 plus @1": "bad_proof",
        "size1 sub @1": "bad_proof",
        "size2 div @2": "bad_proof",
        "size2 mul @2": "bad_proof",
        "wrong root1": "bad_hash",  // 9 bytes
        "wrong root2": "bad_hash",
        "preceding garbage": "bad_hash",  // an empty proof element
        "trailing garbage": "bad_hash",
        // Sizes that no proof can join: from an empty tree, size1 > size2, equal sizes with a proof or other roots.
        "consistency check on empty tree (size1 is zero) is useless": "bad_proof",
        "roots do not match and sizes are zero": "bad_proof",
        "roots do not not match and sizes are one": "bad_proof",
        "size1 is greater than size2": "bad_proof",
        "size1 is greater than size2 again": "bad_proof",
        "size1 is zero and does not equal size2": "bad_proof",
        "size1 is zero and size2 is not zero": "bad_proof",
        "sizes are equal (one) but roots are not": "bad_proof",
        "sizes are equal (zero) and proof is empty": "bad_proof",
        "sizes are equal (zero) but roots are not": "bad_proof",
        "sizes do not watch and proof is empty": "bad_proof",
        "sizes match but proof is not empty and sizes are one": "bad_proof",
        "sizes match but proof is not empty and sizes are zero": "bad_proof",
    ]

    @Test func inclusionVectors() throws {
        try checkVectors("merkle/inclusion", byPath: Self.inclusionByPath, byDesc: Self.inclusionByDesc) { file, v in
            try MerkleProof.verifyInclusion(
                leafHash: v.base64Bytes("leafHash"), leafIndex: try Vectors.unsigned(file, "leafIdx"),
                treeSize: try Vectors.unsigned(file, "treeSize"), proof: v.base64List("proof"), root: v.base64Bytes("root"))
        }
    }

    @Test func consistencyVectors() throws {
        try checkVectors("merkle/consistency", byPath: [:], byDesc: Self.consistencyByDesc) { file, v in
            try MerkleProof.verifyConsistency(
                size1: try Vectors.unsigned(file, "size1"), size2: try Vectors.unsigned(file, "size2"),
                root1: v.base64Bytes("root1"), root2: v.base64Bytes("root2"), proof: v.base64List("proof"))
        }
    }

    /// MTH straight from the RFC 9162 §2.1.1 definition.
    static func naiveRoot(_ leaves: ArraySlice<Hash>) -> Hash {
        if leaves.isEmpty { return MerkleHash.empty }
        if leaves.count == 1 { return leaves.first! }
        var k = 1
        while k * 2 < leaves.count { k *= 2 }
        let start = leaves.startIndex
        return MerkleHash.node(naiveRoot(leaves[start..<start + k]), naiveRoot(leaves[(start + k)...]))
    }

    @Test func randomTreesAgainstNaive() throws {
        var rng = SplitMix64(seed: 9162)
        var log = MerkleLog()
        var leaves: [Hash] = []
        for i in 0..<130 {
            let leaf = MerkleHash.leaf(Array("leaf-\(i)-\(rng.next())".utf8))
            leaves.append(leaf)
            log.append(leafHash: leaf)
            let n = UInt64(leaves.count)
            #expect(log.root == Self.naiveRoot(leaves[...]))
            for _ in 0..<4 {
                let size = UInt64.random(in: 1...n, using: &rng)
                let index = UInt64.random(in: 0..<size, using: &rng)
                let root = Self.naiveRoot(leaves[0..<Int(size)])
                let proof = try log.inclusionProof(leafIndex: index, treeSize: size)
                try MerkleProof.verifyInclusion(
                    leafHash: leaves[Int(index)].bytes, leafIndex: index, treeSize: size, proof: proof.map(\.bytes), root: root.bytes)
                // A proof for one leaf does not prove another.
                if size > 1 {
                    let other = (index + 1) % size
                    #expect(throws: LedgerError.code("bad_proof")) {
                        try MerkleProof.verifyInclusion(
                            leafHash: leaves[Int(other)].bytes, leafIndex: index, treeSize: size, proof: proof.map(\.bytes),
                            root: root.bytes)
                    }
                }
                let from = UInt64.random(in: 1...size, using: &rng)
                let consistency = try log.consistencyProof(from: from, to: size)
                try MerkleProof.verifyConsistency(
                    size1: from, size2: size, root1: Self.naiveRoot(leaves[0..<Int(from)]).bytes, root2: root.bytes,
                    proof: consistency.map(\.bytes))
                if from < size {
                    #expect(throws: LedgerError.code("bad_proof")) {
                        try MerkleProof.verifyConsistency(
                            size1: from, size2: size, root1: MerkleHash.leaf([1, 2, 3]).bytes, root2: root.bytes,
                            proof: consistency.map(\.bytes))
                    }
                }
            }
        }
    }

    @Test func proofsOutsideTheLogAreRefused() {
        var log = MerkleLog()
        log.append(leafHash: MerkleHash.leaf([1]))
        #expect(throws: LedgerError.code("tree_size_too_large")) { try log.inclusionProof(leafIndex: 0, treeSize: 2) }
        #expect(throws: LedgerError.code("leaf_not_in_tree")) { try log.inclusionProof(leafIndex: 1, treeSize: 1) }
        #expect(throws: LedgerError.code("bad_tree_sizes")) { try log.consistencyProof(from: 0, to: 1) }
    }
}
