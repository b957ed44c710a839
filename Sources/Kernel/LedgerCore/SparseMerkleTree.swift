import Synchronization

/// The authenticated world state: a sparse Merkle tree over SHA-256(key) with leaf compression
/// (the Diem/Jellyfish design). A subtree holding a single key is represented by that key's leaf
/// placed as high as it goes, so the depth is about log2(n) and a write costs O(log n) hashes.
///
/// Hashes: empty subtree = 32 zero bytes; leaf = SHA-256(0x00 || keyHash || valueHash);
/// internal = SHA-256(0x01 || left || right). The tree is immutable and shares structure between
/// versions (path copying), so a snapshot can be read while the next block is being executed.
///
/// Storage: the nodes of a tree and of every version derived from it live in one `Arena` of
/// fixed-size records addressed by 32-bit indices, with their reference counts in a separate
/// dense array, instead of one reference-counted object per node. An internal node keeps its
/// children's hashes, so a new parent is hashed without reading its old sibling, and sharing the
/// sibling touches only its count. Path copying is memory-bound: with one object per node, the
/// atomic reference counting of siblings (on sharing, then again when the old version is freed)
/// and the allocator took most of a block's state-update time.
public struct SparseMerkleTree: Sendable {
    /// One node. Internal: `x`, `y` are the left and right children's hashes (zero when empty).
    /// Leaf: `x` is the key hash, `y` the value hash.
    struct Record {
        var hash: Hash
        var x: Hash
        var y: Hash
        var isLeaf: Bool
    }

    /// What freeing needs, kept apart and dense: the reference count and the children's indices
    /// (0 when empty; both 0 for a leaf). Freeing an old version then reads no record.
    struct Links {
        var count: UInt32
        var left: UInt32
        var right: UInt32
    }

    /// The records of a family of versions. Writers (`update`) and releases of versions take the
    /// lock; readers of a version (root, proofs) take none: the records reachable from a version
    /// are never changed or freed while it is alive, and chunks never move.
    final class Arena: @unchecked Sendable {
        static let chunkBits = 14
        static let chunkSize = 1 << chunkBits
        static let maxChunks = 1 << 16
        let lock = Mutex(())
        /// Fixed table of chunk pointers (readers index it without the lock).
        let records: UnsafeMutablePointer<UnsafeMutablePointer<Record>?>
        let links: UnsafeMutablePointer<UnsafeMutablePointer<Links>?>
        private(set) var chunkCount = 0
        private var next: UInt32 = 1  // index 0 is "empty"
        private var free: [UInt32] = []
        /// Records in use (tests).
        private(set) var live = 0

        init() {
            records = .allocate(capacity: Self.maxChunks)
            records.initialize(repeating: nil, count: Self.maxChunks)
            links = .allocate(capacity: Self.maxChunks)
            links.initialize(repeating: nil, count: Self.maxChunks)
        }

        deinit {
            for c in 0..<chunkCount {
                records[c]?.deallocate()
                links[c]?.deallocate()
            }
            records.deallocate()
            links.deallocate()
        }

        @inline(__always) func record(_ i: UInt32) -> UnsafeMutablePointer<Record> {
            records[Int(i >> UInt32(Self.chunkBits))].unsafelyUnwrapped + Int(i & UInt32(Self.chunkSize - 1))
        }

        @inline(__always) func link(_ i: UInt32) -> UnsafeMutablePointer<Links> {
            links[Int(i >> UInt32(Self.chunkBits))].unsafelyUnwrapped + Int(i & UInt32(Self.chunkSize - 1))
        }

        // The rest is called with the lock held.

