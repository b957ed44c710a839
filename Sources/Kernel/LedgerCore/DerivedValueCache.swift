import Synchronization

/// Values derived by a pure function from state that never changes once written (a published
/// policy version, say), kept by key so that a contract parses them once per process instead of once
/// per transaction. Whatever the cache holds, the answer is the one the function gives, so execution
/// stays deterministic; past `capacity` entries it starts over.
public final class DerivedValueCache<Value: Sendable>: Sendable {
    private let values = Mutex<[String: Value]>([:])
    let capacity: Int

    public init(capacity: Int) { self.capacity = capacity }

    /// The value under `key`, derived with `derive` the first time (nil is not kept).
    public func value(_ key: String, derive: () throws(LedgerError) -> Value?) throws(LedgerError) -> Value? {
        if let known = values.withLock({ $0[key] }) { return known }
        guard let value = try derive() else { return nil }
        values.withLock { cache in
            if cache.count >= capacity { cache.removeAll(keepingCapacity: true) }
            cache[key] = value
        }
        return value
    }
}
