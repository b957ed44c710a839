import LedgerCore

/// One EPCIS 2.0 event (GS1 EPCIS 2.0 §7), the parts the pack lifecycle needs, with the JSON it
/// came from (for its event hash id).
public struct EPCISEvent: Sendable, Hashable {
    public enum EventType: String, Sendable, CaseIterable {
        case object = "ObjectEvent", aggregation = "AggregationEvent", transformation = "TransformationEvent"
        case association = "AssociationEvent", transaction = "TransactionEvent"
    }

    public let type: EventType
    public let action: String?
    /// CBV 2.0 business step, short name (`shipping`) or the custom URI as written.
    public let bizStep: String?
    public let disposition: String?
    /// eventTime in milliseconds since 1970 (UTC).
    public let timeMillis: Int64
    public let epcs: [EPC]
    public let parent: EPC?
    public let quantities: [EPC]
    public let outputs: [EPC]
    public let destinations: [(type: String, id: String)]
    /// Instance/lot master data (CBV 2.0 §8.3): `lotNumber`, `itemExpirationDate`.
    public let lot: String?
    public let expiry: GS1Date?
    public let json: JSONValue

    public static func == (a: EPCISEvent, b: EPCISEvent) -> Bool { a.json == b.json }
    public func hash(into hasher: inout Hasher) { hasher.combine(json) }

    /// The party a shipment goes to (destinationList `owning_party`, else `location`).
    public var destinationParty: String? {
        destinations.first { $0.type == "owning_party" }?.id ?? destinations.first { $0.type == "location" }?.id
    }
}

/// An EPCIS 2.0 JSON/JSON-LD document (`EPCISDocument`, or an `EPCISQueryDocument` result) parsed and
/// checked; any invalid event refuses the whole document with the event's index and the reason.
public struct EPCISDocument: Sendable {
    public let events: [EPCISEvent]

    public static let maxEvents = 10_000

    public static func parse(_ json: JSONValue) throws(LedgerError) -> EPCISDocument {
        guard json.objectValue != nil else { throw LedgerError("bad_epcis", "an EPCIS document is a JSON object") }
        let list: [JSONValue]
        switch json["type"]?.stringValue {
        case "EPCISDocument":
            guard let events = json["epcisBody"]?["eventList"]?.arrayValue else { throw LedgerError("bad_epcis", "epcisBody.eventList is required") }
            list = events
        case "EPCISQueryDocument":
            guard let events = json["epcisBody"]?["queryResults"]?["resultsBody"]?["eventList"]?.arrayValue else {
                throw LedgerError("bad_epcis", "epcisBody.queryResults.resultsBody.eventList is required")
            }
            list = events
        default:
            throw LedgerError("bad_epcis", "type must be EPCISDocument or EPCISQueryDocument")
        }
        if let version = json["schemaVersion"], version.stringValue?.hasPrefix("2.") != true {
            throw LedgerError("bad_epcis", "schemaVersion must be 2.x")
        }
        guard !list.isEmpty else { throw LedgerError("bad_epcis", "the document has no events") }
        guard list.count <= maxEvents else { throw LedgerError("bad_epcis", "at most \(maxEvents) events per document") }
        var events: [EPCISEvent] = []
        events.reserveCapacity(list.count)
        let memo = Memo()
        for (index, item) in list.enumerated() {
            do throws(LedgerError) {
                events.append(try parseEvent(item, memo: memo))
            } catch {
                throw LedgerError(error.code, "event \(index): \(error.message)")
            }
        }
        return EPCISDocument(events: events)
    }

