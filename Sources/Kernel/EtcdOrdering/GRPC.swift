import LedgerCore
import Node
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import Synchronization

/// The protocol buffers wire format, as much of it as etcd's v3 API needs: varints, length-delimited
/// fields (bytes, strings, messages), and reading a message back as its fields.
struct Protobuf {
    private(set) var bytes: [UInt8] = []

    init() {}

    init(_ build: (inout Protobuf) -> Void) { build(&self) }

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// A varint field (int64, uint64, bool, enum); zero is written too when `always` (a oneof member).
    mutating func int(_ field: Int, _ value: Int64, always: Bool = false) {
        guard value != 0 || always else { return }
        varint(UInt64(field << 3))
        varint(UInt64(bitPattern: value))
    }

    mutating func bool(_ field: Int, _ value: Bool) { int(field, value ? 1 : 0) }

    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        varint(UInt64(field << 3 | 2))
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

    mutating func message(_ field: Int, _ value: Protobuf) { bytes(field, value.bytes) }

    /// One field of a message read back: a varint, or the bytes of a length-delimited field.
    enum Value {
        case varint(UInt64)
        case bytes(ArraySlice<UInt8>)

        var int: Int64 { if case .varint(let v) = self { Int64(bitPattern: v) } else { 0 } }
        var data: ArraySlice<UInt8> { if case .bytes(let b) = self { b } else { [] } }
    }

    /// The fields of an encoded message, in order (repeated fields appear once per element).
    static func fields(_ b: ArraySlice<UInt8>) throws(LedgerError) -> [(field: Int, value: Value)] {
        var out: [(field: Int, value: Value)] = []
        var i = b.startIndex
        func varint() throws(LedgerError) -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard i < b.endIndex, shift < 64 else { throw LedgerError("etcd_error", "malformed protobuf from etcd") }
                let byte = b[i]
                i += 1
                result |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return result }
                shift += 7
            }
        }
        while i < b.endIndex {
            let key = try varint()
            let field = Int(key >> 3)
            switch key & 7 {
            case 0: out.append((field, .varint(try varint())))
            case 1:
                guard b.endIndex - i >= 8 else { throw LedgerError("etcd_error", "malformed protobuf from etcd") }
                i += 8
            case 2:
                let length = Int(try varint())
                guard length >= 0, b.endIndex - i >= length else { throw LedgerError("etcd_error", "malformed protobuf from etcd") }
                out.append((field, .bytes(b[i..<i + length])))
                i += length
            case 5:
                guard b.endIndex - i >= 4 else { throw LedgerError("etcd_error", "malformed protobuf from etcd") }
                i += 4
            default: throw LedgerError("etcd_error", "malformed protobuf from etcd (wire type \(key & 7))")
            }
        }
        return out
    }
}

/// A gRPC call's failure as the server reported it (`grpc-status`, `grpc-message`).
struct GRPCStatusError: Error {
    let code: Int
    let message: String

    /// The member cannot serve now (no leader, overloaded, stopping), but another one may.
    var memberUnavailable: Bool { [1, 4, 13, 14].contains(code) }
}

/// A gRPC client connection (HTTP/2 with prior knowledge, plain text, loopback or a private network)
/// to one etcd member: one TCP connection per member, shared by every call and watch of the process.
final class GRPCConnection: Sendable {
    let channel: any Channel
    let multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>
    let authority: String

    private init(channel: any Channel, multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>, authority: String) {
        self.channel = channel
        self.multiplexer = multiplexer
        self.authority = authority
    }

    /// Connections by endpoint; a closed one is replaced at the next call.
    private static let pool = Mutex<[String: GRPCConnection]>([:])

    /// The connection to `endpoint` (`http://host:port`), opened when there is none.
    static func to(_ endpoint: String, connectTimeout: TimeAmount) async throws -> GRPCConnection {
        if let open = pool.withLock({ $0[endpoint] }), open.channel.isActive { return open }
        let connection = try await connect(endpoint, timeout: connectTimeout)
        let kept = pool.withLock { pool -> GRPCConnection in
            if let other = pool[endpoint], other.channel.isActive { return other }
            pool[endpoint] = connection
            return connection
        }
        if kept !== connection { connection.channel.close(promise: nil) }
        return kept
    }

