import AsyncHTTPClient
import Foundation
import LedgerCore
import Node
import NIOCore
import Synchronization

/// A small etcd v3 client over its gRPC API (etcd 3.4+; HTTP/2 with prior knowledge, messages
/// written and read by hand in `Protobuf`). Endpoints are tried in order, so a client keeps working
/// while one member of the cluster is down. (The JSON gateway at `/v3/...` costs etcd about twice
/// the CPU per request: it re-encodes every request and answer and calls the gRPC server itself.)
public struct EtcdClient: Sendable {
    public let endpoints: [String]
    public let timeout: TimeAmount


    public init(endpoints: [String], timeout: TimeAmount = .seconds(10)) {
        self.endpoints = endpoints.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.timeout = timeout
    }

    /// The member that answered last is asked first next time.
    private let preferred = Preferred()
    final class Preferred: Sendable {
        let index = Atomic<Int>(0)
    }

    /// The endpoints, the last one that answered first.
    var ordered: [(Int, String)] {
        let start = preferred.index.load(ordering: .relaxed) % max(endpoints.count, 1)
        return (0..<endpoints.count).map { i in let j = (start + i) % endpoints.count; return (j, endpoints[j]) }
    }

    /// A key-value pair with its revisions (etcd `mvccpb.KeyValue`).
    public struct KeyValue: Sendable, Hashable {
        public let key: String
        public let value: [UInt8]
        public let createRevision: Int64
        public let modRevision: Int64
        public let version: Int64
        public let lease: Int64

        init(protobuf: ArraySlice<UInt8>) throws(LedgerError) {
            var key: ArraySlice<UInt8> = [], value: ArraySlice<UInt8> = []
            var create: Int64 = 0, mod: Int64 = 0, version: Int64 = 0, lease: Int64 = 0
            for (field, v) in try Protobuf.fields(protobuf) {
                switch field {
                case 1: key = v.data
                case 2: create = v.int
                case 3: mod = v.int
                case 4: version = v.int
                case 5: value = v.data
                case 6: lease = v.int
                default: break
                }
            }
            self.key = String(decoding: key, as: UTF8.self)
            self.value = Array(value)
            createRevision = create
            modRevision = mod
            self.version = version
            self.lease = lease
        }
    }

    /// One change seen by a watch.
    public struct WatchEvent: Sendable, Hashable {
        public enum Kind: Sendable { case put, delete }
        public let kind: Kind
        public let kv: KeyValue
    }

