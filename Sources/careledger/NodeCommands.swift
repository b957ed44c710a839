import ArgumentParser
import CLIKit
import Composition
import EtcdOrdering
import Foundation
import LedgerCore
import Logging
import Node
import Records
import Supply
import Prometheus
import Server
import Store

struct DataOption: ParsableArguments {
    @Option(name: .long, help: "Data directory of the node.")
    var data: String = "./careledger-data"

    var directory: DataDirectory { DataDirectory(data) }
}

struct NodeOptions: ParsableArguments {
    @Option(name: .long, help: "HTTP listen address HOST:PORT (port 0 picks a free one).")
    var http: String = "127.0.0.1:8080"

    @Option(name: .long, help: "Cut a block when this many transactions wait.")
    var blockSize: Int = 2000

    @Option(name: .long, help: "…or when the oldest has waited this many milliseconds.")
    var blockIntervalMs: Int = 20

    @Option(name: .long, help: "Largest request body in bytes.")
    var maxBodyBytes: Int = 8 * 1024 * 1024

    @Option(name: .long, help: "Largest vault blob (an encrypted record version, key envelope or recovery kit) one upload stores, in bytes (at most 16777216).")
    var vaultMaxBlobBytes: Int = VaultUploads.Limits().maxBlobBytes

    @Option(name: .long, help: "Bytes of vault uploads that no transaction refers to yet one principal may hold.")
    var vaultQuotaBytes: Int = VaultUploads.Limits().quotaBytes

    @Option(name: .long, help: "Minutes a vault upload that no transaction refers to is kept before it is removed.")
    var vaultGraceMinutes: Int = 60

    @Option(name: .long, help: "Most transactions waiting in the mempool.")
    var mempoolCapacity: Int = 200_000

    @Option(name: .long, help: "Minutes a break-the-glass access stays open.")
    var breakGlassMinutes: Int = 240

    @Option(name: .long, help: "Seconds a connection may take to send a request's headers (from opening, or from the previous answer).")
    var idleTimeout: Double = 60

    @Option(name: .long, help: "Seconds a request may take to send its body.")
    var bodyTimeout: Double = 60

    @Option(
        name: .long,
        help: "Another name (HOST or HOST:PORT) clients reach this node by, for signed requests (repeatable; the listen host, localhost and 127.0.0.1 always count).")
    var authority: [String] = []

    @Option(
        name: .long,
        help: "Key file of an organisation this node acts for (repeatable): the first in the FHIR facade, all for supply-chain writes (`up`: the demo organisations).")
    var actFor: [String] = []

    @Option(name: .long, help: "Order blocks through the etcd cluster at these client URLs (comma-separated) instead of solo.")
    var etcd: String?

    @Option(name: .long, help: "API URL of another node of the consortium to catch up from when etcd no longer holds the blocks needed (repeatable).")
    var peer: [String] = []

    @Option(name: .long, help: "Start a new node from this peer's snapshot (checked against genesis) instead of replaying the history.")
    var snapshotFrom: String?

    @Flag(help: "Print the start-up banner as one JSON line (api, openapi, fhir, checkpointKey, chainId, height, data, keys).")
    var json = false

    var etcdEndpoints: [String]? {
        etcd.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
    }

    func validate() throws {
        _ = try address()
        if let endpoints = etcdEndpoints {
            guard !endpoints.isEmpty, endpoints.allSatisfy({ $0.hasPrefix("http://") || $0.hasPrefix("https://") }) else {
                throw ValidationError("--etcd takes http(s) client URLs, comma-separated")
            }
        }
        guard blockSize >= 1, blockIntervalMs >= 1, maxBodyBytes >= 1024, mempoolCapacity >= 1, (1...10_080).contains(breakGlassMinutes) else {
            throw ValidationError("block size, interval, body limit and mempool capacity must be positive (body ≥ 1024), break-glass 1 to 10080 minutes")
        }
        guard (61...Vault.maxBlobBytes).contains(vaultMaxBlobBytes), vaultQuotaBytes >= vaultMaxBlobBytes, (1...10_080).contains(vaultGraceMinutes) else {
            throw ValidationError("--vault-max-blob-bytes is 61 to \(Vault.maxBlobBytes), --vault-quota-bytes at least that, --vault-grace-minutes 1 to 10080")
        }
    }