    private static func connect(_ endpoint: String, timeout: TimeAmount) async throws -> GRPCConnection {
        var rest = Substring(endpoint)
        if rest.hasPrefix("http://") { rest = rest.dropFirst(7) }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]) else {
            throw LedgerError("etcd_unavailable", "\(endpoint) is not http://host:port")
        }
        let host = String(rest[..<colon])
        let configuration: NIOHTTP2Handler.Configuration = {
            var configuration = NIOHTTP2Handler.Configuration()
            // Large windows: a block travels as one message of up to a few MiB.
            configuration.connection.initialSettings = [
                HTTP2Setting(parameter: .maxConcurrentStreams, value: 1000), HTTP2Setting(parameter: .initialWindowSize, value: 8 << 20),
                HTTP2Setting(parameter: .maxHeaderListSize, value: HPACKDecoder.defaultMaxHeaderListSize),
            ]
            // The connection's window is as large as HTTP/2 allows, so that a watch whose reader is slow
            // (its stream's own window full) never holds back the other calls sharing the connection.
            configuration.connection.targetWindowSize = Int(Int32.max)
            configuration.stream.targetWindowSize = 8 << 20
            configuration.stream.outboundBufferSizeHighWatermark = 1 << 20
            configuration.stream.outboundBufferSizeLowWatermark = 256 << 10
            return configuration
        }()
        let (channel, multiplexer) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let multiplexer = try channel.pipeline.syncOperations.configureAsyncHTTP2Pipeline(
                        mode: .client, configuration: configuration, streamInitializer: { $0.eventLoop.makeSucceededVoidFuture() })
                    return (channel, multiplexer)
                }
            }
        return GRPCConnection(channel: channel, multiplexer: multiplexer, authority: "\(host):\(port)")
    }

    typealias Stream = NIOAsyncChannel<HTTP2Frame.FramePayload, HTTP2Frame.FramePayload>

    /// Opens a call of `method` (`/package.Service/Method`) and runs `body` with its inbound messages
    /// and a writer of outbound ones; the stream is closed when `body` returns.
    func call<T: Sendable>(
        _ method: String, _ body: (_ messages: GRPCMessages, _ send: (_ message: [UInt8], _ last: Bool) async throws -> Void) async throws -> T
    ) async throws -> T {
        let stream: Stream = try await multiplexer.openStream { channel in
            channel.eventLoop.makeCompletedFuture { try Stream(wrappingChannelSynchronously: channel) }
        }
        let headers: HPACKHeaders = [
            ":method": "POST", ":scheme": "http", ":path": method, ":authority": authority, "content-type": "application/grpc", "te": "trailers",
        ]
        return try await stream.executeThenClose { inbound, outbound in
            try await outbound.write(.headers(.init(headers: headers)))
            return try await body(GRPCMessages(inbound)) { message, last in
                var frame = ByteBuffer()
                frame.reserveCapacity(message.count + 5)
                frame.writeInteger(UInt8(0))
                frame.writeInteger(UInt32(message.count))
                frame.writeBytes(message)
                try await outbound.write(.data(.init(data: .byteBuffer(frame), endStream: last)))
            }
        }
    }
}

/// The messages of a call's response, in order; the sequence ends with the call (an error when its
/// status is not OK).
struct GRPCMessages {
    var inbound: NIOAsyncChannelInboundStream<HTTP2Frame.FramePayload>.AsyncIterator
    var buffer = ByteBuffer()
    var finished = false

    init(_ stream: NIOAsyncChannelInboundStream<HTTP2Frame.FramePayload>) { inbound = stream.makeAsyncIterator() }

    /// The next message, or nil when the call ended with status OK.
    mutating func next() async throws -> [UInt8]? {
        while true {
            if buffer.readableBytes >= 5, let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self),
                buffer.readableBytes >= 5 + Int(length)
            {
                guard buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == 0 else {
                    throw LedgerError("etcd_error", "etcd answered a compressed gRPC message")
                }
                buffer.moveReaderIndex(forwardBy: 5)
                let message = buffer.readBytes(length: Int(length)) ?? []
                buffer.discardReadBytes()
                return message
            }
            if finished { return nil }
            guard let payload = try await inbound.next() else {
                throw LedgerError("etcd_unavailable", "the gRPC stream ended without a status")
            }
            switch payload {
            case .data(let data):
                if case .byteBuffer(var bytes) = data.data { buffer.writeBuffer(&bytes) }
            case .headers(let frame):
                if let status = frame.headers.first(name: ":status"), status != "200" {
                    throw GRPCStatusError(code: 14, message: "HTTP status \(status)")
                }
                if let code = frame.headers.first(name: "grpc-status") {
                    guard code == "0" else {
                        throw GRPCStatusError(code: Int(code) ?? 2, message: grpcMessage(frame.headers.first(name: "grpc-message")))
                    }
                    finished = true
                }
            case .rstStream: throw GRPCStatusError(code: 14, message: "stream reset by etcd")
            default: break
            }
        }
    }
}

/// `grpc-message` is percent-encoded.
private func grpcMessage(_ raw: String?) -> String {
    guard let raw else { return "" }
    return PercentDecoding.decode(raw) ?? raw
}
