/// The canonical binary encoding of ledger values: unsigned LEB128 varints in their shortest form,
/// byte strings and UTF-8 strings prefixed by their varint length, fixed-size fields raw.
/// Every value has exactly one encoding; the reader rejects anything else (non-minimal varints,
/// bad UTF-8, trailing bytes).
public struct BinaryWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    public mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    public mutating func writeByte(_ value: UInt8) { bytes.append(value) }
    public mutating func writeFixed(_ value: [UInt8]) { bytes.append(contentsOf: value) }

    public mutating func writeBytes(_ value: [UInt8]) {
        writeVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    public mutating func writeString(_ value: String) { writeBytes(Array(value.utf8)) }
}

/// Reads what `BinaryWriter` writes, strictly.
public struct BinaryReader: Sendable {
    private let bytes: [UInt8]
    public private(set) var offset: Int = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { offset == bytes.count }

    public mutating func readVarint() throws(LedgerError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count else { throw LedgerError("truncated", "input ends inside a varint") }
            let byte = bytes[offset]
            offset += 1
            if shift == 63 && byte > 1 { throw LedgerError("non_canonical", "varint overflows 64 bits") }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 { throw LedgerError("non_canonical", "varint is not in its shortest form") }
                return result
            }
            shift += 7
            if shift > 63 { throw LedgerError("non_canonical", "varint too long") }
        }
    }

    public mutating func readByte() throws(LedgerError) -> UInt8 {
        guard offset < bytes.count else { throw LedgerError("truncated", "input ends early") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readFixed(_ count: Int) throws(LedgerError) -> [UInt8] {
        guard count <= bytes.count - offset else { throw LedgerError("truncated", "input ends inside a \(count)-byte field") }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    public mutating func readBytes(limit: Int = 1 << 24) throws(LedgerError) -> [UInt8] {
        let length = try readVarint()
        guard length <= UInt64(limit) else { throw LedgerError("too_large", "field of \(length) bytes exceeds \(limit)") }
        return try readFixed(Int(length))
    }

    public mutating func readString(limit: Int = 4096) throws(LedgerError) -> String {
        let raw = try readBytes(limit: limit)
        guard let text = String(validating: raw, as: UTF8.self) else { throw LedgerError("bad_utf8", "string is not valid UTF-8") }
        return text
    }

    public func finish() throws(LedgerError) {
        guard isAtEnd else { throw LedgerError("non_canonical", "\(bytes.count - offset) trailing bytes") }
    }
}
