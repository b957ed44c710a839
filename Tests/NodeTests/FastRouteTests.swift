import Foundation
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import LedgerCore
import Testing

@testable import Server

/// `FastRoute` in a pipeline of its own: what it answers, what it gives the router (intact, in order),
/// and that it never answers ahead of a response the router still owes on the connection.
@Suite struct FastRouteTests {
    /// Answers POST /fast with the body's length; declines a body "no".
    func channel(maxBody: Int = 64) throws -> EmbeddedChannel {
        let route = FastRoute.Route(method: .post, path: "/fast") { _, body in
            if body.readableBytesView.elementsEqual("no".utf8) { return nil }
            return FastRoute.Answer(status: .created, json: Array("{\"n\":\(body.readableBytes)}".utf8))
        }
        return EmbeddedChannel(handler: FastRoute(routes: [route], maxBody: maxBody, serverName: "test"))
    }

    func send(_ channel: EmbeddedChannel, _ path: String, method: HTTPRequest.Method = .post, body: [String] = [], headers: HTTPFields = [:]) throws {
        try channel.writeInbound(HTTPRequestPart.head(HTTPRequest(method: method, scheme: nil, authority: nil, path: path, headerFields: headers)))
        for chunk in body { try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: chunk))) }
        try channel.writeInbound(HTTPRequestPart.end(nil))
    }

    /// What reached the router: each request as (path, body, ended).
    func routed(_ channel: EmbeddedChannel) throws -> [(String, String, Bool)] {
        var out: [(String, String, Bool)] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) {
            switch part {
            case .head(let head): out.append((head.path ?? "", "", false))
            case .body(let chunk): out[out.count - 1].1 += String(buffer: chunk)
            case .end: out[out.count - 1].2 = true
            }
        }
        return out
    }

    /// The responses written here: (status, body, headers).
    func answers(_ channel: EmbeddedChannel) throws -> [(HTTPResponse.Status, String, HTTPFields)] {
        var out: [(HTTPResponse.Status, String, HTTPFields)] = []
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) {
            switch part {
            case .head(let head): out.append((head.status, "", head.headerFields))
            case .body(let chunk): out[out.count - 1].1 += String(buffer: chunk)
            case .end: break
            }
        }
        return out
    }

    /// The router's response to one request, written through the pipeline as Hummingbird writes it.
    func respondAsRouter(_ channel: EmbeddedChannel) throws {
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        _ = try answers(channel)
    }

    @Test func answersItsRouteWithTheRoutersHeaders() throws {
        let channel = try channel()
        try send(channel, "/fast", body: ["ab", "c"])
        let answer = try #require(try answers(channel).first)
        #expect(answer.0 == .created)
        #expect(answer.1 == "{\"n\":3}\n")
        #expect(answer.2[.contentType] == "application/json")
        #expect(answer.2[.contentLength] == "8")
        #expect(answer.2[.server] == "test")
        #expect(answer.2[.date]?.hasSuffix(" GMT") == true)
        #expect(try routed(channel).isEmpty)
    }

    @Test func everythingElseReachesTheRouterIntact() throws {
        let channel = try channel(maxBody: 4)
        try send(channel, "/other", body: ["x"])
        try respondAsRouter(channel)
        try send(channel, "/fast", method: .get)
        try respondAsRouter(channel)
        try send(channel, "/fast?q=1")
        try respondAsRouter(channel)
        try send(channel, "/fast", body: ["no"])  // declined by the route
        try respondAsRouter(channel)
        try send(channel, "/fast", body: ["abc", "de", "f"])  // past the body limit
        try respondAsRouter(channel)
        try send(channel, "/fast", body: ["1"], headers: [.connection: "close"])
        try respondAsRouter(channel)
        try send(channel, "/fast", body: ["2"], headers: [.connection: "Keep-Alive"])  // answered here
        let passed = try routed(channel)
        #expect(passed.map(\.0) == ["/other", "/fast", "/fast?q=1", "/fast", "/fast", "/fast"])
        #expect(passed.map(\.1) == ["x", "", "", "no", "abcdef", "1"])
        #expect(try answers(channel).map(\.1) == ["{\"n\":1}\n"])
        #expect(passed.allSatisfy { $0.2 })
    }

    @Test func neverAnswersAheadOfTheRouter() throws {
        let channel = try channel()
        // Pipelined: one request for the router, then two for this route, before any response.
        try send(channel, "/other")
        try send(channel, "/fast", body: ["a"])
        try send(channel, "/fast", body: ["bb"])
        #expect(try answers(channel).isEmpty, "nothing may be answered before the router's response")
        #expect(try routed(channel).map(\.0) == ["/other", "/fast", "/fast"])
        // The router answers all three; then this route answers again.
        for _ in 0..<3 { try respondAsRouter(channel) }
        try send(channel, "/fast", body: ["ccc"])
        #expect(try answers(channel).map(\.1) == ["{\"n\":3}\n"])
        #expect(try routed(channel).isEmpty)
        // Two pipelined requests for this route are answered in order.
        try send(channel, "/fast", body: ["d"])
        try send(channel, "/fast", body: ["ee"])
        #expect(try answers(channel).map(\.1) == ["{\"n\":1}\n", "{\"n\":2}\n"])
    }

    @Test func dateHeader() {
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")  // RFC 9110's example
        #expect(HTTPDate.format(951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        var random = SplitMix64(seed: 7)
        for _ in 0..<2_000 {
            let seconds = Int64(random.next() % 8_000_000_000) - 1_000_000_000
            #expect(HTTPDate.format(seconds) == formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds))), "\(seconds)")
        }
    }
}
