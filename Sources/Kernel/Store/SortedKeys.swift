import LedgerCore

/// A set of strings kept in UTF-8 byte order (SQLite's BINARY collation), for prefix scans over the
/// state's keys without a B-tree index in the database. Sorted chunks of at most `chunkCapacity`
/// keys: a lookup is two binary searches, an insertion or removal moves the elements of one chunk
/// (and, when a chunk splits or empties, the chunk list).
struct SortedKeys: Sendable {
    static let chunkCapacity = 512

    private var chunks: [[String]] = []
    private(set) var count = 0

    init() {}

    /// A position: chunk, then index in it.
    private typealias Position = (chunk: Int, index: Int)

    /// The chunk that holds `key` or would: the last whose first key is not after it (the first chunk when none is).
    private func chunk(for key: String) -> Int {
        max(Self.partition(chunks.count) { !UTF8Order.precedes(key, chunks[$0][0]) } - 1, 0)
    }

    /// The first index in 0..<count where `isBefore` turns false (it must be true, then false, over the range).
    private static func partition(_ count: Int, _ isBefore: (Int) -> Bool) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if isBefore(mid) { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The first index in `chunk` whose key is not before `key`.
    private static func lowerBound(_ key: String, in chunk: [String]) -> Int {
        partition(chunk.count) { UTF8Order.precedes(chunk[$0], key) }
    }

    /// The position of the first key for which `isBefore` is false (past the end when none: chunk == chunks.count).
    private func position(_ isBefore: (String) -> Bool) -> Position {
        let c = max(Self.partition(chunks.count) { isBefore(chunks[$0][0]) } - 1, 0)
        guard c < chunks.count else { return (0, 0) }
        let i = Self.partition(chunks[c].count) { isBefore(chunks[c][$0]) }
        return i < chunks[c].count ? (c, i) : (c + 1, 0)
    }

    private func lowerBound(_ key: String) -> Position { position { UTF8Order.precedes($0, key) } }

    func contains(_ key: String) -> Bool {
        let p = lowerBound(key)
        return p.chunk < chunks.count && chunks[p.chunk][p.index] == key
    }

    /// Adds `key`; false when it was there already.
    @discardableResult
    mutating func insert(_ key: String) -> Bool {
        guard !chunks.isEmpty else {
            chunks = [[key]]
            count = 1
            return true
        }
        let c = chunk(for: key)
        let i = Self.lowerBound(key, in: chunks[c])
        if i < chunks[c].count && chunks[c][i] == key { return false }
        chunks[c].insert(key, at: i)
        count += 1
        if chunks[c].count > Self.chunkCapacity {
            let half = chunks[c].count / 2
            let upper = Array(chunks[c][half...])
            chunks[c].removeSubrange(half...)
            chunks.insert(upper, at: c + 1)
        }
        return true
    }

    /// Removes `key`; false when it was not there.
    @discardableResult
    mutating func remove(_ key: String) -> Bool {
        guard !chunks.isEmpty else { return false }
        let c = chunk(for: key)
        let i = Self.lowerBound(key, in: chunks[c])
        guard i < chunks[c].count && chunks[c][i] == key else { return false }
        chunks[c].remove(at: i)
        count -= 1
        if chunks[c].isEmpty { chunks.remove(at: c) }
        return true
    }

    /// The keys that start with `prefix` (in UTF-8 bytes), in order (from the last when `descending`), at most `limit`.
    func keys(prefix: String, limit: Int, descending: Bool) -> [String] {
        guard limit > 0 else { return [] }
        let start = lowerBound(prefix)
        let end = position { UTF8Order.precedes($0, prefix) || $0.utf8.starts(with: prefix.utf8) }
        var out: [String] = []
        if !descending {
            var p = start
            while (p.chunk, p.index) < (end.chunk, end.index) && out.count < limit {
                out.append(chunks[p.chunk][p.index])
                p = p.index + 1 < chunks[p.chunk].count ? (p.chunk, p.index + 1) : (p.chunk + 1, 0)
            }
        } else {
            var p = end
            while (p.chunk, p.index) > (start.chunk, start.index) && out.count < limit {
                p = p.index > 0 ? (p.chunk, p.index - 1) : (p.chunk - 1, chunks[p.chunk - 1].count - 1)
                out.append(chunks[p.chunk][p.index])
            }
        }
        return out
    }

    /// Every key, in order.
    var all: [String] { chunks.flatMap { $0 } }
}
