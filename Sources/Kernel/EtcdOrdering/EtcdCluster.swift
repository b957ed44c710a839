import Foundation
import LedgerCore
import Node
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A local etcd cluster of `members` processes on loopback ports (the `etcd` binary from PATH; the
/// test command installs Debian's `etcd-server`), for `careledger cluster up` and the tests. Each
/// member logs to `<directory>/etcd-<i>.log`; a member can be stopped and started again (fault tests).
public final class LocalEtcdCluster: @unchecked Sendable {
    public let directory: String
    public let clientURLs: [String]
    public let peerURLs: [String]
    let binary: String
    private let lock = NSLock()
    private var processes: [Process?]

    /// Starts the members and waits until the cluster answers (at most `timeout`). Ports are chosen
    /// free at start; when a member fails to start (a port taken meanwhile) the whole start is retried.
    /// `urls` (client and peer URLs of every member) restarts a cluster created earlier on its own ports.
    public init(members: Int, directory: String, urls: (clients: [String], peers: [String])? = nil, timeout: Duration = .seconds(60)) async throws {
        guard members >= 1 else { throw LedgerError("bad_request", "an etcd cluster needs at least one member") }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").map { "\($0)/etcd" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else { throw LedgerError("no_etcd", "etcd is not on PATH (install Debian's etcd-server; scripts/test does)") }
        binary = path
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var attempt = 0
        while true {
            attempt += 1
            let ports = try Self.freePorts(2 * members)
            let clients = urls?.clients ?? (0..<members).map { "http://127.0.0.1:\(ports[2 * $0])" }
            let peers = urls?.peers ?? (0..<members).map { "http://127.0.0.1:\(ports[2 * $0 + 1])" }
            do {
                processes = try await Self.launch(binary: path, directory: directory, clients: clients, peers: peers, timeout: timeout)
                clientURLs = clients
                peerURLs = peers
                return
            } catch let failure as LaunchFailure {
                if attempt >= 3 || urls != nil { throw failure.error }
                try? FileManager.default.removeItem(atPath: directory)
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
        }
    }

    public var client: EtcdClient { EtcdClient(endpoints: clientURLs) }

    struct LaunchFailure: Error { let error: LedgerError }

    static func arguments(member i: Int, directory: String, clients: [String], peers: [String]) -> [String] {
        let cluster = peers.enumerated().map { "m\($0.offset)=\($0.element)" }.joined(separator: ",")
        return [
            "--name", "m\(i)", "--data-dir", "\(directory)/m\(i)", "--listen-client-urls", clients[i], "--advertise-client-urls", clients[i],
            "--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i], "--initial-cluster", cluster,
            "--initial-cluster-state", "new", "--initial-cluster-token", "careledger", "--max-request-bytes", "10485760",
        ]
    }

    /// Starts `binary` with its output appended to `log`.
    public static func spawn(binary: String, arguments: [String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = FileHandle(forWritingAtPath: log)
        handle?.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    static func launch(binary: String, directory: String, clients: [String], peers: [String], timeout: Duration) async throws -> [Process?] {
        var started: [Process?] = []
        for i in clients.indices {
            started.append(
                try spawn(binary: binary, arguments: arguments(member: i, directory: directory, clients: clients, peers: peers), log: "\(directory)/etcd-\(i).log"))
        }
        let deadline = ContinuousClock.now + timeout
        for (i, url) in clients.enumerated() {
            let etcd = EtcdClient(endpoints: [url], timeout: .seconds(2))
            while true {
                if let status = try? await etcd.status(), !status.leader.isEmpty, status.leader != "0" { break }
                let exited = started.contains { $0?.isRunning == false }
                if exited || ContinuousClock.now >= deadline {
                    for p in started { if let p, p.isRunning { p.terminate(); p.waitUntilExit() } }
                    let tail = (try? String(contentsOfFile: "\(directory)/etcd-\(i).log", encoding: .utf8))?.split(separator: "\n").suffix(3).joined(separator: " | ") ?? ""
                    throw LaunchFailure(error: LedgerError("no_etcd", "etcd member \(i) did not start on \(url): \(tail)"))
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        return started
    }

    /// The process ids of the running members (nil for a stopped one).
    public var pids: [Int32?] { lock.withLock { processes.map { $0?.processIdentifier } } }

    /// Kills member `i` at once (SIGKILL), as a crash would.
    public func kill(member i: Int) {
        let p = lock.withLock { () -> Process? in
            defer { processes[i] = nil }
            return processes[i]
        }
        if let p, p.isRunning {
            Glibc.kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
    }

    /// Starts a stopped member again on its data directory.
    public func restart(member i: Int) throws {
        let args = Self.arguments(member: i, directory: directory, clients: clientURLs, peers: peerURLs)
        let p = try Self.spawn(binary: binary, arguments: args, log: "\(directory)/etcd-\(i).log")
        lock.withLock { processes[i] = p }
    }

    /// The index of the member that currently leads (asks each live member).
    public func leaderIndex() async -> Int? {
        for url in clientURLs {
            guard let status = try? await EtcdClient(endpoints: [url], timeout: .seconds(1)).status() else { continue }
            for (j, other) in clientURLs.enumerated() {
                if let s = try? await EtcdClient(endpoints: [other], timeout: .seconds(1)).status(), s.member == status.leader { return j }
            }
        }
        return nil
    }

    /// Stops every member: SIGTERM, and SIGKILL for any still running after `grace` (members that lost
    /// their quorum while the others stop can take long to give up).
    public func stop(grace: Duration = .seconds(5)) {
        let all = lock.withLock { () -> [Process?] in
            defer { processes = processes.map { _ in nil } }
            return processes
        }
        Self.stop(all.compactMap { $0 }, grace: grace)
    }

    /// SIGTERM to each process, SIGKILL to those still running after `grace`; returns once all have exited.
    public static func stop(_ processes: [Process], grace: Duration) {
        for p in processes where p.isRunning { p.terminate() }
        let deadline = ContinuousClock.now + grace
        while processes.contains(where: \.isRunning) && ContinuousClock.now < deadline { usleep(20_000) }
        for p in processes where p.isRunning { Glibc.kill(p.processIdentifier, SIGKILL) }
        for p in processes { p.waitUntilExit() }
    }

    deinit { stop() }

    /// Ports this process handed out lately: a port released by one caller (and not yet bound by its
    /// server) is not handed to the next caller too.
    private static let issued = Mutex<(set: Set<Int>, order: [Int])>(([], []))

    /// Where `freePorts` draws from: registered ports below the default ephemeral range.
    static let portRange = 20_000...32_000

    /// `count` distinct TCP ports that were free on 127.0.0.1 a moment ago (bound, then released), none
    /// of them handed out by this process among its last 4,096. They are drawn below the kernel's range
    /// of ephemeral ports (`ip_local_port_range`, 32768 and up by default): a port from that range can be
    /// taken, between its release and its server's bind, by any outgoing connection's local end.
    public static func freePorts(_ count: Int) throws -> [Int] {
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        var ports: [Int] = []
        var attempts = 0
        while ports.count < count {
            attempts += 1
            guard attempts <= count + 4096 else { throw LedgerError("io_error", "no free loopback port not handed out lately") }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw LedgerError("io_error", "cannot open a socket") }
            fds.append(fd)
            let port = Int.random(in: Self.portRange)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = UInt16(port).bigEndian
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard bound == 0 else { continue }  // in use: draw another
            // Kept bound (in `fds`) until the end either way: a refused port is not offered again meanwhile.
            let fresh = issued.withLock { issued -> Bool in
                guard issued.set.insert(port).inserted else { return false }
                issued.order.append(port)
                if issued.order.count > 4096 { issued.set.remove(issued.order.removeFirst()) }
                return true
            }
            if fresh { ports.append(port) }
        }
        return ports
    }
}
