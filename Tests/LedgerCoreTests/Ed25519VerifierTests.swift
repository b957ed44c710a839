import Crypto
import Foundation
import Testing

@testable import LedgerCore

/// The table verifier must give BoringSSL's verdict (swift-crypto's `isValidSignature`) on every input.
@Suite struct Ed25519VerifierTests {
    func boringSSL(_ key: [UInt8], _ signature: [UInt8], _ message: [UInt8]) -> Bool {
        guard let k = try? Curve25519.Signing.PublicKey(rawRepresentation: key) else { return false }
        return k.isValidSignature(signature, for: message)
    }

    func fast(_ key: [UInt8], _ signature: [UInt8], _ message: [UInt8]) -> Bool {
        guard let table = Ed25519Verifier.table(for: key) else { return false }
        return Ed25519Verifier.verify(table: table, signature: signature, message: message)
    }

    /// The same cases verified as one batch (eight lanes at a time where the CPU has AVX-512 IFMA)
    /// against BoringSSL's verdicts.
    func batchAgrees(_ cases: [([UInt8], [UInt8], [UInt8])]) {
        let tabled = cases.compactMap { c in Ed25519Verifier.table(for: c.0).map { ($0, c.1, c.2) } }
        #expect(tabled.count > 8)
        #expect(Ed25519Verifier.verify(tabled) == tabled.map { boringSSL($0.0.publicKey, $0.1, $0.2) })
    }

    /// [a]B from the base table against swift-crypto's public keys (the clamped secret scalar times B).
    @Test func baseTableMatchesPublicKeyDerivation() throws {
        let identity = try #require(Ed25519Verifier.table(for: [1] + [UInt8](repeating: 0, count: 31)))
        for _ in 0..<64 {
            let key = Curve25519.Signing.PrivateKey()
            var a = Array(SHA512.hash(data: key.rawRepresentation))[0..<32].map { $0 }
            a[0] &= 248
            a[31] = (a[31] & 127) | 64
            let point = Ed25519Verifier.multiply(k: [UInt8](repeating: 0, count: 32), tables: [identity.entries], s: a)[0]
            #expect(point.encoded == Array(key.publicKey.rawRepresentation))
        }
    }

    /// [k](-A) + [s]B by plain double-and-add over this file's Swift point formulas: a reference
    /// independent of the C multiplication (its digit recoding, tables and lanes).
    func referenceMultiply(k: ArraySlice<UInt8>, key: [UInt8], s: ArraySlice<UInt8>) throws -> [UInt8] {
        let minusA = try #require(ExtendedPoint(decoding: key)).negated.cached
        let base = Curve.base.cached
        let k = Array(k), s = Array(s)
        var acc = ExtendedPoint.identity
        for bit in stride(from: 255, through: 0, by: -1) {
            acc = acc.projective.doubled.extended
            if (k[bit / 8] >> (bit % 8)) & 1 == 1 { acc = acc.adding(minusA).extended }
            if (s[bit / 8] >> (bit % 8)) & 1 == 1 { acc = acc.adding(base).extended }
        }
        return acc.projective.encoded
    }