        func allocate(_ r: Record, left: UInt32 = 0, right: UInt32 = 0) -> UInt32 {
            let i: UInt32
            if let reused = free.popLast() {
                i = reused
            } else {
                if Int(next) >> Self.chunkBits >= chunkCount {
                    precondition(chunkCount < Self.maxChunks, "state tree: too many nodes")
                    let chunk = UnsafeMutablePointer<Record>.allocate(capacity: Self.chunkSize)
                    let chunkLinks = UnsafeMutablePointer<Links>.allocate(capacity: Self.chunkSize)
                    chunkLinks.initialize(repeating: Links(count: 0, left: 0, right: 0), count: Self.chunkSize)
                    records[chunkCount] = chunk
                    links[chunkCount] = chunkLinks
                    chunkCount += 1
                }
                i = next
                next += 1
            }
            record(i).initialize(to: r)
            link(i).pointee = Links(count: 1, left: left, right: right)
            live += 1
            return i
        }

        @inline(__always) func retain(_ i: UInt32) {
            if i != 0 { link(i).pointee.count += 1 }
        }

        func release(_ i: UInt32) {
            guard i != 0 else { return }
            let l = link(i)
            l.pointee.count -= 1
            if l.pointee.count == 0 { freeSubtree(i) }
        }

        /// Frees `i` (its count just reached zero) and releases its children, without recursion.
        private func freeSubtree(_ i: UInt32) {
            var stack: [UInt32] = [i]
            while let n = stack.popLast() {
                let (left, right) = (link(n).pointee.left, link(n).pointee.right)
                if left != 0 {
                    let l = link(left)
                    l.pointee.count -= 1
                    if l.pointee.count == 0 { stack.append(left) }
                }
                if right != 0 {
                    let l = link(right)
                    l.pointee.count -= 1
                    if l.pointee.count == 0 { stack.append(right) }
                }
                free.append(n)
                live -= 1
            }
        }

        func leaf(key: Hash, value: Hash) -> UInt32 {
            allocate(Record(hash: Hash.sha256(prefix: 0, key, value), x: key, y: value, isLeaf: true))
        }

        /// An internal node over two owned references (taken over by the node), given their hashes.
        func inner(_ left: UInt32, _ lh: Hash, _ right: UInt32, _ rh: Hash) -> UInt32 {
            allocate(Record(hash: Hash.sha256(prefix: 1, lh, rh), x: lh, y: rh, isLeaf: false), left: left, right: right)
        }

        @inline(__always) func hash(_ i: UInt32) -> Hash { i == 0 ? .zero : record(i).pointee.hash }
    }

    /// A version's root, counted in its arena while any copy of the tree holds it.
    final class Version: @unchecked Sendable {
        let arena: Arena
        let root: UInt32
        /// Takes over one reference to `root`.
        init(arena: Arena, root: UInt32) {
            self.arena = arena
            self.root = root
        }
        deinit { arena.lock.withLock { _ in arena.release(root) } }
    }

    private var version: Version?
    public private(set) var count = 0

    public init() {}

    public var root: Hash {
        guard let version, version.root != 0 else { return .zero }
        return version.arena.record(version.root).pointee.hash
    }

    /// Sets `keyHash` to `valueHash`, or removes it when `valueHash` is nil.
    public mutating func update(keyHash: Hash, valueHash: Hash?) {
        update(batch: [(keyHash, valueHash)])
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
        let arena = version?.arena ?? Arena()
        let oldRoot = version?.root ?? 0
        var delta = 0
        let newRoot = arena.lock.withLock { _ in
            arena.retain(oldRoot)
            return updates.withUnsafeBufferPointer { Self.apply(arena, oldRoot, depth: 0, $0, 0..<$0.count, delta: &delta) }
        }
        // Assigned outside the lock: the old version's release takes it.
        version = Version(arena: arena, root: newRoot)
        count += delta
    }

    /// The node over two owned subtrees with their hashes, keeping leaf compression (a lone leaf moves up).
    private static func join(_ a: Arena, _ left: UInt32, _ lh: Hash, _ right: UInt32, _ rh: Hash) -> UInt32 {
        if left == 0 && right == 0 { return 0 }
        if right == 0, a.record(left).pointee.isLeaf { return left }
        if left == 0, a.record(right).pointee.isLeaf { return right }
        return a.inner(left, lh, right, rh)
    }

