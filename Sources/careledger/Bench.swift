import ArgumentParser
import CLIKit
import AsyncHTTPClient
import Composition
import EtcdOrdering
import Foundation
import LedgerCore
import Logging
import NIOCore
import Node
import Prometheus
import Server
import Synchronization

/// `careledger bench`: the full write path on this machine (HTTP ingest, signature checks,
/// ordering, execution, durable commit) against the Ed25519 verification ceiling of all cores,
/// measured in the same run.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks: `bench` (= `bench ledger`) the write path, `bench records` timeline reads, `bench supply` EPCIS ingestion and pack verification, `bench state` the state tree.",
        subcommands: [LedgerBench.self, RecordsBench.self, SupplyBench.self, StateBench.self, RewrapBench.self, ClaimsBench.self], defaultSubcommand: LedgerBench.self)
}

struct LedgerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger", abstract: "Measure committed transactions per second against the Ed25519 ceiling.")
    @Option(help: "Transactions to commit.") var transactions: Int = 60_000
    @Option(help: "Transactions per HTTP request (batch).") var batch: Int = 500
    @Option(help: "Concurrent HTTP requests in flight.") var concurrency: Int = 8
    @Option(help: "Block size (transactions).") var blockSize: Int = 4000
    @Option(help: "Block interval (ms).") var blockIntervalMs: Int = 10
    @Option(help: "Seconds to measure the signature ceiling.") var ceilingSeconds: Double = 3
    @Option(help: "Distinct signing keys the transactions are spread over (a key signing again is verified with its table).")
    var authors: Int = 64
    @Option(help: "Keep the bench's data directory here (default: a temporary one, removed).") var data: String?
    @Option(help: "Run a consortium of this many validator nodes ordered through a local 3-member etcd cluster, and measure final transactions.")
    var cluster: Int?
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        if let cluster, !(1...16).contains(cluster) { throw ValidationError("--cluster is 1 to 16 nodes") }
        guard transactions >= batch, batch >= 1, concurrency >= 1, blockSize >= 1, blockIntervalMs >= 1, ceilingSeconds > 0, authors >= 1 else {
            throw ValidationError("need transactions ≥ batch ≥ 1 and positive concurrency, block size, interval, ceiling time and authors")
        }
    }

    func run() async throws {
        if let cluster { return try await runCluster(nodes: cluster) }
        let dir = data ?? NSTemporaryDirectory() + "careledger-bench-\(UInt64.random(in: 0..<UInt64.max))"
        defer { if data == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let directory = DataDirectory(dir)
        if !directory.exists { try Consortium.create(in: directory, chainID: "bench", principals: []) }
        var config = NodeConfiguration()
        config.blockSize = blockSize
        config.blockInterval = .milliseconds(blockIntervalMs)
        config.maxBlockTransactions = max(blockSize, 10_000)
        config.mempoolCapacity = max(200_000, concurrency * batch * 2)
        let bench = try await BenchNode.start(directory: directory, configuration: config)
        defer { bench.stop() }
        let node = bench.node

        // Sign everything before the clock starts.
        let chain = node.genesis.chainID
        let count = transactions
        let bodies = await Self.signedBatches(chain: chain, count: count, batch: batch, authors: authors)
        // The ceiling is measured before and after the load and the higher figure kept (the machine's
        // speed drifts; the higher ceiling gives the lower, conservative ratio).
        let ceilingBefore = await Self.verificationCeiling(seconds: ceilingSeconds)

        let url = bench.baseURL + "/v1/transactions"

        // Load: `concurrency` workers take batches from a shared cursor.
        let cpuBefore = processCPUSeconds()
        let load = try await BenchLoad.workers(count: bodies.count, workers: concurrency) { [batch] i in
            let (status, body) = try await BenchLoad.post(url, bodies[i])
            guard status == 200 else {
                FileHandle.standardError.write(Data("bench: batch \(i) answered \(status): \(String(decoding: body.prefix(200), as: UTF8.self))\n".utf8))
                return nil
            }
            return min(batch, count - i * batch)
        }
        let seconds = load.seconds
        let cpuSeconds = processCPUSeconds() - cpuBefore
        bench.stop()
        let sorted = load.latencies
        let committed = load.done
        func percentile(_ p: Double) -> Double { careledger.percentile(sorted, p) }
        let txPerSecond = Double(committed) / seconds

        // Ceiling: Ed25519 verifications per second over all cores.
        let ceilingAfter = await Self.verificationCeiling(seconds: ceilingSeconds)
        let ceiling = max(ceilingBefore, ceilingAfter)
        let ratio = txPerSecond / ceiling
        // The node verifies a signer it has seen with a precomputed table: its own rate, for comparison.
        let tableRate = await Self.verificationCeiling(seconds: ceilingSeconds, precomputed: true)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let result: JSONValue = .object([
            "transactions": .int(Int64(committed)), "failedBatches": .int(Int64(load.failed)), "seconds": .double(seconds),
            "committedPerSecond": .double(txPerSecond.rounded()), "p50Millis": .double(percentile(0.5)), "p99Millis": .double(percentile(0.99)),
            "ed25519VerificationsPerSecond": .double(ceiling.rounded()),
            "ed25519BeforeAndAfter": .array([.double(ceilingBefore.rounded()), .double(ceilingAfter.rounded())]), "ratio": .double((ratio * 1000).rounded() / 1000), "cores": .int(Int64(cores)),
            "tableVerificationsPerSecond": .double(tableRate.rounded()), "ratioToTableRate": .double((txPerSecond / tableRate * 1000).rounded() / 1000),
            "batch": .int(Int64(batch)), "concurrency": .int(Int64(concurrency)), "authors": .int(Int64(min(authors, count))), "blockSize": .int(Int64(blockSize)),
            "blockIntervalMs": .int(Int64(blockIntervalMs)), "height": .int(Int64(node.height)),
            "cpuMicrosPerTransaction": .double(cpuMicros(cpuSeconds, per: committed)),
        ])
        output(result, json: json) {
            """
            careledger bench: \(committed) signed notary transactions by \(min(authors, count)) keys over HTTP, batch \(batch), \(concurrency) in flight, \(cores) cores
              committed:            \(String(format: "%.0f", txPerSecond)) tx/s (\(String(format: "%.2f", seconds)) s, \(node.height) blocks)
              CPU per transaction:  \(cpuMicros(cpuSeconds, per: committed)) µs (user + system, whole process, load generator included)
              submit-to-commit:     p50 \(String(format: "%.1f", percentile(0.5))) ms, p99 \(String(format: "%.1f", percentile(0.99))) ms
              Ed25519 ceiling:      \(String(format: "%.0f", ceiling)) verifications/s (all cores; the higher of \(String(format: "%.0f", ceilingBefore)) before and \(String(format: "%.0f", ceilingAfter)) after the load)
              ratio:                \(String(format: "%.3f", ratio)) (target ≥ 0.8)
              table verifier:       \(String(format: "%.0f", tableRate)) verifications/s for a signer seen before (ratio to it \(String(format: "%.3f", txPerSecond / tableRate)))
            """
        }
        if load.failed > 0 { throw LedgerError("internal_error", "\(load.failed) batches were not committed") }
    }

    /// Signed notary transactions as batch request bodies, made before the clock starts.
    static func signedBatches(chain: String, count: Int, batch: Int, authors: Int) async -> [[UInt8]] {
        let authors = (0..<min(authors, count)).map { _ in SigningKey() }
        let runID = UInt64.random(in: 0..<UInt64.max)
        return await withTaskGroup(of: (Int, [UInt8]).self) { group in
            let batches = (count + batch - 1) / batch
            for b in 0..<batches {
                group.addTask {
                    var items: [JSONValue] = []
                    for i in (b * batch)..<min(count, (b + 1) * batch) {
                        let key = authors[i % authors.count]
                        let digest = Hash.sha256(Array("bench \(runID) document \(i)".utf8))
                        let tx = try! Transaction(
                            chainID: chain, signer: key, nonce: UInt64(i), contract: "notary", action: "record",
                            payload: .object(["hash": .string(digest.hex), "label": .string("bench document \(i)")]))
                        items.append(.object(["raw": .string(Base64.encode(tx.encoded))]))
                    }
                    return (b, JSONValue.object(["transactions": .array(items)]).canonicalBytes)
                }
            }
            var out = [[UInt8]](repeating: [], count: batches)
            for await (i, body) in group { out[i] = body }
            return out
        }
    }

    /// `bench --cluster N`: N validator nodes in this process (each its own store, HTTP server and
    /// vote), a 3-member etcd cluster; batches go round-robin to the nodes with `wait=final`, so each
    /// latency is submit-to-final and the rate counts final transactions.
    func runCluster(nodes: Int) async throws {
        let dir = data ?? NSTemporaryDirectory() + "careledger-bench-cluster-\(UInt64.random(in: 0..<UInt64.max))"
        defer { if data == nil { try? FileManager.default.removeItem(atPath: dir) } }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let directories = (0..<nodes).map { DataDirectory("\(dir)/node-\($0)") }
        try Consortium.createNetwork(in: directories, chainID: "bench-cluster", principals: [])
        let etcd = try await LocalEtcdCluster(members: 3, directory: dir + "/etcd")
        defer { etcd.stop() }
        var config = NodeConfiguration()
        config.blockSize = blockSize
        config.blockInterval = .milliseconds(blockIntervalMs)
        config.maxBlockTransactions = max(blockSize, 4000)
        config.mempoolCapacity = max(200_000, concurrency * batch * 2)
        var benches: [BenchNode] = []
        for d in directories {
            benches.append(try await BenchNode.start(directory: d, configuration: config, ordering: EtcdOrderingService(endpoints: etcd.clientURLs)))
        }
        defer { for b in benches { b.stop() } }
        let urls = benches.map { $0.baseURL + "/v1/transactions?wait=final" }
        let bodies = await Self.signedBatches(chain: "bench-cluster", count: transactions, batch: batch, authors: authors)
        let count = transactions
        let etcdPIDs = etcd.pids.compactMap { $0 }
        let cpuBefore = processCPUSeconds(), etcdBefore = etcdPIDs.map(childCPUSeconds)
        let load = try await BenchLoad.workers(count: bodies.count, workers: concurrency) { [batch] i in
            let (status, body) = try await BenchLoad.post(urls[i % urls.count], bodies[i])
            guard status == 200, let answer = try? JSONValue.parse(body),
                let results = answer["results"]?.arrayValue, results.allSatisfy({ $0["final"]?.boolValue == true })
            else {
                FileHandle.standardError.write(Data("bench: batch \(i) answered \(status) or not final: \(String(decoding: body.prefix(200), as: UTF8.self))\n".utf8))
                return nil
            }
            return min(batch, count - i * batch)
        }
        let seconds = load.seconds
        let cpuSeconds = processCPUSeconds() - cpuBefore
        let etcdSeconds = zip(etcdPIDs, etcdBefore).map { childCPUSeconds($0.0) - $0.1 }.reduce(0, +)
        let sorted = load.latencies
        let final = load.done
        let micros = { (cpu: Double) in cpuMicros(cpu, per: final) }
        func percentile(_ p: Double) -> Double { careledger.percentile(sorted, p) }
        // Every node holds the same chain at the end.
        let top = benches.map(\.node.lastFinalHeight).min() ?? 0
        let hashes = Set(try benches.map { try $0.node.store.block(height: top)?.header.hash })
        let perSecond = Double(final) / seconds
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let result: JSONValue = .object([
            "nodes": .int(Int64(nodes)), "etcdMembers": .int(3), "transactions": .int(Int64(final)),
            "failedBatches": .int(Int64(load.failed)), "seconds": .double(seconds),
            "finalPerSecond": .double(perSecond.rounded()), "p50Millis": .double(percentile(0.5)), "p99Millis": .double(percentile(0.99)),
            "cores": .int(Int64(cores)), "batch": .int(Int64(batch)), "concurrency": .int(Int64(concurrency)), "blockSize": .int(Int64(blockSize)),
            "blockIntervalMs": .int(Int64(blockIntervalMs)), "finalHeight": .int(Int64(top)), "sameChainOnEveryNode": .bool(hashes.count == 1),
            "cpuMicrosPerTransaction": .double(micros(cpuSeconds)), "etcdCPUMicrosPerTransaction": .double(micros(etcdSeconds)),
        ])
        output(result, json: json) {
            """
            careledger bench --cluster \(nodes): \(final) signed notary transactions over HTTP to \(nodes) validators (etcd: 3 members), batch \(batch), \(concurrency) in flight, \(cores) cores
              final:                \(String(format: "%.0f", perSecond)) tx/s (\(String(format: "%.2f", seconds)) s, final height \(top))
              submit-to-final:      p50 \(String(format: "%.1f", percentile(0.5))) ms, p99 \(String(format: "%.1f", percentile(0.99))) ms
              CPU per final tx:     \(micros(cpuSeconds)) µs in this process (the \(nodes) nodes and the load generator), \(micros(etcdSeconds)) µs in etcd
              same chain everywhere: \(hashes.count == 1)
            """
        }
        if load.failed > 0 { throw LedgerError("internal_error", "\(load.failed) batches were not final") }
        guard hashes.count == 1 else { throw LedgerError("internal_error", "the nodes disagree at height \(top)") }
    }

    /// Verifies signatures on every core for `seconds` and returns verifications per second: with
    /// BoringSSL alone (`precomputed: false`, the generic Ed25519 ceiling) or as the node verifies a
    /// signer it has seen before (its precomputed table).
    static func verificationCeiling(seconds: Double, precomputed: Bool = false) async -> Double {
        let key = SigningKey()
        let messages = (0..<256).map { Array("ceiling message \($0) with some padding to look like a transaction body".utf8) + [UInt8](repeating: 7, count: 150) }
        let signatures = messages.map { key.signature(for: $0) }
        let publicKey = key.publicKey
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int(seconds * 1000))
        let total = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<cores {
                group.addTask {
                    var n = 0
                    while ContinuousClock.now < deadline {
                        if precomputed {
                            // As a node checks a block's transactions: in batches (the verifier's lanes and shared inversions).
                            for start in stride(from: 0, to: 256, by: 64) {
                                let batch = (start..<start + 64).map { (publicKey, signatures[$0], messages[$0]) }
                                n += PublicKey.areValidSignatures(batch).filter { $0 }.count
                            }
                        } else {
                            for i in 0..<256 where publicKey.isValidSignature(signatures[i], for: messages[i], precomputed: false) { n += 1 }
                        }
                    }
                    return n
                }
            }
            return await group.reduce(0, +)
        }
        return Double(total) / ((ContinuousClock.now - start) / .seconds(1))
    }
}

