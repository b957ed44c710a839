import LedgerCore
import Standards
import Testing

@Suite struct ShamirTests {
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func anyThresholdSubsetRebuildsTheSecret() throws {
        var rng = Seeded(state: 7)
        for _ in 0..<50 {
            let secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let n = Int.random(in: 2...7, using: &rng)
            let k = Int.random(in: 2...n, using: &rng)
            let shares = try Shamir.split(secret, threshold: k, count: n, using: &rng)
            let subset = Array(shares.shuffled(using: &rng).prefix(k))
            #expect(try Shamir.combine(subset) == secret)
            // One share fewer gives something else (with overwhelming probability over 32 bytes).
            #expect(try Shamir.combine(Array(subset.dropLast())) != secret)
        }
    }

    @Test func rejectsBadInput() {
        #expect(throws: LedgerError.code("bad_threshold")) { try Shamir.split([1], threshold: 3, count: 2) }
        #expect(throws: LedgerError.code("bad_shares")) { try Shamir.combine([Shamir.Share(x: 1, y: [1]), Shamir.Share(x: 1, y: [2])]) }
    }
}
