import LedgerCore
import Standards

/// Vault content held by another member's node.
///
/// A record version's ciphertext (or an EPCIS document) is uploaded to one node, but its readers come
/// through their own organisation's node, and its custodian must hold what is filed with it wherever
/// it was uploaded. A node that lacks a blob asks its peers (`GET /v1/sync/vault/{saltedHash}`, for
/// consortium nodes only, RFC 9421 signed like block sync) and takes the first answer whose SHA-256
/// is the salted hash the chain holds: a peer cannot substitute content. The blob is still
/// ciphertext: the reader needs her own wrapped key to open it.
extension LedgerNode {
    /// The blob (salt || ciphertext) named `saltedHash`, from the first peer that holds it; nil when none does.
    public func fetchVaultBlob(_ saltedHash: Hash) async -> [UInt8]? {
        for peer in configuration.peers {
            let base = peer.hasSuffix("/") ? String(peer.dropLast()) : peer
            let url = "\(base)/v1/sync/vault/\(saltedHash.hex)"
            guard let (status, blob) = try? await PeerClient.fetch(url, credentials: peerCredentials, limit: Vault.maxBlobBytes, timeout: .seconds(10)),
                status == 200
            else { continue }
            if Hash.sha256(blob) == saltedHash { return blob }
            logger.warning("a peer served a vault blob that does not match its salted hash", metadata: ["peer": "\(peer)", "hash": "\(saltedHash.hex)"])
        }
        return nil
    }

    /// Fetches from peers the blobs of `hashes` that `vault` lacks (at most 8 at a time): stored in the
    /// vault with `keep` (the custodian keeps what is filed with it), otherwise only remembered in memory
    /// (a reader's node). Answers how many it obtained.
    @discardableResult
    public func obtainVaultBlobs(_ hashes: [Hash], into vault: Vault, keep: Bool) async -> Int {
        let missing = Array(Set(hashes.filter { keep ? !vault.contains($0) : !vault.holds($0) }))
        guard !missing.isEmpty, !configuration.peers.isEmpty else { return 0 }
        return await withTaskGroup(of: Bool.self) { group in
            var next = 0
            var finished = 0
            var obtained = 0
            while next < missing.count || !group.isEmpty {
                while next < missing.count, next - finished < 8 {
                    let hash = missing[next]
                    next += 1
                    group.addTask {
                        guard let blob = await self.fetchVaultBlob(hash) else { return false }
                        do {
                            if keep { try vault.put(saltedHash: hash, blob: blob) } else { try vault.remember(saltedHash: hash, blob: blob) }
                            return true
                        } catch {
                            self.logger.error("a vault blob fetched from a peer was not stored", metadata: ["hash": "\(hash.hex)", "error": "\(error)"])
                            return false
                        }
                    }
                }
                guard let done = await group.next() else { break }
                finished += 1
                if done { obtained += 1 }
            }
            return obtained
        }
    }
}
