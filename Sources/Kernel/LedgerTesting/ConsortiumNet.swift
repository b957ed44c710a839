import ContractKit
import EtcdOrdering
import Foundation
import LedgerCore
import Node
import Prometheus
import Server
import Store
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A consortium of in-process nodes, one data directory each, ordered through a real etcd, running
/// `contracts` and (with `http`) hosting `capabilities`.
public final class ConsortiumNet: @unchecked Sendable {
    public let etcd: EtcdProcess
    public let directories: [DataDirectory]
    public let genesis: Genesis
    public let chainID = "consortium-test"
    /// The founding organisations' keys (members who sign genesis and vote on governance).
    public let members = (0..<4).map { _ in SigningKey() }
    private let lock = NSLock()
    private var nodes: [LedgerNode?]
    private var tasks: [Task<Void, Never>?]
    private var apis: [LedgerAPI?]
    /// Each node's metrics (a fresh registry per start).
    private var registries: [PrometheusCollectorRegistry?]
    /// The organisation each node acts for (records custodian, FHIR facade), by node index.
    public let acting: [Int: ActingOrganisation]
    public let contracts: ContractSet
    public let capabilities: CapabilityList

    /// With `http`, every node runs its HTTP API (on a port fixed for the test) and names the others as peers.
    public let http: Bool
    public let ports: [Int]
    public let tune: @Sendable (inout NodeConfiguration) -> Void

    public init(
        nodes count: Int, contracts: ContractSet, capabilities: @escaping CapabilityList, etcdMembers: Int = 1, http: Bool = false,
        acting: [Int: ActingOrganisation] = [:], tune: @escaping @Sendable (inout NodeConfiguration) -> Void = { _ in }
    ) async throws {
        self.http = http
        self.acting = acting
        self.contracts = contracts
        self.capabilities = capabilities
        self.tune = tune
        ports = try LocalEtcdCluster.freePorts(count)
        etcd = try await EtcdProcess(members: etcdMembers)
        let base = NSTemporaryDirectory() + "careledger-net-\(UUID().uuidString)"
        directories = (0..<count).map { DataDirectory("\(base)/node-\($0)") }
        genesis = try Consortium.createNetwork(
            in: directories, chainID: chainID, timeMillis: 1_700_000_000_000, members: members, principals: ["alice"])
        nodes = Array(repeating: nil, count: count)
        tasks = Array(repeating: nil, count: count)
        apis = Array(repeating: nil, count: count)
        registries = Array(repeating: nil, count: count)
        for i in 0..<count { try start(i) }
    }

    public func start(_ i: Int) throws {
        var configuration = NodeConfiguration()
        if http { configuration.peers = ports.indices.filter { $0 != i }.map(url) }
        tune(&configuration)
        let registry = PrometheusCollectorRegistry()
        let node = try LedgerNode(
            directory: directories[i], contracts: contracts, ordering: EtcdOrderingService(endpoints: etcd.cluster.clientURLs), configuration: configuration, metrics: PrometheusMetricsFactory(registry: registry))
        let task: Task<Void, Never>
        var api: LedgerAPI?
        if http {
            let made = try LedgerAPI(
                node: node, configuration: ServerConfiguration(host: "127.0.0.1", port: ports[i]), registry: registry,
                vault: try Vault(path: directories[i].vault), acting: acting[i], capabilities: capabilities)
            api = made
            let server = NodeServer(api: made)
            task = Task { try? await server.run(handleSignals: false) }
        } else {
            task = Task { await node.run() }
        }
        lock.withLock {
            nodes[i] = node
            tasks[i] = task
            apis[i] = api
            registries[i] = registry
        }
    }

