import LedgerCore

/// A GS1 application identifier's format (GS1 General Specifications §3 and the GS1 syntax
/// dictionary): fixed or variable length, numeric or the GS1 AI encodable character set 82, and
/// the checks that apply to its value.
public struct GS1ApplicationIdentifier: Sendable, Hashable {
    public enum Content: Sendable, Hashable {
        /// Digits only.
        case numeric
        /// GS1 AI encodable character set 82 (Figure 7.11-1).
        case alphanumeric
        /// A prefix of `digits` digits followed by characters of set 82 (e.g. AI 253, 8003).
        case numericThenAlphanumeric(digits: Int)
    }

    public enum Check: Sendable, Hashable {
        case none
        /// A GS1 mod-10 check digit on the last digit (GTIN, SSCC, GLN, GSRN…).
        case checkDigit
        /// A check digit on the first `digits` digits (AI 253, 8003).
        case checkDigitOnPrefix(digits: Int)
        /// YYMMDD; `dayZeroAllowed` when `00` means the last day of the month (§7.12).
        case date(dayZeroAllowed: Bool)
        /// A three-digit ISO 3166 country code at the start (AI 421-426).
        case countryCode
    }

    public let ai: String
    public let title: String
    /// Minimum and maximum length of the value (equal for fixed-length data).
    public let minLength: Int
    public let maxLength: Int
    public let content: Content
    public let check: Check

    public var isFixedLength: Bool { minLength == maxLength }

    init(_ ai: String, _ title: String, _ min: Int, _ max: Int, _ content: Content, _ check: Check = .none) {
        self.ai = ai
        self.title = title
        self.minLength = min
        self.maxLength = max
        self.content = content
        self.check = check
    }

    /// Element strings whose AI starts with one of these two digits have a predefined total length
    /// (AI + value) and are never followed by a separator (GS1 General Specifications Figure 7.8.5-2).
    public static let predefinedLengths: [String: Int] = [
        "00": 20, "01": 16, "02": 16, "03": 16, "04": 18, "11": 8, "12": 8, "13": 8, "14": 8, "15": 8, "16": 8,
        "17": 8, "18": 8, "19": 8, "20": 4, "31": 10, "32": 10, "33": 10, "34": 10, "35": 10, "36": 10, "41": 16,
    ]

    /// Primary keys a GS1 Digital Link URI path may start with (GS1 Digital Link 1.2 §4).
    public static let digitalLinkPrimaryKeys: Set<String> = [
        "00", "01", "253", "255", "401", "402", "414", "417", "8003", "8004", "8006", "8010", "8013", "8017", "8018",
    ]

