/// The authenticated world state: a sparse Merkle tree over SHA-256(key) with leaf compression
/// (the Diem/Jellyfish design). A subtree holding a single key is represented by that key's leaf
/// placed as high as it goes, so the depth is about log2(n) and a write costs O(log n) hashes.
///
/// Hashes: empty subtree = 32 zero bytes; leaf = SHA-256(0x00 || keyHash || valueHash);
/// internal = SHA-256(0x01 || left || right). The tree is immutable and shares structure between
/// versions (path copying), so a snapshot can be read while the next block is being executed.
public struct SparseMerkleTree: Sendable {
    /// A node: a leaf (`Leaf`) or an internal node (`Inner`). Two classes rather than one with
    /// optional parts: an internal node is then 64 bytes (header, hash, two references), which
    /// keeps more of the tree in the caches; the path copying of each block is memory-bound.
    class Node: @unchecked Sendable {
        final let hash: Hash

        fileprivate init(hash: Hash) { self.hash = hash }

        final var leaf: (key: Hash, value: Hash)? {
            guard let leaf = self as? Leaf else { return nil }
            return (leaf.key, leaf.value)
        }
    }

    final class Leaf: Node, @unchecked Sendable {
        let key: Hash
        let value: Hash

        init(key: Hash, value: Hash) {
            self.key = key
            self.value = value
            super.init(hash: Hash.sha256(prefix: 0, key, value))
        }
    }

    final class Inner: Node, @unchecked Sendable {
        let left: Node?
        let right: Node?

        init(left: Node?, right: Node?) {
            self.left = left
            self.right = right
            super.init(hash: Hash.sha256(prefix: 1, left?.hash ?? .zero, right?.hash ?? .zero))
        }
    }

    private var rootNode: Node?
    public private(set) var count = 0

    public init() {}

    public var root: Hash { rootNode?.hash ?? .zero }

    /// Sets `keyHash` to `valueHash`, or removes it when `valueHash` is nil.
    public mutating func update(keyHash: Hash, valueHash: Hash?) {
        if let valueHash {
            var inserted = false
            rootNode = Self.insert(rootNode, depth: 0, key: keyHash, value: valueHash, inserted: &inserted)
            if inserted { count += 1 }
        } else {
            var removed = false
            rootNode = Self.remove(rootNode, depth: 0, key: keyHash, removed: &removed)
            if removed { count -= 1 }
        }
    }

    public mutating func set(key: [UInt8], value: [UInt8]?) {
        update(keyHash: Hash.sha256(key), valueHash: value.map { Hash.sha256($0) })
    }

    /// Applies many writes at once (a block's write set, a state load): the same tree as applying
    /// them one by one in order (the last write of a key wins), but every touched internal node is
    /// built and hashed once instead of once per write below it.
    public mutating func set(batch: [(key: String, value: [UInt8]?)]) {
        update(batch: batch.map { (Hash.sha256(utf8: $0.key), $0.value.map { Hash.sha256($0) }) })
    }

    public mutating func update(batch: [(keyHash: Hash, valueHash: Hash?)]) {
        guard !batch.isEmpty else { return }
        // Stable order by key hash; of several writes to one key only the last stays.
        let ordered = batch.enumerated().sorted { $0.element.keyHash < $1.element.keyHash || ($0.element.keyHash == $1.element.keyHash && $0.offset < $1.offset) }
        var updates: [(keyHash: Hash, valueHash: Hash?)] = []
        updates.reserveCapacity(ordered.count)
        for (_, u) in ordered {
            if let last = updates.last, last.keyHash == u.keyHash { updates[updates.count - 1] = u } else { updates.append(u) }
        }
        var delta = 0
        let root = rootNode
        rootNode = updates.withUnsafeBufferPointer { Self.apply(root, depth: 0, $0, 0..<$0.count, delta: &delta) }
        count += delta
    }

    /// The node over two subtrees, keeping leaf compression (a lone leaf moves up).
    private static func join(_ left: Node?, _ right: Node?) -> Node? {
        switch (left, right) {
        case (nil, nil): return nil
        case (let l?, nil) where l is Leaf: return l
        case (nil, let r?) where r is Leaf: return r
        default: return Inner(left: left, right: right)
        }
    }

