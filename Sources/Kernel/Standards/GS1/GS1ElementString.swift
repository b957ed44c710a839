import LedgerCore

/// One application identifier and its value as read from a pack.
public struct GS1Element: Sendable, Hashable {
    public let ai: String
    public let value: String
    /// For date AIs, the calendar date (ISO 8601 `YYYY-MM-DD`; day `00` resolved to the month's last day).
    public let date: GS1Date?

    public init(ai: String, value: String, date: GS1Date?) {
        self.ai = ai
        self.value = value
        self.date = date
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = ["ai": .string(ai), "value": .string(value)]
        if let date { o["date"] = .string(date.iso) }
        return .object(o)
    }
}

/// A calendar date from a GS1 YYMMDD field.
public struct GS1Date: Sendable, Hashable, Comparable {
    public let year: Int
    public let month: Int
    public let day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    public var iso: String {
        func pad(_ n: Int, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }

    /// Days since 1970-01-01 (proleptic Gregorian), for comparisons with a clock.
    public var daysSinceEpoch: Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// The date of `daysSinceEpoch` days after 1970-01-01.
    public init(daysSinceEpoch days: Int) {
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        self.init(year: yoe + era * 400 + (month <= 2 ? 1 : 0), month: month, day: day)
    }

    public static func < (a: GS1Date, b: GS1Date) -> Bool { (a.year, a.month, a.day) < (b.year, b.month, b.day) }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Resolves YYMMDD with the GS1 century rule (§7.12): a year more than 50 years ahead of
    /// `today` is in the previous century, more than 49 behind in the next.
    static func parse(_ text: String, ai: String, dayZeroAllowed: Bool, today: GS1Date) throws(LedgerError) -> GS1Date {
        let digits = Array(text.utf8).map { Int($0) - 48 }
        let yy = digits[0] * 10 + digits[1]
        let month = digits[2] * 10 + digits[3]
        let dd = digits[4] * 10 + digits[5]
        guard (1...12).contains(month) else { throw LedgerError("gs1_bad_date", "AI (\(ai)): month \(month) in \(text) is not 01-12") }
        var year = today.year - today.year % 100 + yy
        let difference = yy - today.year % 100
        if difference >= 51 { year -= 100 } else if difference <= -50 { year += 100 }
        let last = daysIn(month: month, year: year)
        if dd == 0 {
            guard dayZeroAllowed else { throw LedgerError("gs1_bad_date", "AI (\(ai)): day 00 is not allowed in \(text)") }
            return GS1Date(year: year, month: month, day: last)
        }
        guard dd <= last else { throw LedgerError("gs1_bad_date", "AI (\(ai)): \(text) is not a date (\(year)-\(month) has \(last) days)") }
        return GS1Date(year: year, month: month, day: dd)
    }
}

/// The identification data read from a pack's barcode: GS1 element strings (with the GS separator
/// 0x1D, optionally preceded by a symbology identifier such as `]d2`), the bracketed
/// human-readable form `(01)…(17)…`, or a GS1 Digital Link URI on any domain.
public struct GS1ElementString: Sendable, Hashable {
    public let elements: [GS1Element]

    public subscript(ai: String) -> String? { elements.first { $0.ai == ai }?.value }

    public var gtin: String? { self["01"] }
    public var serial: String? { self["21"] }
    public var lot: String? { self["10"] }
    public var expiry: GS1Date? { elements.first { $0.ai == "17" }?.date }
    /// The national healthcare reimbursement number (AI 710-716) if the pack carries one.
    public var nationalReimbursementNumber: GS1Element? { elements.first { ("710"..."716").contains($0.ai) && $0.ai.count == 3 } }

    public var json: JSONValue { .object(["elements": .array(elements.map(\.json))]) }

    public init(elements: [GS1Element]) { self.elements = elements }

