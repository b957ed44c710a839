import ContractKit
import LedgerCore

/// `audit`: access events, appended by the custodian node for every read of health data, granted
/// or denied: who, what, when (block time), purpose, outcome, and for break-the-glass the reason.
///
/// Action `access` `{"patient", "reader", "records": [ids], "purpose", "outcome": "permit"|"deny", "reason"?,
/// "breakGlass"?: true, "until"?: ms, "scope"?: "content"|"metadata"}`; only a consortium operator (a node key)
/// records access events. `metadata`: a read of a record's versions or provenance (authors, endorsements,
/// salted hashes), no health data.
/// A break-the-glass access opens a time-boxed window for that reader and patient and is queued for
/// review; the reads inside the window name that access (`reviewIndex`) and are reviewed with it.
/// Action `review` `{"patient", "index", "outcome": "justified"|"unjustified", "note"?}` is the review by a privacy officer of the reader's organisation (a practitioner it gave the
/// `privacy-officer` duty, never the reader herself) or by the organisation's own key.
/// Action `shredded` `{"patient", "recordId", "destroyed"}`: a consortium node attests, once, that it
/// destroyed the vault blobs (ciphertext and salt) it held of an erased record.
public struct AuditContract: Contract {
    public let name = "audit"
    public var privateStatePrefixes: [String] { ["audit/"] }
    public let actions = ["access", "review", "shredded"]
    public let operators: OperatorSet

    public init(operators: Set<String>) { self.operators = OperatorSet(operators) }

    static let fields: Set<String> = ["patient", "reader", "records", "purpose", "outcome", "reason", "breakGlass", "until", "scope", "aggregated"]
    static let reviewFields: Set<String> = ["patient", "index", "outcome", "note"]
    static let shreddedFields: Set<String> = ["patient", "recordId", "destroyed"]

    public func validate(action: String, payload: JSONValue) throws(LedgerError) {
        if action == "shredded" {
            let p = try Payload(payload, allowed: Self.shreddedFields)
            _ = try p.did("patient")
            _ = try p.string("recordId", maxLength: 64)
            guard try p.int("destroyed") >= 0 else { throw LedgerError("bad_payload", "destroyed is a count") }
            return
        }
        if action == "review" {
            let p = try Payload(payload, allowed: Self.reviewFields)
            _ = try p.did("patient")
            _ = try p.int("index")
            guard ["justified", "unjustified"].contains(try p.string("outcome")) else {
                throw LedgerError("bad_payload", "outcome is justified or unjustified")
            }
            _ = try p.optionalString("note", maxLength: 1024)
            return
        }
        let p = try Payload(payload, allowed: Self.fields)
        if p.fields["breakGlass"] != nil {
            guard p.fields["breakGlass"]?.boolValue != nil, try p.optionalInt("until") != nil, try p.optionalString("reason", maxLength: 1024) != nil else {
                throw LedgerError("bad_payload", "a break-the-glass access carries breakGlass, until and reason")
            }
        }
        _ = try p.did("patient")
        _ = try p.did("reader")
        guard let records = p.fields["records"]?.arrayValue, records.count <= 10_000, records.allSatisfy({ $0.stringValue != nil }) else {
            throw LedgerError("bad_payload", "records is an array of record ids")
        }
        guard ConsentGrant.purposes.contains(try p.string("purpose")) else { throw LedgerError("bad_payload", "unknown purpose") }
        guard ["permit", "deny"].contains(try p.string("outcome")) else { throw LedgerError("bad_payload", "outcome is permit or deny") }
        _ = try p.optionalString("reason", maxLength: 1024)
        if let scope = try p.optionalString("scope"), scope != "content", scope != "metadata" {
            throw LedgerError("bad_payload", "scope is content (the default) or metadata")
        }
        if let aggregated = p.fields["aggregated"] {
            guard try p.string("outcome") == "deny", let count = aggregated["count"]?.intValue, count >= 1, let from = aggregated["from"]?.intValue,
                let to = aggregated["to"]?.intValue, from <= to, aggregated.objectValue?.count == 3
            else { throw LedgerError("bad_payload", "aggregated is {count ≥ 1, from, to} of denied attempts") }
        }
    }

    public static func countKey(patient: String) -> String { "audit/\(patient)" }
    public static func eventKey(patient: String, index: Int64) -> String { "audit/\(patient)/\(index)" }
    public static func breakGlassKey(patient: String, reader: String) -> String { "audit/break-glass/\(patient)/\(reader)" }
    public static func reviewKey(patient: String, index: Int64) -> String { "audit/review/\(patient)/\(index)" }
    public static func erasureKey(patient: String, recordID: String) -> String { "audit/erasure/\(patient)/\(recordID)" }

