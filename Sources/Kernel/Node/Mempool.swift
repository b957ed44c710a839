import ContractKit
import LedgerCore
import Synchronization

/// (author, nonce) packed into fixed words: the replay-protection key.
package struct NonceKey: Hashable, Sendable {
    let a: UInt64, b: UInt64, c: UInt64, d: UInt64, nonce: UInt64

    package init(_ author: PublicKey, _ nonce: UInt64) {
        let r = author.rawRepresentation
        func word(_ i: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 << 8 | UInt64(r[i * 8 + $1]) } }
        a = word(0)
        b = word(1)
        c = word(2)
        d = word(3)
        self.nonce = nonce
    }
}

/// Waits for the receipts of one submitted batch.
final class BatchWaiter: @unchecked Sendable {
    // Mutated only under the mempool's lock.
    var receipts: [Receipt?]
    var remaining: Int
    let continuation: CheckedContinuation<[Receipt], any Error>

    init(count: Int, continuation: CheckedContinuation<[Receipt], any Error>) {
        receipts = Array(repeating: nil, count: count)
        remaining = count
        self.continuation = continuation
    }
}

/// Transactions admitted but not yet in a block, in arrival order, with the replay checks
/// (pending and committed nonces) and the callers waiting for receipts.
final class Mempool: Sendable {
    struct State {
        var queue: [Transaction] = []
        var head = 0
        var pendingIDs: Set<Hash> = []
        /// (author, nonce) of each pending transaction → its id.
        var pendingNonces: [NonceKey: Hash] = [:]
        var committedNonces: Set<NonceKey> = []
        var waiters: [Hash: (BatchWaiter, Int)] = [:]
        var firstArrival: ContinuousClock.Instant?
        /// When the last batch was taken: a node idle for `maxDelay` cuts at once.
        var lastTaken: ContinuousClock.Instant?
        var wakeup: CheckedContinuation<Void, Never>?
        var closed: LedgerError?
        var count: Int { queue.count - head }
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = capacity }

    var count: Int { state.withLock { $0.count } }

    /// The ids of those of `txs` admitted here and not yet committed (one lock for the lot).
    func pendingSubset(_ txs: [Transaction]) -> Set<Hash> {
        state.withLock { s in
            var out: Set<Hash> = []
            for tx in txs where s.pendingIDs.contains(tx.id) { out.insert(tx.id) }
            return out
        }
    }

    /// Admitted here (so its signature was checked here) and not yet committed.
    func isPending(_ id: Hash) -> Bool { state.withLock { $0.pendingIDs.contains(id) } }

    package func isCommitted(_ tx: Transaction) -> Bool { state.withLock { $0.committedNonces.contains(NonceKey(tx.author, tx.nonce)) } }

    func markCommitted(_ keys: [NonceKey]) {
        state.withLock { s in for k in keys { s.committedNonces.insert(k) } }
    }

