import Foundation
import LedgerCore

/// Reads the shared test vectors by their path relative to the package root (`../shared/vectors`).
enum Vectors {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/vectors")

    static func json(_ path: String) throws -> JSONValue {
        try JSONValue.parse(Array(try Data(contentsOf: root.appendingPathComponent(path))))
    }

    /// An unsigned 64-bit field (some vectors use 2^64-1, beyond the payload JSON's Int64).
    static func unsigned(_ path: String, _ key: String) throws -> UInt64 {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent(path)))
        return ((object as! [String: Any])[key] as! NSNumber).uint64Value
    }

    static func files(_ folder: String) throws -> [String] {
        let base = root.appendingPathComponent(folder)
        let enumerator = FileManager.default.enumerator(atPath: base.path)!
        return enumerator.compactMap { $0 as? String }.filter { $0.hasSuffix(".json") }.sorted().map { "\(folder)/\($0)" }
    }
}

extension JSONValue {
    /// Base64 bytes, or empty when the field is null or absent (the vectors use null for "none").
    func base64Bytes(_ key: String) -> [UInt8] {
        guard let s = self[key]?.stringValue else { return [] }
        return Array(Data(base64Encoded: s) ?? Data("not-base64".utf8))
    }

    func base64List(_ key: String) -> [[UInt8]] {
        (self[key]?.arrayValue ?? []).map { Array(Data(base64Encoded: $0.stringValue ?? "") ?? Data("x".utf8)) }
    }
}
