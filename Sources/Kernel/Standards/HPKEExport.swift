import Crypto
import Foundation
import LedgerCore

/// The exporter of an RFC 9180 HPKE context in base mode for the suite CareLedger wraps keys
/// with: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM (§4.1 Encap/Decap, §5.1 key
/// schedule, §5.3 secret export). swift-crypto computes the same values but keeps the exporter
/// secret inside; holding it here makes each export one HMAC, which matters when a reader opens a
/// thousand keys exported from one encapsulation. Checked against the RFC 9180 vectors and
/// against swift-crypto's `HPKE.Sender` / `HPKE.Recipient` in the tests.
public struct HPKEExportContext: Sendable {
    /// The encapsulated key (the sender's ephemeral X25519 public key).
    public let enc: [UInt8]
    /// The exporter secret of the context.
    public let exporterSecret: [UInt8]

    static let kemID: UInt16 = 0x0020, kdfID: UInt16 = 0x0001

    /// A sender's context for `recipient`: a fresh ephemeral key (Encap).
    public init(sealingTo recipient: Curve25519.KeyAgreement.PublicKey, info: [UInt8], aeadID: UInt16 = 0x0002) throws {
        try self.init(sealingTo: recipient, ephemeral: Curve25519.KeyAgreement.PrivateKey(), info: info, aeadID: aeadID)
    }

    init(sealingTo recipient: Curve25519.KeyAgreement.PublicKey, ephemeral: Curve25519.KeyAgreement.PrivateKey, info: [UInt8], aeadID: UInt16) throws {
        let dh = try ephemeral.sharedSecretFromKeyAgreement(with: recipient).withUnsafeBytes { Array($0) }
        let enc = Array(ephemeral.publicKey.rawRepresentation)
        self.enc = enc
        let shared = Self.kemSharedSecret(dh: dh, kemContext: enc + Array(recipient.rawRepresentation))
        exporterSecret = Self.keySchedule(sharedSecret: shared, info: info, aeadID: aeadID).exporterSecret
        keyedExporter = PreparedHMAC(key: exporterSecret)
    }

    /// Encap and the key schedule of a base-mode sender (§4.1, §5.1) for AES-256-GCM: the
    /// encapsulated key, the AEAD key and the base nonce (the nonce of sequence number 0).
    static func sealingKey(
        to recipient: Curve25519.KeyAgreement.PublicKey, ephemeral: Curve25519.KeyAgreement.PrivateKey, info: [UInt8]
    ) throws -> (enc: [UInt8], key: [UInt8], nonce: [UInt8]) {
        let dh = try ephemeral.sharedSecretFromKeyAgreement(with: recipient).withUnsafeBytes { Array($0) }
        let enc = Array(ephemeral.publicKey.rawRepresentation)
        let shared = kemSharedSecret(dh: dh, kemContext: enc + Array(recipient.rawRepresentation))
        let schedule = keySchedule(sharedSecret: shared, info: info, aeadID: 0x0002)
        let suite = hpkeSuiteID(aeadID: 0x0002)
        return (
            enc, labeledExpand(prk: schedule.secret, label: "key", info: schedule.context, length: 32, suiteID: suite),
            labeledExpand(prk: schedule.secret, label: "base_nonce", info: schedule.context, length: 12, suiteID: suite)
        )
    }

    /// A recipient's context for `enc` (Decap).
    public init(openingWith privateKey: Curve25519.KeyAgreement.PrivateKey, enc: [UInt8], info: [UInt8], aeadID: UInt16 = 0x0002) throws {
        let shared = try Self.decapsulate(privateKey: privateKey, enc: enc)
        self.enc = enc
        exporterSecret = Self.keySchedule(sharedSecret: shared, info: info, aeadID: aeadID).exporterSecret
        keyedExporter = PreparedHMAC(key: exporterSecret)
    }