    /// Admits a batch atomically (all or none) and returns their receipts once committed.
    func submit(_ txs: [Transaction]) async throws -> [Receipt] {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[Receipt], any Error>) in
            let outcome: Result<Void, BatchRejection> = state.withLock { s in
                if let closed = s.closed { return .failure(BatchRejection(items: txs.map { _ in closed })) }
                var errors: [LedgerError?] = Array(repeating: nil, count: txs.count)
                var seen: Set<NonceKey> = []
                var bad = false
                for (i, tx) in txs.enumerated() {
                    let key = NonceKey(tx.author, tx.nonce)
                    if s.committedNonces.contains(key) {
                        errors[i] = LedgerError("replayed_nonce", "nonce \(tx.nonce) of \(tx.author.did) was already used in a committed transaction")
                    } else if s.pendingIDs.contains(tx.id) {
                        errors[i] = LedgerError("duplicate_transaction", "transaction \(tx.id.hex) is already waiting in the mempool")
                    } else if s.pendingNonces[key] != nil || !seen.insert(key).inserted {
                        errors[i] = LedgerError("replayed_nonce", "nonce \(tx.nonce) of \(tx.author.did) is already used by a pending transaction")
                    }
                    if errors[i] != nil { bad = true }
                }
                if !bad && s.pendingIDs.count + txs.count > capacity {
                    return .failure(BatchRejection(items: txs.map { _ in LedgerError("mempool_full", "the mempool is full (\(capacity) transactions); retry later") }))
                }
                if bad { return .failure(BatchRejection(items: errors)) }
                let waiter = BatchWaiter(count: txs.count, continuation: continuation)
                for (i, tx) in txs.enumerated() {
                    s.queue.append(tx)
                    s.pendingIDs.insert(tx.id)
                    s.pendingNonces[NonceKey(tx.author, tx.nonce)] = tx.id
                    s.waiters[tx.id] = (waiter, i)
                }
                if s.firstArrival == nil { s.firstArrival = .now }
                if let wake = s.wakeup {
                    s.wakeup = nil
                    wake.resume()
                }
                return .success(())
            }
            if case .failure(let rejection) = outcome { continuation.resume(throwing: rejection) }
        }
    }

    /// Waits until `maxCount` transactions wait, or the oldest has waited `maxDelay`, or `maxDelay` has
    /// passed since the last batch (an idle node does not hold a lone transaction back); then takes
    /// up to `limit`.
    func nextBatch(maxCount: Int, maxDelay: Duration, limit: Int) async -> [Transaction] {
        while !Task.isCancelled {
            enum Step { case take([Transaction]), sleep(Duration), park }
            let step: Step = state.withLock { s in
                guard s.count > 0, let first = s.firstArrival else { return .park }
                let now = ContinuousClock.now
                let waited = now - first
                let idle = s.lastTaken.map { now - $0 >= maxDelay } ?? true
                if s.count >= maxCount || waited >= maxDelay || idle {
                    s.lastTaken = now
                    let n = min(limit, s.count)
                    let batch = Array(s.queue[s.head..<s.head + n])
                    s.head += n
                    if s.head > 4096 && s.head * 2 > s.queue.count {
                        s.queue.removeFirst(s.head)
                        s.head = 0
                    }
                    s.firstArrival = s.count > 0 ? ContinuousClock.now : nil
                    return .take(batch)
                }
                let untilIdle = s.lastTaken.map { maxDelay - (now - $0) } ?? .zero
                return .sleep(min(maxDelay - waited, untilIdle, .milliseconds(1)))
            }
            switch step {
            case .take(let batch): return batch
            case .sleep(let d): try? await Task.sleep(for: d)
            case .park:
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                        let resumeNow = state.withLock { s -> Bool in
                            if s.count > 0 || s.closed != nil { return true }
                            s.wakeup = c
                            return false
                        }
                        if resumeNow { c.resume() }
                    }
                } onCancel: {
                    let c = state.withLock { s -> CheckedContinuation<Void, Never>? in
                        defer { s.wakeup = nil }
                        return s.wakeup
                    }
                    c?.resume()
                }
            }
        }
        return []
    }

    /// Delivers the receipts of a committed block and records the nonces as used. A transaction waiting
    /// here whose (author, nonce) another transaction took (sent to another node of a consortium) fails
    /// with `replayed_nonce`: it can never commit.
    func complete(_ txs: [Transaction], receipts: [Receipt]) {
        var finished: [(BatchWaiter, [Receipt])] = []
        var lost: [(BatchWaiter, LedgerError)] = []
        state.withLock { s in
            for (tx, receipt) in zip(txs, receipts) {
                let key = NonceKey(tx.author, tx.nonce)
                s.pendingIDs.remove(tx.id)
                if let other = s.pendingNonces.removeValue(forKey: key), other != tx.id {
                    s.pendingIDs.remove(other)
                    if let (waiter, _) = s.waiters.removeValue(forKey: other), waiter.remaining > 0 {
                        waiter.remaining = 0
                        lost.append((waiter, LedgerError("replayed_nonce", "nonce \(tx.nonce) of \(tx.author.did) was taken by transaction \(tx.id.hex), committed at height \(receipt.height)")))
                    }
                }
                s.committedNonces.insert(key)
                if let (waiter, index) = s.waiters.removeValue(forKey: tx.id), waiter.remaining > 0 {
                    waiter.receipts[index] = receipt
                    waiter.remaining -= 1
                    if waiter.remaining == 0 { finished.append((waiter, waiter.receipts.map { $0! })) }
                }
            }
        }
        for (waiter, receipts) in finished { waiter.continuation.resume(returning: receipts) }
        for (waiter, error) in lost { waiter.continuation.resume(throwing: error) }
    }

    /// Fails a batch that could not be committed, and every waiter when the node stops.
    func fail(_ txs: [Transaction], error: LedgerError) {
        var failed: [BatchWaiter] = []
        state.withLock { s in
            for tx in txs {
                s.pendingIDs.remove(tx.id)
                s.pendingNonces[NonceKey(tx.author, tx.nonce)] = nil
                if let (waiter, _) = s.waiters.removeValue(forKey: tx.id), waiter.remaining > 0 {
                    waiter.remaining = 0
                    failed.append(waiter)
                }
            }
        }
        for waiter in failed { waiter.continuation.resume(throwing: error) }
    }

    func close(_ error: LedgerError) {
        let (pending, wake): ([Transaction], CheckedContinuation<Void, Never>?) = state.withLock { s in
            s.closed = error
            let pending = Array(s.queue[s.head...])
            let wake = s.wakeup
            s.wakeup = nil
            return (pending, wake)
        }
        fail(pending, error: error)
        wake?.resume()
    }
}

/// A batch refused at admission: one error (or nil) per transaction, nothing admitted.
public struct BatchRejection: Error, Sendable {
    public let items: [LedgerError?]
    public var first: LedgerError { items.compactMap { $0 }.first ?? LedgerError("rejected", "batch rejected") }
}
