import Foundation
import LedgerCore
import Node
import Synchronization

/// The building blocks of ordering through etcd: one decision per height,
/// made with a compare-and-swap that only succeeds while the height is free, and a leader elected with
/// a lease. Keys live under `/careledger/<chain id>/`.
public struct EtcdBlockLog: Sendable {
    public let client: EtcdClient
    public let prefix: String

    public init(client: EtcdClient, chainID: String) {
        self.client = client
        prefix = "/careledger/\(chainID)/"
    }

    public var blocksPrefix: String { prefix + "blocks/" }

    /// Heights as fixed-width decimals, so that key order is height order.
    public func key(height: UInt64) -> String { blocksPrefix + Self.padded(height) }

    public func height(ofKey key: String) -> UInt64? { key.hasPrefix(blocksPrefix) ? UInt64(key.dropFirst(blocksPrefix.count)) : nil }

    /// Proposes `entry` for `height`; answers whether it was decided by this call. Whatever happens,
    /// at most one entry is ever decided for a height.
    /// The lowest height etcd still holds (heights below were compacted away); proposals must be above it.
    public var floorKey: String { prefix + "floor" }

    static func padded(_ height: UInt64) -> String {
        let s = String(height)
        return String(repeating: "0", count: 20 - s.count) + s
    }

    /// `floorExists`: the caller has seen the floor key created (it is never deleted), which saves a
    /// write through Raft per proposal; without it, a missing floor would make the proposal fail.
    public func propose(height: UInt64, entry: [UInt8], floorExists: Bool = false) async throws -> Bool {
        // The floor starts at 0 (created once); a compacted height can never be decided again.
        if !floorExists { _ = try await client.createIfAbsent(floorKey, Array(Self.padded(0).utf8)) }
        return try await client.createIfAbsent(key(height: height), entry, whileValueOf: floorKey, isLessThan: Self.padded(height))
    }

    /// The decided entries from `height` on, in height order (at most `limit`, 0 = all), and the revision read at.
    public func entries(from height: UInt64, limit: Int = 0) async throws -> (entries: [(height: UInt64, entry: [UInt8])], revision: Int64) {
        let (kvs, revision) = try await client.range(from: key(height: height), withinPrefix: blocksPrefix, limit: limit)
        return (kvs.compactMap { kv in self.height(ofKey: kv.key).map { ($0, kv.value) } }, revision)
    }

    /// Decided entries as they are decided (after `revision`).
    public func watch(fromRevision revision: Int64) -> AsyncThrowingStream<[(height: UInt64, entry: [UInt8])], any Error> {
        let log = self
        let (stream, continuation) = AsyncThrowingStream<[(height: UInt64, entry: [UInt8])], any Error>.makeStream()
        let task = Task {
            do {
                for try await events in log.client.watch(prefix: log.blocksPrefix, fromRevision: revision) {
                    let decided = events.compactMap { e -> (height: UInt64, entry: [UInt8])? in
                        guard e.kind == .put, e.kv.version == 1, let h = log.height(ofKey: e.kv.key) else { return nil }
                        return (h, e.kv.value)
                    }
                    if !decided.isEmpty { continuation.yield(decided) }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Forgets etcd's history of entries up to `height` (they are in every node's own store by then):
    /// deletes nothing that is still needed, and compacts the revisions before the current one.
    public func compact(keepingFrom height: UInt64) async throws {
        // First raise the floor, so that no proposal for a height about to be deleted can succeed.
        try await client.put(floorKey, Array(Self.padded(height - 1).utf8))
        try await client.deleteRange(from: key(height: 0), to: key(height: height))
        try await client.compact(revision: try await client.status().revision)
    }
}

/// Leader election with a lease: the leader's id is written under `<prefix>leader` only if absent,
/// attached to a lease that the leader keeps alive; when it stops (crash, partition) the lease expires,
/// the key disappears and another candidate wins.
public struct EtcdElection: Sendable {
    public let client: EtcdClient
    public let key: String
    public let ttlSeconds: Int64

    public init(client: EtcdClient, chainID: String, ttlSeconds: Int64 = 3) {
        self.client = client
        key = "/careledger/\(chainID)/leader"
        self.ttlSeconds = ttlSeconds
    }

    /// The current leader's id, if there is one.
    public func leader() async throws -> String? {
        try await client.get(key).map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// One attempt to become leader; answers the lease that holds the role, or nil when someone else leads.
    public func tryLead(as id: String) async throws -> Int64? {
        let lease = try await client.grantLease(ttlSeconds: ttlSeconds)
        if try await client.createIfAbsent(key, Array(id.utf8), lease: lease) { return lease }
        try? await client.revoke(lease: lease)
        return nil
    }

    /// Refreshes leadership; false when the lease expired (the role is lost: stop acting as leader).
    public func renew(lease: Int64) async throws -> Bool { try await client.keepAlive(lease: lease) > 0 }

    /// Gives the role up at once (the lease and the key go).
    public func resign(lease: Int64) async throws { try await client.revoke(lease: lease) }
}

/// A consortium's ordering service: blocks proposed by an elected leader through the etcd cluster at
/// `endpoints`, applied and certified by every node (`EtcdOrderer`).
public struct EtcdOrderingService: Ordering {
    public let endpoints: [String]

    public init(endpoints: [String]) { self.endpoints = endpoints }

    public var name: String { "etcd" }
    public var isSolo: Bool { false }

    public func run(_ node: LedgerNode) async {
        await EtcdOrderer(node: node, client: EtcdClient(endpoints: endpoints, timeout: .seconds(3))).run()
    }

    public func leader(_ node: LedgerNode) async throws -> String? {
        try await EtcdElection(client: EtcdClient(endpoints: endpoints, timeout: .seconds(2)), chainID: node.genesis.chainID).leader()
    }
}
