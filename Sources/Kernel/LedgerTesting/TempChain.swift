import Foundation
import LedgerCore
import Node

/// A fresh data directory with a chain, removed at the end of the test.
public final class TempChain: Sendable {
    public let directory: DataDirectory
    public let genesis: Genesis

    public init(chainID: String = "test-chain") throws {
        let path = NSTemporaryDirectory() + "careledger-test-\(UUID().uuidString)"
        directory = DataDirectory(path)
        genesis = try Consortium.create(in: directory, chainID: chainID, timeMillis: 1_700_000_000_000, principals: ["alice"])
    }

    deinit { try? FileManager.default.removeItem(atPath: directory.path) }
}

/// A notary transaction recording the hash of `document` (the smallest transaction a chain of the tests runs).
public func notaryTx(_ key: SigningKey, nonce: UInt64, document: String, chain: String = "test-chain") throws -> Transaction {
    try Transaction(
        chainID: chain, signer: key, nonce: nonce, contract: "notary", action: "record",
        payload: .object(["hash": .string(Hash.sha256(Array(document.utf8)).hex), "label": .string("doc \(document)")]))
}

/// Runs the node's block producer for the duration of `body`.
public func withRunningNode<T: Sendable>(_ node: LedgerNode, _ body: () async throws -> T) async throws -> T {
    let task = Task { await node.run() }
    defer { task.cancel() }
    let value = try await body()
    task.cancel()
    _ = await task.value
    return value
}

/// Runs `body`, failing instead of hanging when it does not finish within `seconds` (a guard, not a wait for work).
public func withDeadline<T: Sendable>(seconds: Int, _ body: @escaping @Sendable () async -> T) async throws -> T {
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
