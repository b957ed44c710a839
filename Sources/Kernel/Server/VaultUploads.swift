import Foundation
import LedgerCore
import Node
import Prometheus
import Synchronization

/// Blobs that clients upload (`PUT /v1/vault/{hash}`) before the transaction that refers to them:
/// each is noted as unclaimed, with its uploader, size and time, until a committed transaction
/// claims it (a record version's ciphertext or key envelope, a recovery kit). A principal holds at
/// most `quotaBytes` of unclaimed uploads at once; an upload still unclaimed `graceMillis` after it
/// arrived is destroyed by `sweep` — judged by the chain this node has applied (`LedgerAPI.sweepUploads`:
/// a node that is behind, e.g. just restarted, destroys nothing a block it has not applied yet may
/// claim). Notes are files in `<vault>/unclaimed/`, written before the blob,
/// so that a restart (or a crash between the two) forgets nothing.
public final class VaultUploads: Sendable {
    public struct Entry: Sendable, Equatable {
        public let uploader: String
        public let bytes: Int
        public let atMillis: UInt64
    }

    /// An upload refused for the uploader's quota: the error, and the seconds until her oldest unclaimed upload is removed.
    public struct QuotaRefusal: Sendable, Equatable {
        public let error: LedgerError
        public let retryAfter: UInt64
    }

    /// The notes, with the bytes they add up to in all and per uploader (kept as notes come and go).
    private struct State {
        var entries: [Hash: Entry] = [:]
        var byUploader: [String: Int] = [:]
        var total = 0

        mutating func add(_ hash: Hash, _ entry: Entry) {
            remove(hash)
            entries[hash] = entry
            byUploader[entry.uploader, default: 0] += entry.bytes
            total += entry.bytes
        }

        mutating func remove(_ hash: Hash) {
            guard let entry = entries.removeValue(forKey: hash) else { return }
            let left = byUploader[entry.uploader, default: 0] - entry.bytes
            byUploader[entry.uploader] = left > 0 ? left : nil
            total -= entry.bytes
        }
    }

    public struct Limits: Sendable {
        /// The largest blob one upload stores (at most `Vault.maxBlobBytes`).
        public var maxBlobBytes = Vault.maxBlobBytes
        /// Unclaimed bytes one principal may hold.
        public var quotaBytes = 64 * 1024 * 1024
        /// How long an unclaimed upload is kept.
        public var graceMillis: UInt64 = 3_600_000
        public init() {}
    }

    public let vault: Vault
    public let limits: Limits
    private let directory: String
    /// Whether a committed transaction refers to the blob `hash` uploaded by `uploader`.
    private let claimed: @Sendable (_ hash: Hash, _ uploader: String) -> Bool
    private let state: Mutex<State>
    private let unclaimedBytes: Gauge
    private let removedBlobs: Counter
    private let removedBytes: Counter

