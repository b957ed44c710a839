import LedgerCore

/// An identifier in an EPCIS event, from its EPC URN (GS1 EPC Tag Data Standard 2.x §6) or its
/// GS1 Digital Link URI form: a serialised trade item, a logistic unit, a class of trade items with a
/// lot, a location or party, or anything else (kept as written).
public enum EPC: Sendable, Hashable {
    case sgtin(gtin: String, serial: String)
    case sscc(String)
    case lgtin(gtin: String, lot: String)
    /// A GTIN without lot (`urn:epc:idpat:sgtin:CP.IR.*`).
    case gtinClass(gtin: String)
    /// A GLN (sgln, pgln; AI 414/417), with its extension when there is one.
    case gln(String, extension: String?)
    case other(String)

    /// What the EPCs of one document repeat: the GTIN of the last company prefix and item reference
    /// read (a document's packs are mostly of one product).
    public final class Memo {
        private var reference: [UInt8] = []
        private(set) var gtin = ""
        public init() {}

        /// The GTIN-14 of a plain SGTIN URN `b` (see `sgtinReference`, which gave `dot`); true when
        /// it differs from the previous call's.
        func gtin(_ b: UnsafeBufferPointer<UInt8>, dot: Int) -> (gtin: String, changed: Bool) {
            let p = EPC.sgtinScheme.count
            let reference = UnsafeBufferPointer(rebasing: b[p..<(p + 14)])
            guard !self.reference.elementsEqual(reference) else { return (gtin, false) }
            // The item reference's first digit (indicator), the company prefix, the rest of the item
            // reference, the check digit.
            var digits: [UInt8] = [b[dot + 1]]
            digits += b[p..<dot]
            digits += b[(dot + 2)..<(p + 14)]
            digits.append(GS1ApplicationIdentifier.checkDigit(of: digits))
            self.reference = Array(reference)
            gtin = String(decoding: digits, as: UTF8.self)
            return (gtin, true)
        }
    }

    /// Parses a URN or Digital Link URI; a malformed GS1 URN is an error, an unknown scheme is `.other`.
    /// `memo`: shared by the EPCs of one document.
    public static func parse(_ text: String, memo: Memo? = nil) throws(LedgerError) -> EPC {
        if let memo, let sgtin = plainSGTIN(text, memo) { return sgtin }
        if text.utf8.starts(with: "urn:epc:".utf8) { return try parseURN(text) }
        if text.utf8.starts(with: "https://".utf8) || text.utf8.starts(with: "http://".utf8) {
            guard let scan = try? GS1ElementString.parse(text, today: GS1Date(year: 2000, month: 1, day: 1)) else { return .other(text) }
            if let gtin = scan.gtin, let serial = scan.serial { return .sgtin(gtin: gtin, serial: serial) }
            if let gtin = scan.gtin, let lot = scan.lot { return .lgtin(gtin: gtin, lot: lot) }
            if let gtin = scan.gtin { return .gtinClass(gtin: gtin) }
            if let sscc = scan["00"] { return .sscc(sscc) }
            if let gln = scan["414"] ?? scan["417"] { return .gln(gln, extension: scan["254"]) }
            return .other(text)
        }
        return .other(text)
    }

    static let sgtinScheme = Array("urn:epc:id:sgtin:".utf8)

    /// `urn:epc:id:sgtin:CP.IR.` and at least one byte more, the company prefix and item reference
    /// 13 digits together, neither empty: the index of the dot between them, or nil.
    static func sgtinReference(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
        let p = sgtinScheme.count
        guard b.count > p + 15, b[p + 14] == 46 else { return nil }
        for i in 0..<p where b[i] != sgtinScheme[i] { return nil }
        var dot = -1
        for i in p..<(p + 14) {
            if b[i] == 46 {
                guard dot < 0 else { return nil }
                dot = i
            } else if b[i] &- 48 >= 10 {
                return nil
            }
        }
        return dot > p && dot < p + 13 ? dot : nil
    }

