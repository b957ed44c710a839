import LedgerCore

/// A transaction payload read strictly: the fields a contract allows, each of the type it expects.
public struct Payload {
    public let fields: [String: JSONValue]

    public init(_ value: JSONValue, allowed: Set<String>) throws(LedgerError) {
        guard let o = value.objectValue else { throw LedgerError("bad_payload", "payload must be an object") }
        for key in o.keys where !allowed.contains(key) { throw LedgerError("bad_payload", "unknown field \(key)") }
        fields = o
    }

    public func string(_ key: String, maxLength: Int = 256) throws(LedgerError) -> String {
        guard let v = fields[key] else { throw LedgerError("bad_payload", "\(key) is required") }
        guard let s = v.stringValue, !s.isEmpty, s.utf8.count <= maxLength else {
            throw LedgerError("bad_payload", "\(key) must be a string of 1 to \(maxLength) bytes")
        }
        return s
    }

    public func optionalString(_ key: String, maxLength: Int = 256) throws(LedgerError) -> String? {
        fields[key] == nil || fields[key] == .null ? nil : try string(key, maxLength: maxLength)
    }

    public func did(_ key: String) throws(LedgerError) -> String {
        let text = try string(key)
        _ = try PublicKey(did: text)
        return text
    }

    public func optionalDID(_ key: String) throws(LedgerError) -> String? {
        fields[key] == nil || fields[key] == .null ? nil : try did(key)
    }

    public func int(_ key: String) throws(LedgerError) -> Int64 {
        guard let v = fields[key]?.intValue else { throw LedgerError("bad_payload", "\(key) must be an integer") }
        return v
    }

    public func optionalInt(_ key: String) throws(LedgerError) -> Int64? {
        fields[key] == nil || fields[key] == .null ? nil : try int(key)
    }

    /// A list that may be missing or empty.
    public func optionalStrings(_ key: String, allowed: Set<String>? = nil) throws(LedgerError) -> [String] {
        if fields[key] == nil || fields[key] == .null || fields[key] == .array([]) { return [] }
        return try strings(key, allowed: allowed)
    }

    public func strings(_ key: String, allowed: Set<String>? = nil) throws(LedgerError) -> [String] {
        guard let list = fields[key]?.arrayValue, !list.isEmpty, list.count <= 64 else {
            throw LedgerError("bad_payload", "\(key) must be a non-empty array of at most 64 strings")
        }
        var out: [String] = []
        for item in list {
            guard let s = item.stringValue, !s.isEmpty, s.utf8.count <= 64 else { throw LedgerError("bad_payload", "\(key) holds a non-string") }
            if let allowed, !allowed.contains(s) {
                throw LedgerError("bad_payload", "\(key): \(s) is not one of \(allowed.sorted().joined(separator: ", "))")
            }
            out.append(s)
        }
        return out
    }
}

