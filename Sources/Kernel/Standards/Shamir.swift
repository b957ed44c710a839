import LedgerCore

/// Shamir secret sharing over GF(2^8) (the AES field, x^8 + x^4 + x^3 + x + 1), byte by byte:
/// any `threshold` of the shares rebuild the secret, fewer reveal nothing about it.
public enum Shamir {
    public struct Share: Sendable, Hashable {
        /// The evaluation point, 1...255.
        public let x: UInt8
        public let y: [UInt8]

        public init(x: UInt8, y: [UInt8]) {
            self.x = x
            self.y = y
        }
    }

    static let tables: (exp: [UInt8], log: [UInt8]) = {
        var exp = [UInt8](repeating: 0, count: 512)
        var log = [UInt8](repeating: 0, count: 256)
        var v: UInt8 = 1
        for i in 0..<255 {
            exp[i] = v
            log[Int(v)] = UInt8(i)
            // multiply by the generator 3
            let doubled = v << 1 ^ (v & 0x80 != 0 ? 0x1b : 0)
            v = doubled ^ v
        }
        for i in 255..<512 { exp[i] = exp[i - 255] }
        return (exp, log)
    }()

    static func mul(_ a: UInt8, _ b: UInt8) -> UInt8 {
        if a == 0 || b == 0 { return 0 }
        return tables.exp[Int(tables.log[Int(a)]) + Int(tables.log[Int(b)])]
    }

    static func div(_ a: UInt8, _ b: UInt8) -> UInt8 {
        precondition(b != 0)
        if a == 0 { return 0 }
        return tables.exp[(Int(tables.log[Int(a)]) + 255 - Int(tables.log[Int(b)])) % 255]
    }

    /// Splits `secret` into `count` shares, any `threshold` of which rebuild it.
    public static func split<R: RandomNumberGenerator>(_ secret: [UInt8], threshold: Int, count: Int, using rng: inout R) throws(LedgerError) -> [Share] {
        guard threshold >= 1, threshold <= count, count <= 255, !secret.isEmpty else {
            throw LedgerError("bad_threshold", "need 1 ≤ threshold ≤ shares ≤ 255 and a non-empty secret")
        }
        var ys = [[UInt8]](repeating: [UInt8](repeating: 0, count: secret.count), count: count)
        for (i, byte) in secret.enumerated() {
            let coefficients = [byte] + (1..<threshold).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for s in 0..<count {
                let x = UInt8(s + 1)
                var y: UInt8 = 0
                for c in coefficients.reversed() { y = mul(y, x) ^ c }  // Horner
                ys[s][i] = y
            }
        }
        return (0..<count).map { Share(x: UInt8($0 + 1), y: ys[$0]) }
    }

    public static func split(_ secret: [UInt8], threshold: Int, count: Int) throws(LedgerError) -> [Share] {
        var rng = SystemRandomNumberGenerator()
        return try split(secret, threshold: threshold, count: count, using: &rng)
    }

    /// Rebuilds the secret from shares (Lagrange interpolation at 0).
    public static func combine(_ shares: [Share]) throws(LedgerError) -> [UInt8] {
        guard let length = shares.first?.y.count, shares.allSatisfy({ $0.y.count == length && $0.x != 0 }),
            Set(shares.map(\.x)).count == shares.count
        else { throw LedgerError("bad_shares", "shares must be distinct, non-zero and of one length") }
        var secret = [UInt8](repeating: 0, count: length)
        for (j, share) in shares.enumerated() {
            var basis: UInt8 = 1
            for (m, other) in shares.enumerated() where m != j {
                basis = mul(basis, div(other.x, other.x ^ share.x))
            }
            for i in 0..<length { secret[i] ^= mul(share.y[i], basis) }
        }
        return secret
    }
}
