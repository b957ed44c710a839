import LedgerCore

/// A payer's policy for one plan and plan year: data, not code (docs/claims.md; its JSON Schema is
/// docs/schemas/claims-policy.schema.json). Money is in integer minor units of `currency`, rates in
/// basis points. `ClaimsPolicy(json:)` refuses a bad policy with the exact JSON path and the reason.
public struct ClaimsPolicy: Sendable, Equatable {
    public static func == (a: ClaimsPolicy, b: ClaimsPolicy) -> Bool {
        a.plan == b.plan && a.currency == b.currency && a.yearStart == b.yearStart && a.yearEnd == b.yearEnd && a.effective == b.effective
            && a.deductible == b.deductible && a.outOfPocketMax == b.outOfPocketMax && a.coinsuranceBp == b.coinsuranceBp
            && a.timelyFilingDays == b.timelyFilingDays && a.services == b.services && a.members == b.members
    }

    /// A covered service: the pair (system, code), its fee (the allowed amount), the copay, whether it
    /// needs prior authorisation.
    public struct Service: Sendable, Equatable {
        public let system: String
        public let code: String
        public let allowed: Int64
        public let copay: Int64
        public let priorAuth: Bool
    }

    /// A member's coverage: from and to inclusive, within the plan year.
    public struct Member: Sendable, Equatable {
        public let patient: String
        public let from: CivilDate
        public let to: CivilDate
    }

    public let plan: String
    public let currency: String
    /// Decimal places of `currency` (ISO 4217 minor unit): how many a submitted amount may have.
    public let minorDigits: Int
    public let yearStart: CivilDate
    public let yearEnd: CivilDate
    /// The first day of service this version applies to (default: the plan year's start); a version
    /// published later with an earlier or equal `effective` replaces it from there on.
    public let effective: CivilDate
    public let deductible: Int64
    public let outOfPocketMax: Int64
    public let coinsuranceBp: Int64
    public let timelyFilingDays: Int64?
    public let services: [Service]
    public let members: [Member]

    /// The services by (system, code).
    public let serviceIndex: [ServiceKey: Int]

    public struct ServiceKey: Hashable, Sendable {
        public let system: String
        public let code: String
        public init(system: String, code: String) {
            self.system = system
            self.code = code
        }
    }

    /// ISO 4217 currencies and their minor units (the ones a policy may name).
    public static let currencies: [String: Int] = [
        "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2,
        "HUF": 2, "RON": 2, "BGN": 2, "ISK": 0, "JPY": 0, "KRW": 0, "CNY": 2, "INR": 2, "BRL": 2, "MXN": 2, "ZAR": 2, "SGD": 2,
        "HKD": 2, "ILS": 2, "TRY": 2, "AED": 2, "SAR": 2, "KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3, "TND": 3,
    ]

    /// The top-level members a policy may have; any other is refused (a misspelt rule must not pass unnoticed).
    static let fields: Set<String> = [
        "plan", "currency", "year", "effective", "deductible", "outOfPocketMax", "coinsuranceBp", "timelyFilingDays", "services", "members",
    ]

    /// Money and counts above this are refused: sums of a year's lines stay far from Int64's limit.
    public static let maxAmount: Int64 = 1_000_000_000_000

