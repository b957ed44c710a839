import Crypto

/// RFC 9162 §2.1 hashing: leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right).
public enum MerkleHash {
    public static let empty = Hash.sha256([UInt8]())

    public static func leaf<C: Collection>(_ data: C) -> Hash where C.Element == UInt8 {
        var hasher = SHA256Hasher()
        hasher.update(CollectionOfOne(UInt8(0)))
        hasher.update(data)
        return hasher.finalize()
    }

    public static func node(_ left: Hash, _ right: Hash) -> Hash {
        Hash.sha256(prefix: 1, left, right)
    }
}

/// An append-only RFC 9162 Merkle tree kept in memory as its complete subtrees:
/// `levels[k][i]` is the hash of the perfect subtree of 2^k leaves starting at leaf i·2^k.
/// Roots, inclusion proofs (§2.1.3.1) and consistency proofs (§2.1.4.1) for any size up to
/// the current one are computed from these in O(log n) hashes.
public struct MerkleLog: Sendable {
    private var levels: [[Hash]] = [[]]

    public init() {}

    public init(leafHashes: [Hash]) {
        for h in leafHashes { append(leafHash: h) }
    }

    public var size: UInt64 { UInt64(levels[0].count) }

    public func leafHash(at index: UInt64) -> Hash { levels[0][Int(index)] }

    public mutating func append(leafHash: Hash) {
        levels[0].append(leafHash)
        var level = 0
        var index = levels[0].count - 1
        while index & 1 == 1 {
            let parent = MerkleHash.node(levels[level][index - 1], levels[level][index])
            if levels.count == level + 1 { levels.append([]) }
            levels[level + 1].append(parent)
            level += 1
            index >>= 1
        }
    }

    /// MTH(D[0:n]).
    public func root(size n: UInt64) throws(LedgerError) -> Hash {
        guard n <= size else { throw LedgerError("tree_size_too_large", "tree size \(n) exceeds the log size \(size)") }
        return n == 0 ? MerkleHash.empty : subtreeHash(0, n)
    }

    public var root: Hash { try! root(size: size) }

    /// MTH(D[start:end]) for 0 ≤ start < end ≤ size.
    private func subtreeHash(_ start: UInt64, _ end: UInt64) -> Hash {
        let width = end - start
        if width & (width - 1) == 0 && start % width == 0 {
            let level = width.trailingZeroBitCount
            return levels[level][Int(start >> UInt64(level))]
        }
        let k = largestPowerOfTwo(below: width)
        return MerkleHash.node(subtreeHash(start, start + k), subtreeHash(start + k, end))
    }

    /// PATH(m, D[0:n]) of RFC 9162 §2.1.3.1.
    public func inclusionProof(leafIndex m: UInt64, treeSize n: UInt64) throws(LedgerError) -> [Hash] {
        guard n <= size else { throw LedgerError("tree_size_too_large", "tree size \(n) exceeds the log size \(size)") }
        guard m < n else { throw LedgerError("leaf_not_in_tree", "leaf \(m) is not in a tree of size \(n)") }
        var proof: [Hash] = []
        path(m, 0, n, &proof)
        return proof
    }

    private func path(_ m: UInt64, _ start: UInt64, _ end: UInt64, _ proof: inout [Hash]) {
        let width = end - start
        guard width > 1 else { return }
        let k = largestPowerOfTwo(below: width)
        if m < k {
            path(m, start, start + k, &proof)
            proof.append(subtreeHash(start + k, end))
        } else {
            path(m - k, start + k, end, &proof)
            proof.append(subtreeHash(start, start + k))
        }
    }

    /// PROOF(m, D[0:n]) of RFC 9162 §2.1.4.1; empty when m == n.
    public func consistencyProof(from m: UInt64, to n: UInt64) throws(LedgerError) -> [Hash] {
        guard n <= size else { throw LedgerError("tree_size_too_large", "tree size \(n) exceeds the log size \(size)") }
        guard m >= 1, m <= n else { throw LedgerError("bad_tree_sizes", "need 1 ≤ from ≤ to, got from=\(m) to=\(n)") }
        var proof: [Hash] = []
        if m < n { subproof(m, 0, n, true, &proof) }
        return proof
    }