    /// The end of the range of keys starting with `prefix` (the prefix with its last byte + 1).
    static func rangeEnd(_ prefix: String) -> [UInt8] {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return bytes
            }
            bytes.removeLast()
        }
        return [0]
    }

    /// The fields of a response, and the store revision of its header (field 1, `ResponseHeader`).
    struct Response {
        let fields: [(field: Int, value: Protobuf.Value)]
        var header: [(field: Int, value: Protobuf.Value)] { (try? Protobuf.fields(self[1]?.data ?? [])) ?? [] }
        var revision: Int64 { header.first { $0.field == 3 }?.value.int ?? 0 }
        subscript(field: Int) -> Protobuf.Value? { fields.first { $0.field == field }?.value }
        func all(_ field: Int) -> [Protobuf.Value] { fields.filter { $0.field == field }.map(\.value) }
    }

    /// Calls a unary method (`/etcdserverpb.Service/Method`) on the first member that answers: a
    /// member that cannot serve (no leader, unreachable) is skipped, any other failure is `etcd_error`,
    /// and no answer at all is `etcd_unavailable`.
    func unary(_ method: String, _ request: Protobuf) async throws -> Response {
        var lastError = "no endpoints"
        for (index, endpoint) in ordered {
            do {
                let answer = try await Self.withDeadline(timeout) {
                    let connection = try await GRPCConnection.to(endpoint, connectTimeout: .seconds(1))
                    return try await connection.call(method) { messages, send in
                        try await send(request.bytes, true)
                        var messages = messages
                        guard let answer = try await messages.next() else { throw LedgerError("etcd_error", "\(method): no answer") }
                        while try await messages.next() != nil {}
                        return answer
                    }
                }
                preferred.index.store(index, ordering: .relaxed)
                return Response(fields: try Protobuf.fields(answer[...]))
            } catch let status as GRPCStatusError where !status.memberUnavailable {
                throw LedgerError("etcd_error", "\(method): \(status.message)")
            } catch let error as LedgerError where error.code == "etcd_error" {
                throw error
            } catch {
                // A cancelled caller stops here rather than trying the other members.
                try Task.checkCancellation()
                lastError = "\(endpoint): \(error)"
            }
        }
        throw LedgerError("etcd_unavailable", "no etcd endpoint answered (\(lastError))")
    }

    /// `body`, failing with `etcd_unavailable` if it takes longer than `limit`. The caller gets its
    /// answer at the deadline (or at once when it is cancelled) even if `body` is stuck somewhere that
    /// does not heed cancellation (an event-loop future, a stream stalled by a half-open connection):
    /// `body` runs in a task of its own, cancelled then and left to end when its connection does.
    static func withDeadline<T: Sendable>(_ limit: TimeAmount, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let first = FirstResult<T>()
        let work = Task {
            do { first.finish(.success(try await body())) } catch { first.finish(.failure(error)) }
        }
        let timer = Task {
            try? await Task.sleep(nanoseconds: UInt64(limit.nanoseconds))
            first.finish(.failure(LedgerError("etcd_unavailable", "no answer within \(limit.nanoseconds / 1_000_000) ms")))
        }
        defer {
            work.cancel()
            timer.cancel()
        }
        return try await withTaskCancellationHandler {
            try await first.value()
        } onCancel: {
            first.finish(.failure(CancellationError()))
        }
    }

    static func put(_ key: String, _ value: [UInt8], lease: Int64?) -> Protobuf {
        Protobuf {
            $0.string(1, key)
            $0.bytes(2, value)
            $0.int(3, lease ?? 0)
        }
    }

    static func range(_ key: [UInt8], end: [UInt8]?, limit: Int) -> Protobuf {
        Protobuf {
            $0.bytes(1, key)
            if let end { $0.bytes(2, end) }
            $0.int(3, Int64(limit))
        }
    }

    /// A `Compare` of a transaction: `target` 1 = CREATE (with `create_revision`), 3 = VALUE; `result` 0 = EQUAL, 2 = LESS.
    static func compare(_ key: String, target: Int64, result: Int64 = 0, createRevision: Int64? = nil, value: [UInt8]? = nil) -> Protobuf {
        Protobuf {
            $0.int(1, result)
            $0.int(2, target)
            $0.string(3, key)
            if let createRevision { $0.int(5, createRevision, always: true) }
            if let value { $0.bytes(7, value) }
        }
    }

    /// A transaction of `compare` then `success` (`RequestOp`s); answers whether the comparisons held.
    func txn(compare: [Protobuf], success: [Protobuf]) async throws -> Bool {
        let answer = try await unary("/etcdserverpb.KV/Txn", Protobuf { t in
            for c in compare { t.message(1, c) }
            for op in success { t.message(2, op) }
        })
        return answer[2]?.int == 1
    }

    static func putOp(_ key: String, _ value: [UInt8], lease: Int64? = nil) -> Protobuf { Protobuf { $0.message(2, put(key, value, lease: lease)) } }
    static func deleteOp(_ key: String) -> Protobuf { Protobuf { $0.message(3, Protobuf { $0.string(1, key) }) } }

    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: Int64? = nil) async throws -> Int64 {
        try await unary("/etcdserverpb.KV/Put", Self.put(key, value, lease: lease)).revision
    }

    public func get(_ key: String) async throws -> KeyValue? {
        try await unary("/etcdserverpb.KV/Range", Self.range(Array(key.utf8), end: nil, limit: 0)).all(2).first.map { try KeyValue(protobuf: $0.data) }
    }

    /// The keys starting with `prefix`, in key order, and the store revision they were read at.
    public func range(prefix: String, limit: Int = 0) async throws -> (kvs: [KeyValue], revision: Int64) {
        let answer = try await unary("/etcdserverpb.KV/Range", Self.range(Array(prefix.utf8), end: Self.rangeEnd(prefix), limit: limit))
        return (try answer.all(2).map { try KeyValue(protobuf: $0.data) }, answer.revision)
    }

    /// The keys from `start` (inclusive) to the end of `prefix`, in key order.
    public func range(from start: String, withinPrefix prefix: String, limit: Int = 0) async throws -> (kvs: [KeyValue], revision: Int64) {
        let answer = try await unary("/etcdserverpb.KV/Range", Self.range(Array(start.utf8), end: Self.rangeEnd(prefix), limit: limit))
        return (try answer.all(2).map { try KeyValue(protobuf: $0.data) }, answer.revision)
    }

    /// Writes `key` only if it does not exist (a transaction comparing its create revision with 0);
    /// answers whether this call created it. Exactly one of several concurrent callers wins.
    public func createIfAbsent(_ key: String, _ value: [UInt8], lease: Int64? = nil) async throws -> Bool {
        try await txn(compare: [Self.compare(key, target: 1, createRevision: 0)], success: [Self.putOp(key, value, lease: lease)])
    }

    /// Creates `key` only if it does not exist and `guardKey`'s value sorts before `below` (both compared
    /// as bytes in one transaction).
    public func createIfAbsent(_ key: String, _ value: [UInt8], whileValueOf guardKey: String, isLessThan below: String) async throws -> Bool {
        try await txn(
            compare: [Self.compare(key, target: 1, createRevision: 0), Self.compare(guardKey, target: 3, result: 2, value: Array(below.utf8))],
            success: [Self.putOp(key, value)])
    }

    /// Deletes `key` only if its value is still `expected` (used to give up a role one holds).
    public func deleteIfValue(_ key: String, _ expected: [UInt8]) async throws -> Bool {
        try await txn(compare: [Self.compare(key, target: 3, value: expected)], success: [Self.deleteOp(key)])
    }

    /// Deletes the keys in [`start`, `end`) in one request; answers how many went.
    @discardableResult
    public func deleteRange(from start: String, to end: String) async throws -> Int64 {
        try await unary("/etcdserverpb.KV/DeleteRange", Protobuf {
            $0.string(1, start)
            $0.string(2, end)
        })[2]?.int ?? 0
    }

    /// Deletes these keys in one transaction (absent ones are ignored).
    public func delete(keys: [String]) async throws {
        guard !keys.isEmpty else { return }
        _ = try await txn(compare: [], success: keys.map(Self.deleteOp))
    }

    public func grantLease(ttlSeconds: Int64) async throws -> Int64 {
        let answer = try await unary("/etcdserverpb.Lease/LeaseGrant", Protobuf { $0.int(1, ttlSeconds) })
        let id = answer[2]?.int ?? 0
        guard id != 0 else { throw LedgerError("etcd_error", "no lease granted: \(String(decoding: answer[4]?.data ?? [], as: UTF8.self))") }
        return id
    }

    /// Refreshes a lease; answers its remaining TTL (0 when it has expired).
    public func keepAlive(lease: Int64) async throws -> Int64 {
        try await unary("/etcdserverpb.Lease/LeaseKeepAlive", Protobuf { $0.int(1, lease) })[3]?.int ?? 0
    }

    public func revoke(lease: Int64) async throws {
        _ = try await unary("/etcdserverpb.Lease/LeaseRevoke", Protobuf { $0.int(1, lease) })
    }

    /// Drops the history before `revision` (what etcd keeps stops growing); physical, so space is reclaimed.
    public func compact(revision: Int64) async throws {
        _ = try await unary("/etcdserverpb.KV/Compact", Protobuf {
            $0.int(1, revision)
            $0.bool(2, true)
        })
    }

    /// The answering member's view: its id, the leader's id (decimal), the store revision.
    public func status() async throws -> (member: String, leader: String, revision: Int64) {
        let s = try await unary("/etcdserverpb.Maintenance/Status", Protobuf())
        let member = s.header.first { $0.field == 2 }?.value.int ?? 0
        return (String(UInt64(bitPattern: member)), String(UInt64(bitPattern: s[4]?.int ?? 0)), s.revision)
    }

    /// Changes to the keys starting with `prefix` from `revision` on, as they happen; the stream ends
    /// with an error if the connection drops or the revision was compacted (re-read with `range`, then watch again).
    public func watch(prefix: String, fromRevision revision: Int64) -> AsyncThrowingStream<[WatchEvent], any Error> {
        let (stream, continuation) = AsyncThrowingStream<[WatchEvent], any Error>.makeStream()
        let task = Task {
            do {
                try await runWatch(prefix: prefix, fromRevision: revision, continuation: continuation)
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private func runWatch(prefix: String, fromRevision revision: Int64, continuation: AsyncThrowingStream<[WatchEvent], any Error>.Continuation)
        async throws
    {
        let create = Protobuf {
            $0.message(1, Protobuf {
                $0.string(1, prefix)
                $0.bytes(2, Self.rangeEnd(prefix))
                $0.int(3, revision)
            })
        }
        var lastError = "no endpoints"
        for (_, endpoint) in ordered {
            let connection: GRPCConnection
            do {
                connection = try await GRPCConnection.to(endpoint, connectTimeout: .seconds(1))
            } catch {
                lastError = "\(endpoint): \(error)"
                continue
            }
            do {
                try await connection.call("/etcdserverpb.Watch/Watch") { messages, send in
                    try await send(create.bytes, false)
                    var messages = messages
                    while let message = try await messages.next() {
                        let answer = Response(fields: try Protobuf.fields(message[...]))
                        if answer[4]?.int == 1 {
                            let compacted = answer[5]?.int ?? 0
                            let reason = String(decoding: answer[6]?.data ?? [], as: UTF8.self)
                            throw LedgerError(
                                compacted > 0 ? "etcd_compacted" : "etcd_error",
                                "watch canceled\(compacted > 0 ? ": history compacted up to \(compacted)" : reason.isEmpty ? "" : ": \(reason)")")
                        }
                        let events = try answer.all(11).map { e throws(LedgerError) -> WatchEvent in
                            let fields = Response(fields: try Protobuf.fields(e.data))
                            return WatchEvent(kind: fields[1]?.int == 1 ? .delete : .put, kv: try KeyValue(protobuf: fields[2]?.data ?? []))
                        }
                        if !events.isEmpty { continuation.yield(events) }
                    }
                }
            } catch let status as GRPCStatusError {
                throw LedgerError("etcd_error", "watch: \(status.message)")
            }
            return
        }
        throw LedgerError("etcd_unavailable", "no etcd endpoint answered the watch (\(lastError))")
    }
}

/// The first of several results (an answer, a timeout, a cancellation); the later ones are dropped.
final class FirstResult<T: Sendable>: Sendable {
    private let state = Mutex<(waiting: CheckedContinuation<T, any Error>?, result: Result<T, any Error>?)>((nil, nil))

    func finish(_ result: Result<T, any Error>) {
        let waiting = state.withLock { s -> CheckedContinuation<T, any Error>? in
            guard s.result == nil else { return nil }
            s.result = result
            defer { s.waiting = nil }
            return s.waiting
        }
        waiting?.resume(with: result)
    }

    func value() async throws -> T {
        try await withCheckedThrowingContinuation { c in
            let result = state.withLock { s -> Result<T, any Error>? in
                if s.result == nil { s.waiting = c }
                return s.result
            }
            if let result { c.resume(with: result) }
        }
    }
}
