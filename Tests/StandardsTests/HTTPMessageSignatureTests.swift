import Foundation
import LedgerCore
import Standards
import Testing

@Suite struct HTTPMessageSignatureTests {
    /// RFC 9421 Appendix B.2.6 (Ed25519): the test request, key `test-key-ed25519`, the signature base and value.
    static let seed = Data(base64Encoded: "n4Ni+HpISpVObnQMW0wOhCKROaIKqKtW/2ZYb2p9KcU=")!
    static let request = HTTPMessageSignature.Request(
        method: "POST", scheme: "https", authority: "example.com", path: "/foo", query: "?param=Value&Pet=dog",
        headers: ["host": ["example.com"], "date": ["Tue, 20 Apr 2021 02:07:55 GMT"], "content-type": ["application/json"], "content-length": ["18"]])
    static let input = #"sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#
    static let signature = "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"

    /// RFC 9530 §B.1/B.2: the digests of `{"hello": "world"}`; a changed body or a malformed field is refused.
    @Test func contentDigestRFC9530() throws {
        let body = Array(#"{"hello": "world"}"#.utf8)
        let sha256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        let sha512 = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
        #expect(ContentDigest.field(for: body) == sha256)
        try ContentDigest.check(sha256, body: body)
        try ContentDigest.check(sha512, body: body)
        try ContentDigest.check("\(sha512), \(sha256)", body: body)
        #expect(throws: LedgerError.code("digest_mismatch")) { try ContentDigest.check(sha256, body: Array(#"{"hello": "World"}"#.utf8)) }
        #expect(throws: LedgerError.code("bad_digest")) { try ContentDigest.check("md5=:AAAA:", body: body) }
        #expect(throws: LedgerError.code("bad_digest")) { try ContentDigest.check("sha-256=X48E", body: body) }
    }

    @Test func rfc9421AppendixB26() throws {
        let parsed = try #require(try HTTPMessageSignature.parseInputs(Self.input).first)
        let base = try HTTPMessageSignature.signatureBase(parsed, request: Self.request)
        #expect(base == """
            "date": Tue, 20 Apr 2021 02:07:55 GMT
            "@method": POST
            "@path": /foo
            "@authority": example.com
            "content-type": application/json
            "content-length": 18
            "@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"
            """)
        let key = try SigningKey(seed: Array(Self.seed))
        let expected = try #require(try HTTPMessageSignature.parseSignatures(Self.signature)["sig-b26"])
        // Ed25519 is deterministic: our signature over the base is the RFC's, and it verifies.
        #expect(key.signature(for: Array(base.utf8)) == expected)
        #expect(key.publicKey.isValidSignature(expected, for: Array(base.utf8)))
        #expect(Base64.encode(key.publicKey.rawRepresentation) == "JrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=")
    }

    @Test func signAndVerifyWithADidKey() throws {
        let key = SigningKey()
        let request = HTTPMessageSignature.Request(method: "GET", scheme: "http", authority: "127.0.0.1:8080", path: "/v1/records/r1", query: "?purpose=treatment", headers: [:])
        let (input, signature) = try HTTPMessageSignature.sign(request: request, key: key, created: 1_000)
        #expect(try HTTPMessageSignature.verify(signatureInput: input, signature: signature, request: request, now: 1_100) == key.publicKey.did)
        // Another path, a stale signature, another key: refused.
        let other = HTTPMessageSignature.Request(method: "GET", scheme: "http", authority: "127.0.0.1:8080", path: "/v1/records/r2", query: "?purpose=treatment", headers: [:])
        #expect(throws: LedgerError.code("unauthenticated")) { try HTTPMessageSignature.verify(signatureInput: input, signature: signature, request: other, now: 1_100) }
        #expect(throws: LedgerError.code("unauthenticated")) { try HTTPMessageSignature.verify(signatureInput: input, signature: signature, request: request, now: 5_000) }
        let forged = input.replacingOccurrences(of: key.publicKey.did, with: SigningKey().publicKey.did)
        #expect(throws: LedgerError.code("unauthenticated")) { try HTTPMessageSignature.verify(signatureInput: forged, signature: signature, request: request, now: 1_100) }
        // A signature that does not cover the path is refused by policy.
        let (narrow, narrowSig) = try HTTPMessageSignature.sign(request: request, key: key, components: ["@method"], created: 1_000)
        #expect(throws: LedgerError.code("unauthenticated")) { try HTTPMessageSignature.verify(signatureInput: narrow, signature: narrowSig, request: request, now: 1_000) }
        // The node requires the query covered when there is one: otherwise `purpose` could be changed in transit.
        let (noQuery, noQuerySig) = try HTTPMessageSignature.sign(request: request, key: key, components: ["@method", "@authority", "@path"], created: 1_000)
        #expect(try HTTPMessageSignature.verify(signatureInput: noQuery, signature: noQuerySig, request: request, now: 1_000) == key.publicKey.did)
        #expect(throws: LedgerError.code("unauthenticated")) {
            try HTTPMessageSignature.verify(signatureInput: noQuery, signature: noQuerySig, request: request, now: 1_000, requireQuery: true)
        }
        #expect(try HTTPMessageSignature.verify(signatureInput: input, signature: signature, request: request, now: 1_100, requireQuery: true) == key.publicKey.did)
        let tampered = HTTPMessageSignature.Request(method: "GET", scheme: "http", authority: "127.0.0.1:8080", path: "/v1/records/r1", query: "?purpose=emergency", headers: [:])
        #expect(throws: LedgerError.code("unauthenticated")) {
            try HTTPMessageSignature.verify(signatureInput: input, signature: signature, request: tampered, now: 1_100, requireQuery: true)
        }
        let bare = HTTPMessageSignature.Request(method: "GET", scheme: "http", authority: "127.0.0.1:8080", path: "/v1/records/r1", query: "", headers: [:])
        let (bareInput, bareSig) = try HTTPMessageSignature.sign(request: bare, key: key, components: ["@method", "@authority", "@path"], created: 1_000)
        #expect(try HTTPMessageSignature.verify(signatureInput: bareInput, signature: bareSig, request: bare, now: 1_000, requireQuery: true) == key.publicKey.did)
    }
}
