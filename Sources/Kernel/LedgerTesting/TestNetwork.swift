import ContractKit
import Foundation
import Hummingbird
import HummingbirdTesting
import LedgerCore
import Node
import Prometheus
import Server
import ServiceLifecycle
import Store

/// A node on a fresh chain with its API (optionally acting for an organisation), running `contracts`
/// and hosting `capabilities` (those the test exercises, or the release's).
public struct TestNetwork: Sendable {
    public let chain: TempChain
    public let node: LedgerNode
    public let api: LedgerAPI
    public let vault: Vault
    /// The consortium operator (the node key), who admits organisations.
    public let operatorParty: Party

    /// `clock`: the node's clock (block times, consent periods, break-the-glass windows), the system's by default.
    public init(
        contracts: ContractSet, capabilities: CapabilityList, acting: ActingOrganisation? = nil, organisations: [ActingOrganisation] = [],
        secret: ConsortiumSecret? = nil, clock: @escaping @Sendable () -> UInt64 = LedgerNode.systemClock,
        configure: (inout ServerConfiguration) -> Void = { _ in }
    ) throws {
        chain = try TempChain()
        // A consortium secret shared with another test network (the chain's own otherwise).
        if let secret {
            try? FileManager.default.removeItem(atPath: chain.directory.secret)
            try chain.directory.install(secret: secret)
        }
        var c = NodeConfiguration()
        c.blockInterval = .milliseconds(2)
        let registry = PrometheusCollectorRegistry()
        node = try LedgerNode(
            directory: chain.directory, contracts: contracts, configuration: c, clock: clock, metrics: PrometheusMetricsFactory(registry: registry))
        vault = try Vault(path: chain.directory.vault)
        var server = ServerConfiguration(host: "127.0.0.1", port: 0)  // a live test listens on a free port
        configure(&server)
        api = try LedgerAPI(
            node: node, configuration: server, registry: registry, vault: vault, acting: acting, organisations: organisations, capabilities: capabilities)
        operatorParty = Party(key: try KeyFile.load(chain.directory.nodeKey))
    }

    /// Runs the block producer, the hosted capabilities' services and the router around `body`; `live`:
    /// the node's HTTP server on a loopback port (its fast routes in front of the router), otherwise the router alone.
    public func run(live: Bool = false, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let services = api.capabilities.flatMap { $0.services(api: api) }
        let background = Task {
            await withTaskGroup(of: Void.self) { group in
                for service in services { group.addTask { try? await service.run() } }
            }
        }
        defer { background.cancel() }
        try await withRunningNode(node) {
            if live {
                let app = Application(
                    router: api.router(), server: api.httpServer, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: LedgerAPI.serverName))
                try await app.test(.live) { client in try await body(client) }
            } else {
                try await Application(router: api.router()).test(.router) { client in try await body(client) }
            }
        }
    }
}
