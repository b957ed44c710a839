import Crypto
import Foundation
import LedgerCore

/// An X25519 encryption key pair of a principal; its public half is published on chain.
public struct EncryptionKey: Sendable {
    public let privateKey: Curve25519.KeyAgreement.PrivateKey

    public init() { privateKey = Curve25519.KeyAgreement.PrivateKey() }

    public init(rawRepresentation: [UInt8]) throws(LedgerError) {
        guard let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: rawRepresentation) else {
            throw LedgerError("bad_private_key", "an X25519 private key is 32 bytes")
        }
        privateKey = key
    }

    public var rawRepresentation: [UInt8] { Array(privateKey.rawRepresentation) }
    public var publicKey: [UInt8] { Array(privateKey.publicKey.rawRepresentation) }
}

/// A content key wrapped for one reader with HPKE (RFC 9180) base mode,
/// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM: `enc` is the encapsulated key,
/// `ciphertext` the sealed content key. In `exported` form (a writer's session, see
/// `KeyWrapSession`) several wrapped keys share one `enc`, and each content key is sealed
/// (AES-256-GCM, nonce || ct || tag) under a secret exported from that HPKE context (§5.3) with
/// the record context, so a reader pays one X25519 per writer session instead of one per version.
public struct WrappedKey: Sendable, Hashable {
    public let enc: [UInt8]
    public let ciphertext: [UInt8]
    public let exported: Bool

    public init(enc: [UInt8], ciphertext: [UInt8], exported: Bool = false) {
        self.enc = enc
        self.ciphertext = ciphertext
        self.exported = exported
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = ["enc": .string(Base64.encode(enc)), "ct": .string(Base64.encode(ciphertext))]
        if exported { o["mode"] = .string("export") }
        return .object(o)
    }

    /// `json`'s canonical bytes, written directly.
    public func write(into out: inout [UInt8]) {
        out.append(contentsOf: #"{"ct":""#.utf8)
        Base64.encode(ciphertext, into: &out)
        out.append(contentsOf: #"","enc":""#.utf8)
        Base64.encode(enc, into: &out)
        out.append(contentsOf: exported ? #"","mode":"export"}"#.utf8 : #""}"#.utf8)
    }

    public init(json: JSONValue) throws(LedgerError) {
        guard let enc = json["enc"]?.stringValue, let ct = json["ct"]?.stringValue else {
            throw LedgerError("bad_wrapped_key", "a wrapped key is {\"enc\": base64, \"ct\": base64}")
        }
        self.enc = try Base64.decode(enc, field: "enc")
        ciphertext = try Base64.decode(ct, field: "ct")
        switch json["mode"] {
        case nil: exported = false
        case .string("export")?: exported = true
        default: throw LedgerError("bad_wrapped_key", "mode is absent or \"export\"")
        }
        guard self.enc.count == 32, ciphertext.count == (exported ? 12 + 32 + 16 : 32 + 16) else {
            throw LedgerError("bad_wrapped_key", "a wrapped AES-256 key is a 32-byte enc and a 48-byte ct (60 in export mode)")
        }
    }
}

/// HPKE key wrapping of record content keys.
public enum KeyWrap {
    public static let ciphersuite = HPKE.Ciphersuite(kem: .Curve25519_HKDF_SHA256, kdf: .HKDF_SHA256, aead: .AES_GCM_256)
    static let info = Data("careledger/record-key/v1".utf8)

    /// Wraps `contentKey` for the holder of `recipient` (a raw X25519 public key); `context` (the
    /// record id and version) is authenticated, so a wrapped key cannot be moved to another record.
    public static func wrap(_ contentKey: SymmetricKey, for recipient: [UInt8], context: String) throws(LedgerError) -> WrappedKey {
        try wrap(
            contentKey.withUnsafeBytes { Array($0) }, for: recipient, context: context, info: Array(info),
            ephemeral: Curve25519.KeyAgreement.PrivateKey())
    }

    /// RFC 9180 §6.1 SealBase in single-shot form (sequence number 0) from a given ephemeral key: the
    /// path of every key wrapped one at a time (`KeyWrapSession` wraps in export mode); the tests pass
    /// the ephemeral keys and `info` of the RFC 9180 test vectors.
    static func wrap(
        _ plaintext: [UInt8], for recipient: [UInt8], context: String, info: [UInt8], ephemeral: Curve25519.KeyAgreement.PrivateKey
    ) throws(LedgerError) -> WrappedKey {
        do {
            let publicKey = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: recipient)
            let (enc, key, nonce) = try HPKEExportContext.sealingKey(to: publicKey, ephemeral: ephemeral, info: info)
            let sealed = try AES.GCM.seal(plaintext, using: SymmetricKey(data: key), nonce: try AES.GCM.Nonce(data: nonce), authenticating: Array(context.utf8))
            return WrappedKey(enc: enc, ciphertext: Array(sealed.ciphertext) + Array(sealed.tag))
        } catch {
            throw LedgerError("bad_encryption_key", "cannot wrap for this key: \(error)")
        }
    }

    static let exportLabel = "careledger/record-key-export/v1/"

    public static func unwrap(_ wrapped: WrappedKey, with key: EncryptionKey, context: String) throws(LedgerError) -> SymmetricKey {
        if wrapped.exported { return try KeyUnwrapper(key: key).unwrap(wrapped, context: context) }
        return SymmetricKey(data: try unwrap(wrapped, with: key, context: context, info: Array(info)))
    }

    /// RFC 9180 §6.1 OpenBase, single-shot (swift-crypto's `HPKE.Recipient`, so that what this
    /// project seals is opened by an independent implementation).
    static func unwrap(_ wrapped: WrappedKey, with key: EncryptionKey, context: String, info: [UInt8]) throws(LedgerError) -> [UInt8] {
        do {
            var recipient = try HPKE.Recipient(
                privateKey: key.privateKey, ciphersuite: ciphersuite, info: Data(info), encapsulatedKey: Data(wrapped.enc))
            return Array(try recipient.open(Data(wrapped.ciphertext), authenticating: Data(context.utf8)))
        } catch {
            throw LedgerError("unwrap_failed", "the wrapped key does not open with this key")
        }
    }
}

/// A writer's wrapping session: one HPKE encapsulation per reader, reused for every content key
/// wrapped for that reader in the session (export mode). Not for concurrent use.
public final class KeyWrapSession {
    private var senders: [[UInt8]: HPKEExportContext] = [:]

    public init() {}

    public func wrap(_ contentKey: SymmetricKey, for recipient: [UInt8], context: String) throws(LedgerError) -> WrappedKey {
        do {
            if senders[recipient] == nil {
                let publicKey = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: recipient)
                senders[recipient] = try HPKEExportContext(sealingTo: publicKey, info: Array(KeyWrap.info))
            }
            let sender = senders[recipient]!
            let kek = SymmetricKey(data: sender.export(context: Array((KeyWrap.exportLabel + context).utf8), length: 32))
            let raw = contentKey.withUnsafeBytes { Data($0) }
            guard let sealed = try AES.GCM.seal(raw, using: kek, authenticating: Data(context.utf8)).combined else {
                throw LedgerError("internal_error", "AES-GCM gave no combined form")
            }
            return WrappedKey(enc: sender.enc, ciphertext: Array(sealed), exported: true)
        } catch let error as LedgerError {
            throw error
        } catch {
            throw LedgerError("bad_encryption_key", "cannot wrap for this key: \(error)")
        }
    }
}

/// A reader's unwrapping context: decapsulates each distinct `enc` once. Not for concurrent use.
public final class KeyUnwrapper {
    let key: EncryptionKey
    private var recipients: [[UInt8]: HPKEExportContext] = [:]

