import Standards
import LedgerCore

/// The organisation a node acts for (FHIR facade, supply-chain writes): its signing key (it signs the record
/// transactions, naming the practitioner in `onBehalfOf`) and its encryption key (it opens keys
/// wrapped for the organisation). Organisation keys only: no patient key is ever on a node.
public struct ActingOrganisation: Sendable {
    public let signing: SigningKey
    public let encryption: EncryptionKey
    public var did: String { signing.publicKey.did }

    public init(signing: SigningKey, encryption: EncryptionKey) {
        self.signing = signing
        self.encryption = encryption
    }
}
