import Crypto
import Foundation
import Synchronization

/// An Ed25519 public key (32 bytes) and its `did:key` identifier
/// (multicodec ed25519-pub 0xed 0x01, multibase base58btc 'z').
public struct PublicKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawRepresentation: [UInt8]
    private let key: Curve25519.Signing.PublicKey

    public init(rawRepresentation: [UInt8]) throws(LedgerError) {
        guard rawRepresentation.count == 32,
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation)
        else { throw LedgerError("bad_public_key", "an Ed25519 public key is 32 bytes") }
        self.rawRepresentation = rawRepresentation
        self.key = key
    }

    /// Parses `did:key:z6Mk…`.
    public init(did: String) throws(LedgerError) {
        guard did.hasPrefix("did:key:z"), let decoded = Base58.decode(String(did.dropFirst(9))),
            decoded.count == 34, decoded[0] == 0xed, decoded[1] == 0x01
        else { throw LedgerError("bad_did", "not an Ed25519 did:key: \(did.prefix(80))") }
        try self.init(rawRepresentation: Array(decoded[2...]))
    }

    public var did: String {
        // Base58 is quadratic in the length; a ledger sees the same signers again and again.
        if let known = Self.dids.withLock({ $0[rawRepresentation] }) { return known }
        let did = "did:key:z" + Base58.encode([0xed, 0x01] + rawRepresentation)
        Self.dids.withLock { cache in
            if cache.count >= 4096 { cache.removeAll(keepingCapacity: true) }
            cache[rawRepresentation] = did
        }
        return did
    }

    /// The dids of recently seen keys (at most 4096, forgotten all at once when full).
    private static let dids = Mutex<[[UInt8]: String]>([:])
    public var description: String { did }

    /// RFC 8032 verification. A key seen before is checked with its precomputed table
    /// (`Ed25519Verifier`, same verdicts, about twice as fast); a signature the table check refuses
    /// is checked again by BoringSSL, whose verdict is final.
    /// `precomputed: false` checks with BoringSSL alone (the benchmarks' generic ceiling).
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8], precomputed: Bool = true) -> Bool {
        guard signature.count == 64 else { return false }
        if precomputed, SignerTableCache.enabled, let table = SignerTableCache.shared.table(for: rawRepresentation),
            Ed25519Verifier.verify(table: table, signature: signature, message: message)
        {
            return true
        }
        return key.isValidSignature(signature, for: message)
    }

    /// `isValidSignature` for many signatures at once (the same verdicts; signers with tables share
    /// one field inversion).
    public static func areValidSignatures(_ items: [(key: PublicKey, signature: [UInt8], message: [UInt8])]) -> [Bool] {
        var tabled: [(table: SignerTable, signature: [UInt8], message: [UInt8])] = []
        var slots: [Int] = []
        for (i, item) in items.enumerated() where item.signature.count == 64 && SignerTableCache.enabled {
            if let table = SignerTableCache.shared.table(for: item.key.rawRepresentation) {
                tabled.append((table, item.signature, item.message))
                slots.append(i)
            }
        }
        var verdicts = [Bool?](repeating: nil, count: items.count)
        for (slot, ok) in zip(slots, Ed25519Verifier.verify(tabled)) where ok { verdicts[slot] = true }
        return items.enumerated().map { i, item in
            verdicts[i] ?? (item.signature.count == 64 && item.key.key.isValidSignature(item.signature, for: item.message))
        }
    }

    public static func == (lhs: PublicKey, rhs: PublicKey) -> Bool { lhs.rawRepresentation == rhs.rawRepresentation }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawRepresentation) }
    public static func < (lhs: PublicKey, rhs: PublicKey) -> Bool {
        lhs.rawRepresentation.lexicographicallyPrecedes(rhs.rawRepresentation)
    }
}

/// An Ed25519 signing key. Its 32-byte seed is the only secret.
public struct SigningKey: Sendable {
    private let key: Curve25519.Signing.PrivateKey
    public let publicKey: PublicKey

    /// A fresh random key.
    public init() {
        let key = Curve25519.Signing.PrivateKey()
        self.key = key
        self.publicKey = try! PublicKey(rawRepresentation: Array(key.publicKey.rawRepresentation))
    }

    public init(seed: [UInt8]) throws(LedgerError) {
        guard seed.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
            throw LedgerError("bad_private_key", "an Ed25519 private key seed is 32 bytes")
        }
        self.key = key
        self.publicKey = try PublicKey(rawRepresentation: Array(key.publicKey.rawRepresentation))
    }

    public var seed: [UInt8] { Array(key.rawRepresentation) }

    public func signature(for message: [UInt8]) -> [UInt8] {
        // Ed25519 signing over a valid key cannot fail.
        Array(try! key.signature(for: message))
    }
}
