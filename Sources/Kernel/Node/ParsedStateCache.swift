import LedgerCore
import Synchronization

/// Values parsed from state entries, each kept while the entry's bytes are unchanged.
package final class ParsedStateCache<Value: Sendable>: Sendable {
    private let values = Mutex<[String: (bytes: [UInt8], value: Value)]>([:])
    let capacity: Int

    package init(capacity: Int = 200_000) { self.capacity = capacity }

    /// The value of the entry `key` whose bytes are `bytes`: cached, or parsed now and kept.
    package func value(_ key: String, _ bytes: [UInt8], parse: ([UInt8]) throws(LedgerError) -> Value) throws(LedgerError) -> Value {
        if let cached = values.withLock({ $0[key] }), cached.bytes == bytes { return cached.value }
        let value = try parse(bytes)
        values.withLock { cache in
            if cache.count >= capacity { cache.removeAll(keepingCapacity: true) }
            cache[key] = (bytes, value)
        }
        return value
    }
}
