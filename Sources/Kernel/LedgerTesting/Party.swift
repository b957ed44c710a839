import LedgerCore
import Standards

/// A principal of the tests: signing and encryption keys, held by the "client".
public struct Party: Sendable {
    public let key: SigningKey
    public let encryption: EncryptionKey
    /// The principal the keys sign for: the signing key's own did, unless they replaced another's (a rotation).
    public let did: String

    public init(key: SigningKey = SigningKey(), encryption: EncryptionKey = EncryptionKey(), principal: String? = nil) {
        self.key = key
        self.encryption = encryption
        did = principal ?? key.publicKey.did
    }
}
