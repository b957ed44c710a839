import Foundation
/// A JSON value (RFC 8259) with one canonical serialisation, used for transaction payloads and
/// contract state: object keys sorted by their UTF-8 bytes, no insignificant whitespace, integers
/// written in decimal, other numbers in Swift's shortest round-trip form, strings with only the
/// escapes JSON requires. The parser is strict: duplicate keys, trailing data, lone surrogates and
/// nesting deeper than 64 are refused.
public enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    public subscript(index: Int) -> JSONValue? {
        if case .array(let items) = self, items.indices.contains(index) { return items[index] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.0e15: return Int64(d)
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// True when `parse(canonicalBytes)` gives this value back exactly: no doubles anywhere (an
    /// integral double is written as an integer and reads back as `.int`) and no deeper nesting than
    /// the parser accepts. Strings and integers always read back as written.
    public var readsBackExactly: Bool { readsBack(depth: 0) }

    private func readsBack(depth: Int) -> Bool {
        guard depth < 64 else { return false }
        switch self {
        case .null, .bool, .int, .string: return true
        case .double: return false
        case .array(let items): return items.allSatisfy { $0.readsBack(depth: depth + 1) }
        case .object(let members): return members.values.allSatisfy { $0.readsBack(depth: depth + 1) }
        }
    }

    /// The canonical bytes.
    public var canonicalBytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(128)
        write(into: &out)
        return out
    }

    public var canonicalString: String { String(decoding: canonicalBytes, as: UTF8.self) }

    public func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: JSONValue.nullBytes)
        case .bool(let b): out.append(contentsOf: b ? JSONValue.trueBytes : JSONValue.falseBytes)
        case .int(let i): JSONValue.writeInteger(i, into: &out)
        case .double(let d):
            if d.rounded() == d && abs(d) < 9.0e15 {
                out.append(contentsOf: Array(String(Int64(d)).utf8))
            } else {
                out.append(contentsOf: Array("\(d)".utf8))
            }
        case .string(let s): JSONValue.writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            // Members in UTF-8 byte order of their keys. The dictionary's indices are sorted (plain
            // integers to move, no hashing to read a member back); small objects by insertion.
            var order = Array(members.indices)
            if order.count <= 16 {
                for i in order.indices.dropFirst() {
                    let index = order[i], key = members.keys[index]
                    var j = i
                    while j > 0 && UTF8Order.precedes(key, members.keys[order[j - 1]]) {
                        order[j] = order[j - 1]
                        j -= 1
                    }
                    order[j] = index
                }
            } else {
                order.sort { UTF8Order.precedes(members.keys[$0], members.keys[$1]) }
            }
            for (i, index) in order.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(members.keys[index], into: &out)
                out.append(UInt8(ascii: ":"))
                members.values[index].write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let nullBytes = Array("null".utf8), trueBytes = Array("true".utf8), falseBytes = Array("false".utf8)

    /// Appends the decimal digits of `i` (no intermediate String).
    public static func writeInteger(_ i: Int64, into out: inout [UInt8]) {
        if i < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = i.magnitude
        if magnitude < 10 {
            out.append(UInt8(ascii: "0") + UInt8(magnitude))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 20 digits at most, kept off the heap
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while magnitude > 0 {
                buffer[23 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            }
            out.append(contentsOf: buffer[(24 - count)...])
        }
    }

    /// Appends `s` as a JSON string (canonical escapes).
    public static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Fast path: nothing to escape (the usual case: ids, base64, dids), copied in one go.
        var s = s
        let plain = s.withUTF8 { bytes -> Bool in
            for byte in bytes where byte < 0x20 || byte == 0x22 || byte == 0x5c { return false }
            out.append(contentsOf: bytes)
            return true
        }
        if plain {
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 0x0a: out.append(contentsOf: [92, UInt8(ascii: "n")])
            case 0x0d: out.append(contentsOf: [92, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0x08: out.append(contentsOf: [92, UInt8(ascii: "b")])
            case 0x0c: out.append(contentsOf: [92, UInt8(ascii: "f")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 15)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Parses JSON text strictly.
    public static func parse(_ bytes: [UInt8]) throws(LedgerError) -> JSONValue {
        let result: Result<JSONValue, LedgerError> = bytes.withUnsafeBufferPointer { buffer in
            var parser = JSONParser(bytes: buffer)
            do throws(LedgerError) {
                parser.skipWhitespace()
                let value = try parser.parseValue(depth: 0)
                parser.skipWhitespace()
                guard parser.index == buffer.count else { throw LedgerError("malformed_json", "trailing data at byte \(parser.index)") }
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    public static func parse(_ text: String) throws(LedgerError) -> JSONValue { try parse(Array(text.utf8)) }
}

private struct JSONParser {
    /// The text, valid for the parse only (`JSONValue.parse` holds the array).
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0a, 0x0d, 0x09: index += 1
            default: return
            }
        }
    }

    func fail(_ why: String) -> LedgerError { LedgerError("malformed_json", "\(why) at byte \(index)") }

    mutating func parseValue(depth: Int) throws(LedgerError) -> JSONValue {
        guard depth < 64 else { throw fail("nesting deeper than 64") }
        guard index < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default: return try parseNumber()
        }
    }

    mutating func literal(_ word: String) throws(LedgerError) {
        let w = Array(word.utf8)
        guard bytes.count - index >= w.count, bytes[index..<index + w.count].elementsEqual(w) else { throw fail("invalid literal") }
        index += w.count
    }

    /// Members of the objects being parsed (a stack shared by nested objects), so that each
    /// dictionary is built once at its final size instead of growing member by member.
    var pending: [(String, JSONValue)] = []

    mutating func parseObject(depth: Int) throws(LedgerError) -> JSONValue {
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object([:])
        }
        let base = pending.count
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            index += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            pending.append((key, value))
            skipWhitespace()
            guard index < bytes.count else { throw fail("unterminated object") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
            index += 1
            var members = [String: JSONValue](minimumCapacity: pending.count - base)
            for i in base..<pending.count {
                guard members.updateValue(pending[i].1, forKey: pending[i].0) == nil else { throw fail("duplicate key \"\(pending[i].0)\"") }
            }
            pending.removeSubrange(base...)
            return .object(members)
        }
    }

    mutating func parseArray(depth: Int) throws(LedgerError) -> JSONValue {
        index += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else { throw fail("unterminated array") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
            index += 1
            return .array(items)
        }
    }

    mutating func hex4() throws(LedgerError) -> UInt32 {
        guard bytes.count - index >= 4 else { throw fail("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 97...102: d = UInt32(c - 87)
            case 65...70: d = UInt32(c - 55)
            default: throw fail("bad hex digit in \\u escape")
            }
            v = v << 4 | d
            index += 1
        }
        return v
    }

    mutating func parseString() throws(LedgerError) -> String {
        index += 1
        // Fast path: no escapes before the closing quote.
        var end = index
        var ascii = true
        while end < bytes.count {
            let c = bytes[end]
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 { break }
            if c >= 0x80 { ascii = false }
            end += 1
        }
        if end < bytes.count, bytes[end] == UInt8(ascii: "\"") {
            let text = UnsafeBufferPointer(rebasing: bytes[index..<end])
            // ASCII needs no validation (and takes String's fastest path); anything else is validated.
            let s: String
            if ascii {
                s = String(decoding: text, as: UTF8.self)
            } else {
                guard let valid = String(validating: text, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
                s = valid
            }
            index = end + 1
            return s
        }
        var out = [UInt8]()
        while true {
            guard index < bytes.count else { throw fail("unterminated string") }
            let c = bytes[index]
            if c == UInt8(ascii: "\"") {
                index += 1
                guard let s = String(validating: out, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
                return s
            }
            if c < 0x20 { throw fail("control character in string") }
            if c != UInt8(ascii: "\\") {
                out.append(c)
                index += 1
                continue
            }
            index += 1
            guard index < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[index]
            index += 1
            switch e {
            case UInt8(ascii: "\""): out.append(34)
            case UInt8(ascii: "\\"): out.append(92)
            case UInt8(ascii: "/"): out.append(47)
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard bytes.count - index >= 6, bytes[index] == 92, bytes[index + 1] == UInt8(ascii: "u") else {
                        throw fail("lone surrogate")
                    }
                    index += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("lone surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw fail("lone surrogate")
                }
                out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
            default: throw fail("bad escape")
            }
        }
    }

    mutating func parseNumber() throws(LedgerError) -> JSONValue {
        let start = index
        var isInteger = true
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, (48...57).contains(bytes[index]) else { throw fail("invalid value") }
        if bytes[index] == 48 {
            index += 1
        } else {
            while index < bytes.count, (48...57).contains(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard index < bytes.count, (48...57).contains(bytes[index]) else { throw fail("digit expected after '.'") }
            while index < bytes.count, (48...57).contains(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, (48...57).contains(bytes[index]) else { throw fail("digit expected in exponent") }
            while index < bytes.count, (48...57).contains(bytes[index]) { index += 1 }
        }
        if isInteger, index - start <= 18 {
            // Up to 18 digits cannot overflow an Int64: accumulated directly.
            var negative = false
            var i = start
            if bytes[i] == UInt8(ascii: "-") {
                negative = true
                i += 1
            }
            var value: Int64 = 0
            while i < index {
                value = value * 10 + Int64(bytes[i] - 48)
                i += 1
            }
            return .int(negative ? -value : value)
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if isInteger, let i = Int64(text) { return .int(i) }
        guard let d = Double(text), d.isFinite else { throw fail("number out of range") }
        return .double(d)
    }
}

/// Byte order of UTF-8 text (the order of canonical JSON keys and of a block's state writes).
/// Writes a JSON object's members straight into canonical bytes, for types that know their keys:
/// the caller gives the members in UTF-8 order of their keys (as `JSONValue.canonicalBytes`
/// orders them) and writes each value after `key`.
public struct JSONObjectWriter {
    private var started = false

    public init() {}

    /// `{` or `,`, then `"key":`.
    public mutating func key(_ key: String, into out: inout [UInt8]) {
        out.append(started ? UInt8(ascii: ",") : UInt8(ascii: "{"))
        started = true
        JSONValue.writeString(key, into: &out)
        out.append(UInt8(ascii: ":"))
    }

    /// A string member, left out when nil.
    public mutating func member(_ key: String, _ value: String?, into out: inout [UInt8]) {
        guard let value else { return }
        self.key(key, into: &out)
        JSONValue.writeString(value, into: &out)
    }

    public func end(into out: inout [UInt8]) {
        if !started { out.append(UInt8(ascii: "{")) }
        out.append(UInt8(ascii: "}"))
    }
}

/// Reads the flat JSON objects a node writes itself (`JSONObjectWriter`) without building a
/// `JSONValue`: members in canonical key order (so no key repeats) whose values are ASCII strings
/// without escapes, non-negative integers of up to 17 digits, or arrays of such strings, with no
/// white space. Anything else answers false, and the caller parses with `JSONValue.parse`, which
/// gives the same values for what this reads (tests compare both).
public enum FlatJSONObject {
    public enum Value {
        case string(String)
        case int(Int64)
        case strings([String])
    }

    /// Calls `member` for each member in order; false (stop) from it, or a shape this does not
    /// read, answers false.
    public static func read(_ bytes: [UInt8], _ member: (String, Value) -> Bool) -> Bool {
        bytes.withUnsafeBufferPointer { b -> Bool in
            var i = 0
            func string() -> String? {
                guard i < b.count, b[i] == 34 else { return nil }
                let start = i + 1
                var end = start
                while end < b.count, b[end] != 34 {
                    let c = b[end]
                    guard c >= 0x20, c < 0x80, c != 92 else { return nil }
                    end += 1
                }
                guard end < b.count else { return nil }
                i = end + 1
                return String(decoding: UnsafeBufferPointer(rebasing: b[start..<end]), as: UTF8.self)
            }
            guard b.count >= 2, b[0] == 123 else { return false }
            i = 1
            if b[1] == 125 { return b.count == 2 }
            var previous: String?
            while true {
                guard let key = string(), previous.map({ UTF8Order.precedes($0, key) }) ?? true, i < b.count, b[i] == 58 else { return false }
                previous = key
                i += 1
                guard i < b.count else { return false }
                let value: Value
                switch b[i] {
                case 34:
                    guard let s = string() else { return false }
                    value = .string(s)
                case 48...57:
                    let start = i
                    var n: Int64 = 0
                    while i < b.count, b[i] &- 48 < 10 {
                        n = n * 10 + Int64(b[i] - 48)
                        i += 1
                        guard i - start <= 17 else { return false }
                    }
                    guard b[start] != 48 || i - start == 1 else { return false }
                    value = .int(n)
                case 91:
                    i += 1
                    var items: [String] = []
                    if i < b.count, b[i] == 93 {
                        i += 1
                    } else {
                        while true {
                            guard let s = string(), i < b.count else { return false }
                            items.append(s)
                            if b[i] == 93 {
                                i += 1
                                break
                            }
                            guard b[i] == 44 else { return false }
                            i += 1
                        }
                    }
                    value = .strings(items)
                default:
                    return false
                }
                guard member(key, value), i < b.count else { return false }
                if b[i] == 125 { return i + 1 == b.count }
                guard b[i] == 44 else { return false }
                i += 1
            }
        }
    }
}

public enum UTF8Order {
    public static func precedes(_ a: String, _ b: String) -> Bool {
        // Native strings expose their UTF-8 in place (no copy, no retain); others take the slow path.
        let fast = a.utf8.withContiguousStorageIfAvailable { pa in
            b.utf8.withContiguousStorageIfAvailable { pb in precedes(pa, pb) }
        }
        if let result = fast ?? nil { return result }
        var a = a, b = b
        return a.withUTF8 { pa in b.withUTF8 { pb in precedes(pa, pb) } }
    }

    static func precedes(_ pa: UnsafeBufferPointer<UInt8>, _ pb: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = min(pa.count, pb.count)
        if n > 0, let x = pa.baseAddress, let y = pb.baseAddress {
            let c = memcmp(x, y, n)
            if c != 0 { return c < 0 }
        }
        return pa.count < pb.count
    }
}

extension String {
    /// Whether `needle` occurs in the string, compared as UTF-8 bytes (no Foundation or Unicode
    /// machinery: for the hot paths that look for ASCII markers).
    public func containsUTF8(_ needle: String) -> Bool {
        var haystack = self, needle = needle
        return haystack.withUTF8 { h in
            needle.withUTF8 { n in
                if n.isEmpty { return true }
                guard h.count >= n.count else { return false }
                let first = n[0]
                var i = 0
                while i <= h.count - n.count {
                    if h[i] == first, memcmp(h.baseAddress! + i, n.baseAddress!, n.count) == 0 { return true }
                    i += 1
                }
                return false
            }
        }
    }
}
