import LedgerCore
import LedgerTesting
import Testing

@testable import Node

@Suite struct MempoolTests {
    /// Waits (bounded) until the mempool holds `id`.
    func waitPending(_ pool: Mempool, _ id: Hash) async throws {
        for _ in 0..<2_000 where !pool.isPending(id) { try await Task.sleep(for: .milliseconds(1)) }
        #expect(pool.isPending(id))
    }

    @Test func aFullMempoolRefusesTheWholeBatchAndKeepsWhatItHeld() async throws {
        let pool = Mempool(capacity: 3)
        let key = SigningKey()
        let txs = try (0..<4).map { try notaryTx(key, nonce: UInt64($0), document: "mempool \($0)") }
        let first = Task { try await pool.submit(Array(txs[0..<2])) }
        try await waitPending(pool, txs[1].id)

        // 2 waiting + 2 more > 3: every item of the batch is refused with mempool_full, none admitted.
        do {
            _ = try await pool.submit(Array(txs[2..<4]))
            Issue.record("a batch over the capacity was admitted")
        } catch let rejection as BatchRejection {
            #expect(rejection.items.map { $0?.code } == ["mempool_full", "mempool_full"])
        }
        #expect(!pool.isPending(txs[2].id) && !pool.isPending(txs[3].id))
        #expect(pool.isPending(txs[0].id) && pool.isPending(txs[1].id))

        // One more still fits; the batch taken out is the three admitted, in order.
        let third = Task { try await pool.submit([txs[2]]) }
        try await waitPending(pool, txs[2].id)
        let batch = await pool.nextBatch(maxCount: 1, maxDelay: .milliseconds(1), limit: 10)
        #expect(batch.map(\.id) == txs[0..<3].map(\.id))

        // A failed block fails every waiter with its error: nothing is acknowledged that was not committed.
        pool.fail(batch, error: LedgerError("node_stopped", "stopped"))
        await #expect(throws: (any Error).self) { try await first.value }
        await #expect(throws: (any Error).self) { try await third.value }
    }
}
