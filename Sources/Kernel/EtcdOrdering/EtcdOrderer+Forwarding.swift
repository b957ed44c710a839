import Foundation
import LedgerCore
import Node
import Logging
import Store
import Synchronization

/// Forwarding: the node's admitted transactions go to the ordering queue in etcd.
extension EtcdOrderer {
    /// Sends the node's admitted transactions to the ordering queue; retries until etcd takes them.
    func forwardLoop() async {
        while !Task.isCancelled {
            let batch = await node.nextForwardBatch()
            if batch.isEmpty { continue }
            for chunk in Self.chunks(batch, maxBytes: node.configuration.maxProposalBytes) {
                var w = BinaryWriter(capacity: chunk.reduce(16) { $0 + $1.encoded.count + 3 })
                w.writeVarint(UInt64(chunk.count))
                for tx in chunk { w.writeBytes(tx.encoded) }
                let key = queuePrefix + EtcdBlockLog.padded(node.now) + "-" + String(node.publicKey.did.suffix(8)) + "-"
                    + EtcdBlockLog.padded(sequence.add(1, ordering: .relaxed).newValue)
                while !Task.isCancelled {
                    do {
                        try await client.put(key, w.bytes)
                        break
                    } catch {
                        if Task.isCancelled { break }
                        logger.warning("cannot forward transactions to etcd; retrying", metadata: ["error": "\(error)"])
                        try? await Task.sleep(for: .milliseconds(200))
                    }
                }
            }
        }
    }

    static func chunks(_ txs: [Transaction], maxBytes: Int) -> [[Transaction]] {
        var out: [[Transaction]] = [[]]
        var size = 0
        for tx in txs {
            if size + tx.encoded.count > maxBytes && !out[out.count - 1].isEmpty {
                out.append([])
                size = 0
            }
            out[out.count - 1].append(tx)
            size += tx.encoded.count
        }
        return out
    }

    static func decodeBatch(_ bytes: [UInt8]) -> [Transaction] {
        var r = BinaryReader(bytes)
        guard let count = try? r.readVarint(), count <= 1 << 20 else { return [] }
        var txs: [Transaction] = []
        for _ in 0..<count {
            guard let raw = try? r.readBytes(limit: 1 << 20), let tx = try? Transaction(encoded: raw) else { return txs }
            txs.append(tx)
        }
        return txs
    }
}
