// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

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
        // Pure core: encoding, hashing, keys, transactions, blocks, Merkle log, state proofs, checkpoints.
        // SHA-256 in C (x86 SHA extensions when present): the ledger's many small hashes.
        .target(name: "CSHA256"),
        // The Ed25519 verifier's double scalar multiplication in C (the ledger's largest cost in a consortium).
        .target(name: "CEd25519"),
        .target(
            name: "LedgerCore",
            dependencies: ["CSHA256", "CEd25519", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // Standards on the edges: HPKE key wrapping, content encryption (pure).
        .target(
            name: "Standards",
            dependencies: ["LedgerCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // SQLite (GRDB) block store, state store.
        .target(
            name: "Store",
            dependencies: ["LedgerCore", "Standards", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict
        ),
        // Contracts (one folder per domain).
        .target(name: "Domains", dependencies: ["LedgerCore", "Standards", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),
        // Mempool, block production, ordering, the node service.
        .target(
            name: "Node",
            dependencies: [
                "LedgerCore", "Store", "Domains",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Hummingbird routes: /v1 API, OpenAPI, metrics.
        .target(
            name: "Server",
            dependencies: [
                "LedgerCore", "Standards", "Store", "Node", "Domains",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "careledger",
            dependencies: [
                "LedgerCore", "Standards", "Store", "Domains", "Node", "Server",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "LedgerCoreTests", dependencies: ["LedgerCore", .product(name: "Crypto", package: "swift-crypto")], exclude: ["Vectors"],
            swiftSettings: strict),
        .testTarget(
            name: "StandardsTests",
            dependencies: ["Standards", "LedgerCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "NodeTests",
            dependencies: ["LedgerCore", "Standards", "Store", "Domains", "Node", "Server",
                           .product(name: "HummingbirdTesting", package: "hummingbird"), .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "NIOEmbedded", package: "swift-nio"),
                           .product(name: "NIOHTTPTypes", package: "swift-nio-extras")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["LedgerCore", "Store", "Domains"],
            swiftSettings: strict
        ),
    ]
)