    private func subproof(_ m: UInt64, _ start: UInt64, _ end: UInt64, _ complete: Bool, _ proof: inout [Hash]) {
        let width = end - start
        if m == width {
            if !complete { proof.append(subtreeHash(start, end)) }
            return
        }
        let k = largestPowerOfTwo(below: width)
        if m <= k {
            subproof(m, start, start + k, complete, &proof)
            proof.append(subtreeHash(start + k, end))
        } else {
            subproof(m - k, start + k, end, false, &proof)
            proof.append(subtreeHash(start, start + k))
        }
    }
}

/// The largest power of two strictly less than n (n ≥ 2).
func largestPowerOfTwo(below n: UInt64) -> UInt64 {
    UInt64(1) << UInt64(63 - (n - 1).leadingZeroBitCount)
}

/// Offline verification of RFC 9162 proofs, exactly as §2.1.3.2 and §2.1.4.2 specify.
public enum MerkleProof {
    /// Checks that `leafHash` is at `leafIndex` in the tree of `treeSize` leaves with root `root`.
    public static func verifyInclusion(
        leafHash: [UInt8], leafIndex: UInt64, treeSize: UInt64, proof: [[UInt8]], root: [UInt8]
    ) throws(LedgerError) {
        guard leafIndex < treeSize else { throw LedgerError("bad_proof", "leaf index \(leafIndex) ≥ tree size \(treeSize)") }
        let leaf = try Hash(leafHash)
        let expected = try Hash(root)
        var fn = leafIndex
        var sn = treeSize - 1
        var r = leaf
        for element in proof {
            let p = try Hash(element)
            guard sn != 0 else { throw LedgerError("bad_proof", "inclusion proof is too long") }
            if fn & 1 == 1 || fn == sn {
                r = MerkleHash.node(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = MerkleHash.node(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else { throw LedgerError("bad_proof", "inclusion proof is too short") }
        guard r == expected else { throw LedgerError("bad_proof", "inclusion proof does not lead to the root") }
    }

    /// Checks that the tree of `size2` leaves with `root2` extends the tree of `size1` leaves with `root1`.
    public static func verifyConsistency(
        size1: UInt64, size2: UInt64, root1: [UInt8], root2: [UInt8], proof: [[UInt8]]
    ) throws(LedgerError) {
        guard size1 > 0 else { throw LedgerError("bad_proof", "a consistency proof from an empty tree is meaningless") }
        guard size1 <= size2 else { throw LedgerError("bad_proof", "size1 \(size1) > size2 \(size2)") }
        if size1 == size2 {
            guard proof.isEmpty else { throw LedgerError("bad_proof", "equal sizes need an empty proof") }
            guard root1 == root2 else { throw LedgerError("bad_proof", "equal sizes but different roots") }
            return
        }
        guard !proof.isEmpty else { throw LedgerError("bad_proof", "empty consistency proof") }
        let first = try Hash(root1)
        let second = try Hash(root2)
        var path = try proof.map { (element) throws(LedgerError) in try Hash(element) }
        if size1 & (size1 - 1) == 0 { path.insert(first, at: 0) }
        var fn = size1 - 1
        var sn = size2 - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0]
        var sr = path[0]
        for c in path.dropFirst() {
            guard sn != 0 else { throw LedgerError("bad_proof", "consistency proof is too long") }
            if fn & 1 == 1 || fn == sn {
                fr = MerkleHash.node(c, fr)
                sr = MerkleHash.node(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = MerkleHash.node(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else { throw LedgerError("bad_proof", "consistency proof is too short") }
        guard fr == first else { throw LedgerError("bad_proof", "consistency proof does not lead to the first root") }
        guard sr == second else { throw LedgerError("bad_proof", "consistency proof does not lead to the second root") }
    }
}
