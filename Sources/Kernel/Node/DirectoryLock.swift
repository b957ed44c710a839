import ContractKit
import Foundation
import LedgerCore
import Logging
import Metrics
import Store
import Synchronization

/// An exclusive advisory lock (flock) on a file in the data directory, released when the node is
/// released or the process ends (even on SIGKILL).
final class DirectoryLock: Sendable {
    private let fd: Mutex<Int32>

    init(path: String) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LedgerError("io_error", "cannot open \(path)") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw LedgerError("data_locked", "another node is running on this data directory (\(path) is locked)")
        }
        self.fd = Mutex(fd)
    }

    func release() {
        fd.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    deinit { release() }
}
