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

/// Fans committed events out to subscribers (the server-sent event streams). A subscriber more than
/// 1,000 events behind is not held up for: its stream ends (never a silent gap), and it resumes from
/// the stored events (an SSE client reconnects with Last-Event-ID).
public final class EventHub: Sendable {
    private let subscribers = Mutex<[UInt64: AsyncStream<CommittedEvent>.Continuation]>([:])
    private let nextID = Mutex<UInt64>(0)
    private let finished = Mutex(false)
    /// Whether the node stopped (no more events will come).
    public var isFinished: Bool { finished.withLock { $0 } }
    public static let bufferSize = 1000

    public init() {}

    public func subscribe() -> AsyncStream<CommittedEvent> {
        let id = nextID.withLock { n -> UInt64 in
            n += 1
            return n
        }
        let (stream, continuation) = AsyncStream<CommittedEvent>.makeStream(bufferingPolicy: .bufferingOldest(Self.bufferSize))
        continuation.onTermination = { [weak self] _ in self?.subscribers.withLock { _ = $0.removeValue(forKey: id) } }
        // Checked under the lock `finish` empties: a subscription after the node stopped ends at once.
        let open = subscribers.withLock { s -> Bool in
            guard !isFinished else { return false }
            s[id] = continuation
            return true
        }
        if !open { continuation.finish() }
        return stream
    }

    public var subscriberCount: Int { subscribers.withLock { $0.count } }

    func publish(height: UInt64, events: [JSONValue]) {
        deliver(events.enumerated().map { CommittedEvent(height: height, index: $0.offset, body: $0.element) })
    }

    /// Yields to every subscriber; one whose buffer is full misses this event, so its stream is ended.
    private func deliver(_ events: [CommittedEvent]) {
        guard !events.isEmpty else { return }
        let targets = subscribers.withLock { Array($0) }
        for (id, continuation) in targets {
            for e in events {
                if case .dropped = continuation.yield(e) {
                    subscribers.withLock { _ = $0.removeValue(forKey: id) }
                    continuation.finish()
                    break
                }
            }
        }
    }

    /// Publishes this node's own notices (not on the chain) to the live streams.
    package func publishLocal(height: UInt64, events: [JSONValue]) {
        deliver(events.enumerated().map { CommittedEvent(height: height, index: $0.offset, body: $0.element, local: true) })
    }

    func finish() {
        finished.withLock { $0 = true }
        let targets = subscribers.withLock { s -> [AsyncStream<CommittedEvent>.Continuation] in
            defer { s.removeAll() }
            return Array(s.values)
        }
        for c in targets { c.finish() }
    }
}