    /// Node `i`'s `careledger_alarms_total` (0 when never raised).
    public func alarms(_ i: Int) -> Int {
        let text = lock.withLock { registries[i] }?.emitToString() ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("careledger_alarms_total ") }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) } ?? 0
    }

    /// Stops node `i` as a crash would for the others: its tasks end, its directory is released.
    public func stop(_ i: Int) async {
        let (node, task) = lock.withLock { (nodes[i], tasks[i]) }
        task?.cancel()
        await task?.value
        node?.close()
        lock.withLock {
            nodes[i] = nil
            tasks[i] = nil
            apis[i] = nil
        }
    }

    public func node(_ i: Int) -> LedgerNode { lock.withLock { nodes[i]! } }
    /// Waits until every running node's HTTP API answers (its server starts in a task of its own).
    public func waitServing() async throws {
        for i in ports.indices {
            try await eventually("node \(i) serves HTTP") {
                guard let url = URL(string: url(i) + "/healthz"), let (_, response) = try? await URLSession.shared.data(from: url) else { return false }
                return (response as? HTTPURLResponse)?.statusCode == 200
            }
        }
    }

    /// The API of node `i` (with `http`), to drive in process as a client of that node would.
    public func api(_ i: Int) -> LedgerAPI { lock.withLock { apis[i]! } }
    public func url(_ i: Int) -> String { "http://127.0.0.1:\(ports[i])" }
    public var running: [LedgerNode] { lock.withLock { nodes.compactMap { $0 } } }

    public func key(_ i: Int) throws -> SigningKey { try KeyFile.load(directories[i].nodeKey) }

    public func shutdown() async {
        for i in directories.indices { await stop(i) }
        etcd.cluster.stop()
        try? FileManager.default.removeItem(atPath: (directories[0].path as NSString).deletingLastPathComponent)
    }

    public func tx(_ signer: SigningKey, _ n: Int) throws -> Transaction {
        try notaryTx(signer, nonce: UInt64(n), document: "doc-\(n)-\(signer.publicKey.did.suffix(6))", chain: chainID)
    }
}

/// Runs `body` with a fresh network and always shuts it down (nodes, then etcd), even when `body` throws.
public func withNetwork(
    nodes: Int, contracts: ContractSet, capabilities: @escaping CapabilityList, etcdMembers: Int = 1, http: Bool = false,
    acting: [Int: ActingOrganisation] = [:], tune: @escaping @Sendable (inout NodeConfiguration) -> Void = { _ in },
    _ body: (ConsortiumNet) async throws -> Void
) async throws {
    let net = try await ConsortiumNet(
        nodes: nodes, contracts: contracts, capabilities: capabilities, etcdMembers: etcdMembers, http: http, acting: acting, tune: tune)
    do {
        try await body(net)
    } catch {
        await net.shutdown()
        throw error
    }
    await net.shutdown()
}

/// Polls `condition` until it holds; fails the test (without hanging) after `seconds`.
public func eventually(_ what: String, seconds: Double = 30, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("not within \(seconds) s: \(what)")
    throw LedgerError("deadline", what)
}

/// A timestamped progress line on stderr (where a slow step of a fault test went).
public func trace(_ what: String) {
    FileHandle.standardError.write(Data("[\(Date())] \(what)\n".utf8))
}

/// The status of a signed GET of a member-only route with `credentials`.
public func memberStatus(_ url: String, _ credentials: PeerCredentials) async throws -> Int {
    var request = URLRequest(url: URL(string: url)!)
    for (name, value) in try credentials.headers(url: url) { request.setValue(value, forHTTPHeaderField: name) }
    let (_, response) = try await URLSession.shared.data(for: request)
    return (response as? HTTPURLResponse)?.statusCode ?? 0
}

/// A GET of a peer's member-only route (`/v1/sync/…`), signed with `node`'s credentials.
public func memberGet(_ url: String, as node: LedgerNode) async throws -> Data {
    var request = URLRequest(url: URL(string: url)!)
    for (name, value) in try node.peerCredentials.headers(url: url) { request.setValue(value, forHTTPHeaderField: name) }
    let (data, response) = try await URLSession.shared.data(for: request)
    #expect((response as? HTTPURLResponse)?.statusCode == 200, "\(String(decoding: data, as: UTF8.self))")
    return data
}
