import Crypto
import Foundation
import LedgerCore
import Standards
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
