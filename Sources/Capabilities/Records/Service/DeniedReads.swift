import LedgerCore
import Node
import Synchronization

/// Denied reads of one reader against one patient, per window of the node's clock: the first
/// `recorded` of a window are access events of their own (with every detail); the later ones are
/// refused at once (`too_many_denied`, HTTP 429) and counted, and the window's count goes on chain as
/// one aggregated access event (count, first and last attempt) when the window has closed.
public final class DeniedReads: Sendable {
    public let windowMillis: Int64
    public let recorded: Int

    struct Key: Hashable {
        let reader: String
        let patient: String
    }

    /// One window of one reader against one patient.
    public struct Window: Sendable {
        public var start: Int64
        public var denied = 0
        /// Attempts refused without an event of their own: their count and times.
        public var suppressed = 0
        public var first: Int64 = 0
        public var last: Int64 = 0
        public var purpose = "treatment"
    }

    public enum Admission: Equatable {
        /// Record this denied read as an access event of its own.
        case record
        /// Refuse it at once; the reader may try again after this many seconds.
        case suppress(retryAfterSeconds: Int)
    }

    private let windows = Mutex<[Key: Window]>([:])

    public init(windowMillis: Int64 = 10 * 60_000, recorded: Int = 5) {
        self.windowMillis = windowMillis
        self.recorded = recorded
    }

    /// Counts a denied read at `now`. Also answers the closed window this pair had before, if it
    /// suppressed attempts: its aggregate is due on chain.
    public func admit(reader: String, patient: String, purpose: String, now: Int64) -> (Admission, closed: (reader: String, patient: String, Window)?) {
        windows.withLock { table in
            let key = Key(reader: reader, patient: patient)
            var closed: (String, String, Window)?
            var window = table[key] ?? Window(start: now)
            if now - window.start >= windowMillis {
                if window.suppressed > 0 { closed = (reader, patient, window) }
                window = Window(start: now)
            }
            window.denied += 1
            let admission: Admission
            if window.denied <= recorded {
                admission = .record
            } else {
                if window.suppressed == 0 { window.first = now }
                window.suppressed += 1
                window.last = now
                window.purpose = purpose
                admission = .suppress(retryAfterSeconds: Int(max(1, (window.start + windowMillis - now + 999) / 1000)))
            }
            table[key] = window
            return (admission, closed)
        }
    }

    /// The windows closed by `now` that suppressed attempts, taken out of the table (the others stay).
    public func closed(by now: Int64) -> [(reader: String, patient: String, Window)] {
        windows.withLock { table in
            var out: [(String, String, Window)] = []
            for (key, window) in table where now - window.start >= windowMillis {
                if window.suppressed > 0 { out.append((key.reader, key.patient, window)) }
                table[key] = nil
            }
            return out.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        }
    }
}
