import AsyncHTTPClient
import Foundation
import LedgerCore
import NIOCore
import NIOPosix
import Synchronization

/// The benchmarks' load generator, one for every bench, in two forms that answer the same `Result`:
/// - `workers`: `workers` tasks take items from a shared cursor and each does one item's work (a
///   request through `post`, the general HTTP client), timing every item;
/// - `lean`: a lean HTTP/1.1 client (in the manner of `wrk`): `connections` keep-alive connections on
///   one event-loop thread of their own, each sending the next prepared request as soon as the
///   previous answer is complete. It parses only the status line and `Content-Length`, so that on a
///   2-core machine most of the CPU is left to the node being measured (for a route cheaper than a
///   general HTTP client's own work).
enum BenchLoad {
    static let contentLength = Array("content-length:".utf8)
    static let statusOK = Array("HTTP/1.1 200".utf8)

    struct Result {
        /// Units of work done (requests, or what each answered: transactions committed, packs verified).
        let done: Int
        /// Items that failed.
        let failed: Int
        let seconds: Double
        /// Each item's latency in milliseconds, sorted.
        let latencies: [Double]
    }

    /// Runs `workers` tasks taking the indices 0..<count from a shared cursor. `body` answers the units
    /// of work item i did, or nil for a failure; each item's latency is recorded.
    static func workers(count: Int, workers: Int, _ body: @escaping @Sendable (Int) async throws -> Int?) async throws -> Result {
        let cursor = Cursor()
        let start = ContinuousClock.now
        let parts = try await withThrowingTaskGroup(of: (latencies: [Double], units: Int, failed: Int).self) { group in
            for _ in 0..<workers {
                group.addTask {
                    var local: [Double] = []
                    var units = 0, failed = 0
                    while true {
                        let i = cursor.next.wrappingAdd(1, ordering: .relaxed).oldValue
                        guard i < count else { break }
                        let t0 = ContinuousClock.now
                        let result = try await body(i)
                        local.append((ContinuousClock.now - t0) / .milliseconds(1))
                        if let result { units += result } else { failed += 1 }
                    }
                    return (local, units, failed)
                }
            }
            return try await group.reduce(into: [(latencies: [Double], units: Int, failed: Int)]()) { $0.append($1) }
        }
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        return Result(
            done: parts.map(\.units).reduce(0, +), failed: parts.map(\.failed).reduce(0, +), seconds: seconds,
            latencies: parts.flatMap(\.latencies).sorted())
    }

    /// The next item of `workers`.
    final class Cursor: Sendable {
        let next = Atomic<Int>(0)
    }