    /// `updates[range]` (sorted by key hash, one per key, all below `node`'s position) applied to
    /// `node`, of which the caller gives one reference; answers an owned reference.
    private static func apply(
        _ a: Arena, _ node: UInt32, depth: Int, _ updates: UnsafeBufferPointer<(keyHash: Hash, valueHash: Hash?)>, _ range: Range<Int>,
        delta: inout Int
    ) -> UInt32 {
        if range.isEmpty { return node }
        let r = node == 0 ? nil : a.record(node).pointee
        guard let r, !r.isLeaf else {
            // An empty subtree or a lone leaf: rebuild it from its leaves after the updates.
            var leaves: [(Hash, Hash)] = []
            leaves.reserveCapacity(range.count + 1)
            var before = 0
            if let r {
                before = 1
                if !range.contains(where: { updates[$0].keyHash == r.x }) { leaves.append((r.x, r.y)) }
            }
            for i in range { if let v = updates[i].valueHash { leaves.append((updates[i].keyHash, v)) } }
            delta += leaves.count - before
            if leaves.count == 1, let r, r.x == leaves[0].0, r.y == leaves[0].1 { return node }
            a.release(node)
            leaves.sort { $0.0 < $1.0 }
            return build(a, leaves[...], depth: depth)
        }
        // Updates are sorted by key hash and share their first `depth` bits: those going left (bit
        // 0) come first, found by bisection.
        var low = range.lowerBound, high = range.upperBound
        while low < high {
            let middle = (low + high) / 2
            if updates[middle].keyHash.bit(depth) { high = middle } else { low = middle + 1 }
        }
        let (oldLeft, oldRight) = (a.link(node).pointee.left, a.link(node).pointee.right)
        a.retain(oldLeft)
        a.retain(oldRight)
        let left = apply(a, oldLeft, depth: depth + 1, updates, range.lowerBound..<low, delta: &delta)
        let right = apply(a, oldRight, depth: depth + 1, updates, low..<range.upperBound, delta: &delta)
        if left == oldLeft && right == oldRight {
            a.release(left)
            a.release(right)
            return node
        }
        a.release(node)
        // The unchanged side's hash is the old node's copy: its record is not read.
        return join(a, left, left == oldLeft ? r.x : a.hash(left), right, right == oldRight ? r.y : a.hash(right))
    }

    /// The compressed subtree holding exactly `leaves` (sorted by key) below `depth`, owned.
    private static func build(_ a: Arena, _ leaves: ArraySlice<(Hash, Hash)>, depth: Int) -> UInt32 {
        if leaves.isEmpty { return 0 }
        if leaves.count == 1 { return a.leaf(key: leaves.first!.0, value: leaves.first!.1) }
        let split = leaves.firstIndex { $0.0.bit(depth) } ?? leaves.endIndex
        let left = build(a, leaves[leaves.startIndex..<split], depth: depth + 1)
        let right = build(a, leaves[split...], depth: depth + 1)
        return a.inner(left, a.hash(left), right, a.hash(right))
    }

    /// Records in use by every version sharing this tree's storage (tests: nothing leaks).
    public var storedNodes: Int {
        guard let version else { return 0 }
        return version.arena.lock.withLock { _ in version.arena.live }
    }

    /// A proof of membership (with the value hash) or non-membership of `keyHash`.
    public func proof(keyHash: Hash) -> StateProof {
        var siblings: [Hash] = []
        guard let version, version.root != 0 else { return StateProof(keyHash: keyHash, siblings: [], leafKeyHash: nil, leafValueHash: nil) }
        let a = version.arena
        var node = version.root
        var depth = 0
        while node != 0 {
            let r = a.record(node).pointee
            if r.isLeaf { return StateProof(keyHash: keyHash, siblings: siblings, leafKeyHash: r.x, leafValueHash: r.y) }
            if keyHash.bit(depth) {
                siblings.append(r.x)
                node = a.link(node).pointee.right
            } else {
                siblings.append(r.y)
                node = a.link(node).pointee.left
            }
            depth += 1
        }
        return StateProof(keyHash: keyHash, siblings: siblings, leafKeyHash: nil, leafValueHash: nil)
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