    public init(
        vault: Vault, limits: Limits, registry: PrometheusCollectorRegistry, claimed: @escaping @Sendable (_ hash: Hash, _ uploader: String) -> Bool
    ) throws {
        self.vault = vault
        self.limits = limits
        self.claimed = claimed
        directory = vault.path + "/unclaimed"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var found = State()
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            let path = directory + "/" + name
            guard let hash = try? Hash(hex: name), let entry = Self.parse(FileManager.default.contents(atPath: path)) else {
                unlink(path)  // a note cut short by a crash, or a temporary file
                continue
            }
            found.add(hash, entry)
        }
        state = Mutex(found)
        unclaimedBytes = registry.makeGauge(
            descriptor: .init(namespace: "careledger", metricName: "vault_unclaimed", unitName: "bytes", helpText: "Bytes uploaded to the vault that no transaction claims yet"))
        removedBlobs = registry.makeCounter(
            descriptor: .init(
                namespace: "careledger", metricName: "vault_unclaimed_removed", unitName: "total",
                helpText: "Uploaded vault blobs removed because no transaction claimed them in the grace period"))
        removedBytes = registry.makeCounter(
            descriptor: .init(
                namespace: "careledger", metricName: "vault_unclaimed_removed_bytes", unitName: "total", helpText: "Bytes of uploaded vault blobs removed unclaimed"))
        unclaimedBytes.set(Int64(found.total))
    }

    /// The unclaimed uploads now, by salted hash.
    public var unclaimed: [Hash: Entry] { state.withLock { $0.entries } }

    /// Stores `blob` for `uploader` under `saltedHash` within the size limit and her quota; over her
    /// quota, answers the refusal (`vault_quota`) and stores nothing. A `body_too_large` or
    /// `hash_mismatch` error changes nothing either. A blob the vault already holds is not stored or
    /// counted again.
    public func upload(_ blob: [UInt8], saltedHash: Hash, uploader: String, now: UInt64) throws(LedgerError) -> QuotaRefusal? {
        guard blob.count <= limits.maxBlobBytes else {
            throw LedgerError("body_too_large", "a vault blob is at most \(limits.maxBlobBytes) bytes")
        }
        guard Hash.sha256(blob) == saltedHash else { throw LedgerError("hash_mismatch", "SHA-256(salt || ciphertext) is not \(saltedHash.hex)") }
        if vault.contains(saltedHash) { return nil }
        if let refusal = overQuota(adding: blob.count, uploader: uploader, now: now) { return refusal }
        let entry = Entry(uploader: uploader, bytes: blob.count, atMillis: now)
        try note(saltedHash, entry)
        do {
            try vault.put(saltedHash: saltedHash, blob: blob)
        } catch {
            unlink(directory + "/" + saltedHash.hex)
            throw error as? LedgerError ?? LedgerError("io_error", "cannot write the vault blob")
        }
        state.withLock { s in
            s.add(saltedHash, entry)
            unclaimedBytes.set(Int64(s.total))
        }
        return nil
    }

    /// Why `uploader` may not add `bytes` of unclaimed uploads now, with the seconds until her oldest
    /// upload is removed; nil when she may. Her uploads that transactions claimed meanwhile are
    /// counted out first.
    private func overQuota(adding bytes: Int, uploader: String, now: UInt64) -> QuotaRefusal? {
        if held(by: uploader) + bytes <= limits.quotaBytes { return nil }
        settle(uploader)
        let (held, oldest) = state.withLock { s in
            (s.byUploader[uploader, default: 0], s.entries.values.lazy.filter { $0.uploader == uploader }.map(\.atMillis).min() ?? .max)
        }
        guard held + bytes > limits.quotaBytes else { return nil }
        let wait = oldest == .max ? 1 : max(1, (oldest + limits.graceMillis).subtractingClamped(now) / 1000 + 1)
        let error = LedgerError(
            "vault_quota",
            "\(uploader) holds \(held) bytes of uploads that no transaction refers to yet (at most \(limits.quotaBytes)): "
                + "submit the transactions that claim them, or retry in \(wait) s, when the oldest is removed")
        return QuotaRefusal(error: error, retryAfter: wait)
    }

    /// Unclaimed bytes `uploader` holds (claims not yet looked at included).
    public func held(by uploader: String) -> Int { state.withLock { $0.byUploader[uploader, default: 0] } }

    /// Drops the notes of `uploader`'s blobs that transactions now claim.
    private func settle(_ uploader: String) {
        let mine = state.withLock { $0.entries.filter { $0.value.uploader == uploader } }
        for (hash, entry) in mine where claimed(hash, entry.uploader) { forget(hash) }
    }

    /// Forgets the claimed uploads and destroys those unclaimed for longer than the grace period as of
    /// `now`. Returns how many blobs were claimed and how many removed.
    @discardableResult
    public func sweep(now: UInt64) -> (claimed: Int, removed: Int) {
        var kept = 0, removed = 0
        for (hash, entry) in state.withLock({ $0.entries }) {
            if claimed(hash, entry.uploader) {
                forget(hash)
                kept += 1
            } else if now >= entry.atMillis + limits.graceMillis {
                vault.destroy(hash)
                forget(hash)
                removedBlobs.increment()
                removedBytes.increment(by: Int64(entry.bytes))
                removed += 1
            }
        }
        return (kept, removed)
    }

    private func forget(_ hash: Hash) {
        unlink(directory + "/" + hash.hex)
        state.withLock { s in
            s.remove(hash)
            unclaimedBytes.set(Int64(s.total))
        }
    }

    /// Writes the note durably (temporary file, fsync, rename) before the blob itself is stored.
    private func note(_ hash: Hash, _ entry: Entry) throws(LedgerError) {
        let bytes = Array("\(entry.uploader)\n\(entry.bytes)\n\(entry.atMillis)\n".utf8)
        guard DurableFile.save(bytes, to: directory + "/" + hash.hex, in: directory) else {
            throw LedgerError("io_error", "cannot note the vault upload")
        }
    }

    private static func parse(_ data: Data?) -> Entry? {
        guard let data, let text = String(data: data, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count == 4, lines[3].isEmpty, !lines[0].isEmpty, let bytes = Int(lines[1]), let at = UInt64(lines[2]) else { return nil }
        return Entry(uploader: String(lines[0]), bytes: bytes, atMillis: at)
    }
}

extension UInt64 {
    /// `self - other`, or 0 when `other` is larger.
    func subtractingClamped(_ other: UInt64) -> UInt64 { self > other ? self - other : 0 }
}