    /// `updates[range]` (sorted by key hash, one per key, all below `node`'s position) applied to `node`.
    /// The updates are read through a buffer pointer and a range: slices would retain the array at
    /// every level of the recursion.
    private static func apply(
        _ node: Node?, depth: Int, _ updates: UnsafeBufferPointer<(keyHash: Hash, valueHash: Hash?)>, _ range: Range<Int>, delta: inout Int
    ) -> Node? {
        if range.isEmpty { return node }
        guard let node = node as? Inner else {
            // An empty subtree or a lone leaf: rebuild it from its leaves after the updates.
            var leaves: [(Hash, Hash)] = []
            leaves.reserveCapacity(range.count + 1)
            var before = 0
            if let leaf = node?.leaf {
                before = 1
                if !range.contains(where: { updates[$0].keyHash == leaf.key }) { leaves.append((leaf.key, leaf.value)) }
            }
            for i in range { if let v = updates[i].valueHash { leaves.append((updates[i].keyHash, v)) } }
            delta += leaves.count - before
            if leaves.count == 1, let leaf = node?.leaf, leaf.key == leaves[0].0, leaf.value == leaves[0].1 { return node }
            leaves.sort { $0.0 < $1.0 }
            return build(leaves[...], depth: depth)
        }
        // Updates are sorted by key hash and share their first `depth` bits: those going left (bit
        // 0) come first, found by bisection.
        var low = range.lowerBound, high = range.upperBound
        while low < high {
            let middle = (low + high) / 2
            if updates[middle].keyHash.bit(depth) { high = middle } else { low = middle + 1 }
        }
        let left = apply(node.left, depth: depth + 1, updates, range.lowerBound..<low, delta: &delta)
        let right = apply(node.right, depth: depth + 1, updates, low..<range.upperBound, delta: &delta)
        if left === node.left && right === node.right { return node }
        return join(left, right)
    }

    /// The compressed subtree holding exactly `leaves` (sorted by key) below `depth`.
    private static func build(_ leaves: ArraySlice<(Hash, Hash)>, depth: Int) -> Node? {
        if leaves.isEmpty { return nil }
        if leaves.count == 1 { return Leaf(key: leaves.first!.0, value: leaves.first!.1) }
        let split = leaves.firstIndex { $0.0.bit(depth) } ?? leaves.endIndex
        return Inner(left: build(leaves[leaves.startIndex..<split], depth: depth + 1), right: build(leaves[split...], depth: depth + 1))
    }

    private static func insert(_ node: Node?, depth: Int, key: Hash, value: Hash, inserted: inout Bool) -> Node {
        guard let node else {
            inserted = true
            return Leaf(key: key, value: value)
        }
        if let leaf = node.leaf {
            if leaf.key == key { return Leaf(key: key, value: value) }
            inserted = true
            return split(existing: node, existingKey: leaf.key, new: Leaf(key: key, value: value), newKey: key, depth: depth)
        }
        let inner = unsafeDowncast(node, to: Inner.self)
        if key.bit(depth) {
            return Inner(left: inner.left, right: insert(inner.right, depth: depth + 1, key: key, value: value, inserted: &inserted))
        } else {
            return Inner(left: insert(inner.left, depth: depth + 1, key: key, value: value, inserted: &inserted), right: inner.right)
        }
    }

    private static func split(existing: Node, existingKey: Hash, new: Node, newKey: Hash, depth: Int) -> Node {
        let a = existingKey.bit(depth)
        let b = newKey.bit(depth)
        if a == b {
            let child = split(existing: existing, existingKey: existingKey, new: new, newKey: newKey, depth: depth + 1)
            return a ? Inner(left: nil, right: child) : Inner(left: child, right: nil)
        }
        return a ? Inner(left: new, right: existing) : Inner(left: existing, right: new)
    }

    private static func remove(_ node: Node?, depth: Int, key: Hash, removed: inout Bool) -> Node? {
        guard let node else { return nil }
        if let leaf = node.leaf {
            if leaf.key == key {
                removed = true
                return nil
            }
            return node
        }
        let inner = unsafeDowncast(node, to: Inner.self)
        let left: Node?
        let right: Node?
        if key.bit(depth) {
            left = inner.left
            right = remove(inner.right, depth: depth + 1, key: key, removed: &removed)
        } else {
            left = remove(inner.left, depth: depth + 1, key: key, removed: &removed)
            right = inner.right
        }
        if !removed { return node }
        // Keep leaf compression: a lone leaf moves up.
        switch (left, right) {
        case (nil, nil): return nil
        case (let l?, nil) where l is Leaf: return l
        case (nil, let r?) where r is Leaf: return r
        default: return Inner(left: left, right: right)
        }
    }

