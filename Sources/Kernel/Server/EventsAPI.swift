import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import Node
import ServiceLifecycle

/// `GET /v1/events`: the server-sent stream of committed events a principal may see (registered
/// principals only, limited per principal and on the node, with heartbeats so that a stream whose
/// client left ends).
struct EventsAPI: Sendable {
    let api: LedgerAPI
    var auth: AuthService { api.auth }

    /// `<height>-<index>`, as the stream's `id:` lines carry.
    static func eventPosition(_ text: String?) throws -> (height: UInt64, index: Int)? {
        guard let text else { return nil }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let height = UInt64(parts[0]), let index = Int(parts[1]), index >= 0 else {
            throw LedgerError("bad_parameter", "Last-Event-ID is <height>-<index>, as the stream's ids")
        }
        return (height, index)
    }

    /// The hub's events, with a nil (a heartbeat) every `seconds`; ends with the hub's stream.
    /// Also answers `stop`, which ends the merged stream (on the node's graceful shutdown).
    static func withHeartbeats(_ events: AsyncStream<CommittedEvent>, every seconds: Double) -> (stream: AsyncStream<CommittedEvent?>, stop: @Sendable () -> Void) {
        let (merged, continuation) = AsyncStream<CommittedEvent?>.makeStream(bufferingPolicy: .bufferingOldest(EventHub.bufferSize))
        let forward = Task {
            // A reader more than a buffer behind is disconnected (it resumes with Last-Event-ID), never skipped.
            for await event in events {
                if case .dropped = continuation.yield(event) { break }
            }
            continuation.finish()
        }
        let beat = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                if Task.isCancelled { break }
                continuation.yield(nil)
            }
        }
        continuation.onTermination = { _ in
            forward.cancel()
            beat.cancel()
        }
        return (merged, { continuation.finish() })
    }


    func register(on router: Router<LedgerRequestContext>) {
        router.get("/v1/events") { request, _ in
            await api.handle {
                let did = try auth.authenticate(request)
                guard try api.node.principal(did) != nil else { throw LedgerError("forbidden", "event streams are for registered principals") }
                // Resuming: `Last-Event-ID: <height>-<index>` (or ?lastEventId=) replays what was committed since.
                let resume = try Self.eventPosition(request.headers[HTTPField.Name("Last-Event-ID")!] ?? request.uri.queryParameters.get("lastEventId").map { String($0) })
                // `limit`: the stream ends after that many events (for batch consumers); endless by default.
                let limit = try request.uri.queryParameters.get("limit").map { text in
                    guard let n = Int(text), (1...100_000).contains(n) else { throw LedgerError("bad_parameter", "limit is 1 to 100000 events") }
                    return n
                } ?? Int.max
                let lease = try EventStreamSlots.Lease(api.eventStreams, did: did)
                // Subscribed before the replay is read: nothing committed in between is missed.
                let (stream, stop) = Self.withHeartbeats(api.node.events.subscribe(), every: api.configuration.eventHeartbeatSeconds)
                let node = api.node
                let body = ResponseBody { writer in
                    defer { lease.release() }
                    try await writer.write(ByteBuffer(string: ": careledger events for \(did)\n\n"))
                    var sent = 0
                    func send(_ height: UInt64, _ index: Int, _ body: JSONValue, local: Bool = false) async throws {
                        let type = body["type"]?.stringValue ?? "event"
                        // A node-local notice has no ledger position: no id, so Last-Event-ID stays on the ledger's order.
                        let id = local ? "" : "id: \(height)-\(index)\n"
                        try await writer.write(ByteBuffer(string: "\(id)event: \(type)\ndata: \(body.canonicalString)\n\n"))
                        sent += 1
                    }
                    var last = resume
                    if var position = resume {
                        replay: while sent < limit {
                            let page = try node.store.events(afterHeight: position.height, seq: position.index, limit: 1000)
                            for e in page {
                                position = (e.height, e.seq)
                                if api.concerns(e.body, did: did) { try await send(e.height, e.seq, e.body) }
                                if sent >= limit { break replay }
                            }
                            if page.count < 1000 { break }
                        }
                        last = position
                    }
                    if sent < limit {
                        // A graceful shutdown of the node ends the stream (the client resumes elsewhere with Last-Event-ID).
                        try await withGracefulShutdownHandler {
                            for await item in stream {
                                // A comment line while nothing is sent: a client that left makes the write fail.
                                guard let event = item else {
                                    try await writer.write(ByteBuffer(string: ":\n\n"))
                                    continue
                                }
                                if !event.local, let last, (event.height, event.index) <= (last.height, last.index) { continue }
                                guard api.concerns(event.body, did: did) else { continue }
                                try await send(event.height, event.index, event.body, local: event.local)
                                if sent >= limit { break }
                            }
                        } onGracefulShutdown: {
                            stop()
                        }
                    }
                    try await writer.finish(nil)
                }
                return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
            }
        }
    }
}