    public func execute(action: String, payload: JSONValue, context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        if action == "review" { return try review(payload, context: &context) }
        if action == "shredded" { return try shredded(payload, context: &context) }
        guard try operators.contains(context.author, in: context) else { throw LedgerError("forbidden", "access events are recorded by the custodian node") }
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
        if p.fields["breakGlass"]?.boolValue == true, p.fields["outcome"]?.stringValue == "permit" {
            let reader = try p.did("reader")
            let window = try context.json(forKey: Self.breakGlassKey(patient: patient, reader: reader))
            // Joined only while its review is pending: once reviewed, a further emergency access is a new one to review.
            if let window, let until = window["until"]?.intValue, until > Int64(context.timeMillis), let opened = window["index"]?.intValue,
                try context.json(forKey: Self.reviewKey(patient: patient, index: opened))?["status"]?.stringValue == "pending"
            {
                // A read inside an open window is part of the access under review (the one that opened it).
                event["reviewIndex"] = .int(opened)
                context.set(Self.eventKey(patient: patient, index: count), .object(event))
            } else {
                event["reviewIndex"] = .int(count)
                context.set(Self.eventKey(patient: patient, index: count), .object(event))
                context.set(Self.breakGlassKey(patient: patient, reader: reader), .object(["until": .int(try p.int("until")), "index": .int(count)]))
                context.set(Self.reviewKey(patient: patient, index: count), .object(["status": .string("pending"), "reader": .string(reader)]))
                context.emit(.object([
                    "type": .string("break-glass"), "patient": .string(patient), "reader": .string(reader), "index": .int(count),
                    "reason": p.fields["reason"] ?? .null,
                ]))
            }
        }
        context.emit(.object([
            "type": .string("access"), "patient": .string(patient), "reader": p.fields["reader"]!, "outcome": p.fields["outcome"]!,
            "index": .int(count),
        ]))
        return .object(event)
    }

    /// A node attests that it destroyed what it held of an erased record (vault ciphertexts and their
    /// salts): once per node, after the erasure.
    func shredded(_ payload: JSONValue, context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        guard try operators.contains(context.author, in: context) else { throw LedgerError("forbidden", "a consortium node attests its own shredding") }
        let p = try Payload(payload, allowed: Self.shreddedFields)
        let patient = try p.did("patient")
        let recordID = try p.string("recordId", maxLength: 64)
        guard let record = try context.json(forKey: RecordEntry.key(recordID)), record["patient"]?.stringValue == patient,
            let erasedAt = record["erasedAtHeight"]?.intValue
        else { throw LedgerError("not_erased", "record \(recordID) of \(patient) is not erased") }
        let key = Self.erasureKey(patient: patient, recordID: recordID)
        var attestations = try context.json(forKey: key)?["attestations"]?.arrayValue ?? []
        guard !attestations.contains(where: { $0["node"]?.stringValue == context.author }) else {
            throw LedgerError("already_attested", "this node already attested the shredding of \(recordID)")
        }
        let attestation: JSONValue = .object([
            "node": .string(context.author), "destroyed": .int(try p.int("destroyed")), "height": .int(Int64(context.height)),
            "time": .int(Int64(context.timeMillis)), "transaction": .string(context.transaction.id.hex),
        ])
        attestations.append(attestation)
        context.set(key, .object([
            "patient": .string(patient), "recordId": .string(recordID), "erasedAtHeight": .int(erasedAt), "attestations": .array(attestations),
        ]))
        context.emit(.object([
            "type": .string("record.shredded"), "patient": .string(patient), "record": .string(recordID), "node": .string(context.author),
            "destroyed": attestation["destroyed"]!,
        ]))
        return attestation
    }

    func review(_ payload: JSONValue, context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        let p = try Payload(payload, allowed: Self.reviewFields)
        let patient = try p.did("patient")
        let index = try p.int("index")
        guard let pending = try context.json(forKey: Self.reviewKey(patient: patient, index: index)) else {
            throw LedgerError("not_found", "no break-the-glass access \(index) to review")
        }
        guard pending["status"]?.stringValue == "pending", let reader = pending["reader"]?.stringValue else {
            throw LedgerError("already_reviewed", "access \(index) was already reviewed")
        }
        guard let readerPrincipal = try Principal.load(reader, from: context), let organisation = readerPrincipal.organisation else {
            throw LedgerError("forbidden", "the reader's organisation reviews a break-the-glass access")
        }
        if context.author != organisation {
            let reviewer = try Principal.load(context.author, from: context)
            guard reviewer?.organisation == organisation, reviewer?.duties.contains("privacy-officer") == true else {
                throw LedgerError("forbidden", "a break-the-glass access is reviewed by a privacy officer of the reader's organisation (or the organisation's key)")
            }
            guard context.author != reader else { throw LedgerError("forbidden", "nobody reviews her own break-the-glass access") }
        }
        let result: JSONValue = .object([
            "status": .string(try p.string("outcome")), "reader": .string(reader), "reviewedBy": .string(context.author),
            "note": p.fields["note"] ?? .null, "height": .int(Int64(context.height)),
        ])
        context.set(Self.reviewKey(patient: patient, index: index), result)
        // An unjustified access closes its window at once.
        if try p.string("outcome") == "unjustified",
            let window = try context.json(forKey: Self.breakGlassKey(patient: patient, reader: reader)), window["index"]?.intValue == index
        {
            context.set(Self.breakGlassKey(patient: patient, reader: reader), .object(["until": .int(Int64(context.timeMillis)), "index": .int(index)]))
        }
        return result
    }
}
