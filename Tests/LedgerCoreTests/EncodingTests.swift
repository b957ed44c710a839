import Foundation
import LedgerCore
import Testing

@Suite struct EncodingTests {
    let key = try! SigningKey(seed: [UInt8](repeating: 1, count: 32))

    func sample(nonce: UInt64 = 7, payload: JSONValue = .object(["b": .int(2), "a": .string("x\n\"y\"")])) throws -> Transaction {
        try Transaction(chainID: "test-chain", signer: key, nonce: nonce, contract: "notary", action: "record", payload: payload)
    }

    /// `FlatJSONObject` reads exactly what `JSONValue.parse` reads, wherever it reads at all, and it
    /// reads every object `JSONObjectWriter` writes of its shapes (keys in canonical order); random
    /// texts mix in escapes, non-ASCII, signs, leading zeros, fractions, nesting, repeated keys, keys
    /// out of order, white space, truncation.
    @Test func flatObjectsReadAsJSON() {
        var rng = SplitMix64(seed: 5)
        func pick<T>(_ options: [T]) -> T { options[Int(rng.next() % UInt64(options.count))] }
        var read = 0
        for round in 0..<4000 {
            let plain = round % 2 == 0
            var members: [(String, String)] = []
            for _ in 0..<Int(rng.next() % 5) {
                let key = plain ? pick(["a", "kind", "owner", "z9", "children"]) + String(members.count) : pick(["a", "b", "é", "a\\u0041", "kind"])
                let value = plain
                    ? pick(["\"x\"", "\"did:key:z6Mk\"", "0", "42", "12345678901234567", "[]", "[\"p\",\"q\"]", "\"\""])
                    : pick(["\"x\"", "\"\\n\"", "\"é\"", "-1", "01", "1.5", "1e3", "123456789012345678", "{}", "[1]", "[\"a\" ]", "true", "null", " 3"])
                members.append((key, value))
            }
            // The writer's objects have their keys in canonical order; the others any order.
            if plain { members.sort { UTF8Order.precedes($0.0, $1.0) } }
            var text = "{" + members.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
            if !plain, rng.next() % 4 == 0, !text.isEmpty { text.removeLast(Int(rng.next() % UInt64(text.utf8.count)) % 3) }
            let bytes = Array(text.utf8)
            var got: [String: JSONValue] = [:]
            let ok = FlatJSONObject.read(bytes) { key, value in
                switch value {
                case .string(let s): got[key] = .string(s)
                case .int(let n): got[key] = .int(n)
                case .strings(let list): got[key] = .array(list.map { .string($0) })
                }
                return true
            }
            let parsed = try? JSONValue.parse(bytes)
            if ok {
                read += 1
                #expect(parsed == .object(got), "\(text)")
            }
            if plain { #expect(ok, "\(text)") }
        }
        #expect(read > 2000)
        func reads(_ text: String) -> Bool { FlatJSONObject.read(Array(text.utf8)) { _, _ in true } }
        #expect(reads(#"{"a":"x","b":1,"c":["p"]}"#) && reads("{}"))
        #expect(!reads(#"{"a":"x","a":"y"}"#) && !reads(#"{"b":"x","a":"y"}"#), "a repeated key, keys out of order")
    }

    /// `Hex.isHex` answers whether `Hex.decode` succeeds: random bytes in random positions, odd
    /// lengths, every ASCII byte, non-ASCII text.
    @Test func isHexAgreesWithDecode() {
        var rng = SplitMix64(seed: 9)
        let alphabet = Array("0123456789abcdefABCDEF".utf8)
        for length in 0..<70 {
            for _ in 0..<40 {
                var bytes = (0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
                if length > 0, rng.next() % 2 == 0 { bytes[Int(rng.next() % UInt64(length))] = UInt8(truncatingIfNeeded: rng.next()) & 0x7f }
                let text = String(decoding: bytes, as: UTF8.self)
                #expect(Hex.isHex(text) == (Hex.decode(text) != nil), "\(bytes)")
            }
        }
        for b in UInt8(0)...127 {
            let text = String(decoding: [b, b], as: UTF8.self)
            #expect(Hex.isHex(text) == (Hex.decode(text) != nil), "\(b)")
        }
        #expect(!Hex.isHex("éé") && Hex.isHex("") && !Hex.isHex("abc") && Hex.isHex("0aF9"))
    }

    /// A transaction signed in this process is not verified again; one from bytes or JSON, or
    /// assembled with a signature made elsewhere, is, and errors land at their own positions.
    @Test func signaturesMadeHereAreTrustedOthersChecked() throws {
        let mine = try sample(nonce: 1)
        #expect(mine.signedHere)
        let decoded = try Transaction(encoded: mine.encoded)
        let viaJSON = try Transaction(json: mine.jsonView)
        #expect(!decoded.signedHere && !viaJSON.signedHere)
        var bad = mine.encoded
        bad[bad.count - 1] ^= 1
        let forged = try Transaction(encoded: bad)
        var signature = mine.signature
        signature[0] ^= 1
        let assembled = try Transaction(
            chainID: mine.chainID, author: mine.author, nonce: mine.nonce, contract: mine.contract, action: mine.action, payload: mine.payload,
            signature: signature)
        #expect(!assembled.signedHere)
        let errors = Transaction.signatureErrors([forged, mine, decoded, assembled, try sample(nonce: 2)])
        #expect(errors.map { $0?.code } == ["bad_signature", nil, nil, "bad_signature", nil])
    }

    /// A payload whose canonical bytes the caller wrote gives the same transaction as one encoded
    /// here (Ed25519 signatures are deterministic); a payload that is not an object is refused.
    @Test func callerWrittenPayloadBytes() throws {
        let payload: JSONValue = .object(["b": .int(2), "a": .array([.string("x\n\"y\""), .object([:])])])
        let written = try Transaction(
            chainID: "test-chain", signer: key, nonce: 7, contract: "notary", action: "record", payload: payload, canonicalPayload: payload.canonicalBytes)
        #expect(written.encoded == (try sample(payload: payload)).encoded)
        #expect(written.signedHere && written.payload == payload)
        #expect(throws: LedgerError.self) {
            try Transaction(chainID: "test-chain", signer: key, nonce: 7, contract: "notary", action: "record", payload: .int(1), canonicalPayload: Array("1".utf8))
        }
    }

    @Test func roundTrip() throws {
        let tx = try sample()
        let decoded = try Transaction(encoded: tx.encoded)
        #expect(decoded == tx)
        #expect(decoded.id == tx.id)
        #expect(decoded.payload == tx.payload)
        try decoded.verifySignature()
        let viaJSON = try Transaction(json: tx.jsonView)
        #expect(viaJSON.encoded == tx.encoded)
        let viaRaw = try Transaction(json: .object(["raw": .string(Base64.encode(tx.encoded))]))
        #expect(viaRaw.id == tx.id)
        // Same value, same bytes: key order of the payload does not matter.
        let again = try sample(payload: .object(["a": .string("x\n\"y\""), "b": .int(2)]))
        #expect(again.encoded == tx.encoded)
    }

    @Test func randomPayloadsRoundTrip() throws {
        var rng = SplitMix64(seed: 42)
        for i in 0..<200 {
            var members: [String: JSONValue] = [:]
            for j in 0..<Int.random(in: 0...6, using: &rng) {
                let choice = Int.random(in: 0..<5, using: &rng)
                let value: JSONValue
                switch choice {
                case 0: value = .int(Int64.random(in: Int64.min...Int64.max, using: &rng))
                case 1: value = .string(String((0..<Int.random(in: 0...20, using: &rng)).map { _ in Character(Unicode.Scalar(UInt8.random(in: 1...126, using: &rng))) }) + "é✓")
                case 2: value = .array([.bool(true), .null, .double(Double(Int.random(in: 1...1000, using: &rng)) / 7)])
                case 3: value = .object(["nested": .int(Int64(j))])
                default: value = .bool(Bool.random(using: &rng))
                }
                members["k\(Int.random(in: 0...99, using: &rng))"] = value
            }
            let tx = try sample(nonce: UInt64(i), payload: .object(members))
            let decoded = try Transaction(encoded: tx.encoded)
            #expect(decoded.encoded == tx.encoded)
            #expect(try JSONValue.parse(tx.payload.canonicalBytes) == tx.payload)
        }
    }

    /// A transaction built here keeps its payload as given only when that reads back exactly from
    /// its bytes; otherwise it holds what every other node decodes. The typed hint is never encoded.
    @Test func builtPayloadIsWhatOtherNodesDecode() throws {
        #expect(JSONValue.object(["a": .array([.string("é\u{1}\"✓"), .int(Int64.min), .null, .bool(false)])]).readsBackExactly)
        #expect(!JSONValue.object(["a": .array([.double(0.5)])]).readsBackExactly)
        let withDoubles = try sample(payload: .object(["n": .double(3.0), "z": .double(-0.0), "h": .double(0.5)]))
        #expect(withDoubles.payload == .object(["n": .int(3), "z": .int(0), "h": .double(0.5)]))
        #expect(try Transaction(encoded: withDoubles.encoded).payload == withDoubles.payload)
        var deep: JSONValue = .int(1)
        for _ in 0..<70 { deep = .array([deep]) }
        #expect(!deep.readsBackExactly)
        #expect(throws: LedgerError.self, "no other node could read it") { try sample(payload: .object(["d": deep])) }

        let payload: JSONValue = .object(["events": .array([.object(["k": .string("v"), "n": .int(-5)])])])
        let hinted = try Transaction(chainID: "test-chain", signer: key, nonce: 9, contract: "notary", action: "record", payload: payload, decoded: ["typed"])
        #expect(hinted.decoded as? [String] == ["typed"])
        #expect(hinted.payload == payload)
        let read = try Transaction(encoded: hinted.encoded)
        #expect(read.decoded == nil)
        #expect(read.payload == hinted.payload)
        #expect(read.id == hinted.id)
        try read.verifySignature()
    }

    @Test func rejectsNonCanonicalInput() throws {
        let tx = try sample()
        var bytes = tx.encoded
        // Unknown version.
        bytes[0] = 2
        #expect(throws: LedgerError.code("unsupported_version")) { try Transaction(encoded: bytes) }
        // Trailing byte.
        #expect(throws: LedgerError.code("non_canonical")) { try Transaction(encoded: tx.encoded + [0]) }
        // Truncated.
        #expect(throws: LedgerError.code("truncated")) { try Transaction(encoded: Array(tx.encoded.dropLast())) }
        // Non-minimal varint for the nonce (7 written as 0x87 0x00).
        var w = BinaryWriter()
        w.writeByte(1)
        w.writeString("test-chain")
        w.writeFixed(key.publicKey.rawRepresentation)
        w.writeFixed([0x87, 0x00])
        w.writeString("notary")
        w.writeString("record")
        w.writeBytes(Array(#"{"a":1}"#.utf8))
        w.writeFixed([UInt8](repeating: 0, count: 64))
        #expect(throws: LedgerError.code("non_canonical")) { try Transaction(encoded: w.bytes) }
        // Payload JSON with whitespace is not canonical.
        var v = BinaryWriter()
        v.writeByte(1)
        v.writeString("test-chain")
        v.writeFixed(key.publicKey.rawRepresentation)
        v.writeVarint(7)
        v.writeString("notary")
        v.writeString("record")
        v.writeBytes(Array(#"{"a": 1}"#.utf8))
        v.writeFixed([UInt8](repeating: 0, count: 64))
        #expect(throws: LedgerError.code("non_canonical")) { try Transaction(encoded: v.bytes) }
    }

    @Test func blockHeaderRoundTripsAndRefusesOtherVersions() throws {
        let header = BlockHeader(
            chainID: "test-chain", height: 7, previousHash: Hash.sha256(Array("prev".utf8)), timeMillis: 1_700_000_000_000, logSize: 42,
            logRoot: Hash.sha256(Array("log".utf8)), stateRoot: Hash.sha256(Array("state".utf8)), transactionCount: 3,
            transactionsHash: Hash.sha256(Array("txs".utf8)), proposer: key.publicKey)
        let bytes = header.encoded
        #expect(try BlockHeader(encoded: bytes) == header)
        #expect(try BlockHeader(encoded: bytes).encoded == bytes)
        var other = bytes
        other[0] = BlockHeader.version &+ 1
        #expect(throws: LedgerError.code("unsupported_version")) { try BlockHeader(encoded: other) }
        #expect(throws: (any Error).self) { try BlockHeader(encoded: bytes + [0]) }
        #expect(throws: (any Error).self) { try BlockHeader(encoded: Array(bytes.dropLast())) }
    }

    @Test func signatureCoversEveryField() throws {
        let tx = try sample()
        let other = try SigningKey(seed: [UInt8](repeating: 2, count: 32))
        let forged = try Transaction(
            chainID: tx.chainID, author: other.publicKey, nonce: tx.nonce, contract: tx.contract, action: tx.action,
            payload: tx.payload, signature: tx.signature)
        #expect(throws: LedgerError.code("bad_signature")) { try forged.verifySignature() }
        let changed = try Transaction(
            chainID: tx.chainID, author: tx.author, nonce: tx.nonce + 1, contract: tx.contract, action: tx.action,
            payload: tx.payload, signature: tx.signature)
        #expect(throws: LedgerError.code("bad_signature")) { try changed.verifySignature() }
    }

    @Test func didKey() throws {
        // The W3C did:key test vector for Ed25519.
        let did = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
        let key = try PublicKey(did: did)
        #expect(key.did == did)
        #expect(throws: LedgerError.code("bad_did")) { try PublicKey(did: "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme") }
    }

    @Test func base58RoundTrip() {
        var rng = SplitMix64(seed: 58)
        #expect(Base58.encode([0, 0, 1]) == "112")
        #expect(Base58.encode(Array("hello world".utf8)) == "StV1DL6CwTryKyV")
        for _ in 0..<300 {
            let bytes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let withZeros = [UInt8](repeating: 0, count: Int.random(in: 0...2, using: &rng)) + bytes
            #expect(Base58.decode(Base58.encode(withZeros)) == withZeros)
        }
    }

    @Test func strictJSON() throws {
        for bad in [#"{"a":1,"a":2}"#, "[1,]", "01", "\"\\ud800\"", "{} x", "[\"\u{01}\"]", "1.", "-"] {
            #expect(throws: LedgerError.code("malformed_json"), "\(bad)") { try JSONValue.parse(bad) }
        }
        #expect(try JSONValue.parse(#"{"b":[1,2.5,-3e2,"\u00e9\ud83d\ude00"],"a":null}"#).canonicalString == #"{"a":null,"b":[1,2.5,-300,"é😀"]}"#)
    }

    @Test func integersAreWrittenAsTheirDecimalDigits() {
        var rng = SystemRandomNumberGenerator()
        let edges: [Int64] = [0, 1, -1, 9, 10, -9, -10, 99, 100, Int64.max, Int64.min, Int64.min + 1, 1_000_000_007]
        for i in edges + (0..<500).map({ _ in Int64.random(in: Int64.min...Int64.max, using: &rng) }) {
            #expect(JSONValue.int(i).canonicalString == String(i))
        }
        #expect(JSONValue.array([.null, .bool(true), .bool(false), .int(-42)]).canonicalString == "[null,true,false,-42]")
    }

    @Test func jsonNumbersAndStrings() throws {
        // Integers up to 18 digits take a fast path; longer ones the general one; both exact.
        for text in ["0", "-0", "7", "-42", "999999999999999999", "-999999999999999999", "9223372036854775807", "-9223372036854775808"] {
            #expect(try JSONValue.parse(text) == .int(Int64(text)!), "\(text)")
        }
        #expect(try JSONValue.parse("9223372036854775808") == .double(9223372036854775808))
        #expect(try JSONValue.parse("12345678901234567890123") == .double(12345678901234567890123))
        // ASCII and non-ASCII strings; invalid UTF-8 refused.
        #expect(try JSONValue.parse(#"["plain","caf\#u{e9}","\#u{1F600}"]"#) == .array([.string("plain"), .string("café"), .string("😀")]))
        #expect(throws: LedgerError.code("malformed_json")) { try JSONValue.parse([0x22, 0xff, 0x22]) }
        #expect(throws: LedgerError.code("malformed_json")) { try JSONValue.parse([0x22, 0xc3, 0x22]) }
        #expect(throws: LedgerError.code("malformed_json")) { try JSONValue.parse("tru") }
        #expect(try JSONValue.parse(" [true, false, null] ") == .array([.bool(true), .bool(false), .null]))
    }

    @Test func base64MatchesFoundation() throws {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let ours = Base64.encode(bytes)
            #expect(ours == Data(bytes).base64EncodedString(), "length \(length)")
            #expect(try Base64.decode(ours) == bytes)
            var appended = Array("x".utf8)
            Base64.encode(bytes, into: &appended)
            #expect(appended == Array(("x" + ours).utf8))
        }
        // Stricter than Foundation, which takes "AB=C", "====" and "AB===".
        for bad in ["A", "AB", "ABC", "AB=C", "A===", "====", "AB==AAAA", "AB\nCD==", "AB CD", "ABC*", "AB===", "=AAA", "A=AA"] {
            #expect(throws: LedgerError.code("bad_base64"), "\(bad)") { try Base64.decode(bad) }
        }
        #expect(try Base64.decode("") == [])
        #expect(try Base64.decode("AA==") == [0])
        #expect(try Base64.decode("AAA=") == [0, 0])
    }

    @Test func utf8Search() {
        #expect("urn:epcglobal:cbv:bizstep:shipping".containsUTF8("urn:epcglobal:cbv:"))
        #expect("x{https://ns.example.com/}field".containsUTF8("/}"))
        #expect(!"{https://ns.example.com}field".containsUTF8("/}"))
        #expect("café".containsUTF8("é") && !"cafe".containsUTF8("é"))
        #expect("abc".containsUTF8("") && !"ab".containsUTF8("abc") && "abc".containsUTF8("abc") && !"".containsUTF8("a"))
        #expect(UTF8Order.precedes("a", "b") && UTF8Order.precedes("a", "ab") && !UTF8Order.precedes("b", "a") && !UTF8Order.precedes("a", "a"))
        #expect(UTF8Order.precedes("Z", "a") && UTF8Order.precedes("z", "é"))
    }

    @Test func parallelMapKeepsOrder() async {
        for count in [0, 1, 2, 3, 7, 100, 1001] {
            let items = Array(0..<count)
            #expect(await Parallel.map(items) { $0 * 3 } == items.map { $0 * 3 })
            #expect(await Parallel.mapChunks(items) { Array($0) }.flatMap { $0 } == items)
        }
    }

    @Test func varints() throws {
        for value: UInt64 in [0, 1, 127, 128, 300, 1 << 35, UInt64.max] {
            var w = BinaryWriter()
            w.writeVarint(value)
            var r = BinaryReader(w.bytes)
            #expect(try r.readVarint() == value)
            try r.finish()
        }
        var r = BinaryReader([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
        #expect(throws: LedgerError.code("non_canonical")) { try r.readVarint() }
    }
}
