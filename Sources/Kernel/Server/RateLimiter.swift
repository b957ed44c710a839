import Foundation
import Synchronization

/// Per-client token buckets: each client (an IP address) may send `burst` requests at once and
/// `perSecond` more every second. A refused request learns how many seconds to wait (`Retry-After`).
/// The table keeps at most `maxClients` clients; when full, clients whose bucket has refilled are
/// forgotten first (they lose nothing), then the oldest.
public final class RateLimiter: Sendable {
    public let perSecond: Double
    public let burst: Double
    let maxClients: Int
    private let clock: @Sendable () -> Double
    private struct Bucket {
        var tokens: Double
        var updated: Double
    }
    private let buckets = Mutex<[String: Bucket]>([:])

    public init(perSecond: Double, burst: Double, maxClients: Int = 100_000, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.perSecond = perSecond
        self.burst = burst
        self.maxClients = maxClients
        self.clock = clock
    }

    /// Takes one request from `client`'s bucket: nil when allowed, else the whole seconds to wait.
    public func take(_ client: String) -> Int? {
        let now = clock()
        return buckets.withLock { table -> Int? in
            var bucket = table[client] ?? Bucket(tokens: burst, updated: now)
            bucket.tokens = min(burst, bucket.tokens + max(0, now - bucket.updated) * perSecond)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                table[client] = bucket
                return max(1, Int(((1 - bucket.tokens) / perSecond).rounded(.up)))
            }
            bucket.tokens -= 1
            if table[client] == nil, table.count >= maxClients { Self.evict(&table, now: now, perSecond: perSecond, burst: burst) }
            table[client] = bucket
            return nil
        }
    }

    private static func evict(_ table: inout [String: Bucket], now: Double, perSecond: Double, burst: Double) {
        let refilled = table.filter { $0.value.tokens + (now - $0.value.updated) * perSecond >= burst }.map(\.key)
        for key in refilled { table.removeValue(forKey: key) }
        if table.count >= 1, refilled.isEmpty, let oldest = table.min(by: { $0.value.updated < $1.value.updated })?.key {
            table.removeValue(forKey: oldest)
        }
    }
}