    /// Parses what a scanner delivers. `today` anchors the century of two-digit years.
    public static func parse(_ input: String, today: GS1Date) throws(LedgerError) -> GS1ElementString {
        let text = input.trimmingASCIIWhitespace()
        guard !text.isEmpty else { throw LedgerError("gs1_empty", "nothing to parse") }
        // The scheme compared without case, in the bytes (no lower-cased copy of every scan).
        func lowered(_ b: UInt8) -> UInt8 { (65...90).contains(b) ? b + 32 : b }
        if text.utf8.starts(with: "https://".utf8, by: { lowered($0) == $1 }) || text.utf8.starts(with: "http://".utf8, by: { lowered($0) == $1 }) {
            return try parseDigitalLink(text, today: today)
        }
        if text.hasPrefix("(") { return try parseBracketed(text, today: today) }
        var bytes = Array(text.utf8)
        // Symbology identifiers: ]d2 (GS1 DataMatrix), ]Q3 (GS1 QR), ]C1 (GS1-128), ]e0 (DataBar), ]J1 (DotCode).
        if bytes.count >= 3, bytes[0] == UInt8(ascii: "]") {
            let id = String(decoding: bytes[1..<3], as: UTF8.self)
            guard ["d2", "Q3", "C1", "e0", "J1"].contains(id) else {
                throw LedgerError("gs1_bad_symbology", "symbology identifier ]\(id) does not carry GS1 data")
            }
            bytes.removeFirst(3)
        }
        // Some scanners deliver a leading FNC1 as GS.
        while bytes.first == 0x1D { bytes.removeFirst() }
        return try parseElementString(bytes, today: today)
    }

    static func parseElementString(_ bytes: [UInt8], today: GS1Date) throws(LedgerError) -> GS1ElementString {
        var elements: [GS1Element] = []
        var i = 0
        while i < bytes.count {
            guard let ai = identifier(in: bytes, at: i) else {
                let shown = String(decoding: bytes[i..<min(bytes.count, i + 4)], as: UTF8.self)
                throw LedgerError("gs1_unknown_ai", "no known application identifier at position \(i) ('\(shown)…')")
            }
            i += ai.ai.utf8.count
            let end: Int
            if let total = GS1ApplicationIdentifier.predefinedLengths[String(ai.ai.prefix(2))] {
                end = i + total - 2 - (ai.ai.count - 2)
                guard end <= bytes.count else {
                    throw LedgerError("gs1_bad_length", "AI (\(ai.ai)) needs \(ai.maxLength) characters, \(bytes.count - i) left")
                }
                if let gs = bytes[i..<end].firstIndex(of: 0x1D) {
                    throw LedgerError("gs1_bad_length", "AI (\(ai.ai)) needs \(ai.maxLength) characters, got \(gs - i)")
                }
            } else {
                end = bytes[i...].firstIndex(of: 0x1D) ?? bytes.count
            }
            let value = String(decoding: bytes[i..<end], as: UTF8.self)
            elements.append(try element(ai, value, today: today))
            i = end
            if i < bytes.count, bytes[i] == 0x1D { i += 1 }
        }
        return try validated(elements)
    }

    static func parseBracketed(_ text: String, today: GS1Date) throws(LedgerError) -> GS1ElementString {
        var elements: [GS1Element] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            guard rest.first == "(", let close = rest.firstIndex(of: ")") else {
                throw LedgerError("gs1_syntax", "expected '(AI)' at '\(rest.prefix(8))'")
            }
            let code = String(rest[rest.index(after: rest.startIndex)..<close])
            guard let ai = GS1ApplicationIdentifier.table[code] else {
                throw LedgerError("gs1_unknown_ai", "(\(code)) is not a known application identifier")
            }
            rest = rest[rest.index(after: close)...]
            // A value runs to the next '(' that starts a known AI; '(' is itself in character set 82.
            var end = rest.startIndex
            while end < rest.endIndex {
                if rest[end] == "(", let c = rest[end...].firstIndex(of: ")"),
                    GS1ApplicationIdentifier.table[String(rest[rest.index(after: end)..<c])] != nil
                {
                    break
                }
                end = rest.index(after: end)
            }
            elements.append(try element(ai, String(rest[rest.startIndex..<end]), today: today))
            rest = rest[end...]
        }
        return try validated(elements)
    }

