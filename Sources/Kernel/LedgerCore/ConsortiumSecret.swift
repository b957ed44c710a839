import Crypto

/// The secret every node of a consortium holds and the chain never does (32 bytes, in
/// `<data>/consortium.secret`, shared among the member nodes when the consortium is created or an
/// organisation joins). It is never used as a key itself: each use derives its own with HKDF-SHA256
/// (RFC 5869, no salt) under a label naming the use, so that one use's key reveals nothing of
/// another's. The kernel's labels are `membershipLabel` (a member node's proof to its peers) and
/// `stateSaltLabel` (the salt of private state leaves); a capability names its own.
public struct ConsortiumSecret: Sendable, Equatable {
    public let bytes: [UInt8]

    public static let membershipLabel = "careledger membership proof v1"
    public static let stateSaltLabel = "careledger state salt v1"

    public init(bytes: [UInt8]) throws(LedgerError) {
        guard bytes.count == 32 else { throw LedgerError("bad_secret", "a consortium secret is 32 bytes") }
        self.bytes = bytes
    }

    /// A fresh random secret (a new chain).
    public static func random() -> ConsortiumSecret { try! ConsortiumSecret(bytes: RandomBytes.make(32)) }

    /// The 32-byte key for the use `label`.
    public func key(label: String) -> [UInt8] {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: bytes), info: Array(label.utf8), outputByteCount: 32)
            .withUnsafeBytes { Array($0) }
    }
}
