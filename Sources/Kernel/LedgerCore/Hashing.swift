import Crypto
import CSHA256
import Foundation

/// A SHA-256 digest (32 bytes), stored inline (no heap allocation): Merkle trees make millions.
public struct Hash: Hashable, Sendable, Comparable, CustomStringConvertible {
    // The 32 bytes in memory order.
    private var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0

    public init(_ bytes: [UInt8]) throws(LedgerError) {
        guard bytes.count == 32 else { throw LedgerError("bad_hash", "a hash is 32 bytes, got \(bytes.count)") }
        self.init(unchecked: bytes)
    }

    init<B: Sequence>(unchecked bytes: B) where B.Element == UInt8 {
        withUnsafeMutableBytes(of: &self) { raw in
            var i = 0
            for b in bytes where i < 32 {
                raw[i] = b
                i += 1
            }
        }
    }

    /// The 32 bytes.
    public var bytes: [UInt8] { withUnsafeBytes(of: self) { Array($0) } }

    /// The first 8 bytes as an integer (memory order): a short key for in-memory indexes of hashes.
    public var prefix64: UInt64 { w0 }

    /// Calls `body` with the 32 bytes, without copying them.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(of: self) { try body($0) }
    }

    /// All zero: the hash of an empty sparse Merkle subtree and the previous hash of the genesis block.
    public static let zero = Hash()

    private init() {}

    public static func sha256<D: DataProtocol>(_ data: D) -> Hash {
        var hasher = SHA256Hasher()
        if data.withContiguousStorageIfAvailable({ hasher.update(UnsafeRawBufferPointer($0)) }) == nil {
            for region in data.regions { region.withUnsafeBytes { hasher.update($0) } }
        }
        return hasher.finalize()
    }

    /// SHA-256(prefix || a || b), the shape of every Merkle node hash, without intermediate arrays.
    public static func sha256(prefix: UInt8, _ a: Hash, _ b: Hash) -> Hash {
        var out = Hash()
        withUnsafeBytes(of: a) { ra in
            withUnsafeBytes(of: b) { rb in
                withUnsafeMutableBytes(of: &out) { ro in
                    csha256_node(
                        prefix, ra.baseAddress!.assumingMemoryBound(to: UInt8.self), rb.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        ro.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        return out
    }

    /// SHA-256 of a string's UTF-8, without copying it out.
    public static func sha256(utf8 text: String) -> Hash {
        var text = text
        return text.withUTF8 { sha256(UnsafeRawBufferPointer($0)) }
    }

    /// SHA-256 over the concatenation of several byte strings, without copying them together.
    public static func sha256(parts: [[UInt8]]) -> Hash {
        var hasher = SHA256Hasher()
        for part in parts { part.withUnsafeBytes { hasher.update($0) } }
        return hasher.finalize()
    }

    /// A hash from a digest computed elsewhere (32 bytes at `digest`).
    fileprivate init(copying digest: UnsafeRawPointer) {
        withUnsafeMutableBytes(of: &self) { $0.copyMemory(from: UnsafeRawBufferPointer(start: digest, count: 32)) }
    }

    public init(base64: String) throws(LedgerError) {
        guard let bytes = try? Base64.decode(base64) else { throw LedgerError("bad_hash", "not base64: \(base64.prefix(64))") }
        try self.init(bytes)
    }

    public init(hex: String) throws(LedgerError) {
        guard let bytes = Hex.decode(hex) else { throw LedgerError("bad_hash", "not hex: \(hex.prefix(80))") }
        try self.init(bytes)
    }

    public var hex: String { Hex.encode(bytes) }
    public var base64: String { Base64.encode(bytes) }
    public var description: String { hex }

    public static func < (lhs: Hash, rhs: Hash) -> Bool {
        (lhs.w0.bigEndian, lhs.w1.bigEndian, lhs.w2.bigEndian, lhs.w3.bigEndian)
            < (rhs.w0.bigEndian, rhs.w1.bigEndian, rhs.w2.bigEndian, rhs.w3.bigEndian)
    }

    /// Bit `index` (0 = most significant bit of the first byte).
    public func bit(_ index: Int) -> Bool {
        withUnsafeBytes(of: self) { ($0[index >> 3] >> (7 - UInt8(index & 7))) & 1 == 1 }
    }
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

    /// True when `decode(text)` would succeed (an even number of hex digits, either case), without decoding.
    public static func isHex(_ text: String) -> Bool {
        // Native strings are checked in place (the UTF-8 view's iterator costs several times more).
        if let result = text.utf8.withContiguousStorageIfAvailable(isHex) { return result }
        return Array(text.utf8).withUnsafeBufferPointer(isHex)
    }

    static func isHex(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.count % 2 == 0 else { return false }
        for c in bytes {
            // Digits, then the letters a–f in either case (bit 5 set folds A–F onto a–f).
            guard (c &- 48) < 10 || ((c | 0x20) &- 97) < 6 else { return false }
        }
        return true
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
    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        encode(bytes, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Appends the standard base64 (RFC 4648 §4, padded) of `bytes` to `out`.
    public static func encode(_ bytes: [UInt8], into out: inout [UInt8]) {
        let start = out.count
        let length = (bytes.count + 2) / 3 * 4
        out.append(contentsOf: repeatElement(UInt8(ascii: "="), count: length))
        alphabet.withUnsafeBufferPointer { a in
            bytes.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { o in
                    var i = 0
                    var j = start
                    while i + 3 <= b.count {
                        let v = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2])
                        o[j] = a[Int(v >> 18)]
                        o[j + 1] = a[Int(v >> 12 & 63)]
                        o[j + 2] = a[Int(v >> 6 & 63)]
                        o[j + 3] = a[Int(v & 63)]
                        i += 3
                        j += 4
                    }
                    let rest = b.count - i
                    if rest > 0 {
                        let v = UInt32(b[i]) << 16 | (rest == 2 ? UInt32(b[i + 1]) << 8 : 0)
                        o[j] = a[Int(v >> 18)]
                        o[j + 1] = a[Int(v >> 12 & 63)]
                        if rest == 2 { o[j + 2] = a[Int(v >> 6 & 63)] }
                    }
                }
            }
        }
    }

    public static func decode(_ text: String, field: String = "value") throws(LedgerError) -> [UInt8] {
        var text = text
        guard let bytes = text.withUTF8({ decode(utf8: $0) }) else { throw LedgerError("bad_base64", "\(field) is not valid base64") }
        return bytes
    }

    /// 0...63 for an alphabet byte, 64 for "=", 255 otherwise.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 255, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        table[Int(UInt8(ascii: "="))] = 64
        return table
    }()

    /// Standard padded base64 (RFC 4648 §4): a multiple of 4 characters from the alphabet, with
    /// at most two "=" at the very end; anything else (whitespace included) is refused.
    static func decode(utf8 text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard text.count % 4 == 0 else { return nil }
        if text.isEmpty { return [] }
        var padding = 0
        if text[text.count - 1] == UInt8(ascii: "=") { padding += 1 }
        if text[text.count - 2] == UInt8(ascii: "=") { padding += 1 }
        let length = text.count / 4 * 3 - padding
        var out = [UInt8](repeating: 0, count: length)
        let ok = values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o -> Bool in
                var j = 0
                var i = 0
                while i < text.count {
                    let a = v[Int(text[i])], b = v[Int(text[i + 1])], c = v[Int(text[i + 2])], d = v[Int(text[i + 3])]
                    let last = i + 4 == text.count
                    guard a < 64, b < 64 else { return false }
                    if c == 64 || d == 64 {
                        // Padding only in the last quartet: "xx==" or "xxx=".
                        guard last, d == 64, c < 64 || (c == 64 && padding == 2) else { return false }
                    } else if c > 64 || d > 64 {
                        return false
                    }
                    let quad = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c & 63) << 6 | UInt32(d & 63)
                    o[j] = UInt8(quad >> 16)
                    if j + 1 < length { o[j + 1] = UInt8(quad >> 8 & 0xff) }
                    if j + 2 < length { o[j + 2] = UInt8(quad & 0xff) }
                    j += 3
                    i += 4
                }
                return true
            }
        }
        return ok ? out : nil
    }
}

