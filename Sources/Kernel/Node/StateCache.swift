import ContractKit
import Foundation
import LedgerCore
import Logging
import Metrics
import Store
import Synchronization

/// A block's writes over the committed state: what the next block reads while that one commits.
struct OverlayState: StateReader {
    let base: StateCache
    let writes: [String: [UInt8]?]

    init(base: StateCache, writes: [(key: String, value: [UInt8]?)]) {
        self.base = base
        self.writes = Dictionary(writes.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    func value(forKey key: String) -> [UInt8]? {
        if let written = writes[key] { return written }
        return base.value(forKey: key)
    }
}

/// Committed state values in memory (the store holds the same rows durably).
final class StateCache: StateReader {
    private let values: Mutex<[String: [UInt8]]>

    init(_ values: [String: [UInt8]]) { self.values = Mutex(values) }

    func value(forKey key: String) -> [UInt8]? { values.withLock { $0[key] } }

    var all: [String: [UInt8]] { values.withLock { $0 } }

    func apply(_ writes: [(key: String, value: [UInt8]?)]) {
        values.withLock { v in for w in writes { v[w.key] = w.value } }
    }
}
