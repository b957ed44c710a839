import Hummingbird
import Logging
import Metrics
import NIOCore
import Node
import Prometheus
import ServiceLifecycle

/// Runs a node's block producer and its HTTP server together as services; stops both on
/// SIGINT/SIGTERM or when the task is cancelled.
public struct NodeServer: Sendable {
    public let api: LedgerAPI

    public init(api: LedgerAPI) { self.api = api }

    /// Starts serving; `onListening` gets the bound port (useful with port 0).
    /// Runs until SIGTERM/SIGINT (with `handleSignals`), until `shutdown` returns (a graceful stop:
    /// requests in progress finish), or until the task is cancelled.
    public func run(
        handleSignals: Bool = true, logger: Logger = Logger(label: "careledger"),
        onListening: @escaping @Sendable (Int) async -> Void = { _ in },
        shutdown: (@Sendable () async -> Void)? = nil
    ) async throws {
        let node = api.node, configuration = api.configuration
        let app = Application(
            router: api.router(), server: api.httpServer,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: LedgerAPI.serverName),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        let producer = BlockProducerService(node: node)
        let uploads = VaultUploadsService(api: api)
        let hosted: [any Service] = api.capabilities.flatMap { $0.services(api: api) }
        let services: [any Service] = [producer] + hosted + [uploads, app]
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: logger))
        // SIGINT or SIGTERM: a graceful stop (requests in progress finish); a second one ends at once.
        let signals = handleSignals
            ? StopSignals(
                first: { sig in
                    logger.info("stopping; a second signal stops at once", metadata: ["signal": "\(sig)"])
                    await group.triggerGracefulShutdown()
                },
                again: { sig in logger.info("second signal: stopping at once", metadata: ["signal": "\(sig)"]) })
            : nil
        defer { signals?.cancel() }
        guard let shutdown else { return try await group.run() }
        let stopper = Task {
            await shutdown()
            await group.triggerGracefulShutdown()
        }
        defer { stopper.cancel() }
        try await group.run()
    }
}

/// The node's block production loop as a service.
struct BlockProducerService: Service {
    let node: LedgerNode
    func run() async throws {
        await cancelWhenGracefulShutdown { await node.run() }
    }
}

/// Forgets claimed vault uploads and destroys those unclaimed past the grace period: at start, then
/// every minute (or every tenth of the grace period, when that is shorter).
struct VaultUploadsService: Service {
    let api: LedgerAPI
    func run() async throws {
        let every = max(0.05, min(60, Double(api.uploads.limits.graceMillis) / 10_000))
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                api.sweepUploads()
                try? await Task.sleep(for: .seconds(every))
            }
        }
    }
}
