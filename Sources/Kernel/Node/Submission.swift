import ContractKit
import Foundation
import LedgerCore
import Logging
import Metrics
import Store
import Synchronization

/// Submission: stateless checks, then the mempool; a receipt once the transaction is committed.
extension LedgerNode {
    /// Stateless checks of one transaction: chain, signature, contract, action, payload.
    public func check(_ tx: Transaction) throws(LedgerError) {
        try tx.verifySignature()
        try checkContent(tx)
    }

    /// `check` without the signature.
    func checkContent(_ tx: Transaction) throws(LedgerError) {
        guard tx.chainID == genesis.chainID else {
            throw LedgerError("wrong_chain", "transaction is for chain \(tx.chainID), this node runs \(genesis.chainID)")
        }
        try registry.validate(tx)
    }

    /// Checks a batch (signatures in parallel over all cores), admits it atomically and waits
    /// until every transaction of it is committed. Throws `BatchRejection` when any is refused.
    public func submit(_ txs: [Transaction]) async throws -> [Receipt] {
        guard !txs.isEmpty else { return [] }
        let errors = await Self.checkAll(txs, check: checkContent)
        if errors.contains(where: { $0 != nil }) { throw BatchRejection(items: errors) }
        return try await mempool.submit(txs)
    }

    /// Each transaction's signature (in batches, over all cores), then `check` for those whose
    /// signature verifies: nil where both pass.
    /// `workers`: where the checks run; the background workers for transactions coming in (the block
    /// producer and the committer come first: see `BackgroundWorkers`), the cooperative pool (nil) for
    /// checks a block waits for.
    static func checkAll(
        _ txs: [Transaction], on workers: BackgroundWorkers? = .shared, check: @escaping @Sendable (Transaction) throws(LedgerError) -> Void
    ) async -> [LedgerError?] {
        await Parallel.mapChunks(txs, minimumChunk: 32, on: workers) { slice in
            zip(slice, Transaction.signatureErrors(slice)).map { (tx, signatureError) -> LedgerError? in
                if let signatureError { return signatureError }
                do throws(LedgerError) { try check(tx) } catch { return error }
                return nil
            }
        }.flatMap { $0 }
    }

    /// Signs a transaction with the node's own key (for events the node records itself, such as
    /// access events), submits it and waits for its receipt.
    public func submitAsNode(contract: String, action: String, payload: JSONValue) async throws -> Receipt {
        try await submit(
            try Transaction(
                chainID: genesis.chainID, signer: key, contract: contract, action: action,
                payload: payload))
    }

    /// Submits one transaction and waits for its receipt; a refusal throws its `LedgerError`.
    public func submit(_ tx: Transaction) async throws -> Receipt {
        do {
            return try await submit([tx])[0]
        } catch let rejection as BatchRejection {
            throw rejection.first
        }
    }
}