    static func parseDigitalLink(_ text: String, today: GS1Date) throws(LedgerError) -> GS1ElementString {
        var rest = Substring(text)
        if let fragment = rest.firstIndex(of: "#") { rest = rest[..<fragment] }
        var query = Substring("")
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        // Skip scheme and authority.
        guard let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") else { throw LedgerError("gs1_syntax", "not a URI") }
        rest = rest[rest.index(colon, offsetBy: 3)...]
        guard let slash = rest.firstIndex(of: "/") else {
            throw LedgerError("gs1_no_primary_key", "Digital Link URI has no path")
        }
        let segments = rest[slash...].split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        // The identifier part starts at the first primary key whose following segments pair up.
        guard
            let start = segments.indices.first(where: { index in
                GS1ApplicationIdentifier.digitalLinkPrimaryKeys.contains(segments[index]) && (segments.count - index) % 2 == 0
            })
        else {
            throw LedgerError("gs1_no_primary_key", "expected a primary identifier such as /01/{GTIN} in the path")
        }
        var elements: [GS1Element] = []
        var index = start
        // After the primary key, the path holds only its key qualifiers, in the standard's order, each at
        // most once (GS1 Digital Link 1.2 §4.3); data attributes such as 17 (expiry) go in the query string.
        let qualifiers = Self.keyQualifiers[segments[start]] ?? []
        var lastQualifier = -1
        for q in stride(from: start + 2, to: segments.count, by: 2) {
            guard let position = qualifiers.firstIndex(of: segments[q]) else {
                throw LedgerError(
                    "gs1_digital_link_path",
                    "/\(segments[q])/ is not a key qualifier of /\(segments[start])/ (qualifiers: \(qualifiers.isEmpty ? "none" : qualifiers.joined(separator: ", "))); data attributes go in the query string")
            }
            guard position > lastQualifier else {
                throw LedgerError("gs1_digital_link_path", "key qualifiers of /\(segments[start])/ come in the order \(qualifiers.joined(separator: ", ")), each once")
            }
            lastQualifier = position
        }
        while index < segments.count {
            let code = segments[index]
            guard let ai = GS1ApplicationIdentifier.table[code] else {
                throw LedgerError("gs1_unknown_ai", "/\(code)/ is not a known application identifier")
            }
            var value = try percentDecoded(segments[index + 1])
            if code == "01", [8, 12, 13].contains(value.utf8.count) {
                value = String(repeating: "0", count: 14 - value.utf8.count) + value
            }
            elements.append(try element(ai, value, today: today))
            index += 2
        }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0].utf8.allSatisfy({ (48...57).contains($0) }) else { continue }  // non-AI attributes (linkType…)
            guard let ai = GS1ApplicationIdentifier.table[parts[0]] else {
                throw LedgerError("gs1_unknown_ai", "?\(parts[0])= is not a known application identifier")
            }
            elements.append(try element(ai, try percentDecoded(parts[1]), today: today))
        }
        return try validated(elements)
    }

    /// Key qualifiers allowed in a Digital Link path after each primary key, in their required order.
    static let keyQualifiers: [String: [String]] = [
        "01": ["22", "10", "21", "235"], "8006": ["22", "10", "21"], "414": ["254", "7040"], "415": ["8020"], "8010": ["8011"],
        "8017": ["8019"], "8018": ["8019"], "00": [], "253": [], "255": [], "401": [], "402": [], "417": ["7040"], "8003": [], "8004": [],
    ]

    static func percentDecoded(_ text: String) throws(LedgerError) -> String {
        guard let decoded = PercentDecoding.decode(text) else { throw LedgerError("gs1_syntax", "bad percent-encoding in '\(text)'") }
        return decoded
    }

    /// The longest known AI at `offset` (AIs are prefix-free within the GS1 table).
    static func identifier(in bytes: [UInt8], at offset: Int) -> GS1ApplicationIdentifier? {
        for length in 2...4 where offset + length <= bytes.count {
            let code = String(decoding: bytes[offset..<offset + length], as: UTF8.self)
            if let ai = GS1ApplicationIdentifier.table[code] { return ai }
        }
        return nil
    }

    static func element(_ ai: GS1ApplicationIdentifier, _ value: String, today: GS1Date) throws(LedgerError) -> GS1Element {
        let bytes = Array(value.utf8)
        guard bytes.count >= ai.minLength, bytes.count <= ai.maxLength else {
            let expected = ai.isFixedLength ? "\(ai.maxLength)" : "\(ai.minLength) to \(ai.maxLength)"
            throw LedgerError("gs1_bad_length", "AI (\(ai.ai)) \(ai.title): \(expected) characters expected, got \(bytes.count)")
        }
        let digitsPrefix: Int
        switch ai.content {
        case .numeric: digitsPrefix = bytes.count
        case .alphanumeric: digitsPrefix = 0
        case .numericThenAlphanumeric(let digits): digitsPrefix = digits
        }
        for (offset, b) in bytes.enumerated() {
            if offset < digitsPrefix {
                guard (48...57).contains(b) else {
                    throw LedgerError("gs1_bad_character", "AI (\(ai.ai)) \(ai.title): digit expected at position \(offset + 1) of '\(value)'")
                }
            } else if !GS1ApplicationIdentifier.isCharacterSet82(b) {
                throw LedgerError(
                    "gs1_bad_character", "AI (\(ai.ai)) \(ai.title): character \(offset + 1) of '\(value)' is outside GS1 character set 82")
            }
        }
        var date: GS1Date?
        switch ai.check {
        case .none, .countryCode: break
        case .checkDigit:
            guard GS1ApplicationIdentifier.checkDigit(of: bytes.dropLast()) == bytes.last else {
                throw LedgerError("gs1_check_digit", "AI (\(ai.ai)) \(ai.title) \(value): wrong check digit")
            }
        case .checkDigitOnPrefix(let digits):
            guard GS1ApplicationIdentifier.checkDigit(of: bytes.prefix(digits - 1)) == bytes[digits - 1] else {
                throw LedgerError("gs1_check_digit", "AI (\(ai.ai)) \(ai.title) \(value): wrong check digit")
            }
        case .date(let dayZeroAllowed):
            date = try GS1Date.parse(value, ai: ai.ai, dayZeroAllowed: dayZeroAllowed, today: today)
        }
        return GS1Element(ai: ai.ai, value: value, date: date)
    }

    /// Rules across elements: no AI twice with different values, and the pairings a medicine pack
    /// needs (a serial or lot belongs to a GTIN: GS1 General Specifications §4.13).
    static func validated(_ elements: [GS1Element]) throws(LedgerError) -> GS1ElementString {
        // A scan holds a handful of elements: linear scans, no dictionary.
        var unique: [GS1Element] = []
        unique.reserveCapacity(elements.count)
        for e in elements {
            if let previous = unique.first(where: { $0.ai == e.ai }) {
                guard previous.value == e.value else { throw LedgerError("gs1_duplicate_ai", "AI (\(e.ai)) appears twice with different values") }
            } else {
                unique.append(e)
            }
        }
        func has(_ ai: String) -> Bool { unique.contains { $0.ai == ai } }
        if !has("01") && !has("02") && !has("8006") {
            for dependent in ["21", "10", "17"] where has(dependent) {
                throw LedgerError("gs1_missing_gtin", "AI (\(dependent)) requires a GTIN (01)")
            }
        }
        return GS1ElementString(elements: unique)
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\n" || f == "\r" || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\n" || l == "\r" || l == "\t" { s.removeLast() }
        return String(s)
    }
}