    /// Export(exporter_context, L) = LabeledExpand(exporter_secret, "sec", exporter_context, L).
    public func export(context: [UInt8], length: Int) -> [UInt8] {
        guard length == 32 else {
            return Self.labeledExpand(prk: exporterSecret, label: "sec", info: context, length: length, suiteID: Self.hpkeSuiteID(aeadID: 0x0002))
        }
        // One HKDF-Expand block: HMAC(exporter_secret, info || 0x01), with the key processed once.
        return keyedExporter.code(Self.exportPrefix32, context, Self.firstBlock)
    }

    /// HMAC keyed with the exporter secret.
    private let keyedExporter: PreparedHMAC

    /// I2OSP(32, 2) || "HPKE-v1" || suite_id || "sec", the fixed start of a 32-byte export's info.
    static let exportPrefix32: [UInt8] = i2osp(32) + Array("HPKE-v1".utf8) + hpkeSuiteID(aeadID: 0x0002) + Array("sec".utf8)
    static let firstBlock: [UInt8] = [1]

    // MARK: RFC 9180 building blocks (internal for the vector tests)

    static func decapsulate(privateKey: Curve25519.KeyAgreement.PrivateKey, enc: [UInt8]) throws -> [UInt8] {
        let ephemeral = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: enc)
        let dh = try privateKey.sharedSecretFromKeyAgreement(with: ephemeral).withUnsafeBytes { Array($0) }
        return kemSharedSecret(dh: dh, kemContext: enc + Array(privateKey.publicKey.rawRepresentation))
    }

    /// DHKEM ExtractAndExpand (§4.1).
    static func kemSharedSecret(dh: [UInt8], kemContext: [UInt8]) -> [UInt8] {
        let suite = Array("KEM".utf8) + i2osp(kemID)
        let prk = labeledExtract(salt: [], label: "eae_prk", ikm: dh, suiteID: suite)
        return labeledExpand(prk: prk, label: "shared_secret", info: kemContext, length: 32, suiteID: suite)
    }

    /// KeySchedule in base mode (no PSK), §5.1.
    static func keySchedule(sharedSecret: [UInt8], info: [UInt8], aeadID: UInt16) -> (context: [UInt8], secret: [UInt8], exporterSecret: [UInt8]) {
        let suite = hpkeSuiteID(aeadID: aeadID)
        let pskIDHash = labeledExtract(salt: [], label: "psk_id_hash", ikm: [], suiteID: suite)
        let infoHash = labeledExtract(salt: [], label: "info_hash", ikm: info, suiteID: suite)
        let context = [0x00] + pskIDHash + infoHash
        let secret = labeledExtract(salt: sharedSecret, label: "secret", ikm: [], suiteID: suite)
        return (context, secret, labeledExpand(prk: secret, label: "exp", info: context, length: 32, suiteID: suite))
    }

    static func hpkeSuiteID(aeadID: UInt16) -> [UInt8] { Array("HPKE".utf8) + i2osp(kemID) + i2osp(kdfID) + i2osp(aeadID) }

    static func i2osp(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }

    static func labeledExtract(salt: [UInt8], label: String, ikm: [UInt8], suiteID: [UInt8]) -> [UInt8] {
        hmac(key: salt, Array("HPKE-v1".utf8) + suiteID + Array(label.utf8) + ikm)
    }

    static func labeledExpand(prk: [UInt8], label: String, info: [UInt8], length: Int, suiteID: [UInt8]) -> [UInt8] {
        let labeledInfo = i2osp(UInt16(length)) + Array("HPKE-v1".utf8) + suiteID + Array(label.utf8) + info
        // HKDF-Expand (RFC 5869 §2.3).
        var out: [UInt8] = []
        var previous: [UInt8] = []
        var counter: UInt8 = 1
        while out.count < length {
            previous = hmac(key: prk, previous + labeledInfo + [counter])
            out += previous
            counter += 1
        }
        return Array(out.prefix(length))
    }

    static func hmac(key: [UInt8], _ data: [UInt8]) -> [UInt8] { PreparedHMAC(key: key).code(data) }
}
