import Crypto
import Foundation
import LedgerCore
@testable import Standards
import Testing

@Suite struct HPKETests {
    static let vectors: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/vectors/hpke/hpke-x25519-sha256.json")

    func hex(_ v: JSONValue?) -> Data { Data(Hex.decode(v?.stringValue ?? "") ?? []) }

    /// RFC 9180 Appendix A vectors: every mode and AEAD opens every listed encryption in order.
    @Test func rfc9180Vectors() throws {
        let all = try JSONValue.parse(Array(try Data(contentsOf: Self.vectors))).arrayValue ?? []
        #expect(all.count == 12)
        var opened = 0
        for v in all {
            let aead: HPKE.AEAD
            switch v["aead_id"]?.intValue {
            case 1: aead = .AES_GCM_128
            case 2: aead = .AES_GCM_256
            default: aead = .chaChaPoly
            }
            let suite = HPKE.Ciphersuite(kem: .Curve25519_HKDF_SHA256, kdf: .HKDF_SHA256, aead: aead)
            let skR = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: hex(v["skRm"]))
            #expect(Array(skR.publicKey.rawRepresentation) == Array(hex(v["pkRm"])))
            let info = hex(v["info"])
            let enc = hex(v["enc"])
            var recipient: HPKE.Recipient
            switch v["mode"]?.intValue {
            case 0: recipient = try HPKE.Recipient(privateKey: skR, ciphersuite: suite, info: info, encapsulatedKey: enc)
            case 1:
                recipient = try HPKE.Recipient(
                    privateKey: skR, ciphersuite: suite, info: info, encapsulatedKey: enc, presharedKey: SymmetricKey(data: hex(v["psk"])),
                    presharedKeyIdentifier: hex(v["psk_id"]))
            case 2:
                let pkS = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: hex(v["pkSm"]))
                recipient = try HPKE.Recipient(privateKey: skR, ciphersuite: suite, info: info, encapsulatedKey: enc, authenticatedBy: pkS)
            default:
                let pkS = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: hex(v["pkSm"]))
                recipient = try HPKE.Recipient(
                    privateKey: skR, ciphersuite: suite, info: info, encapsulatedKey: enc, authenticatedBy: pkS,
                    presharedKey: SymmetricKey(data: hex(v["psk"])), presharedKeyIdentifier: hex(v["psk_id"]))
            }
            for e in v["encryptions"]?.arrayValue ?? [] {
                let pt = try recipient.open(hex(e["ct"]), authenticating: hex(e["aad"]))
                #expect(pt == hex(e["pt"]))
                opened += 1
            }
        }
        #expect(opened == 48)
    }

    /// CareLedger's own exporter (which keeps the exporter secret to make each export one HMAC)
    /// derives the RFC 9180 values of every base-mode vector, and agrees with swift-crypto both ways.
    @Test func exporterMatchesVectorsAndSwiftCrypto() throws {
        let all = try JSONValue.parse(Array(try Data(contentsOf: Self.vectors))).arrayValue ?? []
        var checked = 0
        for v in all where v["mode"]?.intValue == 0 {
            let skR = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: hex(v["skRm"]))
            let shared = try HPKEExportContext.decapsulate(privateKey: skR, enc: Array(hex(v["enc"])))
            #expect(shared == Array(hex(v["shared_secret"])))
            let aead = UInt16(v["aead_id"]?.intValue ?? 0)
            let schedule = HPKEExportContext.keySchedule(sharedSecret: shared, info: Array(hex(v["info"])), aeadID: aead)
            #expect(schedule.context == Array(hex(v["key_schedule_context"])))
            #expect(schedule.secret == Array(hex(v["secret"])))
            #expect(schedule.exporterSecret == Array(hex(v["exporter_secret"])))
            // The sender side from the vector's ephemeral key gives the same enc and exporter secret.
            let skE = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: hex(v["skEm"]))
            let sender = try HPKEExportContext(sealingTo: skR.publicKey, ephemeral: skE, info: Array(hex(v["info"])), aeadID: aead)
            #expect(sender.enc == Array(hex(v["enc"])))
            #expect(sender.exporterSecret == schedule.exporterSecret)
            checked += 1
        }
        #expect(checked == 3)
        for length in [16, 32, 48, 80] {
            let reader = EncryptionKey()
            let info = Array("careledger/record-key/v1".utf8)
            let context = Array("careledger/record-key-export/v1/rec-\(length)/1".utf8)
            let theirs = try HPKE.Sender(recipientKey: reader.privateKey.publicKey, ciphersuite: KeyWrap.ciphersuite, info: Data(info))
            let ours = try HPKEExportContext(openingWith: reader.privateKey, enc: Array(theirs.encapsulatedKey), info: info)
            let expected = try theirs.exportSecret(context: Data(context), outputByteCount: length).withUnsafeBytes { Array($0) }
            #expect(ours.export(context: context, length: length) == expected)
            let ourSender = try HPKEExportContext(sealingTo: reader.privateKey.publicKey, info: info)
            let recipient = try HPKE.Recipient(privateKey: reader.privateKey, ciphersuite: KeyWrap.ciphersuite, info: Data(info), encapsulatedKey: Data(ourSender.enc))
            #expect(ourSender.export(context: context, length: length) == (try recipient.exportSecret(context: Data(context), outputByteCount: length).withUnsafeBytes { Array($0) }))
            #expect(ourSender.export(context: context, length: length) != ours.export(context: context, length: length))
        }
    }

    /// The RFC 9180 base-mode vectors through CareLedger's own key wrapping: `KeyWrap.wrap` with the
    /// vector's ephemeral key, `info` and first `aad` gives the vector's `enc` and first ciphertext, and
    /// `KeyWrap.unwrap` opens it to the vector's plaintext; the suites other than AES-256-GCM do not open.
    @Test func baseModeVectorsThroughKeyWrap() throws {
        let all = try JSONValue.parse(Array(try Data(contentsOf: Self.vectors))).arrayValue ?? []
        var wrapped = 0, refused = 0
        for v in all where v["mode"]?.intValue == 0 {
            let first = try #require(v["encryptions"]?[0])
            let aad = try #require(String(bytes: hex(first["aad"]), encoding: .utf8))
            let info = Array(hex(v["info"]))
            let reader = try EncryptionKey(rawRepresentation: Array(hex(v["skRm"])))
            let vectorKey = WrappedKey(enc: Array(hex(v["enc"])), ciphertext: Array(hex(first["ct"])))
            guard v["aead_id"]?.intValue == 2 else {
                #expect(throws: LedgerError.code("unwrap_failed")) { try KeyWrap.unwrap(vectorKey, with: reader, context: aad, info: info) }
                refused += 1
                continue
            }
            let skE = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: hex(v["skEm"]))
            let recipient = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: hex(v["pkRm"]))
            let schedule = try HPKEExportContext.sealingKey(to: recipient, ephemeral: skE, info: info)
            #expect(schedule.key == Array(hex(v["key"])) && schedule.nonce == Array(hex(v["base_nonce"])))
            let ours = try KeyWrap.wrap(Array(hex(first["pt"])), for: Array(hex(v["pkRm"])), context: aad, info: info, ephemeral: skE)
            #expect(ours == vectorKey)
            #expect(try KeyWrap.unwrap(vectorKey, with: reader, context: aad, info: info) == Array(hex(first["pt"])))
            #expect(throws: LedgerError.code("unwrap_failed")) { try KeyWrap.unwrap(vectorKey, with: reader, context: aad + " ", info: info) }
            wrapped += 1
        }
        #expect(wrapped == 1 && refused == 2)
    }

    /// A record key wrapped by CareLedger opens with swift-crypto's RFC 9180 recipient given the
    /// documented parameters (info `careledger/record-key/v1`, the record context as AAD) and with
    /// no others.
    @Test func wrappedKeysOpenWithTheDocumentedParameters() throws {
        let reader = EncryptionKey()
        let contentKey = ContentCipher.newKey()
        let wrapped = try KeyWrap.wrap(contentKey, for: reader.publicKey, context: "rec-7/3")
        func open(info: String, aad: String) -> [UInt8]? {
            guard var r = try? HPKE.Recipient(
                privateKey: reader.privateKey, ciphersuite: HPKE.Ciphersuite(kem: .Curve25519_HKDF_SHA256, kdf: .HKDF_SHA256, aead: .AES_GCM_256),
                info: Data(info.utf8), encapsulatedKey: Data(wrapped.enc))
            else { return nil }
            return (try? r.open(Data(wrapped.ciphertext), authenticating: Data(aad.utf8))).map { Array($0) }
        }
        #expect(open(info: "careledger/record-key/v1", aad: "rec-7/3") == contentKey.withUnsafeBytes { Array($0) })
        #expect(open(info: "careledger/record-key/v2", aad: "rec-7/3") == nil)
        #expect(open(info: "careledger/record-key/v1", aad: "rec-7/4") == nil)
        #expect(wrapped.enc.count == 32 && wrapped.ciphertext.count == 48)
    }

    /// The pre-keyed HMAC equals swift-crypto's HMAC-SHA256 for short, block-sized and long keys,
    /// and for messages given in parts.
    @Test func preparedHMACMatchesSwiftCrypto() {
        var generator = SystemRandomNumberGenerator()
        for keyLength in [0, 1, 32, 63, 64, 65, 100, 200] {
            let key = (0..<keyLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let prepared = PreparedHMAC(key: key)
            for messageLength in [0, 1, 55, 64, 65, 300] {
                let message = (0..<messageLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let expected = Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
                #expect(prepared.code(message) == expected, "key \(keyLength), message \(messageLength)")
                let cut = messageLength / 3
                #expect(prepared.code(Array(message[..<cut]), Array(message[cut...])) == expected)
            }
        }
    }

    @Test func wrapAndUnwrap() throws {
        let reader = EncryptionKey()
        let other = EncryptionKey()
        let contentKey = ContentCipher.newKey()
        let wrapped = try KeyWrap.wrap(contentKey, for: reader.publicKey, context: "rec-1/1")
        let back = try KeyWrap.unwrap(try WrappedKey(json: wrapped.json), with: reader, context: "rec-1/1")
        #expect(back == contentKey)
        #expect(throws: LedgerError.code("unwrap_failed")) { try KeyWrap.unwrap(wrapped, with: other, context: "rec-1/1") }
        #expect(throws: LedgerError.code("unwrap_failed")) { try KeyWrap.unwrap(wrapped, with: reader, context: "rec-2/1") }
        let sealed = try ContentCipher.seal(Array("{\"resourceType\":\"Observation\"}".utf8), key: contentKey, context: "rec-1/1")
        #expect(try ContentCipher.open(sealed, key: back, context: "rec-1/1") == Array("{\"resourceType\":\"Observation\"}".utf8))
        #expect(throws: LedgerError.code("decryption_failed")) { try ContentCipher.open(sealed, key: ContentCipher.newKey(), context: "rec-1/1") }
    }

    @Test func sessionWrapsShareOneEncapsulationAndStayBoundToTheirRecord() throws {
        let reader = EncryptionKey()
        let session = KeyWrapSession()
        let keys = (0..<5).map { _ in ContentCipher.newKey() }
        let wrapped = try keys.enumerated().map { i, k in try session.wrap(k, for: reader.publicKey, context: "rec-\(i)/1") }
        #expect(Set(wrapped.map(\.enc)).count == 1)
        let unwrapper = KeyUnwrapper(key: reader)
        for (i, w) in wrapped.enumerated() {
            let back = try WrappedKey(json: w.json)
            #expect(back.exported)
            #expect(try unwrapper.unwrap(back, context: "rec-\(i)/1") == keys[i])
            #expect(try KeyWrap.unwrap(back, with: reader, context: "rec-\(i)/1") == keys[i])
        }
        #expect(throws: LedgerError.code("unwrap_failed")) { try unwrapper.unwrap(wrapped[0], context: "rec-1/1") }
        #expect(throws: LedgerError.code("unwrap_failed")) { try KeyUnwrapper(key: EncryptionKey()).unwrap(wrapped[0], context: "rec-0/1") }
    }
}