    /// The AIs this parser knows: identification keys, the pack attributes of medicines and the
    /// national healthcare reimbursement numbers (AI 710-716), logistics and internal AIs.
    public static let table: [String: GS1ApplicationIdentifier] = {
        var t: [String: GS1ApplicationIdentifier] = [:]
        func add(_ ai: GS1ApplicationIdentifier) { t[ai.ai] = ai }
        add(.init("00", "SSCC", 18, 18, .numeric, .checkDigit))
        add(.init("01", "GTIN", 14, 14, .numeric, .checkDigit))
        add(.init("02", "CONTENT", 14, 14, .numeric, .checkDigit))
        add(.init("10", "BATCH/LOT", 1, 20, .alphanumeric))
        for (ai, title, zero) in [
            ("11", "PROD DATE", true), ("12", "DUE DATE", true), ("13", "PACK DATE", true), ("15", "BEST BEFORE", true),
            ("16", "SELL BY", true), ("17", "USE BY OR EXPIRY", true),
        ] {
            add(.init(ai, title, 6, 6, .numeric, .date(dayZeroAllowed: zero)))
        }
        add(.init("20", "VARIANT", 2, 2, .numeric))
        add(.init("21", "SERIAL", 1, 20, .alphanumeric))
        add(.init("22", "CPV", 1, 20, .alphanumeric))
        add(.init("235", "TPX", 1, 28, .alphanumeric))
        add(.init("240", "ADDITIONAL ID", 1, 30, .alphanumeric))
        add(.init("241", "CUST. PART No.", 1, 30, .alphanumeric))
        add(.init("242", "MTO VARIANT", 1, 6, .numeric))
        add(.init("243", "PCN", 1, 20, .alphanumeric))
        add(.init("250", "SECONDARY SERIAL", 1, 30, .alphanumeric))
        add(.init("251", "REF. TO SOURCE", 1, 30, .alphanumeric))
        add(.init("253", "GDTI", 14, 30, .numericThenAlphanumeric(digits: 13), .checkDigitOnPrefix(digits: 13)))
        add(.init("254", "GLN EXTENSION COMPONENT", 1, 20, .alphanumeric))
        add(.init("255", "GCN", 14, 25, .numeric, .checkDigitOnPrefix(digits: 13)))
        add(.init("30", "VAR. COUNT", 1, 8, .numeric))
        add(.init("37", "COUNT", 1, 8, .numeric))
        for n in 0...9 {
            for ai in ["310", "311", "312", "313", "314", "315", "316", "320", "330", "356", "357"] {
                add(.init("\(ai)\(n)", "MEASURE", 6, 6, .numeric))
            }
        }
        add(.init("400", "ORDER NUMBER", 1, 30, .alphanumeric))
        add(.init("401", "GINC", 1, 30, .alphanumeric))
        add(.init("402", "GSIN", 17, 17, .numeric, .checkDigit))
        add(.init("403", "ROUTE", 1, 30, .alphanumeric))
        for (ai, title) in [
            ("410", "SHIP TO LOC"), ("411", "BILL TO"), ("412", "PURCHASE FROM"), ("413", "SHIP FOR LOC"), ("414", "LOC No."),
            ("415", "PAY TO"), ("416", "PROD/SERV LOC"), ("417", "PARTY"),
        ] {
            add(.init(ai, title, 13, 13, .numeric, .checkDigit))
        }
        add(.init("420", "SHIP TO POST", 1, 20, .alphanumeric))
        add(.init("421", "SHIP TO POST", 4, 12, .numericThenAlphanumeric(digits: 3), .countryCode))
        add(.init("422", "ORIGIN", 3, 3, .numeric, .countryCode))
        add(.init("7003", "EXPIRY TIME", 10, 10, .numeric))
        // National healthcare reimbursement numbers (GS1 General Specifications §3.9.15).
        for (ai, title) in [
            ("710", "NHRN PZN"), ("711", "NHRN CIP"), ("712", "NHRN CN"), ("713", "NHRN DRN"), ("714", "NHRN AIM"),
            ("715", "NHRN NDC"), ("716", "NHRN AIC"),
        ] {
            add(.init(ai, title, 1, 20, .alphanumeric))
        }
        add(.init("8003", "GRAI", 14, 30, .numericThenAlphanumeric(digits: 14), .checkDigitOnPrefix(digits: 14)))
        add(.init("8004", "GIAI", 1, 30, .alphanumeric))
        add(.init("8006", "ITIP", 18, 18, .numeric))
        add(.init("8010", "CPID", 1, 30, .alphanumeric))
        add(.init("8013", "GMN", 1, 25, .alphanumeric))
        add(.init("8017", "GSRN - PROVIDER", 18, 18, .numeric, .checkDigit))
        add(.init("8018", "GSRN - RECIPIENT", 18, 18, .numeric, .checkDigit))
        add(.init("8020", "REF No.", 1, 25, .alphanumeric))
        add(.init("90", "INTERNAL", 1, 30, .alphanumeric))
        for n in 91...99 { add(.init("\(n)", "INTERNAL", 1, 90, .alphanumeric)) }
        return t
    }()

    /// The GS1 mod-10 check digit of `digits` (GS1 General Specifications §7.9.1): weights 3 and 1
    /// alternating from the rightmost digit.
    public static func checkDigit(of digits: some Collection<UInt8>) -> UInt8 {
        var sum = 0
        for (offset, d) in digits.reversed().enumerated() { sum += Int(d - 48) * (offset % 2 == 0 ? 3 : 1) }
        return UInt8((10 - sum % 10) % 10) + 48
    }

    /// GS1 AI encodable character set 82 (GS1 General Specifications Figure 7.11-1).
    public static func isCharacterSet82(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x21, 0x22, 0x25...0x2F, 0x30...0x39, 0x3A...0x3F, 0x41...0x5A, 0x5F, 0x61...0x7A: return true
        default: return false
        }
    }
}