    public init(json: JSONValue) throws(LedgerError) {
        let p = try PathReader(json, path: "")
        try p.only(Self.fields)
        plan = try p.string("plan", pattern: "plan names are 1 to 64 of A-Z a-z 0-9 . _ -") { text in
            (1...64).contains(text.count) && text.unicodeScalars.allSatisfy { ClaimsPolicy.planCharacters.contains($0) }
        }
        let currency = try p.string("currency", pattern: "an ISO 4217 code this release knows (EUR, USD, GBP, JPY, …)") { ClaimsPolicy.currencies[$0] != nil }
        self.currency = currency
        minorDigits = Self.currencies[currency]!
        let year = try p.object("year")
        try year.only(["start", "end"])
        yearStart = try year.date("start")
        yearEnd = try year.date("end")
        guard yearStart <= yearEnd else { throw year.error("end", "the plan year ends before it starts") }
        if p.value["effective"] != nil && p.value["effective"] != .null {
            effective = try p.date("effective")
            guard effective >= yearStart, effective <= yearEnd else { throw p.error("effective", "lies within the plan year \(yearStart)…\(yearEnd)") }
        } else {
            effective = yearStart
        }
        deductible = try p.amount("deductible")
        outOfPocketMax = try p.amount("outOfPocketMax")
        coinsuranceBp = try p.integer("coinsuranceBp", in: 0...10_000, meaning: "basis points, 0 to 10000")
        timelyFilingDays = try p.optionalInteger("timelyFilingDays", in: 1...3650, meaning: "days, 1 to 3650")
        var services: [Service] = []
        var index: [ServiceKey: Int] = [:]
        for (i, s) in try p.array("services").enumerated() {
            try s.only(["system", "code", "allowed", "copay", "priorAuth"])
            let system = try s.string("system", pattern: "a code system URI (e.g. http://www.ama-assn.org/go/cpt)") { !$0.isEmpty && $0.count <= 256 && !$0.contains(" ") }
            let code = try s.string("code", pattern: "a code of 1 to 64 characters without spaces") { (1...64).contains($0.count) && !$0.contains(" ") }
            let service = Service(
                system: system, code: code, allowed: try s.amount("allowed"), copay: try s.optionalAmount("copay") ?? 0,
                priorAuth: try s.optionalBool("priorAuth") ?? false)
            let key = ServiceKey(system: system, code: code)
            if index[key] != nil { throw s.error("code", "\(system) \(code) is listed twice") }
            index[key] = i
            services.append(service)
        }
        self.services = services
        serviceIndex = index
        var members: [Member] = []
        var byPatient: [String: [Int]] = [:]
        for m in try p.array("members") {
            try m.only(["patient", "from", "to"])
            let patient = try m.string("patient", pattern: "a did:key") { (try? PublicKey(did: $0)) != nil }
            let from = try m.date("from"), to = try m.date("to")
            guard from <= to else { throw m.error("to", "the coverage ends before it starts") }
            guard from >= yearStart, to <= yearEnd else { throw m.error(from < yearStart ? "from" : "to", "coverage lies within the plan year \(yearStart)…\(yearEnd)") }
            if (byPatient[patient] ?? []).contains(where: { members[$0].from <= to && from <= members[$0].to }) {
                throw m.error("from", "overlaps another coverage period of \(patient)")
            }
            byPatient[patient, default: []].append(members.count)
            members.append(Member(patient: patient, from: from, to: to))
        }
        self.members = members
        membersByPatient = byPatient
    }

    /// Each patient's coverage periods (indices into `members`).
    let membersByPatient: [String: [Int]]

    /// The coverage periods of `patient`.
    public func periods(of patient: String) -> [Member] { (membersByPatient[patient] ?? []).map { members[$0] } }

    /// Published policy versions never change: parsed once per process, by chain and state key.
    static let parsed = DerivedValueCache<ClaimsPolicy>(capacity: 1000)

    /// The policy stored under `key` (a published version) on chain `chain`, parsed once.
    public static func published(chain: String, key: String, read: (String) throws(LedgerError) -> JSONValue?) throws(LedgerError) -> ClaimsPolicy? {
        try parsed.value(chain + "\n" + key) { () throws(LedgerError) -> ClaimsPolicy? in
            guard let json = try read(key)?["policy"] else { return nil }
            return try ClaimsPolicy(json: json)
        }
    }

    static let planCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-".unicodeScalars)

    public func service(system: String, code: String) -> Service? {
        serviceIndex[ServiceKey(system: system, code: code)].map { services[$0] }
    }
}

/// A calendar date (YYYY-MM-DD, proleptic Gregorian) as its day number, so that dates compare and subtract.
public struct CivilDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Days since 1970-01-01.
    public let day: Int64

    public init?(_ text: Substring) {
        let c = Array(text.utf8)
        guard c.count == 10, c[4] == 45, c[7] == 45 else { return nil }
        func number(_ r: Range<Int>) -> Int64? {
            var v: Int64 = 0
            for i in r {
                guard (48...57).contains(c[i]) else { return nil }
                v = v * 10 + Int64(c[i] - 48)
            }
            return v
        }
        guard let y = number(0..<4), let m = number(5..<7), let d = number(8..<10), (1...12).contains(m), d >= 1, d <= Self.daysIn(month: m, year: y) else {
            return nil
        }
        day = Self.days(year: y, month: m, day: d)
    }

    public init?(_ text: String) { self.init(text[...]) }

    /// The day of a day number (days since 1970-01-01).
    public init(day: Int64) { self.day = day }

    /// The UTC day of a time in milliseconds since 1970.
    public init(millis: UInt64) { day = Int64(millis / 86_400_000) }

    /// The date of a FHIR date or dateTime (its first ten characters).
    public init?(dateOrDateTime text: String) {
        guard text.count >= 10 else { return nil }
        if text.count > 10, text[text.index(text.startIndex, offsetBy: 10)] != "T" { return nil }
        self.init(text.prefix(10))
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public var description: String {
        let z = day + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(d))"
    }

    public static func < (a: CivilDate, b: CivilDate) -> Bool { a.day < b.day }
}

