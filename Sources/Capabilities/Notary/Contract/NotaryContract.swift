import ContractKit
import LedgerCore

/// `notary`: records that a document with a given SHA-256 existed, with a label, at the time of the
/// block that commits it (protocol and document timestamping). The first record of a hash wins; a
/// later record of the same hash fails with `already_notarized` and the first stays.
///
/// Action `record`, payload `{"hash": "<64 hex SHA-256>", "label": "<1-256 characters>"}`.
/// State: `notary/<hash>` → `{"hash","label","author","time","height","tx"}`.
public struct NotaryContract: Contract {
    public init() {}

    public let name = "notary"
    public let actions = ["record"]

    public func validate(action: String, payload: JSONValue) throws(LedgerError) {
        guard let o = payload.objectValue else { throw LedgerError("bad_payload", "payload must be an object") }
        for key in o.keys where key != "hash" && key != "label" {
            throw LedgerError("bad_payload", "unknown field \(key)")
        }
        guard let hash = o["hash"]?.stringValue else { throw LedgerError("bad_payload", "hash (64 hex digits) is required") }
        guard hash.utf8.count == 64, hash.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            throw LedgerError("bad_payload", "hash must be 64 lower-case hex digits (SHA-256)")
        }
        guard let label = o["label"]?.stringValue, (1...256).contains(label.count) else {
            throw LedgerError("bad_payload", "label must be a string of 1 to 256 characters")
        }
    }

    public func execute(action: String, payload: JSONValue, context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        let hash = payload["hash"]!.stringValue!
        let key = "notary/\(hash)"
        if let existing = try context.json(forKey: key) {
            throw LedgerError("already_notarized", "hash was notarized at height \(existing["height"]?.intValue ?? -1)")
        }
        let record: JSONValue = .object([
            "hash": .string(hash),
            "label": payload["label"]!,
            "author": .string(context.author),
            "time": .int(Int64(context.timeMillis)),
            "height": .int(Int64(context.height)),
            "tx": .string(context.transaction.id.hex),
        ])
        context.set(key, record)
        context.emit(.object(["type": .string("notary.recorded"), "hash": .string(hash), "author": .string(context.author)]))
        return record
    }
}

extension ContractSet {
    /// The notary capability's contract.
    public static let notary = ContractSet { _ in [NotaryContract()] }
}
