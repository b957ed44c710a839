import Crypto
import Foundation

/// A SHA-256 digest (32 bytes).
public struct Hash: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) throws(LedgerError) {
        guard bytes.count == 32 else { throw LedgerError("bad_hash", "a hash is 32 bytes, got \(bytes.count)") }
        self.bytes = bytes
    }

    init(unchecked bytes: [UInt8]) { self.bytes = bytes }

    /// All zero: the hash of an empty sparse Merkle subtree and the previous hash of the genesis block.
    public static let zero = Hash(unchecked: [UInt8](repeating: 0, count: 32))

    public static func sha256<D: DataProtocol>(_ data: D) -> Hash {
        Hash(unchecked: Array(SHA256.hash(data: data)))
    }

    /// SHA-256(prefix || a || b), the shape of every Merkle node hash, without intermediate arrays.
    public static func sha256(prefix: UInt8, _ a: [UInt8], _ b: [UInt8]) -> Hash {
        var hasher = SHA256()
        withUnsafeBytes(of: prefix) { hasher.update(bufferPointer: $0) }
        a.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        b.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return Hash(unchecked: Array(hasher.finalize()))
    }

    /// SHA-256 over the concatenation of several byte strings, without copying them together.
    public static func sha256(parts: [[UInt8]]) -> Hash {
        var hasher = SHA256()
        for part in parts { hasher.update(data: part) }
        return Hash(unchecked: Array(hasher.finalize()))
    }

    public init(base64: String) throws(LedgerError) {
        guard let data = Data(base64Encoded: base64) else { throw LedgerError("bad_hash", "not base64: \(base64.prefix(64))") }
        try self.init(Array(data))
    }

    public init(hex: String) throws(LedgerError) {
        guard let bytes = Hex.decode(hex) else { throw LedgerError("bad_hash", "not hex: \(hex.prefix(80))") }
        try self.init(bytes)
    }

    public var hex: String { Hex.encode(bytes) }
    public var base64: String { Data(bytes).base64EncodedString() }
    public var description: String { hex }

    public static func < (lhs: Hash, rhs: Hash) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }

    /// Bit `index` (0 = most significant bit of the first byte).
    public func bit(_ index: Int) -> Bool { (bytes[index >> 3] >> (7 - UInt8(index & 7))) & 1 == 1 }
}

/// Lower-case hexadecimal.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = value(chars[i]), let lo = value(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }
}

/// Standard base64 (RFC 4648 §4) helpers that fail with a ledger error.
public enum Base64 {
    public static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    public static func decode(_ text: String, field: String = "value") throws(LedgerError) -> [UInt8] {
        guard let data = Data(base64Encoded: text) else { throw LedgerError("bad_base64", "\(field) is not valid base64") }
        return Array(data)
    }
}
