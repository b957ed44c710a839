import Foundation
import LedgerCore
import Standards
import Synchronization

/// What a service that fetches vault blobs from peers remembers: fetches in flight, and the blobs no
/// peer served lately (not asked for again at once).
public final class PeerFetchState: Sendable {
    public let inFlight = Mutex(0)
    public let missing = Mutex<[Hash: ContinuousClock.Instant]>([:])

    public init() {}
}

/// What a vault blob belongs to, as a peer is asked for it (`?<kind>=<id>`): a peer serves a blob only
/// for the thing of a capability (a record version, an EPCIS document) that names its salted hash on
/// chain (never a recovery kit, never an erased record's content); the capability whose kind it is decides.
public struct VaultOwner: Sendable, Hashable {
    /// The query parameter its capability answers to (`record`, `document`).
    public let kind: String
    public let id: String

    public init(kind: String, id: String) {
        self.kind = kind
        self.id = id
    }

    var query: String {
        "\(kind)=\(id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? id)"
    }
}

/// Vault content held by another member's node.
///
/// A record version's ciphertext (or an EPCIS document) is uploaded to one node, but its readers come
/// through their own organisation's node, and its custodian must hold what is filed with it wherever
/// it was uploaded. A node that lacks a blob asks its peers (`GET /v1/sync/vault/{saltedHash}?record=`
/// or `?document=`, for consortium nodes only, RFC 9421 signed like block sync) and takes the first
/// answer whose SHA-256 is the salted hash the chain holds: a peer cannot substitute content. The
/// blob is still ciphertext: the reader needs her own wrapped key to open it.
extension LedgerNode {
    /// The blob (salt || ciphertext) named `saltedHash`, from the first peer that holds it (each asked
    /// for at most `timeout`); nil when none does.
    public func fetchVaultBlob(_ saltedHash: Hash, for owner: VaultOwner, timeout: Duration = .seconds(5)) async -> [UInt8]? {
        for peer in configuration.peers {
            let base = peer.hasSuffix("/") ? String(peer.dropLast()) : peer
            let url = "\(base)/v1/sync/vault/\(saltedHash.hex)?\(owner.query)"
            guard let (status, blob) = try? await PeerClient.fetch(url, credentials: peerCredentials, limit: Vault.maxBlobBytes, timeout: timeout),
                status == 200
            else { continue }
            if Hash.sha256(blob) == saltedHash { return blob }
            logger.warning("a peer served a vault blob that does not match its salted hash", metadata: ["peer": "\(peer)", "hash": "\(saltedHash.hex)"])
        }
        return nil
    }

    /// Fetches from peers the blobs of `wanted` that `vault` lacks (at most 8 at a time): stored in the
    /// vault with `keep` (the custodian keeps what is filed with it), otherwise only remembered in memory
    /// (a reader's node). Answers the blobs obtained (salt || content), for the request that needed them
    /// (the in-memory cache does not keep blobs past a few MiB).
    @discardableResult
    public func obtainVaultBlobs(_ wanted: [(hash: Hash, owner: VaultOwner)], into vault: Vault, keep: Bool) async -> [Hash: [UInt8]] {
        var seen = Set<Hash>()
        let missing = wanted.filter { (keep ? !vault.contains($0.hash) : !vault.holds($0.hash)) && seen.insert($0.hash).inserted }
        guard !missing.isEmpty, !configuration.peers.isEmpty else { return [:] }
        return await withTaskGroup(of: (Hash, [UInt8])?.self) { group in
            var next = 0
            var finished = 0
            var obtained: [Hash: [UInt8]] = [:]
            while next < missing.count || !group.isEmpty {
                while next < missing.count, next - finished < 8 {
                    let (hash, owner) = missing[next]
                    next += 1
                    group.addTask {
                        guard let blob = await self.fetchVaultBlob(hash, for: owner) else { return nil }
                        do {
                            if keep { try vault.put(saltedHash: hash, blob: blob) } else { try vault.remember(saltedHash: hash, blob: blob) }
                            return (hash, blob)
                        } catch {
                            self.logger.error("a vault blob fetched from a peer was not stored", metadata: ["hash": "\(hash.hex)", "error": "\(error)"])
                            return nil
                        }
                    }
                }
                guard let done = await group.next() else { break }
                finished += 1
                if let (hash, ciphertext) = done { obtained[hash] = ciphertext }
            }
            return obtained
        }
    }
}
