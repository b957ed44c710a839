import Node
import Synchronization

/// A deterministic clock for tests.
public final class TestClock: Sendable {
    public let now = Mutex<UInt64>(1_700_000_000_000)

    public init() {}

    public var function: @Sendable () -> UInt64 {
        { [self] in now.withLock { $0 += 1000; return $0 } }
    }
}

/// A clock that stands still until the test moves it (milliseconds since the Unix epoch), for a node
/// whose time-boxed rules are tested without waiting.
public final class ManualClock: Sendable {
    private let millis: Mutex<UInt64>

    public init(startingAt start: UInt64 = LedgerNode.systemClock()) { millis = Mutex(start) }

    public func advance(by delta: UInt64) { millis.withLock { $0 += delta } }

    public var read: @Sendable () -> UInt64 { { [self] in millis.withLock { $0 } } }
}

/// Seconds that stand still until the test moves them.
public final class ManualSeconds: Sendable {
    private let value = Mutex<Double>(1_000_000)

    public init() {}

    public func advance(_ seconds: Double) { value.withLock { $0 += seconds } }
    public var read: @Sendable () -> Double { { [self] in value.withLock { $0 } } }
}