    /// POSTs `body` (JSON) to `url`, with a bearer token when given: the status and the answer's bytes.
    static func post(_ url: String, _ body: [UInt8], token: String? = nil) async throws -> (status: Int, body: [UInt8]) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        let bytes = try await response.body.collect(upTo: 256 * 1024 * 1024)
        return (Int(response.status.code), Array(bytes.readableBytesView))
    }

    /// Sends `count` requests, request `i` being `requests[i % requests.count]` (complete HTTP/1.1
    /// requests with keep-alive), to `host:port`. An answer counts as done when its status is 200 and
    /// its body contains `expect`.
    static func lean(host: String, port: Int, requests: [[UInt8]], expect: [UInt8], connections: Int, count: Int) async throws -> Result {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let result = try await run(group: group, host: host, port: port, requests: requests, expect: expect, connections: connections, count: count)
            try? await group.shutdownGracefully()
            return result
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private static func run(
        group: MultiThreadedEventLoopGroup, host: String, port: Int, requests: [[UInt8]], expect: [UInt8], connections: Int, count: Int
    ) async throws -> Result {
        let shared = Shared(requests: requests.map { ByteBuffer(bytes: $0) }, expect: expect, count: count)
        let start = ContinuousClock.now
        var channels: [any Channel] = []
        for _ in 0..<max(1, min(connections, count)) {
            let channel = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Connection(shared: shared)) }
                }
                .connect(host: host, port: port).get()
            channels.append(channel)
        }
        for channel in channels { try await channel.closeFuture.get() }
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        return shared.state.withLock { s in Result(done: s.done, failed: s.failed, seconds: seconds, latencies: s.latencies.sorted()) }
    }

    final class Shared: Sendable {
        let requests: [ByteBuffer]
        let expect: [UInt8]
        let count: Int
        let issued = Atomic<Int>(0)
        struct State {
            var done = 0
            var failed = 0
            var latencies: [Double] = []
        }
        let state = Mutex(State())

        init(requests: [ByteBuffer], expect: [UInt8], count: Int) {
            self.requests = requests
            self.expect = expect
            self.count = count
        }
    }

    final class Connection: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let shared: Shared
        var answer = ByteBuffer()
        var sentAt = NIODeadline.now()
        var latencies: [Double] = []
        var done = 0
        var failed = 0

        init(shared: Shared) { self.shared = shared }

        func channelActive(context: ChannelHandlerContext) { sendNext(context) }

        func sendNext(_ context: ChannelHandlerContext) {
            let ticket = shared.issued.add(1, ordering: .relaxed).oldValue
            guard ticket < shared.count else {
                context.close(promise: nil)
                return
            }
            sentAt = .now()
            context.writeAndFlush(wrapOutboundOut(shared.requests[ticket % shared.requests.count]), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            // Usually an answer arrives whole in one read: keep that buffer rather than copy it.
            if answer.readableBytes == 0 { answer = bytes } else { answer.writeBuffer(&bytes) }
            guard let ok = takeAnswer() else { return }
            latencies.append(Double((NIODeadline.now() - sentAt).nanoseconds) / 1e6)
            if ok { done += 1 } else { failed += 1 }
            sendNext(context)
        }

        func channelInactive(context: ChannelHandlerContext) {
            shared.state.withLock { s in
                s.done += done
                s.failed += failed
                s.latencies += latencies
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            failed += 1
            context.close(promise: nil)
        }

        /// Removes one complete answer from the buffer: nil while it is incomplete, else whether it was a 200 whose body holds `expect`.
        func takeAnswer() -> Bool? {
            let expect = shared.expect
            let taken = answer.withUnsafeReadableBytes { b -> (consumed: Int, ok: Bool)? in
                let n = b.count
                var headEnd = 0
                var i = 3
                while i < n {
                    if b[i] == 10, b[i - 1] == 13, b[i - 2] == 10, b[i - 3] == 13 {
                        headEnd = i + 1
                        break
                    }
                    i += 1
                }
                guard headEnd > 0 else { return nil }
                // Content-Length, its name without regard to case, at the start of a header line.
                let name = BenchLoad.contentLength
                var length = 0
                var line = 0
                while line < headEnd {
                    var k = 0
                    while k < name.count, line + k < headEnd, b[line + k] | (b[line + k] >= 65 && b[line + k] <= 90 ? 32 : 0) == name[k] { k += 1 }
                    if k == name.count {
                        var d = line + k
                        while d < headEnd, b[d] == 32 { d += 1 }
                        while d < headEnd, b[d] >= 48, b[d] <= 57 {
                            length = length * 10 + Int(b[d] - 48)
                            d += 1
                        }
                    }
                    while line < headEnd, b[line] != 10 { line += 1 }
                    line += 1
                }
                guard n - headEnd >= length else { return nil }
                let status = BenchLoad.statusOK
                var ok = n >= status.count && (0..<status.count).allSatisfy { b[$0] == status[$0] }
                if ok, let first = expect.first {
                    ok = false
                    var j = headEnd
                    while j + expect.count <= headEnd + length {
                        if b[j] == first, (1..<expect.count).allSatisfy({ b[j + $0] == expect[$0] }) {
                            ok = true
                            break
                        }
                        j += 1
                    }
                }
                return (headEnd + length, ok)
            }
            guard let taken else { return nil }
            answer.moveReaderIndex(forwardBy: taken.consumed)
            return taken.ok
        }
    }
}
