import ContractKit
import Foundation
import LedgerCore
import Node
import RecordsContract
import Standards
import Synchronization

/// Custodian replication: a custodian node keeps on disk the blobs of the records it holds, fetched from peers.
extension RecordsService {
    /// Keeps the custodian's copy: when a version filed with an organisation this node acts for was
    /// uploaded to another node, this node fetches its blob from its peers as the version commits (a
    /// few tries over about six seconds) and stores it in its vault. A blob still missing (every peer
    /// down) is fetched at its first read here.
    public func installCustodianReplication() {
        guard !custodianKeys.isEmpty, !node.configuration.peers.isEmpty else { return }
        node.setAfterCommit("custodian-replication") { [self] _, events in
            let written = events.compactMap { e -> (String, Int64)? in
                guard e["type"]?.stringValue == "record.written" || e["type"]?.stringValue == "record.shared", let id = e["record"]?.stringValue,
                    let version = e["version"]?.intValue
                else { return nil }
                return (id, version)
            }
            guard !written.isEmpty else { return }
            // Bounded: past 64 blocks' fetches in flight (a long catch-up), the rest is fetched at first read.
            guard self.fetching.inFlight.withLock({ n -> Bool in
                guard n < 64 else { return false }
                n += 1
                return true
            }) else { return }
            Task {
                await self.keepFiled(written)
                self.fetching.inFlight.withLock { $0 -= 1 }
            }
        }
    }

    func keepFiled(_ written: [(record: String, version: Int64)]) async {
        var records: [RecordEntry] = []
        var wanted: [(hash: Hash, owner: VaultOwner)] = []
        for (id, number) in written {
            guard let record = try? record(id), custodianKeys[record.custodian] != nil,
                let version = record.versions.first(where: { $0.version == number })
            else { continue }
            records.append(record)
            for hex in version.blobs { if let hash = try? Hash(hex: hex) { wanted.append((hash, .record(id))) } }
        }
        for attempt in 0..<6 {
            wanted = wanted.filter { !vault.contains($0.hash) }
            if wanted.isEmpty { break }
            if attempt > 0 { try? await Task.sleep(for: .milliseconds(100 << attempt)) }
            await node.obtainVaultBlobs(wanted, into: vault, keep: true)
        }
        if !wanted.isEmpty {
            node.logger.error("no peer holds versions filed with this node's organisation", metadata: ["versions": "\(wanted.count)"])
        }
        shredIfErased(records)
    }

    /// Fetches from peers the ciphertexts of `records` this node lacks (version `number`, or the
    /// current one): stored in the vault when this node acts for the custodian, otherwise kept in memory
    /// only. Answers the ciphertexts fetched, for this request. Nothing when the node has no peers. A
    /// blob no peer served is not asked for again for 30 s (a read does not wait on the peers each time).
    func obtain(_ records: [RecordEntry], version number: Int64? = nil) async -> [Hash: [UInt8]] {
        guard !node.configuration.peers.isEmpty else { return [:] }
        let now = ContinuousClock.now
        let unavailable = fetching.missing.withLock { missing -> Set<Hash> in
            missing = missing.filter { now - $0.value < .seconds(30) }
            return Set(missing.keys)
        }
        var kept: [(hash: Hash, owner: VaultOwner)] = []
        var remembered: [(hash: Hash, owner: VaultOwner)] = []
        for record in records {
            let version = number.map { n in record.versions.first { $0.version == n } } ?? record.current
            guard let version else { continue }
            for hex in version.blobs {
                // An envelope already parsed here needs no fetch (checked first: no file system call).
                guard let hash = try? Hash(hex: hex), hex == version.saltedHash || parsed.envelope(hash) == nil, !vault.holds(hash),
                    !unavailable.contains(hash)
                else { continue }

                if custodianKeys[record.custodian] != nil { kept.append((hash, .record(record.id))) } else { remembered.append((hash, .record(record.id))) }
            }
        }
        guard !kept.isEmpty || !remembered.isEmpty else { return [:] }
        var fetched = await node.obtainVaultBlobs(kept, into: vault, keep: true)
        fetched.merge(await node.obtainVaultBlobs(remembered, into: vault, keep: false)) { a, _ in a }
        let failed = (kept + remembered).map(\.hash).filter { fetched[$0] == nil }
        if !failed.isEmpty { fetching.missing.withLock { missing in for hash in failed.prefix(10_000) { missing[hash] = now } } }
        shredIfErased(records)
        return fetched
    }
}