    func address() throws -> (String, Int) {
        guard let colon = http.lastIndex(of: ":"), let port = Int(http[http.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--http must be HOST:PORT, got \(http)")
        }
        return (String(http[..<colon]), port)
    }

    /// Solo, or through etcd with `--etcd`.
    var ordering: any Ordering { etcdEndpoints.map { EtcdOrderingService(endpoints: $0) } ?? SoloOrdering() }

    var nodeConfiguration: NodeConfiguration {
        var c = NodeConfiguration()
        c.blockSize = blockSize
        c.blockInterval = .milliseconds(blockIntervalMs)
        c.mempoolCapacity = mempoolCapacity
        c.peers = peer
        return c
    }
}

/// Starts a node in the foreground until SIGINT/SIGTERM.
func runNode(directory: DataDirectory, options: NodeOptions, banner: Bool, registerDemo: Bool = false, defaultActFor: [String] = []) async throws {
    guard directory.exists else {
        throw LedgerError("no_data", "no chain in \(directory.path): run `careledger init --data \(directory.path)` or `careledger up`")
    }
    if let peer = options.snapshotFrom {
        let fresh = (try? BlockStore(path: directory.database, readOnly: true).latestHeight()) == nil
        if fresh {
            let height = try await LedgerNode.installSnapshot(from: peer, in: directory, contracts: .careLedger)
            FileHandle.standardOutput.write(Data("Installed the snapshot of \(peer) at height \(height)\n".utf8))
        }
    }
    let registry = PrometheusCollectorRegistry()
    let node = try LedgerNode(
        directory: directory, contracts: .careLedger, ordering: options.ordering, configuration: options.nodeConfiguration, metrics: PrometheusMetricsFactory(registry: registry))
    let (host, port) = try options.address()
    var serverConfig = ServerConfiguration(host: host, port: port)
    serverConfig.maxBodyBytes = options.maxBodyBytes
    var records = RecordsCapability.Settings()
    records.breakGlassWindowMillis = Int64(options.breakGlassMinutes) * 60_000
    serverConfig.capabilities[RecordsCapability.Settings.self] = records
    serverConfig.authorities = options.authority
    serverConfig.idleTimeoutSeconds = options.idleTimeout
    serverConfig.bodyTimeoutSeconds = options.bodyTimeout
    serverConfig.vault.maxBlobBytes = options.vaultMaxBlobBytes
    serverConfig.vault.quotaBytes = options.vaultQuotaBytes
    serverConfig.vault.graceMillis = UInt64(options.vaultGraceMinutes) * 60_000
    let files = options.actFor.isEmpty ? defaultActFor.filter { FileManager.default.fileExists(atPath: $0) } : options.actFor
    let organisations = try files.map { ActingOrganisation(signing: try KeyFile.load($0), encryption: try KeyFile.loadEncryption($0)) }
    let actingFor = organisations.first
    let api = try LedgerAPI(
        node: node, configuration: serverConfig, registry: registry, vault: try Vault(path: directory.vault), acting: actingFor,
        organisations: organisations, capabilities: HostedCapabilities.careLedger)
    let server = NodeServer(api: api)
    let acting = actingFor
    try await server.run { port in
        if registerDemo {
            do {
                try await DemoSetup.registerDemoPrincipals(node: node, directory: directory, capabilities: api.capabilities)
            } catch {
                FileHandle.standardError.write(Data("warning: demo principals not registered: \(error)\n".utf8))
            }
        }
        guard banner else { return }
        let url = "http://\(host):\(port)"
        if options.json {
            var fields: [String: JSONValue] = [
                "api": .string(url), "app": .string(url + "/app/"), "openapi": .string(url + "/openapi.json"), "fhir": .string(url + "/fhir"),
                "checkpointKey": .string(node.noteVerifier.vkey), "chainId": .string(node.genesis.chainID), "height": .int(Int64(node.height)),
                "data": .string(directory.path), "keys": .string(directory.keys),
            ]
            if let acting { fields["actingFor"] = .string(acting.did) }
            FileHandle.standardOutput.write(Data((JSONValue.object(fields).canonicalString + "\n").utf8))
            return
        }
        let text = """
            CareLedger node \(node.genesis.chainID) at height \(node.height)
            App:            \(url)/app/  (patients, clinicians and auditors, in the browser)
            API:            \(url)  (OpenAPI: \(url)/openapi.json)
            FHIR R4:        \(url)/fhir\(acting.map { " (acting for \($0.did))" } ?? " (Consent and AuditEvent only)")
            Checkpoint key: \(node.noteVerifier.vkey)
            Data:           \(directory.path)  (demo keys in \(directory.keys))
            Stop with Ctrl-C.

            """
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a development consortium in the data directory if none is there, then run the node.")
    @OptionGroup var data: DataOption
    @OptionGroup var options: NodeOptions

    func run() async throws {
        let fresh = !data.directory.exists
        if fresh {
            let genesis = try Consortium.create(in: data.directory, principals: DemoSetup.principals)
            if !options.json { FileHandle.standardOutput.write(
                Data("Created chain \(genesis.chainID) in \(data.directory.path) with demo keys: \(DemoSetup.principals.joined(separator: ", "))\n".utf8)) }
        }
        try await runNode(
            directory: data.directory, options: options, banner: true, registerDemo: fresh,
            defaultActFor: (["hospital-a"] + SupplyCapability.demoParties.map(\.name) + ["insurer"]).map { data.directory.keys + "/\($0).key" })
    }
}

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a chain: genesis, the node key and demo principal keys.")
    @OptionGroup var data: DataOption
    @Option(help: "Chain id.") var chainId: String = "careledger-dev"
    @Option(parsing: .upToNextOption, help: "Founding members' dids: each must sign genesis.json (`careledger genesis sign`) before the node starts.")
    var member: [String] = []
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        for did in member { _ = try PublicKey(did: did) }
        let genesis = try Consortium.create(in: data.directory, chainID: chainId, principals: DemoSetup.principals, members: member)
        let verifier = try NoteVerifier(name: genesis.noteKeyName, publicKey: genesis.proposer)
        output(.object(["chainId": .string(genesis.chainID), "data": .string(data.data), "vkey": .string(verifier.vkey)]), json: json) {
            "Created chain \(genesis.chainID) in \(data.data)\nCheckpoint key: \(verifier.vkey)"
        }
    }
}

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "node", abstract: "Run the node of an existing data directory.")
    @OptionGroup var data: DataOption
    @OptionGroup var options: NodeOptions

    func run() async throws {
        try await runNode(directory: data.directory, options: options, banner: true)
    }
}

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify a node's data offline: signatures, hash links, Merkle roots, state roots, checkpoints.")
    @OptionGroup var data: DataOption
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        guard data.directory.exists else { throw LedgerError("no_data", "no chain in \(data.data)") }
        do {
            let report = try ChainAuditor.audit(directory: data.directory, contracts: .careLedger)
            output(report.json, json: json) {
                "OK: \(report.blocks) blocks, \(report.transactions) transactions, \(report.stateKeys) state keys verified\n"
                    + "log root \(report.logRoot.base64)\nstate root \(report.stateRoot.hex)"
            }
        } catch let failure as ChainAuditor.Failure {
            if json {
                print(JSONValue.object(["ok": .bool(false), "height": .int(Int64(failure.height)), "reason": .string(failure.reason)]).canonicalString)
            }
            throw LedgerError("audit_failed", "height \(failure.height): \(failure.reason)")
        }
    }
}

