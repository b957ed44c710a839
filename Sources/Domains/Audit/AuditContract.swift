import LedgerCore

/// `audit`: access events, appended by the custodian node for every read of health data, granted
/// or denied: who, what, when (block time), purpose, outcome, and for break-the-glass the reason.
///
/// Action `access` `{"patient", "reader", "records": [ids], "purpose", "outcome": "permit"|"deny", "reason"?}`;
/// only a consortium operator (a node key) records access events.
public struct AuditContract: Contract {
    public let name = "audit"
    public let actions = ["access"]
    public let operators: Set<String>

    public init(operators: Set<String>) { self.operators = operators }

    static let fields: Set<String> = ["patient", "reader", "records", "purpose", "outcome", "reason"]

    public func validate(action: String, payload: JSONValue) throws(LedgerError) {
        let p = try Payload(payload, allowed: Self.fields)
        _ = try p.did("patient")
        _ = try p.did("reader")
        guard let records = p.fields["records"]?.arrayValue, records.count <= 10_000, records.allSatisfy({ $0.stringValue != nil }) else {
            throw LedgerError("bad_payload", "records is an array of record ids")
        }
        guard ConsentGrant.purposes.contains(try p.string("purpose")) else { throw LedgerError("bad_payload", "unknown purpose") }
        guard ["permit", "deny"].contains(try p.string("outcome")) else { throw LedgerError("bad_payload", "outcome is permit or deny") }
        _ = try p.optionalString("reason", maxLength: 1024)
    }

    public static func countKey(patient: String) -> String { "audit/\(patient)" }
    public static func eventKey(patient: String, index: Int64) -> String { "audit/\(patient)/\(index)" }

    public func execute(action: String, payload: JSONValue, context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        guard operators.contains(context.author) else { throw LedgerError("forbidden", "access events are recorded by the custodian node") }
        let p = try Payload(payload, allowed: Self.fields)
        let patient = try p.did("patient")
        let count = try context.json(forKey: Self.countKey(patient: patient))?["count"]?.intValue ?? 0
        var event = payload.objectValue!
        event["time"] = .int(Int64(context.timeMillis))
        event["height"] = .int(Int64(context.height))
        event["index"] = .int(count)
        event["recordedBy"] = .string(context.author)
        context.set(Self.eventKey(patient: patient, index: count), .object(event))
        context.set(Self.countKey(patient: patient), .object(["count": .int(count + 1)]))
        context.emit(.object([
            "type": .string("access"), "patient": .string(patient), "reader": p.fields["reader"]!, "outcome": p.fields["outcome"]!,
            "index": .int(count),
        ]))
        return .object(event)
    }
}
