import ArgumentParser
import CLIKit
import EtcdOrdering
import Foundation
import LedgerCore
import Node
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// The layout of a local cluster, kept in `<data>/cluster.json` so that `cluster up` restarts the same
/// cluster on the same ports and `cluster status` finds it.
struct ClusterLayout {
    struct Member {
        var name: String
        var data: String
        var api: String
        var pid: Int32?
    }
    var chainID: String
    var nodes: [Member]
    var etcdClients: [String]
    var etcdPeers: [String]
    var etcdPids: [Int32?] = []

    static func path(_ data: String) -> String { data + "/cluster.json" }

    var json: JSONValue {
        .object([
            "chainId": .string(chainID),
            "nodes": .array(
                nodes.map { n in
                    var o: [String: JSONValue] = ["name": .string(n.name), "data": .string(n.data), "api": .string(n.api)]
                    if let pid = n.pid { o["pid"] = .int(Int64(pid)) }
                    return .object(o)
                }),
            "etcd": .array(etcdClients.map { .string($0) }),
            "etcdPeers": .array(etcdPeers.map { .string($0) }),
            "etcdPids": .array(etcdPids.map { $0.map { .int(Int64($0)) } ?? .null }),
        ])
    }

    init(chainID: String, nodes: [Member], etcdClients: [String], etcdPeers: [String]) {
        self.chainID = chainID
        self.nodes = nodes
        self.etcdClients = etcdClients
        self.etcdPeers = etcdPeers
    }

    init(json: JSONValue) throws {
        guard let chain = json["chainId"]?.stringValue, let nodes = json["nodes"]?.arrayValue, let etcd = json["etcd"]?.arrayValue,
            let peers = json["etcdPeers"]?.arrayValue
        else { throw LedgerError("bad_cluster", "cluster.json is not a cluster layout") }
        chainID = chain
        self.nodes = try nodes.map { n in
            guard let name = n["name"]?.stringValue, let data = n["data"]?.stringValue, let api = n["api"]?.stringValue else {
                throw LedgerError("bad_cluster", "a node in cluster.json lacks name, data or api")
            }
            return Member(name: name, data: data, api: api, pid: n["pid"]?.intValue.flatMap { Int32(exactly: $0) })
        }
        etcdClients = etcd.compactMap(\.stringValue)
        etcdPeers = peers.compactMap(\.stringValue)
        etcdPids = (json["etcdPids"]?.arrayValue ?? []).map { $0.intValue.flatMap { Int32(exactly: $0) } }
    }

    static func load(_ data: String) throws -> ClusterLayout {
        guard let bytes = FileManager.default.contents(atPath: path(data)) else {
            throw LedgerError("no_cluster", "no cluster in \(data): run `careledger cluster up --data \(data)` first")
        }
        return try ClusterLayout(json: try JSONValue.parse(Array(bytes)))
    }

    func save(_ data: String) throws {
        try Data((json.canonicalString + "\n").utf8).write(to: URL(fileURLWithPath: ClusterLayout.path(data)), options: .atomic)
    }
}

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "A local consortium on this machine: a 3-member etcd cluster and one node per organisation.",
        subcommands: [ClusterUp.self, ClusterStatus.self, ClusterReap.self])
}

