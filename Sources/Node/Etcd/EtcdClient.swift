import AsyncHTTPClient
import Foundation
import LedgerCore
import NIOCore
import Synchronization

/// A small etcd v3 client over its JSON gateway (`/v3/...`, etcd 3.4+): keys and values are bytes
/// (base64 on the wire), 64-bit numbers are decimal strings. Endpoints are tried in order, so a
/// client keeps working while one member of the cluster is down.
public struct EtcdClient: Sendable {
    public let endpoints: [String]
    public let timeout: TimeAmount

    /// The HTTP client for etcd: watches hold a connection each for as long as they run, so the pool
    /// allows many per member (the shared client's 8 per host would be taken by a few watches).
    static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 512)
        // A member that is down refuses at once: move on to the next one instead of retrying it until the deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(1)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

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

        init(json: JSONValue) throws(LedgerError) {
            key = String(decoding: try Base64.decode(json["key"]?.stringValue ?? ""), as: UTF8.self)
            value = try Base64.decode(json["value"]?.stringValue ?? "")
            createRevision = EtcdClient.int(json["create_revision"])
            modRevision = EtcdClient.int(json["mod_revision"])
            version = EtcdClient.int(json["version"])
            lease = EtcdClient.int(json["lease"])
        }
    }

    /// One change seen by a watch.
    public struct WatchEvent: Sendable, Hashable {
        public enum Kind: Sendable { case put, delete }
        public let kind: Kind
        public let kv: KeyValue
    }

    /// gRPC-gateway JSON writes int64 as strings and leaves out zeros.
    static func int(_ value: JSONValue?) -> Int64 {
        switch value {
        case .string(let s)?: return Int64(s) ?? 0
        case .int(let i)?: return i
        default: return 0
        }
    }

    static func b64(_ s: String) -> JSONValue { .string(Base64.encode(Array(s.utf8))) }

    /// The end of the range of keys starting with `prefix` (the prefix with its last byte + 1).
    static func rangeEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return Base64.encode(bytes)
            }
            bytes.removeLast()
        }
        return Base64.encode([0])
    }

    /// POSTs to the first endpoint that answers; a gateway error becomes `etcd_error`, no answer at all `etcd_unavailable`.
    public func call(_ path: String, _ body: JSONValue) async throws -> JSONValue {
        var lastError = "no endpoints"
        for (index, endpoint) in ordered {
            var request = HTTPClientRequest(url: endpoint + path)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body.canonicalBytes))
            let status: UInt
            let bytes: [UInt8]
            do {
                let response = try await Self.http.execute(request, timeout: timeout)
                status = response.status.code
                bytes = Array(try await response.body.collect(upTo: 64 * 1024 * 1024).readableBytesView)
            } catch {
                lastError = "\(endpoint): \(error)"
                continue
            }
            let json = (try? JSONValue.parse(bytes)) ?? .null
            guard status == 200 else {
                let message = json["message"]?.stringValue ?? json["error"]?.stringValue ?? String(decoding: bytes.prefix(200), as: UTF8.self)
                // A member without a leader cannot serve; another member may.
                if status >= 500 {
                    lastError = "\(endpoint): \(message)"
                    continue
                }
                throw LedgerError("etcd_error", "\(path): \(message)")
            }
            preferred.index.store(index, ordering: .relaxed)
            return json
        }
        throw LedgerError("etcd_unavailable", "no etcd endpoint answered (\(lastError))")
    }

    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: Int64? = nil) async throws -> Int64 {
        var body: [String: JSONValue] = ["key": Self.b64(key), "value": .string(Base64.encode(value))]
        if let lease { body["lease"] = .string(String(lease)) }
        return Self.int(try await call("/v3/kv/put", .object(body))["header"]?["revision"])
    }

    public func get(_ key: String) async throws -> KeyValue? {
        try await call("/v3/kv/range", .object(["key": Self.b64(key)]))["kvs"]?.arrayValue?.first.map { try KeyValue(json: $0) }
    }

    /// The keys starting with `prefix`, in key order, and the store revision they were read at.
    public func range(prefix: String, limit: Int = 0) async throws -> (kvs: [KeyValue], revision: Int64) {
        var body: [String: JSONValue] = ["key": Self.b64(prefix), "range_end": .string(Self.rangeEnd(prefix))]
        if limit > 0 { body["limit"] = .string(String(limit)) }
        let answer = try await call("/v3/kv/range", .object(body))
        let kvs = try (answer["kvs"]?.arrayValue ?? []).map { try KeyValue(json: $0) }
        return (kvs, Self.int(answer["header"]?["revision"]))
    }

    /// The keys from `start` (inclusive) to the end of `prefix`, in key order.
    public func range(from start: String, withinPrefix prefix: String, limit: Int = 0) async throws -> (kvs: [KeyValue], revision: Int64) {
        var body: [String: JSONValue] = ["key": Self.b64(start), "range_end": .string(Self.rangeEnd(prefix))]
        if limit > 0 { body["limit"] = .string(String(limit)) }
        let answer = try await call("/v3/kv/range", .object(body))
        let kvs = try (answer["kvs"]?.arrayValue ?? []).map { try KeyValue(json: $0) }
        return (kvs, Self.int(answer["header"]?["revision"]))
    }

    /// Writes `key` only if it does not exist (a transaction comparing its create revision with 0);
    /// answers whether this call created it. Exactly one of several concurrent callers wins.
    public func createIfAbsent(_ key: String, _ value: [UInt8], lease: Int64? = nil) async throws -> Bool {
        var put: [String: JSONValue] = ["key": Self.b64(key), "value": .string(Base64.encode(value))]
        if let lease { put["lease"] = .string(String(lease)) }
        let answer = try await call(
            "/v3/kv/txn",
            .object([
                "compare": .array([.object(["key": Self.b64(key), "target": .string("CREATE"), "create_revision": .string("0")])]),
                "success": .array([.object(["request_put": .object(put)])]),
            ]))
        return answer["succeeded"]?.boolValue == true
    }

    /// Creates `key` only if it does not exist and `guardKey`'s value sorts before `below` (both compared
    /// as bytes in one transaction).
    public func createIfAbsent(_ key: String, _ value: [UInt8], whileValueOf guardKey: String, isLessThan below: String) async throws -> Bool {
        let answer = try await call(
            "/v3/kv/txn",
            .object([
                "compare": .array([
                    .object(["key": Self.b64(key), "target": .string("CREATE"), "create_revision": .string("0")]),
                    .object(["key": Self.b64(guardKey), "target": .string("VALUE"), "result": .string("LESS"), "value": Self.b64(below)]),
                ]),
                "success": .array([.object(["request_put": .object(["key": Self.b64(key), "value": .string(Base64.encode(value))])])]),
            ]))
        return answer["succeeded"]?.boolValue == true
    }

    /// Deletes `key` only if its value is still `expected` (used to give up a role one holds).
    public func deleteIfValue(_ key: String, _ expected: [UInt8]) async throws -> Bool {
        let answer = try await call(
            "/v3/kv/txn",
            .object([
                "compare": .array([.object(["key": Self.b64(key), "target": .string("VALUE"), "value": .string(Base64.encode(expected))])]),
                "success": .array([.object(["request_delete_range": .object(["key": Self.b64(key)])])]),
            ]))
        return answer["succeeded"]?.boolValue == true
    }

    /// Deletes the keys in [`start`, `end`) in one request; answers how many went.
    @discardableResult
    public func deleteRange(from start: String, to end: String) async throws -> Int64 {
        Self.int(try await call("/v3/kv/deleterange", .object(["key": Self.b64(start), "range_end": Self.b64(end)]))["deleted"])
    }

    /// Deletes these keys in one transaction (absent ones are ignored).
    public func delete(keys: [String]) async throws {
        guard !keys.isEmpty else { return }
        _ = try await call(
            "/v3/kv/txn", .object(["success": .array(keys.map { .object(["request_delete_range": .object(["key": Self.b64($0)])]) })]))
    }

    public func grantLease(ttlSeconds: Int64) async throws -> Int64 {
        let id = Self.int(try await call("/v3/lease/grant", .object(["TTL": .string(String(ttlSeconds))]))["ID"])
        guard id != 0 else { throw LedgerError("etcd_error", "no lease granted") }
        return id
    }

    /// Refreshes a lease; answers its remaining TTL (0 when it has expired).
    public func keepAlive(lease: Int64) async throws -> Int64 {
        Self.int(try await call("/v3/lease/keepalive", .object(["ID": .string(String(lease))]))["result"]?["TTL"])
    }

    public func revoke(lease: Int64) async throws {
        _ = try await call("/v3/lease/revoke", .object(["ID": .string(String(lease))]))
    }

    /// Drops the history before `revision` (what etcd keeps stops growing); physical, so space is reclaimed.
    public func compact(revision: Int64) async throws {
        _ = try await call("/v3/kv/compaction", .object(["revision": .string(String(revision)), "physical": .bool(true)]))
    }

    /// The answering member's view: its id, the leader's id, the store revision.
    public func status() async throws -> (member: String, leader: String, revision: Int64) {
        let s = try await call("/v3/maintenance/status", .object([:]))
        return (s["header"]?["member_id"]?.stringValue ?? "", s["leader"]?.stringValue ?? "", Self.int(s["header"]?["revision"]))
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
        let body: JSONValue = .object([
            "create_request": .object([
                "key": Self.b64(prefix), "range_end": .string(Self.rangeEnd(prefix)), "start_revision": .string(String(revision)),
            ])
        ])
        var lastError = "no endpoints"
        for (_, endpoint) in ordered {
            var request = HTTPClientRequest(url: endpoint + "/v3/watch")
            request.method = .POST
            request.body = .bytes(ByteBuffer(bytes: body.canonicalBytes))
            let response: HTTPClientResponse
            do {
                response = try await Self.http.execute(request, timeout: .hours(24 * 365))
            } catch {
                lastError = "\(endpoint): \(error)"
                continue
            }
            guard response.status == .ok else { throw LedgerError("etcd_error", "watch answered \(response.status.code)") }
            var buffer: [UInt8] = []
            // Bytes of `buffer` already searched for a newline: a block's message (megabytes) arrives in
            // many chunks, and searching it from the start at each chunk was quadratic.
            var searched = 0
            for try await chunk in response.body {
                buffer.append(contentsOf: chunk.readableBytesView)
                while let newline = buffer[searched...].firstIndex(of: 0x0A) {
                    let line = Array(buffer[..<newline])
                    buffer.removeSubrange(...newline)
                    searched = 0
                    guard !line.isEmpty else { continue }
                    let message = try JSONValue.parse(line)
                    if let error = message["error"] { throw LedgerError("etcd_error", "watch: \(error["message"]?.stringValue ?? "error")") }
                    let result = message["result"] ?? .null
                    if result["canceled"]?.boolValue == true {
                        let compacted = Self.int(result["compact_revision"])
                        throw LedgerError(compacted > 0 ? "etcd_compacted" : "etcd_error", "watch canceled\(compacted > 0 ? ": history compacted up to \(compacted)" : "")")
                    }
                    let events = try (result["events"]?.arrayValue ?? []).map { e throws(LedgerError) in
                        WatchEvent(kind: e["type"]?.stringValue == "DELETE" ? .delete : .put, kv: try KeyValue(json: e["kv"] ?? .null))
                    }
                    if !events.isEmpty { continuation.yield(events) }
                }
                searched = buffer.count
            }
            return
        }
        throw LedgerError("etcd_unavailable", "no etcd endpoint answered the watch (\(lastError))")
    }
}