    /// A proof of membership (with the value hash) or non-membership of `keyHash`.
    public func proof(keyHash: Hash) -> StateProof {
        var siblings: [Hash] = []
        var node = rootNode
        var depth = 0
        while let current = node as? Inner {
            if keyHash.bit(depth) {
                siblings.append(current.left?.hash ?? .zero)
                node = current.right
            } else {
                siblings.append(current.right?.hash ?? .zero)
                node = current.left
            }
            depth += 1
        }
        let terminal = node?.leaf
        return StateProof(keyHash: keyHash, siblings: siblings, leafKeyHash: terminal?.key, leafValueHash: terminal?.value)
    }

    public func proof(key: [UInt8]) -> StateProof { proof(keyHash: Hash.sha256(key)) }
}

/// A sparse Merkle proof. `siblings` run from the root downwards; the walk ends at an empty
/// subtree (no leaf) or at a leaf, which is the key itself (membership) or another key sharing
/// the path (non-membership).
public struct StateProof: Sendable, Hashable {
    public let keyHash: Hash
    public let siblings: [Hash]
    public let leafKeyHash: Hash?
    public let leafValueHash: Hash?

    public init(keyHash: Hash, siblings: [Hash], leafKeyHash: Hash?, leafValueHash: Hash?) {
        self.keyHash = keyHash
        self.siblings = siblings
        self.leafKeyHash = leafKeyHash
        self.leafValueHash = leafValueHash
    }

    /// The value hash when the proof shows membership, nil when it shows absence.
    public var provenValueHash: Hash? { leafKeyHash == keyHash ? leafValueHash : nil }

    /// Recomputes the root; throws unless it equals `root`.
    public func verify(root: Hash) throws(LedgerError) {
        guard siblings.count <= 256 else { throw LedgerError("bad_proof", "state proof deeper than 256") }
        var h: Hash
        if let leafKeyHash, let leafValueHash {
            for i in 0..<siblings.count where leafKeyHash.bit(i) != keyHash.bit(i) {
                throw LedgerError("bad_proof", "leaf \(leafKeyHash) is not on the path of \(keyHash)")
            }
            h = Hash.sha256(prefix: 0, leafKeyHash, leafValueHash)
        } else {
            guard leafKeyHash == nil && leafValueHash == nil else { throw LedgerError("bad_proof", "half a leaf") }
            h = .zero
        }
        for depth in stride(from: siblings.count - 1, through: 0, by: -1) {
            let sibling = siblings[depth]
            h = keyHash.bit(depth) ? Hash.sha256(prefix: 1, sibling, h) : Hash.sha256(prefix: 1, h, sibling)
        }
        guard h == root else { throw LedgerError("bad_proof", "state proof does not lead to the state root") }
    }

    /// Checks membership of (key, value) or, with `value` nil, absence of the key.
    public func verify(root: Hash, key: [UInt8], value: [UInt8]?) throws(LedgerError) {
        guard Hash.sha256(key) == keyHash else { throw LedgerError("bad_proof", "proof is for another key") }
        try verify(root: root)
        guard provenValueHash == value.map({ Hash.sha256($0) }) else {
            throw LedgerError("bad_proof", value == nil ? "proof shows the key is present" : "proof does not show this value")
        }
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "keyHash": .string(keyHash.hex),
            "siblings": .array(siblings.map { .string($0.hex) }),
        ]
        if let leafKeyHash, let leafValueHash {
            o["leaf"] = .object(["keyHash": .string(leafKeyHash.hex), "valueHash": .string(leafValueHash.hex)])
        } else {
            o["leaf"] = .null
        }
        return .object(o)
    }

    public init(json: JSONValue) throws(LedgerError) {
        guard let key = json["keyHash"]?.stringValue, let sibs = json["siblings"]?.arrayValue else {
            throw LedgerError("bad_proof", "state proof needs keyHash and siblings")
        }
        keyHash = try Hash(hex: key)
        siblings = try sibs.map { (v) throws(LedgerError) in try Hash(hex: v.stringValue ?? "") }
        if let leaf = json["leaf"], leaf != .null {
            leafKeyHash = try Hash(hex: leaf["keyHash"]?.stringValue ?? "")
            leafValueHash = try Hash(hex: leaf["valueHash"]?.stringValue ?? "")
        } else {
            leafKeyHash = nil
            leafValueHash = nil
        }
    }
}
