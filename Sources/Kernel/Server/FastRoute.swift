import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTPTypes
import Standards
import Synchronization

/// Answers a request on its connection's event loop, before it reaches the router, when a handler
/// can do so at once (pack verification). Everything else — and a request the
/// handler declines — reaches Hummingbird exactly as it came.
///
/// The router runs each connection in a task of Swift concurrency: a request costs hops between the
/// event loop's thread and the task's, in and out. A verification is a few microseconds of lookups,
/// so the hops were most of its cost (a pharmacy chain's scans need 20,000 verifications per second on 2 cores).
///
/// HTTP/1.1 answers a connection's requests in order: a request is taken here only while none the
/// router was given on this connection is still unanswered (counted by the response ends written
/// through this handler), and its answer is written before the next request is read. A request with
/// a `Connection` header other than `keep-alive` (close, upgrade…) goes to the router, which handles those.
public final class FastRoute: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    /// A JSON answer: its status and canonical bytes (without the final newline).
    public struct Answer: Sendable {
        public var status: HTTPResponse.Status
        public var json: [UInt8]

        public init(status: HTTPResponse.Status, json: [UInt8]) {
            self.status = status
            self.json = json
        }
    }

    /// The answer for a request with this head and body, or nil to give the request to the router.
    public typealias Responder = @Sendable (HTTPRequest, ByteBuffer) -> Answer?

    /// The routes taken here: method and path (with no query).
    let routes: [Route]
    /// Bodies larger than this go to the router (whose limit and error apply).
    let maxBody: Int
    let serverName: String

    public struct Route: Sendable {
        public var method: HTTPRequest.Method
        public var path: String
        public var respond: Responder

        public init(method: HTTPRequest.Method, path: String, respond: @escaping Responder) {
            self.method = method
            self.path = path
            self.respond = respond
        }
    }

    /// Requests given to the router on this connection whose response has not ended.
    private var outstanding = 0
    /// The request being read here.
    private var held: (head: HTTPRequest, body: ByteBuffer, respond: Responder)?

    init(routes: [Route], maxBody: Int = 64 * 1024, serverName: String) {
        self.routes = routes
        self.maxBody = maxBody
        self.serverName = serverName
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if outstanding == 0, held == nil, Self.keepsAlive(head),
                let route = routes.first(where: { $0.method == head.method && $0.path == head.path })
            {
                held = (head, context.channel.allocator.buffer(capacity: 0), route.respond)
                return
            }
            outstanding += 1
            context.fireChannelRead(data)
        case .body(var chunk):
            guard var request = held else { return context.fireChannelRead(data) }
            if request.body.readableBytes + chunk.readableBytes > maxBody {
                held = nil
                passOn(context, request.head, request.body)
                context.fireChannelRead(data)
                return
            }
            held = nil  // keeps the buffer uniquely referenced while it grows
            request.body.writeBuffer(&chunk)
            held = request
        case .end:
            guard let request = held else { return context.fireChannelRead(data) }
            held = nil
            guard let answer = request.respond(request.head, request.body) else {
                passOn(context, request.head, request.body)
                context.fireChannelRead(data)
                return
            }
            write(answer, context)
        }
    }

    /// No `Connection` header, or `keep-alive` (HTTP/1.1's default, which some clients send anyway).
    static func keepsAlive(_ head: HTTPRequest) -> Bool {
        guard let value = head.headerFields[.connection] else { return true }
        return value.lowercased() == "keep-alive"
    }

    /// Gives the router a request this handler had started to read (its end, if read, follows).
    private func passOn(_ context: ChannelHandlerContext, _ head: HTTPRequest, _ body: ByteBuffer) {
        outstanding += 1
        context.fireChannelRead(wrapInboundOut(.head(head)))
        if body.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(.body(body))) }
    }

    /// The response, with the headers the router's responses carry.
    private func write(_ answer: Answer, _ context: ChannelHandlerContext) {
        var body = context.channel.allocator.buffer(capacity: answer.json.count + 1)
        body.writeBytes(answer.json)
        body.writeInteger(UInt8(0x0a))
        var fields = HTTPFields()
        fields.reserveCapacity(4)
        fields[.contentType] = "application/json"
        fields[.contentLength] = String(body.readableBytes)
        fields[.date] = HTTPDate.now
        fields[.server] = serverName
        context.write(wrapOutboundOut(.head(HTTPResponse(status: answer.status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { outstanding -= 1 }
        context.write(data, promise: promise)
    }
}

/// The `Date` header's value (RFC 9110 IMF-fixdate), made once a second.
enum HTTPDate {
    private static let cache = Mutex<(second: Int64, text: String)>((-1, ""))

    static var now: String {
        let second = Int64(Date().timeIntervalSince1970)
        if let text = cache.withLock({ $0.second == second ? $0.text : nil }) { return text }
        let text = format(second)
        cache.withLock { $0 = (second, text) }
        return text
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT` for seconds since 1970.
    static func format(_ seconds: Int64) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let time = seconds - days * 86_400
        let date = GS1Date(daysSinceEpoch: Int(days))  // the civil calendar's date of a day number
        let weekday = Int(((days % 7) + 11) % 7)  // 1970-01-01 was a Thursday
        let names = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(names[weekday]), \(two(Int64(date.day))) \(months[date.month - 1]) \(date.year) \(two(time / 3600)):\(two(time / 60 % 60)):\(two(time % 60)) GMT"
    }
}
