import Foundation
import Synchronization

/// SIGINT and SIGTERM for a long-running command: the first signal starts a clean stop, a second one
/// while that stop is under way ends the process at once (exit status 128 + the signal, as a shell
/// reports a process killed by it). What a node acknowledged is durable before the acknowledgement,
/// so ending at once loses nothing acknowledged; it only leaves requests in progress unanswered.
///
/// The signals are caught by a handler (process-wide, whichever thread the kernel picks) that writes
/// the signal number to a pipe, read by a thread of its own: a dispatch signal source, by contrast,
/// loses a signal the kernel delivers to a thread that does not block it (the ignored disposition
/// then discards it), which happened in a process with many threads.
public final class StopSignals: Sendable {
    private let active = Flag()

    private final class Flag: Sendable {
        private let value = Atomic<Bool>(true)
        func load() -> Bool { value.load(ordering: .relaxed) }
        func clear() { value.store(false, ordering: .relaxed) }
    }

    /// Watches SIGINT and SIGTERM until `cancel()`: `first` runs on the first one, `again` (then the
    /// exit) on the second. One watch at a time in a process.
    public init(first: @escaping @Sendable (Int32) async -> Void, again: @escaping @Sendable (Int32) -> Void = { _ in }) {
        let pipe = StopSignalPipe.shared  // made before the handler can run (not lazily inside it)
        let active = self.active
        signal(SIGINT) { sig in StopSignalPipe.send(sig) }
        signal(SIGTERM) { sig in StopSignalPipe.send(sig) }
        Thread.detachNewThread {
            var seen = 0
            while active.load(), let sig = pipe.receive() {
                guard active.load() else { break }
                seen += 1
                if seen == 1 {
                    Task { await first(sig) }
                } else {
                    again(sig)
                    exit(128 + sig)
                }
            }
        }
    }

    /// Stops watching: the default dispositions come back.
    public func cancel() {
        active.clear()
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}

/// The self-pipe the signal handler writes to (write(2) is async-signal-safe).
final class StopSignalPipe: Sendable {
    let read: Int32
    let write: Int32

    static let shared = StopSignalPipe()
    /// The write end, read by the handler without touching a lazily made global.
    nonisolated(unsafe) static var writeEnd: Int32 = -1

    private init() {
        var fds: [Int32] = [-1, -1]
        _ = pipe(&fds)
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        read = fds[0]
        write = fds[1]
        Self.writeEnd = fds[1]
    }

    static func send(_ sig: Int32) {
        var byte = UInt8(truncatingIfNeeded: sig)
        _ = Glibc.write(writeEnd, &byte, 1)
    }

    /// The next signal caught (blocks), or nil when the pipe fails.
    func receive() -> Int32? {
        var byte: UInt8 = 0
        while true {
            let n = Glibc.read(read, &byte, 1)
            if n == 1 { return Int32(byte) }
            if n < 0 && errno == EINTR { continue }
            return nil
        }
    }
}