    public init(key: EncryptionKey) { self.key = key }

    public func unwrap(_ wrapped: WrappedKey, context: String) throws(LedgerError) -> SymmetricKey {
        guard wrapped.exported else { return try KeyWrap.unwrap(wrapped, with: key, context: context) }
        do {
            let recipient: HPKEExportContext
            if let cached = recipients[wrapped.enc] {
                recipient = cached
            } else {
                recipient = try HPKEExportContext(openingWith: key.privateKey, enc: wrapped.enc, info: Array(KeyWrap.info))
                recipients[wrapped.enc] = recipient
            }
            let kek = SymmetricKey(data: recipient.export(context: Array((KeyWrap.exportLabel + context).utf8), length: 32))
            return SymmetricKey(data: try AES.GCM.open(AES.GCM.SealedBox(combined: wrapped.ciphertext), using: kek, authenticating: Data(context.utf8)))
        } catch {
            throw LedgerError("unwrap_failed", "the wrapped key does not open with this key")
        }
    }
}

/// AES-256-GCM content encryption: output is nonce (12) || ciphertext || tag (16).
public enum ContentCipher {
    public static func newKey() -> SymmetricKey { SymmetricKey(size: .bits256) }

    public static func seal(_ plaintext: [UInt8], key: SymmetricKey, context: String) throws(LedgerError) -> [UInt8] {
        do {
            guard let combined = try AES.GCM.seal(plaintext, using: key, authenticating: Array(context.utf8)).combined else {
                throw LedgerError("internal_error", "AES-GCM gave no combined form")
            }
            return Array(combined)
        } catch let error as LedgerError {
            throw error
        } catch {
            throw LedgerError("internal_error", "encryption failed: \(error)")
        }
    }

    public static func open(_ sealed: [UInt8], key: SymmetricKey, context: String) throws(LedgerError) -> [UInt8] {
        do {
            return Array(try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key, authenticating: Array(context.utf8)))
        } catch {
            throw LedgerError("decryption_failed", "the ciphertext does not open with this key")
        }
    }

    /// The salted hash that goes on chain instead of any hash of the content: SHA-256(salt || ciphertext).
    public static func saltedHash(salt: [UInt8], ciphertext: [UInt8]) -> Hash { Hash.sha256(salt + ciphertext) }
}
