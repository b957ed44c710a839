import Foundation
import LedgerCore
import Node

/// A fresh data directory with a chain, removed at the end of the test.
final class TempChain: Sendable {
    let directory: DataDirectory
    let genesis: Genesis

    init(chainID: String = "test-chain") throws {
        let path = NSTemporaryDirectory() + "careledger-test-\(UUID().uuidString)"
        directory = DataDirectory(path)
        genesis = try Consortium.create(in: directory, chainID: chainID, timeMillis: 1_700_000_000_000, principals: ["alice"])
    }

    deinit { try? FileManager.default.removeItem(atPath: directory.path) }
}

/// A deterministic clock for tests.
final class TestClock: Sendable {
    let now = Mutex<UInt64>(1_700_000_000_000)
    var function: @Sendable () -> UInt64 {
        { [self] in now.withLock { $0 += 1000; return $0 } }
    }
}

import Synchronization

func notaryTx(_ key: SigningKey, nonce: UInt64, document: String, chain: String = "test-chain") throws -> Transaction {
    try Transaction(
        chainID: chain, signer: key, nonce: nonce, contract: "notary", action: "record",
        payload: .object(["hash": .string(Hash.sha256(Array(document.utf8)).hex), "label": .string("doc \(document)")]))
}

/// Runs the node's block producer for the duration of `body`.
func withRunningNode<T: Sendable>(_ node: LedgerNode, _ body: () async throws -> T) async throws -> T {
    let task = Task { await node.run() }
    defer { task.cancel() }
    let value = try await body()
    task.cancel()
    _ = await task.value
    return value
}

/// Runs `body`, failing instead of hanging when it does not finish within `seconds` (a guard, not a wait for work).
func withDeadline<T: Sendable>(seconds: Int, _ body: @escaping @Sendable () async -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw LedgerError("deadline", "did not finish within \(seconds) s")
        }
        return value
    }
}

/// A one-member etcd cluster on free loopback ports in a temporary directory (the `etcd` binary from
/// PATH: `scripts/test` installs Debian's etcd-server), stopped when released.
final class EtcdProcess: @unchecked Sendable {
    let process = Process()
    let directory: String
    let url: String

    init() async throws {
        directory = NSTemporaryDirectory() + "careledger-etcd-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let client = Int.random(in: 20_000..<40_000), peer = client + 1
        url = "http://127.0.0.1:\(client)"
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").map { "\($0)/etcd" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else { throw LedgerError("no_etcd", "etcd is not on PATH (scripts/test installs etcd-server)") }
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = [
            "--name", "test", "--data-dir", directory + "/data", "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", "http://127.0.0.1:\(peer)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peer)",
            "--initial-cluster", "test=http://127.0.0.1:\(peer)",
        ]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let etcd = EtcdClient(endpoints: [url], timeout: .seconds(2))
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if (try? await etcd.status()) != nil { break }
            guard ContinuousClock.now < deadline, process.isRunning else { throw LedgerError("no_etcd", "etcd did not start on \(url)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    var client: EtcdClient { EtcdClient(endpoints: [url]) }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
