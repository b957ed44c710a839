/// Base58 with the Bitcoin alphabet (base58btc), as used by `did:key` multibase 'z' identifiers.
public enum Base58 {
    private static let alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".utf8)
    private static let indexes: [Int8] = {
        var table = [Int8](repeating: -1, count: 128)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = Int8(i) }
        return table
    }()

    public static func encode(_ bytes: [UInt8]) -> String {
        let zeros = bytes.prefix { $0 == 0 }.count
        // Little-endian limbs in base 58^5, so each input byte costs a fifth of the digit-wise loop.
        let limbBase: UInt64 = 656_356_768
        var limbs = [UInt64]()
        limbs.reserveCapacity(bytes.count / 3 + 1)
        for byte in bytes {
            var carry = UInt64(byte)
            for i in 0..<limbs.count {
                let v = limbs[i] << 8 + carry
                limbs[i] = v % limbBase
                carry = v / limbBase
            }
            while carry > 0 {
                limbs.append(carry % limbBase)
                carry /= limbBase
            }
        }
        var digits = [UInt8]()  // little endian base-58 digits
        digits.reserveCapacity(limbs.count * 5)
        for (i, limb) in limbs.enumerated() {
            var v = limb
            for _ in 0..<5 {
                digits.append(UInt8(v % 58))
                v /= 58
                if i == limbs.count - 1 && v == 0 { break }
            }
        }
        while digits.last == 0 { digits.removeLast() }
        var out = [UInt8](repeating: alphabet[0], count: zeros)
        for d in digits.reversed() { out.append(alphabet[Int(d)]) }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        let zeros = chars.prefix { $0 == alphabet[0] }.count
        var bytes = [UInt8]()  // little endian
        for c in chars {
            guard c < 128, indexes[Int(c)] >= 0 else { return nil }
            var carry = Int(indexes[Int(c)])
            for i in 0..<bytes.count {
                carry += Int(bytes[i]) * 58
                bytes[i] = UInt8(carry & 0xff)
                carry >>= 8
            }
            while carry > 0 {
                bytes.append(UInt8(carry & 0xff))
                carry >>= 8
            }
        }
        return [UInt8](repeating: 0, count: zeros) + bytes.reversed()
    }
}