struct BenchNode {
    let node: LedgerNode
    let baseURL: String
    private let task: Task<Void, any Error>
    private let stopSignal: AsyncStream<Void>.Continuation

    static func start(
        directory: DataDirectory, configuration: NodeConfiguration, ordering: any Ordering = SoloOrdering(), organisations: [ActingOrganisation] = []
    ) async throws -> BenchNode {
        let registry = PrometheusCollectorRegistry()
        var logger = Logger(label: "careledger.bench")
        logger.logLevel = ProcessInfo.processInfo.environment["CARELEDGER_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        let node = try LedgerNode(directory: directory, contracts: .careLedger, ordering: ordering, configuration: configuration, metrics: PrometheusMetricsFactory(registry: registry), logger: logger)
        var serverConfig = ServerConfiguration(host: "127.0.0.1", port: 0)
        serverConfig.maxBodyBytes = 64 * 1024 * 1024
        let server = NodeServer(
            api: try LedgerAPI(
                node: node, configuration: serverConfig, registry: registry, vault: try Vault(path: directory.vault), organisations: organisations, capabilities: HostedCapabilities.careLedger))
        let port = Mutex<Int?>(nil)
        let (stopped, stop) = AsyncStream<Void>.makeStream()
        let task = Task {
            try await server.run(handleSignals: false, logger: logger, onListening: { p in port.withLock { $0 = p } }, shutdown: { for await _ in stopped {} })
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while port.withLock({ $0 }) == nil {
            guard ContinuousClock.now < deadline else {
                task.cancel()
                throw LedgerError("internal_error", "the bench server did not start")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return BenchNode(node: node, baseURL: "http://127.0.0.1:\(port.withLock { $0! })", task: task, stopSignal: stop)
    }

    /// A graceful stop (the server finishes its requests; no error logged), without waiting.
    func stop() { stopSignal.finish() }

    /// A new chain in a temporary directory (no demo principals); the caller removes `directory.path`.
    static func temporaryChain(_ name: String) throws -> DataDirectory {
        let directory = DataDirectory(NSTemporaryDirectory() + "careledger-bench-\(name)-\(UInt64.random(in: 0..<UInt64.max))")
        try Consortium.create(in: directory, chainID: "bench", principals: [])
        return directory
    }
}

/// The `p` quantile (0...1) of sorted values, 0 when there are none.
func percentile(_ sorted: [Double], _ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }

/// CPU seconds spent per unit of work, in microseconds to one decimal.
func cpuMicros(_ seconds: Double, per count: Int) -> Double { (seconds / Double(max(count, 1)) * 1e7).rounded() / 10 }

/// User + system CPU time so far of another process (`/proc/PID/stat`), in seconds; 0 when unknown.
func childCPUSeconds(_ pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return 0 }
    // After the command name: state is field 3, utime 14 and stime 15 (clock ticks).
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// User + system CPU time of this process so far (getrusage), in seconds.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
