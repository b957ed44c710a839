// swift-tools-version:6.1
import Foundation
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let crypto: Target.Dependency = .product(name: "Crypto", package: "swift-crypto")

/// The capabilities, one folder each under Sources/Capabilities (docs/architecture.md): `<C>/Contract`
/// is the target `<C>Contract` (pure: what executes in a block), `<C>/Service` the target `<C>` (what
/// runs beside a block: services, routes, commands), and `Tests/<C>Tests` its test target `<C>Tests`. A new
/// capability's folders are picked up here; its one line goes in the list of Sources/Composition.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
let capabilityRoot = packageRoot.appendingPathComponent("Sources/Capabilities").path
let capabilityNames = ((try? FileManager.default.contentsOfDirectory(atPath: capabilityRoot)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
func capabilityHas(_ name: String, _ part: String) -> Bool { FileManager.default.fileExists(atPath: "\(capabilityRoot)/\(name)/\(part)") }
let contractTargets = capabilityNames.filter { capabilityHas($0, "Contract") }.map { $0 + "Contract" }
let serviceTargets = capabilityNames.filter { capabilityHas($0, "Service") }
/// The contract kit and every capability's contract target.
let contracts: [Target.Dependency] = ["ContractKit"] + contractTargets.map { .target(name: $0) }
/// Every capability's service target.
let services: [Target.Dependency] = serviceTargets.map { .target(name: $0) }

let capabilityTargets: [Target] = capabilityNames.flatMap { name -> [Target] in
    var out: [Target] = []
    if capabilityHas(name, "Contract") {
        out.append(
            .target(
                name: name + "Contract", dependencies: ["ContractKit", "LedgerCore", "Standards"], path: "Sources/Capabilities/\(name)/Contract",
                swiftSettings: strict))
    }
    if capabilityHas(name, "Service") {
        out.append(
            .target(
                name: name,
                dependencies: (capabilityHas(name, "Contract") ? [.target(name: name + "Contract")] : []) + [
                    "ContractKit", "LedgerCore", "Standards", "Store", "Node", "Server", "CLIKit", "App", crypto,
                    .product(name: "ArgumentParser", package: "swift-argument-parser"),
                    .product(name: "GRDB", package: "GRDB.swift"),
                    .product(name: "Hummingbird", package: "hummingbird"),
                    .product(name: "HTTPTypes", package: "swift-http-types"),
                    .product(name: "NIOCore", package: "swift-nio"),
                    .product(name: "NIOHTTP1", package: "swift-nio"),
                    .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                ],
                path: "Sources/Capabilities/\(name)/Service",
                // Its pages of the web app (Service/Web: ES modules and CSS), served under /app/<its name, lower case>/.
                resources: capabilityHas(name, "Service/Web") ? [.copy("Web")] : [],
                swiftSettings: strict))
    }
    return out
}

let nodeDependencies: [Target.Dependency] = [
    "LedgerCore", "Standards", "Store",
    .product(name: "AsyncHTTPClient", package: "async-http-client"),
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
    .product(name: "Logging", package: "swift-log"),
    .product(name: "Metrics", package: "swift-metrics"),
    .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
]

let etcdDependencies: [Target.Dependency] = [
    "LedgerCore", "Store", "Node",
    .product(name: "AsyncHTTPClient", package: "async-http-client"),
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
    .product(name: "NIOHTTP2", package: "swift-nio-http2"),
    .product(name: "NIOHPACK", package: "swift-nio-http2"),
    .product(name: "Logging", package: "swift-log"),
]

let serverDependencies: [Target.Dependency] = [
    "LedgerCore", "Standards", "Store", "Node",
    .product(name: "Hummingbird", package: "hummingbird"),
    .product(name: "HummingbirdCore", package: "hummingbird"),
    .product(name: "HTTPTypes", package: "swift-http-types"),
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
    .product(name: "Prometheus", package: "swift-prometheus"),
    .product(name: "Metrics", package: "swift-metrics"),
    .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
]

let cliKitDependencies: [Target.Dependency] = [
    "LedgerCore", "Standards", "Store",
    .product(name: "ArgumentParser", package: "swift-argument-parser"),
    .product(name: "AsyncHTTPClient", package: "async-http-client"),
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOHTTP1", package: "swift-nio"),
]

let executableDependencies: [Target.Dependency] = [
    "LedgerCore", "Standards", "Store", "Node", "EtcdOrdering", "Server", "CLIKit", "Composition",
    .product(name: "ArgumentParser", package: "swift-argument-parser"),
    .product(name: "AsyncHTTPClient", package: "async-http-client"),
    .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOHTTP1", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
    .product(name: "Logging", package: "swift-log"),
]

/// The shared harness (LedgerTesting): the kernel and what the tests drive it with. It names no capability:
/// a test passes the contracts and capabilities its node runs.
let ledgerTestingDependencies: [Target.Dependency] = [
    "LedgerCore", "Standards", "Store", "ContractKit", "Node", "EtcdOrdering", "Server",
    .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HummingbirdTesting", package: "hummingbird"),
    .product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
]

/// What the node's and the capabilities' test targets build on: the kernel, the harness, the libraries the tests use.
let kernelTestDependencies: [Target.Dependency] = ledgerTestingDependencies + [
    "LedgerTesting", crypto, .product(name: "GRDB", package: "GRDB.swift"), .product(name: "NIOEmbedded", package: "swift-nio"),
    .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
]

/// The release for the tests: the composition and every capability's targets (which it builds anyway), so that
/// a test of one capability imports its own and a test of capabilities working together imports theirs. A test
/// file imports Composition only to run a node of the whole release.
let releaseTestDependencies: [Target.Dependency] = ["Composition"] + contractTargets.map { .target(name: $0) } + services

/// A test target per capability with a `Tests/<C>Tests` folder: `<C>Tests`, one dependency list for all.
let capabilityTestTargets: [Target] = capabilityNames.filter {
    FileManager.default.fileExists(atPath: packageRoot.appendingPathComponent("Tests/\($0)Tests").path)
}.map { name in
    .testTarget(name: name + "Tests", dependencies: releaseTestDependencies + kernelTestDependencies, path: "Tests/\(name)Tests", swiftSettings: strict)
}

let package = Package(
    name: "careledger",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "careledger", targets: ["careledger"]),
        .library(name: "LedgerCore", targets: ["LedgerCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
    ],
    targets: [
        // The kernel (Sources/Kernel).
        // SHA-256 in C (x86 SHA extensions when present): the ledger's many small hashes.
        .target(name: "CSHA256", path: "Sources/Kernel/CSHA256"),
        // The Ed25519 verifier's double scalar multiplication in C (the ledger's largest cost in a consortium).
        .target(name: "CEd25519", path: "Sources/Kernel/CEd25519"),
        // Pure core: encoding, hashing, keys, transactions, blocks, Merkle log, state proofs, checkpoints.
        .target(name: "LedgerCore", dependencies: ["CSHA256", "CEd25519", crypto], path: "Sources/Kernel/LedgerCore", swiftSettings: strict),
        // Standards on the edges: FHIR R4, GS1, EPCIS, HPKE key wrapping, content encryption (pure).
        .target(name: "Standards", dependencies: ["LedgerCore", crypto], path: "Sources/Kernel/Standards", swiftSettings: strict),
        // SQLite (GRDB) block store, state store, key files.
        .target(
            name: "Store", dependencies: ["LedgerCore", "Standards", .product(name: "GRDB", package: "GRDB.swift")], path: "Sources/Kernel/Store",
            swiftSettings: strict),
        // The contract kit: Contract, ExecutionContext, ContractRegistry, ContractSet, receipts, Payload; identity and governance.
        .target(name: "ContractKit", dependencies: ["LedgerCore", "Standards"], path: "Sources/Kernel/ContractKit", swiftSettings: strict),
        // Mempool, block production, ordering, the node service.
        .target(name: "Node", dependencies: ["ContractKit"] + nodeDependencies, path: "Sources/Kernel/Node", swiftSettings: strict),
        // Ordering through etcd: client (gRPC), block log, election, the orderer, a local etcd cluster.
        .target(name: "EtcdOrdering", dependencies: etcdDependencies, path: "Sources/Kernel/EtcdOrdering", swiftSettings: strict),
        // The command line's kit: the node API client, the session (sign, authenticate, submit), options, output.
        .target(name: "CLIKit", dependencies: cliKitDependencies, path: "Sources/Kernel/CLIKit", swiftSettings: strict),
        // The web app's shell: hand-written HTML, CSS and ES modules (Web/, no build step), served by the node under /app/.
        .target(name: "App", dependencies: ["LedgerCore"], path: "Sources/Kernel/App", resources: [.copy("Web")], swiftSettings: strict),
        // Hummingbird routes: /v1 API, OpenAPI, metrics, the web app.
        .target(name: "Server", dependencies: ["ContractKit", "App"] + serverDependencies, path: "Sources/Kernel/Server", swiftSettings: strict),
        // The harness every test target shares: temporary chains, test clocks, a node with its API, a consortium on etcd, a raw HTTP client.
        .target(name: "LedgerTesting", dependencies: ledgerTestingDependencies, path: "Sources/Kernel/LedgerTesting", swiftSettings: strict),

        // The one list of capabilities, shared by the executable and the tests.
        .target(name: "Composition", dependencies: contracts + services + ["Node", "Server", "CLIKit"], swiftSettings: strict),
        .executableTarget(name: "careledger", dependencies: contracts + services + executableDependencies, swiftSettings: strict),

        .testTarget(name: "LedgerCoreTests", dependencies: ["LedgerCore", crypto], exclude: ["Vectors"], swiftSettings: strict),
        .testTarget(name: "StandardsTests", dependencies: ["Standards", "LedgerCore", crypto], swiftSettings: strict),
        // The kernel's node, server, store and etcd; some of its tests run a node of the release (Composition).
        .testTarget(name: "NodeTests", dependencies: kernelTestDependencies + releaseTestDependencies + ["App"], swiftSettings: strict),
        .testTarget(name: "EndToEndTests", dependencies: ["LedgerCore", "Store", "RecoveryContract"], swiftSettings: strict),
    ] + capabilityTargets + capabilityTestTargets
)