    /// The common case read in place: `urn:epc:id:sgtin:CP.IR.Serial`, 13 digits, a serial of 1 to
    /// 20 characters of set 82 without `%`, `.` or `:`. Nil for anything else, which `parseURN`
    /// answers (with the same result for these: EPCISTests compares both).
    static func plainSGTIN(_ text: String, _ memo: Memo) -> EPC? {
        var text = text
        return text.withUTF8 { b -> EPC? in
            let p = sgtinScheme.count
            guard b.count <= p + 35, let dot = sgtinReference(b) else { return nil }
            for c in b[(p + 15)...] {
                guard c != 37, c != 46, c != 58, GS1ApplicationIdentifier.isCharacterSet82(c) else { return nil }
            }
            return .sgtin(gtin: memo.gtin(b, dot: dot).gtin, serial: String(decoding: UnsafeBufferPointer(rebasing: b[(p + 15)...]), as: UTF8.self))
        }
    }

    static func parseURN(_ text: String) throws(LedgerError) -> EPC {
        // Split in the UTF-8 bytes (':' and '.' are ASCII): a split by Character breaks graphemes for nothing.
        func split(_ s: String, _ separator: UInt8) -> [String] {
            s.utf8.split(separator: separator, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        }
        let parts = split(text, UInt8(ascii: ":"))
        guard parts.count == 5 else { return .other(text) }
        let fields = split(parts[4], UInt8(ascii: "."))
        func bad(_ why: String) -> LedgerError { LedgerError("bad_epc", "\(text): \(why)") }
        func digits(_ s: String) -> Bool { !s.isEmpty && s.utf8.allSatisfy { (48...57).contains($0) } }
        func withCheckDigit(_ body: String) -> String {
            body + String(UnicodeScalar(GS1ApplicationIdentifier.checkDigit(of: Array(body.utf8))))
        }
        func gtin(_ companyPrefix: String, _ itemReference: String) throws(LedgerError) -> String {
            guard digits(companyPrefix), digits(itemReference), companyPrefix.utf8.count + itemReference.utf8.count == 13 else {
                throw bad("company prefix and item reference must be 13 digits together")
            }
            return withCheckDigit(String(decoding: itemReference.utf8.prefix(1), as: UTF8.self) + companyPrefix + String(decoding: itemReference.utf8.dropFirst(), as: UTF8.self))
        }
        func decoded(_ s: String) throws(LedgerError) -> String {
            let value = try GS1ElementString.percentDecoded(s)
            guard !value.isEmpty, value.utf8.count <= 20, value.utf8.allSatisfy(GS1ApplicationIdentifier.isCharacterSet82) else {
                throw bad("'\(value)' must be 1 to 20 characters of GS1 character set 82")
            }
            return value
        }
        switch (parts[2], parts[3]) {
        case ("id", "sgtin"):
            guard fields.count == 3 else { throw bad("sgtin is CompanyPrefix.ItemReference.Serial") }
            return .sgtin(gtin: try gtin(fields[0], fields[1]), serial: try decoded(fields[2]))
        case ("class", "lgtin"):
            guard fields.count == 3 else { throw bad("lgtin is CompanyPrefix.ItemReference.Lot") }
            return .lgtin(gtin: try gtin(fields[0], fields[1]), lot: try decoded(fields[2]))
        case ("idpat", "sgtin"):
            guard fields.count == 3, fields[2] == "*" else { throw bad("sgtin pattern is CompanyPrefix.ItemReference.*") }
            return .gtinClass(gtin: try gtin(fields[0], fields[1]))
        case ("id", "sscc"):
            guard fields.count == 2, digits(fields[0]), digits(fields[1]), fields[0].utf8.count + fields[1].utf8.count == 17 else {
                throw bad("sscc is CompanyPrefix.SerialReference, 17 digits together")
            }
            return .sscc(withCheckDigit(String(decoding: fields[1].utf8.prefix(1), as: UTF8.self) + fields[0] + String(decoding: fields[1].utf8.dropFirst(), as: UTF8.self)))
        case ("id", "sgln"), ("id", "pgln"):
            guard fields.count >= 2, digits(fields[0]), fields[0].utf8.count + fields[1].utf8.count == 12, fields[1].isEmpty || digits(fields[1]) else {
                throw bad("\(parts[3]) is CompanyPrefix.LocationReference, 12 digits together")
            }
            let ext = fields.count > 2 && fields[2] != "0" ? try decoded(fields[2]) : nil
            return .gln(withCheckDigit(fields[0] + fields[1]), extension: ext)
        default:
            return .other(text)
        }
    }
}
