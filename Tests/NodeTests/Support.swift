import EtcdOrdering
import Foundation
import LedgerCore
import Node
import Records
import Server
import Supply

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

/// A one-member etcd cluster on free loopback ports in a temporary directory, stopped and removed when released.
final class EtcdProcess: Sendable {
    let cluster: LocalEtcdCluster

    init(members: Int = 1) async throws {
        cluster = try await LocalEtcdCluster(members: members, directory: NSTemporaryDirectory() + "careledger-etcd-\(UUID().uuidString)")
    }

    var url: String { cluster.clientURLs[0] }
    var client: EtcdClient { cluster.client }

    deinit {
        cluster.stop()
        try? FileManager.default.removeItem(atPath: cluster.directory)
    }
}

extension LedgerAPI {
    /// The supply-chain service of the node's supply capability.
    var supply: SupplyService { capability(SupplyCapability.self)!.supply }
}

extension LedgerAPI {
    /// The records service of the node's records capability.
    var records: RecordsService { capability(RecordsCapability.self)!.records }
}
