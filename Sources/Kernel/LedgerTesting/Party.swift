import LedgerCore
import Standards

/// A principal of the tests: signing and encryption keys, held by the "client".
public struct Party: Sendable {
    public let key: SigningKey
    public let encryption: EncryptionKey
    public var did: String { key.publicKey.did }

    public init(key: SigningKey = SigningKey()) {
        self.key = key
        encryption = EncryptionKey()
    }
}