/// Random bytes from the system's cryptographically secure generator (keys, salts, secrets, ids) —
/// for the edges of the system; contract execution never uses randomness.
public enum RandomBytes {
    public static func make(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}

/// SHA-256 without allocation, for the ledger's many small hashes (Merkle nodes, keys, ids): the C
/// implementation in `CSHA256`, on the CPU's SHA extensions when it has them. swift-crypto's
/// `SHA256` allocates a context per hash, which dominated the state tree's hashing.
public struct SHA256Hasher: Sendable {
    private var context = csha256_ctx()

    public init() { csha256_init(&context) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        csha256_update(&context, base, bytes.count)
    }

    public mutating func update<C: Collection>(_ data: C) where C.Element == UInt8 {
        if data.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) == nil {
            Array(data).withUnsafeBytes { update($0) }
        }
    }

    /// The digest; the hasher is spent (copy it first to go on).
    public mutating func finalize() -> Hash {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { digest in
            csha256_final(&context, digest.baseAddress!)
            return Hash(copying: UnsafeRawPointer(digest.baseAddress!))
        }
    }

    /// Whether the CPU's SHA extensions are in use; `useExtensions(false)` forces the portable code (tests).
    public static var extensionsActive: Bool { csha256_extensions_active() != 0 }
    public static func useExtensions(_ on: Bool) { csha256_use_extensions(on ? 1 : 0) }
}

/// HMAC-SHA256 (RFC 2104) keyed once: the SHA-256 states after the padded key are kept and
/// copied per message, and every call goes through swift-crypto's non-generic buffer API (its
/// generic `HMAC.update` instantiates type metadata on each call, which dominated hot paths).
public struct PreparedHMAC: Sendable {
    private let inner: SHA256Hasher
    private let outer: SHA256Hasher

    public init(key: [UInt8]) {
        var block = key.count > 64 ? Hash.sha256(key).bytes : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        var inner = SHA256Hasher(), outer = SHA256Hasher()
        inner.update(block.map { $0 ^ 0x36 })
        outer.update(block.map { $0 ^ 0x5c })
        self.inner = inner
        self.outer = outer
    }

    /// The 32-byte MAC of the concatenation of `parts`.
    public func code(_ parts: [UInt8]...) -> [UInt8] {
        var inner = inner
        for part in parts { part.withUnsafeBytes { inner.update($0) } }
        let innerDigest = inner.finalize()
        var outer = outer
        innerDigest.withBytes { outer.update($0) }
        return outer.finalize().bytes
    }
}