/// Reads a JSON object member by member, naming the exact path of whatever is wrong
/// (`services[1].allowed: …`), as a `bad_<what>` error.
public struct PathReader: Sendable {
    public let value: [String: JSONValue]
    public let path: String
    let code: String

    public init(_ json: JSONValue, path: String, code: String = "bad_policy") throws(LedgerError) {
        guard let o = json.objectValue else { throw LedgerError(code, "\(path.isEmpty ? "the document" : path): must be a JSON object") }
        value = o
        self.path = path
        self.code = code
    }

    func at(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public func error(_ key: String, _ reason: String) -> LedgerError { LedgerError(code, "\(at(key)): \(reason)") }

    public func only(_ allowed: Set<String>) throws(LedgerError) {
        if let extra = value.keys.sorted().first(where: { !allowed.contains($0) }) { throw error(extra, "is not a member of this format") }
    }

    public func required(_ key: String) throws(LedgerError) -> JSONValue {
        guard let v = value[key], v != .null else { throw error(key, "is required") }
        return v
    }

    public func string(_ key: String, pattern: String, _ valid: (String) -> Bool = { !$0.isEmpty }) throws(LedgerError) -> String {
        guard let s = try required(key).stringValue else { throw error(key, "must be a string") }
        guard valid(s) else { throw error(key, "must be \(pattern)") }
        return s
    }

    public func optionalString(_ key: String) throws(LedgerError) -> String? {
        guard let v = value[key], v != .null else { return nil }
        guard let s = v.stringValue else { throw error(key, "must be a string") }
        return s
    }

    public func date(_ key: String) throws(LedgerError) -> CivilDate {
        guard let s = try required(key).stringValue, let d = CivilDate(s) else { throw error(key, "must be a date YYYY-MM-DD") }
        return d
    }

    public func integer(_ key: String, in range: ClosedRange<Int64>, meaning: String) throws(LedgerError) -> Int64 {
        guard let i = Self.integral(try required(key)), range.contains(i) else { throw error(key, "must be an integer: \(meaning)") }
        return i
    }

    public func optionalInteger(_ key: String, in range: ClosedRange<Int64>, meaning: String) throws(LedgerError) -> Int64? {
        guard let v = value[key], v != .null else { return nil }
        return try integer(key, in: range, meaning: meaning)
    }

    public func amount(_ key: String) throws(LedgerError) -> Int64 {
        try integer(key, in: 0...ClaimsPolicy.maxAmount, meaning: "money in integer minor units, 0 to \(ClaimsPolicy.maxAmount)")
    }

    public func optionalAmount(_ key: String) throws(LedgerError) -> Int64? {
        guard let v = value[key], v != .null else { return nil }
        return try amount(key)
    }

    public func optionalBool(_ key: String) throws(LedgerError) -> Bool? {
        guard let v = value[key], v != .null else { return nil }
        guard let b = v.boolValue else { throw error(key, "must be true or false") }
        return b
    }

    public func object(_ key: String) throws(LedgerError) -> PathReader { try PathReader(try required(key), path: at(key), code: code) }

    public func array(_ key: String) throws(LedgerError) -> [PathReader] {
        guard let items = try required(key).arrayValue else { throw error(key, "must be an array") }
        var out: [PathReader] = []
        for (i, item) in items.enumerated() { out.append(try PathReader(item, path: "\(at(key))[\(i)]", code: code)) }
        return out
    }

    /// An integer, whether written 12000 or 12000.0 (as JSON Schema's "integer" counts it).
    static func integral(_ v: JSONValue) -> Int64? {
        switch v {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.0e15: return Int64(d)
        default: return nil
        }
    }
}