    /// CBV 2.0 vocabulary URIs (`https://ref.gs1.org/cbv/BizStep-shipping`, `urn:epcglobal:cbv:bizstep:shipping`) to
    /// short names; other URIs are kept as written.
    public static func cbvShortName(_ value: String, vocabulary: String) -> String {
        let prefixes = vocabularyPrefixes[vocabulary] ?? [
            "https://ref.gs1.org/cbv/\(vocabulary)-", "urn:epcglobal:cbv:\(vocabulary.lowercased()):", "gs1:\(vocabulary)-",
        ]
        // Compared in the UTF-8 bytes: the prefixes are ASCII.
        for prefix in prefixes where value.utf8.starts(with: prefix.utf8) {
            return String(decoding: value.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
        }
        return value
    }

    static let vocabularyPrefixes: [String: [String]] = Dictionary(
        uniqueKeysWithValues: ["BizStep", "Disp", "SDT"].map { v in
            (v, ["https://ref.gs1.org/cbv/\(v)-", "urn:epcglobal:cbv:\(v.lowercased()):", "gs1:\(v)-"])
        })

    /// What the events of one document repeat, read once: the last event time, time zone offset and
    /// expiry date seen, and the GTIN of the last EPCs.
    final class Memo {
        var time: (text: String, millis: Int64)?
        var offset: String?
        var expiry: (text: String, date: GS1Date)?
        let epc = EPC.Memo()
    }

    static func parseEvent(_ e: JSONValue, memo: Memo = Memo()) throws(LedgerError) -> EPCISEvent {
        guard e.objectValue != nil else { throw LedgerError("bad_epcis", "an event is an object") }
        guard let typeName = e["type"]?.stringValue, let type = EPCISEvent.EventType(rawValue: typeName) else {
            throw LedgerError("bad_epcis", "type must be one of \(EPCISEvent.EventType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let time = e["eventTime"]?.stringValue else { throw LedgerError("bad_epcis", "eventTime is required") }
        let timeMillis: Int64
        if let known = memo.time, known.text == time {
            timeMillis = known.millis
        } else {
            timeMillis = try ISO8601Time.millis(time)
            memo.time = (time, timeMillis)
        }
        guard let offset = e["eventTimeZoneOffset"]?.stringValue, offset == memo.offset || ISO8601Time.isOffset(offset) else {
            throw LedgerError("bad_epcis", "eventTimeZoneOffset (+hh:mm or -hh:mm) is required")
        }
        memo.offset = offset
        let action = e["action"]?.stringValue
        if type != .transformation {
            guard let action, action == "ADD" || action == "OBSERVE" || action == "DELETE" else {
                throw LedgerError("bad_epcis", "\(typeName) needs action ADD, OBSERVE or DELETE")
            }
        }
        func epcs(_ field: String) throws(LedgerError) -> [EPC] {
            guard let value = e[field] else { return [] }
            guard let list = value.arrayValue else { throw LedgerError("bad_epcis", "\(field) must be an array") }
            var out: [EPC] = []
            out.reserveCapacity(list.count)
            for item in list {
                guard let s = item.stringValue else { throw LedgerError("bad_epcis", "\(field) holds a non-string") }
                out.append(try EPC.parse(s, memo: memo.epc))
            }
            return out
        }
        func quantities(_ field: String) throws(LedgerError) -> [EPC] {
            guard let value = e[field] else { return [] }
            guard let list = value.arrayValue else { throw LedgerError("bad_epcis", "\(field) must be an array") }
            var out: [EPC] = []
            for item in list {
                guard let s = item["epcClass"]?.stringValue else { throw LedgerError("bad_epcis", "\(field) entries need epcClass") }
                if let q = item["quantity"], q.intValue == nil, !(q.doubleValueIfNumber.map { $0 >= 0 } ?? false) {
                    throw LedgerError("bad_epcis", "quantity must be a non-negative number")
                }
                out.append(try EPC.parse(s))
            }
            return out
        }
        func sourceDestination(_ field: String, _ key: String) throws(LedgerError) -> [(type: String, id: String)] {
            guard let value = e[field] else { return [] }
            guard let list = value.arrayValue else { throw LedgerError("bad_epcis", "\(field) must be an array") }
            var out: [(type: String, id: String)] = []
            for item in list {
                guard let t = item["type"]?.stringValue, let id = item[key]?.stringValue else {
                    throw LedgerError("bad_epcis", "\(field) entries need type and \(key)")
                }
                out.append((cbvShortName(t, vocabulary: "SDT"), id))
            }
            return out
        }
        _ = try sourceDestination("sourceList", "source")  // validated; the lifecycle needs only the destination
        var parent: EPC?
        if let p = e["parentID"] {
            guard let s = p.stringValue else { throw LedgerError("bad_epcis", "parentID must be a string") }
            parent = try EPC.parse(s)
        }
        if type == .aggregation, action != "OBSERVE", parent == nil {
            throw LedgerError("bad_epcis", "an AggregationEvent with action \(action ?? "") needs parentID")
        }
        var lot: String?
        var expiry: GS1Date?
        if let ilmd = e["ilmd"] {
            guard let fields = ilmd.objectValue else { throw LedgerError("bad_epcis", "ilmd must be an object") }
            lot = (fields["cbvmda:lotNumber"] ?? fields["lotNumber"] ?? fields["gs1:lotNumber"])?.stringValue
            if let text = (fields["cbvmda:itemExpirationDate"] ?? fields["itemExpirationDate"] ?? fields["gs1:itemExpirationDate"])?.stringValue {
                if let known = memo.expiry, known.text == text {
                    expiry = known.date
                } else {
                    let date = try ISO8601Time.date(text)
                    memo.expiry = (text, date)
                    expiry = date
                }
            }
        }
        let epcList = type == .aggregation ? try epcs("childEPCs") : type == .transformation ? try epcs("inputEPCList") : try epcs("epcList")
        let quantityList =
            type == .aggregation
            ? try quantities("childQuantityList") : type == .transformation ? try quantities("inputQuantityList") : try quantities("quantityList")
        return EPCISEvent(
            type: type, action: action, bizStep: e["bizStep"]?.stringValue.map { cbvShortName($0, vocabulary: "BizStep") },
            disposition: e["disposition"]?.stringValue.map { cbvShortName($0, vocabulary: "Disp") }, timeMillis: timeMillis,
            epcs: epcList, parent: parent, quantities: quantityList, outputs: type == .transformation ? try epcs("outputEPCList") : [],
            destinations: try sourceDestination("destinationList", "destination"),
            lot: lot, expiry: expiry, json: e)
    }
}

extension JSONValue {
    var doubleValueIfNumber: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }
}

/// ISO 8601 / RFC 3339 date-times as EPCIS writes them (`2022-02-16T20:33:31.116000-06:00`, `…Z`).
public enum ISO8601Time {
    /// Milliseconds since 1970 (UTC); fractions beyond milliseconds are truncated.
    public static func millis(_ text: String) throws(LedgerError) -> Int64 {
        let b = Array(text.utf8)
        func bad() -> LedgerError { LedgerError("bad_time", "'\(text)' is not an ISO 8601 date-time with a time zone") }
        func number(_ range: Range<Int>) throws(LedgerError) -> Int {
            guard range.upperBound <= b.count else { throw bad() }
            var n = 0
            for i in range {
                guard (48...57).contains(b[i]) else { throw bad() }
                n = n * 10 + Int(b[i] - 48)
            }
            return n
        }
        guard b.count >= 20, b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 116, b[13] == 58, b[16] == 58 else { throw bad() }
        let date = GS1Date(year: try number(0..<4), month: try number(5..<7), day: try number(8..<10))
        guard (1...12).contains(date.month), (1...GS1Date.daysIn(month: date.month, year: date.year)).contains(date.day) else { throw bad() }
        let hour = try number(11..<13)
        let minute = try number(14..<16)
        let second = try number(17..<19)
        guard hour < 24, minute < 60, second < 61 else { throw bad() }
        var i = 19
        var millis = 0
        if i < b.count, b[i] == 46 {
            i += 1
            var digits = 0
            while i < b.count, (48...57).contains(b[i]) {
                if digits < 3 { millis = millis * 10 + Int(b[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { throw bad() }
            for _ in digits..<max(digits, 3) { millis *= 10 }
        }
        var offsetMinutes = 0
        guard i < b.count else { throw bad() }
        if b[i] == 90 || b[i] == 122 {
            i += 1
        } else {
            let zone = String(decoding: b[i...], as: UTF8.self)
            guard isOffset(zone) else { throw bad() }
            let sign = b[i] == 45 ? -1 : 1
            offsetMinutes = sign * (try number(i + 1..<i + 3) * 60 + number(i + 4..<i + 6))
            i += 6
        }
        guard i == b.count else { throw bad() }
        let seconds = Int64(date.daysSinceEpoch) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetMinutes * 60)
        return seconds * 1000 + Int64(millis)
    }

    /// `+hh:mm` / `-hh:mm`.
    public static func isOffset(_ text: String) -> Bool {
        let b = Array(text.utf8)
        guard b.count == 6, b[0] == 43 || b[0] == 45, b[3] == 58 else { return false }
        return [1, 2, 4, 5].allSatisfy { (48...57).contains(b[$0]) }
    }

    /// `YYYY-MM-DD`.
    public static func date(_ text: String) throws(LedgerError) -> GS1Date {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2, let y = Int(parts[0]), let m = Int(parts[1]),
            let d = Int(parts[2]), (1...12).contains(m), (1...GS1Date.daysIn(month: m, year: y)).contains(d)
        else { throw LedgerError("bad_time", "'\(text)' is not a YYYY-MM-DD date") }
        return GS1Date(year: y, month: m, day: d)
    }
}
