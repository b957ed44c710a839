import LedgerCore

/// FHIR R4 search over resources the caller may read (FHIR R4 §3.1.1): the token parameters `code`,
/// `category` and `status`, the date parameters `date` and `_lastUpdated` (eq/ne/gt/lt/ge/le, no
/// prefix meaning eq, compared at the precision given, in the resource's own time zone; UTC for
/// `_lastUpdated`), `_sort` (`date`, `-date`, `_lastUpdated`, `-_lastUpdated`)
/// and `_count`. Commas within one parameter mean OR; repeated parameters mean AND.
public struct FHIRSearch: Sendable {
    public static let parameters: Set<String> = ["code", "category", "status", "date", "_lastUpdated", "_count", "_sort"]

    enum Filter: Sendable {
        case token(field: String, alternatives: [(system: String?, code: String?)])
        /// `date` (the resource's clinical date) or `_lastUpdated` (meta.lastUpdated).
        case date(alternatives: [(prefix: String, value: String)], lastUpdated: Bool)
    }

    let filters: [Filter]
    let count: Int?
    let sort: (key: String, descending: Bool)?

    /// Reads the search parameters (those of `parameters` only; the caller handles patient/subject).
    public init(_ query: [(name: String, value: String)]) throws(LedgerError) {
        var filters: [Filter] = []
        var count: Int?
        var sort: (key: String, descending: Bool)?
        for (name, value) in query {
            let values = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard !value.isEmpty, values.allSatisfy({ !$0.isEmpty }) else { throw LedgerError("bad_parameter", "\(name) needs a value") }
            switch name {
            case "code", "category":
                filters.append(.token(field: name, alternatives: values.map(Self.token)))
            case "status":
                filters.append(.token(field: name, alternatives: values.map { (nil, $0) }))
            case "date", "_lastUpdated":
                var alternatives: [(prefix: String, value: String)] = []
                for v in values {
                    let prefix = String(v.prefix(2))
                    let known = ["eq", "ne", "gt", "lt", "ge", "le"].contains(prefix)
                    let date = known ? String(v.dropFirst(2)) : v
                    guard date.count >= 4, Int(date.prefix(4)) != nil else {
                        throw LedgerError("bad_parameter", "\(name) must be [eq|ne|gt|lt|ge|le]YYYY[-MM[-DD[Thh:mm:ss…]]]")
                    }
                    alternatives.append((known ? prefix : "eq", date))
                }
                filters.append(.date(alternatives: alternatives, lastUpdated: name == "_lastUpdated"))
            case "_count":
                guard let n = Int(value), n >= 0 else { throw LedgerError("bad_parameter", "_count must be a non-negative integer") }
                count = n
            case "_sort":
                let descending = value.hasPrefix("-")
                let key = descending ? String(value.dropFirst()) : value
                guard key == "date" || key == "_lastUpdated" else { throw LedgerError("bad_parameter", "_sort supports date and _lastUpdated (with - for descending)") }
                sort = (key, descending)
            default:
                throw LedgerError("unsupported_parameter", "search parameter \(name) is not supported (supported: patient, subject, \(Self.parameters.sorted().joined(separator: ", ")))")
            }
        }
        self.filters = filters
        self.count = count
        self.sort = sort
    }

    /// `system|code`, `|code` (no system), `system|` (any code of the system), or `code` (any system).
    static func token(_ text: String) -> (system: String?, code: String?) {
        guard let bar = text.lastIndex(of: "|") else { return (nil, text) }
        let system = String(text[..<bar]), code = String(text[text.index(after: bar)...])
        return (system, code.isEmpty ? nil : code)
    }

    /// The codings of a CodeableConcept-valued element (or of each entry of an array of them).
    static func codings(_ value: JSONValue?) -> [(system: String, code: String)] {
        guard let value else { return [] }
        if let list = value.arrayValue { return list.flatMap { codings($0) } }
        return (value["coding"]?.arrayValue ?? []).compactMap { c in
            c["code"]?.stringValue.map { (c["system"]?.stringValue ?? "", $0) }
        }
    }

    static let codeElements = ["code", "medicationCodeableConcept", "vaccineCode", "type"]

    /// The clinically relevant date of a resource (FHIR R4 `clinical-date` paths).
    public static func date(of r: JSONValue) -> String? {
        for path in [
            ["effectiveDateTime"], ["effectivePeriod", "start"], ["issued"], ["onsetDateTime"], ["recordedDate"], ["performedDateTime"],
            ["performedPeriod", "start"], ["occurrenceDateTime"], ["authoredOn"], ["whenHandedOver"], ["period", "start"], ["date"],
            ["dateTime"], ["birthDate"],
        ] {
            var v: JSONValue? = r
            for p in path { v = v?[p] }
            if let s = v?.stringValue { return s }
        }
        return nil
    }

    func matches(_ r: JSONValue) -> Bool {
        for filter in filters {
            switch filter {
            case .token(let field, let alternatives):
                if field == "status" {
                    guard let status = r["status"]?.stringValue, alternatives.contains(where: { $0.code == status }) else { return false }
                    continue
                }
                let candidates = field == "category" ? Self.codings(r["category"]) : Self.codeElements.flatMap { Self.codings(r[$0]) }
                let hit = alternatives.contains { alt in
                    candidates.contains { c in
                        (alt.system == nil || alt.system == c.system) && (alt.code == nil || alt.code == c.code)
                    }
                }
                if !hit { return false }
            case .date(let alternatives, let lastUpdated):
                guard let date = lastUpdated ? r["meta"]?["lastUpdated"]?.stringValue : Self.date(of: r) else { return false }
                let hit = alternatives.contains { alt in
                    let mine = String(date.prefix(alt.value.count))
                    guard mine.count == alt.value.count else { return false }
                    switch alt.prefix {
                    case "ne": return mine != alt.value
                    case "gt": return mine > alt.value
                    case "lt": return mine < alt.value
                    case "ge": return mine >= alt.value
                    case "le": return mine <= alt.value
                    default: return mine == alt.value
                    }
                }
                if !hit { return false }
            }
        }
        return true
    }

    /// Filters, sorts and limits; `lastUpdated` gives each resource's version time (ms) for `_sort=_lastUpdated`.
    public func apply(_ resources: [(resource: JSONValue, lastUpdated: Int64)]) -> (page: [JSONValue], total: Int) {
        var kept = resources.filter { matches($0.resource) }
        if let sort {
            // Stable: equal keys keep their order.
            let keyed = kept.enumerated().map { (index: $0.offset, item: $0.element, date: Self.date(of: $0.element.resource) ?? "") }
            kept = keyed.sorted { a, b in
                if sort.key == "date", a.date != b.date { return sort.descending ? a.date > b.date : a.date < b.date }
                if sort.key == "_lastUpdated", a.item.lastUpdated != b.item.lastUpdated {
                    return sort.descending ? a.item.lastUpdated > b.item.lastUpdated : a.item.lastUpdated < b.item.lastUpdated
                }
                return a.index < b.index
            }.map(\.item)
        }
        let out = kept.map(\.resource)
        return (count.map { Array(out.prefix($0)) } ?? out, out.count)
    }
}
