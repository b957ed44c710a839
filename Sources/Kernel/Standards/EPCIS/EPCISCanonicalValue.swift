import LedgerCore

/// Value canonicalisation of the CBV 2.0 event hash algorithm (GS1 CBV 2.0 §8.9, as the reference
/// implementation github.com/RalphTro/epcis-event-hash-generator does it): old CBV URNs to web URIs,
/// numbers to their shortest form, times to UTC with milliseconds, and every GS1 identifier (EPC URN,
/// EPC class or pattern, GS1 Digital Link URI on any host) to the constrained canonical Digital Link URI.
enum EPCISCanonicalValue {
    static let cbv = "https://ref.gs1.org/cbv/"
    static let oldCBV: [(String, String)] = [
        ("urn:epcglobal:cbv:bizstep:", cbv + "BizStep-"), ("urn:epcglobal:cbv:disp:", cbv + "Disp-"), ("urn:epcglobal:cbv:btt:", cbv + "BTT-"),
        ("urn:epcglobal:cbv:sdt:", cbv + "SDT-"), ("urn:epcglobal:cbv:er:", cbv + "ER-"),
    ]

    static func canonical(_ value: String) -> String {
        // Most values (names, codes, plain text) need nothing: no number can start them, and without
        // '.' and ':' they are neither a URI, nor an EPC, nor an old CBV URN.
        var hasDot = false, hasColon = false
        for b in value.utf8 {
            if b == 46 { hasDot = true } else if b == 58 { hasColon = true }
            if hasDot && hasColon { break }
        }
        if !hasDot && !hasColon, let first = value.utf8.first, !isDigit(first), first != 43, first != 45 { return value }
        var t = value
        if t.containsUTF8("urn:epcglobal:cbv:") { for (old, new) in oldCBV { t = t.replacing(old, with: new) } }
        t = number(t)
        return digitalLink(t) ?? t
    }

    // MARK: Numbers

    /// `^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$` → the shortest form (integers without a fraction).
    static func number(_ t: String) -> String {
        let b = Array(t.utf8)
        var i = 0
        if i < b.count, b[i] == 43 || b[i] == 45 { i += 1 }
        let intStart = i
        while i < b.count, isDigit(b[i]) { i += 1 }
        let intDigits = i - intStart
        var fracDigits = 0
        if i < b.count, b[i] == 46 {
            i += 1
            let s = i
            while i < b.count, isDigit(b[i]) { i += 1 }
            fracDigits = i - s
        }
        guard intDigits > 0 || fracDigits > 0 else { return t }
        if i < b.count, b[i] == 101 || b[i] == 69 {
            i += 1
            if i < b.count, b[i] == 43 || b[i] == 45 { i += 1 }
            let s = i
            while i < b.count, isDigit(b[i]) { i += 1 }
            guard i > s else { return t }
        }
        guard i == b.count, let x = Double(t), x.isFinite else { return t }
        if x == x.rounded(.towardZero) { return integerString(x) }
        return pythonRepr(x)
    }

    /// The exact decimal of an integral double (Python's `str(int(x))`).
    static func integerString(_ x: Double) -> String {
        if abs(x) < 9.0e18 { return String(Int64(x)) }
        // x = significand * 2^exponent exactly; multiply out in base 1e9.
        // Base-1e9 limbs (least significant first) of the 53-bit significand, then doubled up to the exponent.
        var significand = UInt64(x.significandBitPattern | (1 << 52))
        var limbs: [UInt64] = []
        while significand > 0 {
            limbs.append(significand % 1_000_000_000)
            significand /= 1_000_000_000
        }
        var shift = Int(x.exponent) - 52
        while shift > 0 {
            let step = min(shift, 30)
            var carry: UInt64 = 0
            for k in limbs.indices {
                let v = (limbs[k] << UInt64(step)) + carry
                limbs[k] = v % 1_000_000_000
                carry = v / 1_000_000_000
            }
            while carry > 0 {
                limbs.append(carry % 1_000_000_000)
                carry /= 1_000_000_000
            }
            shift -= step
        }
        var s = String(limbs.last!)
        for limb in limbs.dropLast().reversed() {
            let part = String(limb)
            s += String(repeating: "0", count: 9 - part.count) + part
        }
        return (x < 0 ? "-" : "") + s
    }

    /// Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 or from 1e16.
    static func pythonRepr(_ x: Double) -> String {
        let s = "\(x)"
        // Swift writes 1e-05 as "1e-05" like Python, and uses the same thresholds for plain notation.
        return s
    }

