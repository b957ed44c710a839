import Crypto
import LedgerCore
import Testing

/// The C SHA-256 (`SHA256Hasher`, `Hash.sha256`) against swift-crypto's, on the CPU's SHA extensions
/// and on the portable code, for every length around the block boundaries, split updates, Merkle
/// nodes and HMAC.
@Suite(.serialized) struct SHA256Tests {
    func reference(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }

    @Test func matchesSwiftCryptoOnBothImplementations() {
        var rng = SplitMix64(seed: 11)
        let hadExtensions = SHA256Hasher.extensionsActive
        defer { SHA256Hasher.useExtensions(true) }
        print(
            hadExtensions
                ? "SHA-256: x86 SHA extensions present: the extension and the portable code are both compared with swift-crypto"
                : "SHA-256: x86 SHA extensions not present, extension path not exercised; the portable code is compared with swift-crypto")
        for extensions in [true, false] {
            SHA256Hasher.useExtensions(extensions)
            #expect(SHA256Hasher.extensionsActive == (extensions && hadExtensions))
            // FIPS 180-4 examples.
            #expect(Hash.sha256(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            #expect(Hash.sha256([UInt8]()).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
            #expect(
                Hash.sha256(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hex
                    == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
            for length in Array(0...300) + [1000, 4095, 4096, 65_537] {
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let expected = reference(bytes)
                #expect(Hash.sha256(bytes).bytes == expected, "length \(length)")
                // The same bytes in up to four updates of random sizes.
                var hasher = SHA256Hasher()
                var rest = bytes[...]
                for _ in 0..<3 where !rest.isEmpty {
                    let n = Int.random(in: 0...rest.count, using: &rng)
                    hasher.update(rest.prefix(n))
                    rest = rest.dropFirst(n)
                }
                hasher.update(rest)
                #expect(hasher.finalize().bytes == expected, "split, length \(length)")
            }
            for _ in 0..<200 {
                let a = Hash.sha256((0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) })
                let b = Hash.sha256((0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) })
                let prefix = UInt8.random(in: 0...1, using: &rng)
                #expect(Hash.sha256(prefix: prefix, a, b).bytes == reference([prefix] + a.bytes + b.bytes))
            }
            for keyLength in [0, 16, 32, 64, 65, 200] {
                let key = (0..<keyLength).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let message = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let expected = Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
                #expect(PreparedHMAC(key: key).code(Array(message.prefix(7)), Array(message.dropFirst(7))) == expected, "HMAC key \(keyLength)")
            }
        }
    }
}
