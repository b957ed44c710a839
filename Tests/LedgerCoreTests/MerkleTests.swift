import Foundation
import LedgerCore
import Testing

@Suite struct MerkleTests {
    /// Runs `verify` on every vector of `folder`: it must throw exactly when the vector says `wantErr`.
    func checkVectors(_ folder: String, _ verify: (String, JSONValue) throws -> Void) throws {
        let files = try Vectors.files(folder)
        #expect(files.count > 40)
        for file in files {
            let v = try Vectors.json(file)
            var failed = false
            do { try verify(file, v) } catch { failed = true }
            #expect(failed == (v["wantErr"]?.boolValue ?? false), "\(file)")
        }
    }

    @Test func inclusionVectors() throws {
        try checkVectors("merkle/inclusion") { file, v in
            try MerkleProof.verifyInclusion(
                leafHash: v.base64Bytes("leafHash"), leafIndex: try Vectors.unsigned(file, "leafIdx"),
                treeSize: try Vectors.unsigned(file, "treeSize"), proof: v.base64List("proof"), root: v.base64Bytes("root"))
        }
    }

    @Test func consistencyVectors() throws {
        try checkVectors("merkle/consistency") { file, v in
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
                    #expect(throws: LedgerError.self) {
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
                    #expect(throws: LedgerError.self) {
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