    // MARK: Times

    /// `YYYY-MM-DDThh:mm[:ss[.f+]][Z|±hh[:mm]]` → UTC `YYYY-MM-DDThh:mm:ss.mmmZ`, the third decimal
    /// rounded up when the fourth is 5-9; anything else unchanged.
    static func time(_ t: String) -> String {
        let b = Array(t.utf8)
        func num(_ r: Range<Int>) -> Int? {
            guard r.upperBound <= b.count else { return nil }
            var n = 0
            for i in r {
                guard isDigit(b[i]) else { return nil }
                n = n * 10 + Int(b[i] - 48)
            }
            return n
        }
        guard b.count >= 16, let year = num(0..<4), b[4] == 45, let month = num(5..<7), b[7] == 45, let day = num(8..<10),
            b[10] == 84 || b[10] == 116 || b[10] == 32, let hour = num(11..<13), b[13] == 58, let minute = num(14..<16)
        else { return t }
        var i = 16
        var second = 0
        var millis = 0
        if i < b.count, b[i] == 58 {
            guard let s = num(i + 1..<i + 3) else { return t }
            second = s
            i += 3
            if i < b.count, b[i] == 46 {
                i += 1
                let start = i
                while i < b.count, isDigit(b[i]) { i += 1 }
                guard i > start else { return t }
                let digits = Array(b[start..<i])
                for k in 0..<3 { millis = millis * 10 + (k < digits.count ? Int(digits[k] - 48) : 0) }
                if digits.count > 3, digits[3] >= 53 { millis += 1 }
            }
        }
        while i < b.count, b[i] == 32 || b[i] == 9 { i += 1 }
        var offset = 0
        if i < b.count {
            if b[i] == 90 || b[i] == 122 {
                i += 1
            } else if b[i] == 43 || b[i] == 45 {
                let sign = b[i] == 45 ? -1 : 1
                guard let h = num(i + 1..<i + 3) else { return t }
                i += 3
                var m = 0
                if i < b.count {
                    if b[i] == 58 { i += 1 }
                    guard let mm = num(i..<i + 2) else { return t }
                    m = mm
                    i += 2
                }
                offset = sign * (h * 60 + m)
            } else {
                return t
            }
        }
        guard i == b.count, (1...12).contains(month), (1...GS1Date.daysIn(month: month, year: year)).contains(day), hour < 24, minute < 60,
            second < 60
        else { return t }
        let epochMillis =
            (Int64(GS1Date(year: year, month: month, day: day).daysSinceEpoch) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offset * 60))
            * 1000 + Int64(millis)
        return format(millis: epochMillis)
    }

    static func format(millis: Int64) -> String {
        let days = Int(millis >= 0 ? millis / 86_400_000 : (millis - 86_399_999) / 86_400_000)
        let rest = Int(millis - Int64(days) * 86_400_000)
        let date = GS1Date(daysSinceEpoch: days)
        guard (0...9999).contains(date.year) else {
            func pad(_ n: Int, _ w: Int) -> String {
                let s = String(n)
                return String(repeating: "0", count: max(0, w - s.count)) + s
            }
            return "\(date.iso)T\(pad(rest / 3_600_000, 2)):\(pad(rest / 60_000 % 60, 2)):\(pad(rest / 1000 % 60, 2)).\(pad(rest % 1000, 3))Z"
        }
        // YYYY-MM-DDThh:mm:ss.mmmZ written digit by digit (the common case: a four-digit year).
        return String(unsafeUninitializedCapacity: 24) { b in
            func put(_ n: Int, _ width: Int, at start: Int) {
                var n = n
                for i in stride(from: start + width - 1, through: start, by: -1) {
                    b[i] = UInt8(48 + n % 10)
                    n /= 10
                }
            }
            put(date.year, 4, at: 0)
            b[4] = 45
            put(date.month, 2, at: 5)
            b[7] = 45
            put(date.day, 2, at: 8)
            b[10] = 84
            put(rest / 3_600_000, 2, at: 11)
            b[13] = 58
            put(rest / 60_000 % 60, 2, at: 14)
            b[16] = 58
            put(rest / 1000 % 60, 2, at: 17)
            b[19] = 46
            put(rest % 1000, 3, at: 20)
            b[23] = 90
            return 24
        }
    }

    static func isDigit(_ b: UInt8) -> Bool { (48...57).contains(b) }
}
