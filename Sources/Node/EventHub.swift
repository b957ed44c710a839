import Foundation
import LedgerCore
import Synchronization

/// An event of a committed block.
public struct CommittedEvent: Sendable {
    public let height: UInt64
    public let index: Int
    public let body: JSONValue
    /// A notice of this node only (never on the chain, e.g. a recall notice to a patient): it has no
    /// position in the ledger's event order, so streams send it without an id and never replay it.
    public var local = false
}

/// Fans committed events out to subscribers (the server-sent event streams). A slow subscriber
/// keeps the newest 1,000 events and loses older ones rather than holding the node back.
public final class EventHub: Sendable {
    private let subscribers = Mutex<[UInt64: AsyncStream<CommittedEvent>.Continuation]>([:])
    private let nextID = Mutex<UInt64>(0)

    public init() {}

    public func subscribe() -> AsyncStream<CommittedEvent> {
        let id = nextID.withLock { n -> UInt64 in
            n += 1
            return n
        }
        let (stream, continuation) = AsyncStream<CommittedEvent>.makeStream(bufferingPolicy: .bufferingNewest(1000))
        continuation.onTermination = { [weak self] _ in self?.subscribers.withLock { _ = $0.removeValue(forKey: id) } }
        subscribers.withLock { $0[id] = continuation }
        return stream
    }

    public var subscriberCount: Int { subscribers.withLock { $0.count } }

    func publish(height: UInt64, events: [JSONValue]) {
        guard !events.isEmpty else { return }
        let targets = subscribers.withLock { Array($0.values) }
        for continuation in targets {
            for (i, e) in events.enumerated() { continuation.yield(CommittedEvent(height: height, index: i, body: e)) }
        }
    }

    /// Publishes this node's own notices (not on the chain) to the live streams.
    func publishLocal(height: UInt64, events: [JSONValue]) {
        guard !events.isEmpty else { return }
        let targets = subscribers.withLock { Array($0.values) }
        for continuation in targets {
            for (i, e) in events.enumerated() { continuation.yield(CommittedEvent(height: height, index: i, body: e, local: true)) }
        }
    }

    func finish() {
        let targets = subscribers.withLock { s -> [AsyncStream<CommittedEvent>.Continuation] in
            defer { s.removeAll() }
            return Array(s.values)
        }
        for c in targets { c.finish() }
    }
}
