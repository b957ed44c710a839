import LedgerCore
import Standards
import Testing

@Suite struct ShamirTests {
    @Test func anyThresholdSubsetRebuildsTheSecret() throws {
        var rng = SplitMix64(seed: 7)
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