/// `careledger genesis …`: the founding document and its members' signatures.
struct GenesisCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "genesis", abstract: "Show and sign the chain's genesis (every founding member signs it).", subcommands: [Show.self, Sign.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The genesis, its founding members and who has signed (exit 1 while some have not).")
        @OptionGroup var data: DataOption
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let genesis = try Genesis.load(data.directory.genesis)
            let missing = try genesis.unsignedMembers()
            output(.object(["genesis": genesis.json, "unsigned": .array(missing.map { .string($0) })]), json: json) {
                "chain \(genesis.chainID), \(genesis.members.count) founding members, \(genesis.members.count - missing.count) signed"
                    + (missing.isEmpty ? "" : "\nstill to sign: " + missing.joined(separator: ", "))
            }
            if !missing.isEmpty { throw ExitCode(1) }
        }
    }

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add your signature (a founding member's key) to genesis.json.")
        @OptionGroup var data: DataOption
        @Option(help: "Your key file.") var key: String

        func run() throws {
            let genesis = try Genesis.load(data.directory.genesis)
            _ = try genesis.unsignedMembers()
            let signed = try genesis.signed(by: try KeyFile.load(key))
            try signed.save(to: data.directory.genesis)
            let missing = try signed.unsignedMembers()
            print(missing.isEmpty ? "signed; every founding member has signed" : "signed; still to sign: \(missing.joined(separator: ", "))")
        }
    }
}
