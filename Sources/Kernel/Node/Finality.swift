import ContractKit
import Foundation
import LedgerCore
import Logging
import Metrics
import Store
import Synchronization

/// Finality: quorum certificates, waiting for a height to be final, votes, alarms, the cosigned checkpoint.
extension LedgerNode {
    /// The highest final height (a quorum of validators signed it and every block below).
    public var lastFinalHeight: UInt64 { finalHeight.withLock { $0 } }

    package func markFinal(_ height: UInt64) {
        let ready = finalHeight.withLock { h -> [CheckedContinuation<Void, Never>] in
            h = max(h, height)
            return finalWaiters.withLock { waiters in
                let done = waiters.filter { $0.0 <= h }.map(\.2)
                waiters.removeAll { $0.0 <= h }
                return done
            }
        }
        for c in ready { c.resume() }
    }

    /// Waits until `height` is final (or `timeout` passes: answers false).
    public func waitFinal(_ height: UInt64, timeout: Duration = .seconds(30)) async -> Bool {
        if lastFinalHeight >= height { return true }
        let id = UUID()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = finalHeight.withLock { h -> Bool in
                if h >= height { return true }
                finalWaiters.withLock { $0.append((height, id, c)) }
                return false
            }
            if now { return c.resume() }
            Task {
                try? await Task.sleep(for: timeout)
                let late = finalWaiters.withLock { w -> CheckedContinuation<Void, Never>? in
                    guard let i = w.firstIndex(where: { $0.1 == id }) else { return nil }
                    return w.remove(at: i).2
                }
                late?.resume()
            }
        }
        return lastFinalHeight >= height
    }

    /// The stored quorum certificate of a block.
    public func certificate(height: UInt64) throws -> QuorumCertificate? {
        try store.certificate(height: height).map { try QuorumCertificate(encoded: $0) }
    }

    /// Keeps misbehaviour evidence (a refused proposal, an equivocation, a fork) and raises the alarm:
    /// an error in the log and `careledger_alarms_total`.
    package func alarm(height: UInt64, validator: String, kind: String, detail: String, first: [UInt8]?, second: [UInt8]?) {
        let evidence = BlockStore.Evidence(
            height: height, validator: validator, kind: kind, detail: detail, first: first, second: second, timeMillis: clock())
        let fresh = (try? store.addEvidence(evidence)) ?? true
        guard fresh else { return }
        alarmCounter.increment()
        logger.error("alarm: \(kind)", metadata: ["height": "\(height)", "validator": "\(validator)", "detail": "\(detail)"])
    }

    package func sign(_ message: [UInt8]) -> [UInt8] { key.signature(for: message) }

    package func vote(for header: BlockHeader) -> BlockVote { BlockVote(header: header, signer: key, origin: genesis.origin) }

    /// The checkpoint of the last final block, cosigned by the validators of its quorum certificate.
    public func finalCheckpoint() throws -> String {
        let height = lastFinalHeight
        guard let block = try store.block(height: height), let certificate = try certificate(height: height) else {
            throw LedgerError("not_found", "no certified block yet")
        }
        return try certificate.cosignedCheckpoint(header: block.header, origin: genesis.origin)
    }

    /// The validators' C2SP verifier keys (the key name is the log origin).
    public var validatorVKeys: [String] { validators.compactMap { try? NoteVerifier(name: genesis.noteKeyName, publicKey: $0).vkey } }
}