    /// The portable code, and the eight-lane AVX-512 IFMA code where the CPU has it, give the points
    /// of an independent double-and-add, for batches of every length around the lane count, random
    /// scalars (zero digits included) and several keys. The output says which paths ran.
    @Test func multiplicationsMatchAnIndependentReference() throws {
        let keys = (0..<5).map { _ in SigningKey().publicKey.rawRepresentation }
        let tables = try keys.map { try #require(Ed25519Verifier.table(for: $0)) }
        var random = SplitMix64(seed: 25519)
        func scalar(bits: Int) -> [UInt8] {
            var bytes = (0..<32).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if random.next() % 4 == 0 { for i in 0..<32 where random.next() % 3 == 0 { bytes[i] = 0 } }  // zero digits
            bytes[31] &= bits == 255 ? 0x7F : 0x0F
            return bytes
        }
        let hardware = Ed25519Verifier.vectorised
        defer { Ed25519Verifier.vectorised = hardware }
        let paths = hardware ? [true, false] : [false]
        print(
            hardware
                ? "Ed25519: AVX-512 IFMA present: the eight-lane and the portable multiplications are both compared with the reference"
                : "Ed25519: AVX-512 IFMA not present, vectorised path not exercised; the portable multiplication is compared with the reference")
        for count in [1, 3, 4, 7, 8, 9, 16, 21] {
            var k: [UInt8] = [], s: [UInt8] = []
            var chosen: [Int] = []
            for _ in 0..<count {
                k += scalar(bits: 255)
                s += scalar(bits: 252)
                chosen.append(Int(random.next() % UInt64(tables.count)))
            }
            let expected = try (0..<count).map { i in
                try referenceMultiply(k: k[(32 * i)..<(32 * i + 32)], key: keys[chosen[i]], s: s[(32 * i)..<(32 * i + 32)])
            }
            for vectorised in paths {
                Ed25519Verifier.vectorised = vectorised
                #expect(Ed25519Verifier.vectorised == vectorised)
                let pointers = chosen.map { Optional(tables[$0].entries) }
                let points = withExtendedLifetime(tables) { Ed25519Verifier.multiply(k: k, tables: pointers, s: s) }.map(\.encoded)
                #expect(points == expected, "\(count) items, \(vectorised ? "eight-lane" : "portable")")
            }
        }
    }

    @Test func fieldEncodingIsCanonical() {
        // p and p+1 encode as 0 and 1; 2^255 - 1 as 18.
        let p: [UInt8] = [0xED] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]
        let pPlusOne: [UInt8] = [0xEE] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]
        let top: [UInt8] = [UInt8](repeating: 0xFF, count: 31) + [0x7F]
        #expect(p.withUnsafeBytes { FieldElement(bytes: $0) }.bytes == [UInt8](repeating: 0, count: 32))
        #expect(pPlusOne.withUnsafeBytes { FieldElement(bytes: $0) }.bytes == [1] + [UInt8](repeating: 0, count: 31))
        #expect(top.withUnsafeBytes { FieldElement(bytes: $0) }.bytes == [18] + [UInt8](repeating: 0, count: 31))
        let minusOne = (-FieldElement.one).carried
        #expect((Curve.sqrtMinusOne.squared - minusOne).carried.isZero)
        let x = FieldElement(small: 123_456_789)
        #expect((x * x.inverse).bytes == FieldElement.one.bytes)
    }

    @Test func scalarReductionAgreesWithBigIntegerArithmetic() {
        // ℓ, 2ℓ + 5 and 2^512 - 1 reduce to 0, 5 and (2^512 - 1) mod ℓ.
        var l = [UInt8](repeating: 0, count: 64)
        for (i, w) in Ed25519Verifier.order.enumerated() { for j in 0..<8 { l[i * 8 + j] = UInt8(truncatingIfNeeded: w >> (8 * UInt64(j))) } }
        #expect(ScalarReduction.reduce(l) == [UInt8](repeating: 0, count: 32))
        var twoLPlusFive = [UInt8](repeating: 0, count: 64)
        var carry = 5
        for i in 0..<64 {
            let v = Int(l[i]) * 2 + carry
            twoLPlusFive[i] = UInt8(v & 0xFF)
            carry = v >> 8
        }
        #expect(ScalarReduction.reduce(twoLPlusFive) == [5] + [UInt8](repeating: 0, count: 31))
        // A reduced value is below ℓ and is fixed by a second reduction.
        for _ in 0..<200 {
            let x = (0..<64).map { _ in UInt8.random(in: 0...255) }
            let r = ScalarReduction.reduce(x)
            #expect(Ed25519Verifier.isBelowOrder(r + [], from: 0) || r == [UInt8](repeating: 0, count: 32))
            #expect(ScalarReduction.reduce(r + [UInt8](repeating: 0, count: 32)) == r)
        }
    }

    @Test func verdictsMatchBoringSSLOnValidAndMangledSignatures() {
        var acceptedMangled = 0
        var all: [([UInt8], [UInt8], [UInt8])] = []
        for _ in 0..<12 {
            let key = Curve25519.Signing.PrivateKey()
            let pub = Array(key.publicKey.rawRepresentation)
            for m in 0..<10 {
                let message = (0..<(m * 7)).map { _ in UInt8.random(in: 0...255) }
                let signature = Array(try! key.signature(for: message))
                #expect(fast(pub, signature, message))
                #expect(boringSSL(pub, signature, message))
                var cases: [([UInt8], [UInt8], [UInt8])] = []
                var flipped = signature
                flipped[Int.random(in: 0..<64)] ^= 1 << UInt8.random(in: 0..<8)
                cases.append((pub, flipped, message))
                cases.append((pub, signature, message + [0]))
                var otherKey = pub
                otherKey[Int.random(in: 0..<32)] ^= 1 << UInt8.random(in: 0..<8)
                cases.append((otherKey, signature, message))
                // S + ℓ: the same point equation, refused for malleability.
                var s = Array(signature[32...]), carry: UInt16 = 0
                for i in 0..<32 {
                    let w = UInt16(s[i]) + UInt16(truncatingIfNeeded: Ed25519Verifier.order[i / 8] >> (8 * UInt64(i % 8))) + carry
                    s[i] = UInt8(w & 0xFF)
                    carry = w >> 8
                }
                cases.append((pub, Array(signature[..<32]) + s, message))
                for (k, sig, msg) in cases {
                    #expect(fast(k, sig, msg) == boringSSL(k, sig, msg))
                    if fast(k, sig, msg) { acceptedMangled += 1 }
                }
                all += cases + [(pub, signature, message)]
            }
        }
        #expect(acceptedMangled == 0, "a flipped bit, a longer message, another key or S + ℓ never verifies")
        batchAgrees(all)
    }

    /// Small-order and non-canonical keys, which BoringSSL accepts with a cofactorless check: a
    /// signature (R = [S]B, S) is valid for the identity whatever the message, and for the point of
    /// order 2 exactly when h is even.
    @Test func verdictsMatchBoringSSLOnSmallOrderAndNonCanonicalKeys() {
        let identity: [UInt8] = [1] + [UInt8](repeating: 0, count: 31)
        let identityNonCanonical: [UInt8] = [0xEE] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]
        let identitySignBit: [UInt8] = [1] + [UInt8](repeating: 0, count: 30) + [0x80]
        let orderTwo: [UInt8] = [0xEC] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]
        let orderFour: [UInt8] = [UInt8](repeating: 0, count: 32)
        let notOnCurve: [UInt8] = [2] + [UInt8](repeating: 0, count: 31)
        var accepted = 0
        var all: [([UInt8], [UInt8], [UInt8])] = []
        for _ in 0..<30 {
            let secret = Curve25519.Signing.PrivateKey()
            var a = Array(SHA512.hash(data: secret.rawRepresentation))[0..<32].map { $0 }
            a[0] &= 248
            a[31] = (a[31] & 127) | 64
            let s = ScalarReduction.reduce(a + [UInt8](repeating: 0, count: 32))
            let signature = Array(secret.publicKey.rawRepresentation) + s
            for key in [identity, identityNonCanonical, identitySignBit, orderTwo, orderFour, notOnCurve] {
                let message = (0..<16).map { _ in UInt8.random(in: 0...255) }
                let expected = boringSSL(key, signature, message)
                #expect(fast(key, signature, message) == expected)
                if expected { accepted += 1 }
                all.append((key, signature, message))
            }
        }
        batchAgrees(all)
        // The identity keys accept every one of these; the order-2 key about half.
        #expect(accepted >= 90)
        #expect(Ed25519Verifier.table(for: notOnCurve) == nil)
    }

    /// The batch (shared inversion) gives the one-by-one verdicts, whatever the mix.
    @Test func batchVerdictsMatchSingleVerdicts() {
        let keys = (0..<6).map { _ in SigningKey() }
        var items: [(key: PublicKey, signature: [UInt8], message: [UInt8])] = []
        for i in 0..<60 {
            let key = keys[i % keys.count]
            let message = Array("batch item \(i)".utf8)
            var signature = key.signature(for: message)
            if i % 7 == 3 { signature[5] ^= 0x10 }
            if i % 11 == 4 { signature[40] ^= 0x01 }
            items.append((key.publicKey, i % 13 == 5 ? Array(signature.prefix(63)) : signature, i % 17 == 6 ? message + [0] : message))
        }
        for _ in 0..<2 {  // the second round has every key's table
            let batch = PublicKey.areValidSignatures(items)
            let single = items.map { $0.key.isValidSignature($0.signature, for: $0.message, precomputed: false) }
            #expect(batch == single)
            #expect(batch.filter { $0 }.count >= 30 && batch.contains(false))
        }
        // The table path alone (no fallback behind it): its batch verdicts equal BoringSSL's, including
        // signatures it refuses before any arithmetic (S ≥ ℓ, top bits set), which skip the shared inversion.
        var tabled: [(table: SignerTable, signature: [UInt8], message: [UInt8])] = []
        for (i, item) in items.enumerated() where item.signature.count == 64 {
            var signature = item.signature
            if i % 9 == 2 { signature[63] |= 0x20 }
            if i % 9 == 5 { signature[63] = 0x10; signature[62] = 0xFF }  // S ≥ ℓ
            tabled.append((Ed25519Verifier.table(for: item.key.rawRepresentation)!, signature, item.message))
        }
        let direct = Ed25519Verifier.verify(tabled)
        let reference = tabled.map { boringSSL($0.table.publicKey, $0.signature, $0.message) }
        #expect(direct == reference)
        #expect(direct.filter { $0 }.count >= 20)
    }

    @Test func publicKeysUseTablesOnceSeenAndStillAgree() throws {
        let cache = SignerTableCache(capacity: 2, threshold: 2)
        let keys = (0..<3).map { _ in SigningKey() }
        #expect(cache.table(for: keys[0].publicKey.rawRepresentation) == nil)
        #expect(cache.table(for: keys[0].publicKey.rawRepresentation) != nil)
        _ = cache.table(for: keys[1].publicKey.rawRepresentation)
        _ = cache.table(for: keys[1].publicKey.rawRepresentation)
        #expect(cache.count == 2)
        _ = cache.table(for: keys[2].publicKey.rawRepresentation)
        _ = cache.table(for: keys[2].publicKey.rawRepresentation)
        #expect(cache.count == 2)
        // Through PublicKey, with the shared cache: a key signing many times keeps verifying, and a
        // bad signature is refused.
        let key = SigningKey()
        for i in 0..<5 {
            let message = Array("message \(i)".utf8)
            let signature = key.signature(for: message)
            #expect(key.publicKey.isValidSignature(signature, for: message))
            #expect(!key.publicKey.isValidSignature(signature, for: message + [1]))
        }
        #expect(SignerTableCache.shared.table(for: key.publicKey.rawRepresentation) != nil)
    }
}