struct ClusterUp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Create (first time) and start a local cluster: 3 etcd members and N organisation nodes on loopback ports; Ctrl-C stops everything.")
    @Option(help: "Organisation nodes (each a validator; 4 tolerates one faulty).") var nodes: Int = 4
    @Option(help: "Directory of the cluster (node-<i>/ per node, etcd/, cluster.json).") var data: String = "./careledger-cluster"
    @Option(help: "etcd members.") var etcdMembers: Int = 3
    @Option(help: "Chain id of a new cluster.") var chainId: String = "careledger-cluster"
    @Option(help: "Governance proposals of a new cluster pass with approvals from more than this share of the active members (N/D).")
    var governanceThreshold: String = "1/2"
    @Option(help: "Cut a block when this many transactions wait.") var blockSize: Int = 2000
    @Option(help: "…or when the oldest has waited this many milliseconds.") var blockIntervalMs: Int = 20

    func validate() throws {
        guard (1...16).contains(nodes) else { throw ValidationError("--nodes is 1 to 16") }
        guard [1, 3, 5].contains(etcdMembers) else { throw ValidationError("--etcd-members is 1, 3 or 5") }
        _ = try threshold()
    }

    func threshold() throws -> (numerator: Int, denominator: Int) {
        let parts = governanceThreshold.split(separator: "/")
        guard parts.count == 2, let n = Int(parts[0]), let d = Int(parts[1]), d > 0, n >= 0, n < d else {
            throw ValidationError("--governance-threshold is N/D with 0 ≤ N < D, e.g. 1/2 or 2/3")
        }
        return (n, d)
    }

    func run() async throws {
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let dataPath = URL(fileURLWithPath: data).standardizedFileURL.path
        var layout: ClusterLayout
        if FileManager.default.fileExists(atPath: ClusterLayout.path(dataPath)) {
            layout = try ClusterLayout.load(dataPath)
            guard layout.nodes.count == nodes else {
                throw LedgerError("bad_cluster", "the cluster in \(dataPath) has \(layout.nodes.count) nodes; start it with --nodes \(layout.nodes.count)")
            }
        } else {
            layout = try Self.create(in: dataPath, nodes: nodes, etcdMembers: etcdMembers, chainID: chainId, threshold: try threshold())
        }
        let etcd = try await LocalEtcdCluster(
            members: layout.etcdClients.count, directory: dataPath + "/etcd", urls: (layout.etcdClients, layout.etcdPeers))
        var children: [Process] = []
        var reaper: FileHandle?
        let stopAll = { @Sendable (children: [Process]) in
            LocalEtcdCluster.stop(children, grace: .seconds(10))
            etcd.stop()
        }
        do {
            for (i, member) in layout.nodes.enumerated() {
                let arguments =
                    [
                        "node", "--data", member.data, "--http", String(member.api.dropFirst("http://".count)), "--etcd",
                        layout.etcdClients.joined(separator: ","), "--block-size", String(blockSize), "--block-interval-ms", String(blockIntervalMs),
                    ] + layout.nodes.filter { $0.name != member.name }.flatMap { ["--peer", $0.api] }
                let process = try LocalEtcdCluster.spawn(binary: "/proc/self/exe", arguments: arguments, log: "\(dataPath)/node-\(i).log")
                children.append(process)
                layout.nodes[i].pid = process.processIdentifier
            }
            layout.etcdPids = etcd.pids
            try layout.save(dataPath)
            reaper = try Self.startReaper(dataPath)
            // Wait until every node answers.
            let deadline = ContinuousClock.now + .seconds(60)
            for member in layout.nodes {
                while (try? await API.request(.GET, member.api + "/healthz", timeout: .seconds(1)))?.status != 200 {
                    guard ContinuousClock.now < deadline else {
                        throw LedgerError("cluster_failed", "node \(member.name) did not answer at \(member.api); see \(member.data).log")
                    }
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
        } catch {
            stopAll(children)
            throw error
        }
        // Watched before the banner says Ctrl-C stops it. Until SIGINT or SIGTERM; then everything
        // stops (SIGTERM, then SIGKILL after a grace period).
        // A second signal kills what is still running and ends at once.
        let etcdPids = etcd.pids.compactMap { $0 }, started = children
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        let signals = StopSignals(
            first: { continuation.yield($0) },
            again: { _ in
                FileHandle.standardOutput.write(Data("second signal: killing the cluster's processes\n".utf8))
                for p in started where p.isRunning { kill(p.processIdentifier, SIGKILL) }
                for pid in etcdPids { kill(pid, SIGKILL) }
            })
        var text = "CareLedger cluster \(layout.chainID): \(layout.nodes.count) nodes, \(layout.etcdClients.count) etcd members (data: \(dataPath))\n"
        for (i, m) in layout.nodes.enumerated() { text += "  \(m.name)  \(m.api)  pid \(children[i].processIdentifier)  log \(dataPath)/node-\(i).log\n" }
        text += "  etcd  \(layout.etcdClients.joined(separator: " "))\nStatus: careledger cluster status --data \(data)\nStop with Ctrl-C.\n"
        FileHandle.standardOutput.write(Data(text.utf8))

        for await _ in stream { break }
        FileHandle.standardOutput.write(Data("stopping the cluster…\n".utf8))
        // Stopped on a thread of its own (it waits for the processes), so that the signal watch runs meanwhile.
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                stopAll(started)
                c.resume()
            }
        }
        signals.cancel()
        try? reaper?.close()
    }

    /// A watchdog child (`cluster reap`) holding the read end of a pipe whose write end only this
    /// process holds: when this process ends in any way, SIGKILL included, the pipe closes and the
    /// reaper stops the nodes and etcd members listed in cluster.json that are still running.
    static func startReaper(_ dataPath: String) throws -> FileHandle {
        let pipe = Pipe()
        // The write end must not leak into any later child, or the pipe would never close.
        _ = fcntl(pipe.fileHandleForWriting.fileDescriptor, F_SETFD, FD_CLOEXEC)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = ["cluster", "reap", "--data", dataPath]
        process.standardInput = pipe
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        try? pipe.fileHandleForReading.close()
        return pipe.fileHandleForWriting
    }

    /// A new cluster: one data directory per node, organisation keys that sign genesis, ports chosen now.
    static func create(in data: String, nodes: Int, etcdMembers: Int, chainID: String, threshold: (numerator: Int, denominator: Int)) throws -> ClusterLayout {
        let dirs = (0..<nodes).map { DataDirectory("\(data)/node-\($0)") }
        let orgs = (0..<nodes).map { _ in SigningKey() }
        for (i, key) in orgs.enumerated() { try KeyFile.save(key, to: "\(data)/orgs/org-\(i + 1).key", overwrite: false) }
        try Consortium.createNetwork(in: dirs, chainID: chainID, members: orgs, principals: DemoSetup.principals, governanceThreshold: threshold)
        let ports = try LocalEtcdCluster.freePorts(nodes + 2 * etcdMembers)
        let members = dirs.enumerated().map { i, d in
            ClusterLayout.Member(name: "org-\(i + 1)", data: d.path, api: "http://127.0.0.1:\(ports[i])")
        }
        return ClusterLayout(
            chainID: chainID, nodes: members, etcdClients: (0..<etcdMembers).map { "http://127.0.0.1:\(ports[nodes + 2 * $0])" },
            etcdPeers: (0..<etcdMembers).map { "http://127.0.0.1:\(ports[nodes + 2 * $0 + 1])" })
    }
}

