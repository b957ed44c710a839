import ContractKit
import Foundation
import LedgerCore
import Store
import Synchronization

/// Offline verification of a node's whole data: every block signature and hash link, every
/// transaction signature, the log root and size after every block, the state root after every
/// block (by re-executing every transaction), every receipt, every checkpoint, and the final
/// state table against the re-executed state.
public enum ChainAuditor {
    public struct Report: Sendable {
        public var blocks: UInt64 = 0
        public var transactions: UInt64 = 0
        public var stateKeys = 0
        public var logRoot = MerkleHash.empty
        public var stateRoot = Hash.zero
        public var vkey = ""
        /// The highest block with a verified quorum certificate.
        public var finalHeight: UInt64 = 0

        public var json: JSONValue {
            .object([
                "ok": .bool(true), "blocks": .int(Int64(blocks)), "transactions": .int(Int64(transactions)), "finalHeight": .int(Int64(finalHeight)),
                "stateKeys": .int(Int64(stateKeys)), "logRoot": .string(logRoot.base64), "stateRoot": .string(stateRoot.hex),
                "vkey": .string(vkey),
            ])
        }
    }

    /// A failed audit: the first bad height and why.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let height: UInt64
        public let reason: String
        public var description: String { "audit failed at height \(height): \(reason)" }
    }

    /// The re-executed state, readable by contracts.
    final class MemoryState: StateReader {
        let values = Mutex<[String: [UInt8]]>([:])
        func value(forKey key: String) throws -> [UInt8]? { values.withLock { $0[key] } }
    }

    public static func audit(directory: DataDirectory, contracts: ContractSet) throws -> Report {
        let genesis = try Genesis.load(directory.genesis)
        try genesis.requireSigned()
        let registry = genesis.registry(contracts)
        // Checkpoints are signed by the node that holds the data (in a consortium, each its own).
        let nodeKey = (try? KeyFile.load(directory.nodeKey))?.publicKey ?? genesis.proposer
        let verifier = try NoteVerifier(name: genesis.noteKeyName, publicKey: nodeKey)
        let store = try BlockStore(path: directory.database, readOnly: true)
        defer { try? store.close() }
        var report = Report()
        report.vkey = verifier.vkey
        guard let latest = try store.latestHeight() else { throw Failure(height: 0, reason: "no blocks") }
        if let first = try store.firstHeight(), first > 0 {
            throw Failure(height: first, reason: "this node started from a snapshot at height \(first) and holds no earlier history: audit a node that has it")
        }
        var log = MerkleLog()
        var tree = SparseMerkleTree()
        let hashing = registry.stateHashing(secret: try directory.consortiumSecret(create: false))
        let state = MemoryState()
        var previous: BlockHeader?
        var nonces: Set<NonceKey> = []
        for height in 0...latest {
            func fail(_ reason: String) -> Failure { Failure(height: height, reason: reason) }
            guard let block = try store.block(height: height) else { throw fail("block missing") }
            let header = block.header
            guard header.height == height else { throw fail("header says height \(header.height)") }
            guard header.chainID == genesis.chainID else { throw fail("wrong chain id \(header.chainID)") }
            // The validator set in force for this block: genesis's, as governance changed it in the blocks before.
            let inForce = ((try? GovernanceContract.validators(in: { k in state.values.withLock { $0[k] } }, initial: genesis.validators.map(\.did))) ?? [])
                .compactMap { try? PublicKey(did: $0) }
            guard header.proposer == genesis.proposer || inForce.contains(header.proposer) else {
                throw fail("proposer is not a validator of the chain")
            }
            // Block 0 is derived from genesis.json; each node of a consortium signs its own copy.
            let signer = height == 0 && header.proposer != nodeKey ? nodeKey : header.proposer
            guard signer.isValidSignature(block.signature, for: header.encoded) else { throw fail("bad block signature") }
            if let certificate = try store.certificate(height: height) {
                do {
                    try QuorumCertificate(encoded: certificate).verify(header: header, validators: inForce)
                } catch {
                    throw fail("quorum certificate: \(error.message)")
                }
                report.finalHeight = height
            }
            if let previous {
                guard header.previousHash == previous.hash else { throw fail("previous hash does not link to block \(height - 1)") }
                guard header.timeMillis >= previous.timeMillis else { throw fail("time goes backwards") }
            } else {
                guard header == genesis.header else { throw fail("block 0 is not the genesis block of genesis.json") }
            }
            let stored: [StoredTransaction]
            do {
                stored = try store.transactions(of: block)
            } catch {
                throw fail("unreadable transaction: \(error)")
            }
            guard UInt64(stored.count) == header.transactionCount else { throw fail("transaction count mismatch") }
            var txs: [Transaction] = []
            for s in stored {
                let tx = s.transaction
                guard s.leafIndex == log.size + UInt64(txs.count) else { throw fail("leaf index gap at \(s.leafIndex)") }
                guard tx.chainID == genesis.chainID else { throw fail("transaction \(tx.id.hex) for another chain") }
                do { try tx.verifySignature() } catch { throw fail("transaction \(tx.id.hex): \(error.message)") }
                guard nonces.insert(NonceKey(tx.author, tx.nonce)).inserted else { throw fail("replayed nonce in \(tx.id.hex)") }
                txs.append(tx)
            }
            guard BlockHeader.transactionsHash(txs.map(\.id)) == header.transactionsHash else {
                throw fail("transactions hash mismatch")
            }
            for tx in txs { log.append(leafHash: tx.leafHash) }
            guard log.size == header.logSize, log.root == header.logRoot else { throw fail("log root or size mismatch") }
            if height > 0 {
                let execution = registry.execute(
                    transactions: txs, height: height, timeMillis: header.timeMillis, firstLeafIndex: header.logSize - UInt64(txs.count),
                    base: state)
                for (receipt, s) in zip(execution.receipts, stored) {
                    let result = receipt.status == .committed ? receipt.result.canonicalBytes : nil
                    guard receipt.status.rawValue == s.status, result == s.result, receipt.errorCode == s.errorCode else {
                        throw fail("receipt of \(receipt.transactionID.hex) differs from re-execution")
                    }
                }
                state.values.withLock { values in
                    for w in execution.writes { values[w.key] = w.value }
                }
                tree.set(batch: execution.writes.map { (key: $0.key, value: $0.value) }, hashing: hashing)
            }
            guard tree.root == header.stateRoot else { throw fail("state root mismatch") }
            do {
                let checkpoint = try Checkpoint.verify(note: block.checkpoint, verifier: verifier, origin: genesis.origin)
                guard checkpoint.size == header.logSize, checkpoint.rootHash == header.logRoot else {
                    throw LedgerError("bad_checkpoint", "checkpoint does not match the block")
                }
            } catch let error as LedgerError {
                throw fail("checkpoint: \(error.message)")
            }
            report.transactions += UInt64(txs.count)
            previous = header
        }
        // No transaction rows outside the blocks.
        let rows = try store.transactionCount()
        guard rows == log.size else {
            throw Failure(height: latest, reason: "\(rows) transaction rows but the blocks hold \(log.size)")
        }
        // The state table must be exactly the re-executed state.
        let expected = state.values.withLock { $0 }
        var seen = 0
        var firstBad: (String, UInt64)?
        do {
            try store.forEachState { key, value in
                seen += 1
                if firstBad == nil && expected[key] != value { firstBad = (key, 0) }
            }
        } catch let error as LedgerError {
            throw Failure(height: latest, reason: error.message)
        }
        if let (key, _) = firstBad {
            throw Failure(height: latest, reason: "state entry \(key) differs from the re-executed state")
        }
        guard seen == expected.count else { throw Failure(height: latest, reason: "state table has \(seen) keys, re-execution \(expected.count)") }
        report.blocks = latest + 1
        report.stateKeys = expected.count
        report.logRoot = log.root
        report.stateRoot = tree.root
        return report
    }
}