/// `cluster reap` (internal, started by `cluster up`): waits for its standard input to close (its
/// parent ended), then stops what the cluster started and is still running: SIGTERM, then SIGKILL
/// after 10 s. Only processes that are still a `careledger` node or an `etcd` are signalled (a pid
/// may have been reused since).
struct ClusterReap: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reap", abstract: "Stop a cluster whose `cluster up` ended.", shouldDisplay: false)
    @Option(help: "Directory of the cluster.") var data: String

    func run() throws {
        // Ctrl-C reaches the whole process group: the parent stops the cluster itself then.
        signal(SIGINT, SIG_IGN)
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = read(0, &buffer, buffer.count)
            if n == 0 || (n < 0 && errno != EINTR) { break }
        }
        guard let layout = try? ClusterLayout.load(data) else { return }
        let pids = layout.nodes.compactMap(\.pid) + layout.etcdPids.compactMap { $0 }
        let alive = { (pid: Int32) -> Bool in Self.isClusterProcess(pid) }
        let targets = pids.filter(alive)
        for pid in targets { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(10)
        while targets.contains(where: alive), Date() < deadline { usleep(50_000) }
        for pid in targets where alive(pid) { kill(pid, SIGKILL) }
    }

    /// Whether `pid` runs (not a zombie) a careledger node or an etcd.
    static func isClusterProcess(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")"), stat[stat.index(after: close)...].dropFirst().first != "Z",
            let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")
        else { return false }
        let args = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard let program = args.first.map({ URL(fileURLWithPath: $0).lastPathComponent }) else { return false }
        return program == "etcd" || (args.count > 1 && args[1] == "node")
    }
}

struct ClusterStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Every node's API address, height, last final height, and the ordering leader.")
    @Option(help: "Directory of the cluster.") var data: String = "./careledger-cluster"
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let layout = try ClusterLayout.load(URL(fileURLWithPath: data).standardizedFileURL.path)
        var rows: [JSONValue] = []
        var leader: String?
        for m in layout.nodes {
            var o: [String: JSONValue] = ["name": .string(m.name), "api": .string(m.api)]
            if let (status, body) = try? await API.request(.GET, m.api + "/v1/consensus", timeout: .seconds(3)), status == 200,
                let c = try? JSONValue.parse(body)
            {
                o["up"] = .bool(true)
                o["height"] = c["height"] ?? .null
                o["finalHeight"] = c["finalHeight"] ?? .null
                o["validator"] = c["node"] ?? .null
                o["evidence"] = c["evidence"] ?? .null
                if let l = c["leader"]?.stringValue { leader = l }
            } else {
                o["up"] = .bool(false)
            }
            rows.append(.object(o))
        }
        // The ordering leader by organisation name, when it is one of ours.
        var leaderName: String?
        if let leader {
            for (i, m) in layout.nodes.enumerated() {
                if let key = try? KeyFile.load(DataDirectory(m.data).nodeKey), key.publicKey.did == leader { leaderName = layout.nodes[i].name }
            }
        }
        var etcdRows: [JSONValue] = []
        var etcdLeader: String?
        for url in layout.etcdClients {
            if let s = try? await EtcdClient(endpoints: [url], timeout: .seconds(1)).status() {
                etcdRows.append(.object(["url": .string(url), "up": .bool(true), "leader": .bool(s.member == s.leader)]))
                if s.member == s.leader { etcdLeader = url }
            } else {
                etcdRows.append(.object(["url": .string(url), "up": .bool(false)]))
            }
        }
        var out: [String: JSONValue] = ["chainId": .string(layout.chainID), "nodes": .array(rows), "etcd": .array(etcdRows)]
        if let leader { out["orderingLeader"] = .string(leaderName ?? leader) }
        if let etcdLeader { out["etcdLeader"] = .string(etcdLeader) }
        output(.object(out), json: json) {
            var text = "cluster \(layout.chainID)\n"
            for r in rows {
                let up = r["up"]?.boolValue == true
                text += "  \(r["name"]?.stringValue ?? "")  \(r["api"]?.stringValue ?? "")  "
                text += up ? "height \(r["height"]?.intValue ?? 0)  final \(r["finalHeight"]?.intValue ?? 0)\n" : "down\n"
            }
            text += "  ordering leader: \(leaderName ?? leader ?? "none")\n  etcd leader: \(etcdLeader ?? "none")"
            return text
        }
    }
}
