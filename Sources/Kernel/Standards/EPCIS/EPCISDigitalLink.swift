import LedgerCore

/// EPC URN / EPC class / EPC pattern / GS1 Digital Link URI → the constrained canonical GS1 Digital
/// Link URI on `https://id.gs1.org/` (GS1 CBV 2.0 §8.9 step 5; GS1 EPC TDS 2.x §6 for the URN schemes),
/// or nil when the value is none of these.
extension EPCISCanonicalValue {
    static let host = "https://id.gs1.org/"

    static func digitalLink(_ u: String) -> String? {
        guard u.utf8.contains(46) else { return nil }  // "."
        if u.hasPrefix("urn:epc:") { return urnToDigitalLink(u).map { host + $0 } }
        guard u.hasPrefix("http://") || u.hasPrefix("https://") else { return nil }
        return normaliseDigitalLink(u)
    }

    // MARK: EPC URNs

    /// One component character of an EPC URI (TDS "X" production: a literal or an allowed %-escape).
    static func scanX(_ b: [UInt8], _ from: Int, _ to: Int, max: Int, allowed: (UInt8) -> Bool, escape: (UInt8, UInt8) -> Bool) -> Bool {
        var i = from
        var n = 0
        while i < to {
            if b[i] == 37 {
                guard i + 2 < to, escape(b[i + 1], b[i + 2]) else { return false }
                i += 3
            } else {
                guard allowed(b[i]) else { return false }
                i += 1
            }
            n += 1
        }
        return n >= 1 && n <= max
    }

    static func isHex(_ c: UInt8) -> Bool { isDigit(c) || (65...70).contains(c) || (97...102).contains(c) }

    /// The literal characters of an X string (`[!')(*+,.0-9:;=A-Za-z_-]`), as a table by byte.
    static let xAllowed: [Bool] = (0..<256).map { c in
        [33, 39, 41, 40, 42, 43, 44, 46, 58, 59, 61, 95, 45].contains(c) || (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c)
    }

    /// `[!')(*+,.0-9:;=A-Za-z_-]` and the escapes `%2[125-9A-Fa-f] %3x %4[1-9A-Fa-f] %5[0-9AaFf] %6[1-9A-Fa-f] %7[0-9Aa]`.
    static func isXString(_ b: [UInt8], _ from: Int, _ to: Int, max: Int) -> Bool {
        scanX(
            b, from, to, max: max,
            allowed: { c in xAllowed[Int(c)] },
            escape: { h, l in
                switch h {
                case 50: return [49, 50, 53, 54, 55, 56, 57].contains(l) || (65...70).contains(l) || (97...102).contains(l)
                case 51: return isHex(l)
                case 52, 54: return (49...57).contains(l) || (65...70).contains(l) || (97...102).contains(l)
                case 53: return isDigit(l) || [65, 97, 70, 102].contains(l)
                case 55: return isDigit(l) || l == 65 || l == 97
                default: return false
                }
            })
    }

    /// `[0-9A-Z-]` and the escapes `%2[3dfDF] %3[0-9] %4[1-9A-Fa-f] %5[0-9Aa]` (component/part reference).
    static func isCString(_ b: [UInt8], _ from: Int, _ to: Int, max: Int) -> Bool {
        scanX(
            b, from, to, max: max, allowed: { c in isDigit(c) || (65...90).contains(c) || c == 45 },
            escape: { h, l in
                switch h {
                case 50: return [51, 100, 102, 68, 70].contains(l)
                case 51: return isDigit(l)
                case 52: return (49...57).contains(l) || (65...70).contains(l) || (97...102).contains(l)
                case 53: return isDigit(l) || l == 65 || l == 97
                default: return false
                }
            })
    }

    /// Percent-encodes the characters an EPC URI allows but a Digital Link does not.
    static func pct(_ s: Substring) -> String {
        // The characters to escape are ASCII: a string without any is returned as it is.
        guard s.utf8.contains(where: { pctEscapes[Int($0)] != nil }) else { return String(s) }
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 8)
        for b in s.utf8 {
            if let escape = pctEscapes[Int(b)] { out.append(contentsOf: escape) } else { out.append(b) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `pct`'s escapes by byte.
    static let pctEscapes: [[UInt8]?] = (0..<256).map { c in
        switch UInt8(c) {
        case 33: return Array("%21".utf8)
        case 40: return Array("%28".utf8)
        case 41: return Array("%29".utf8)
        case 42: return Array("%2A".utf8)
        case 43: return Array("%2B".utf8)
        case 44: return Array("%2C".utf8)
        case 58: return Array("%3A".utf8)
        default: return nil
        }
    }

    static func withCheck(_ digits: String) -> String {
        digits + String(UnicodeScalar(GS1ApplicationIdentifier.checkDigit(of: Array(digits.utf8))))
    }

    /// `CP.REF` with a 6-12 digit company prefix and `total` digits together; returns (cp, ref, index after ref).
    static func prefixed(_ b: [UInt8], _ start: Int, total: Int) -> (cp: String, ref: String, end: Int)? {
        var i = start
        while i < b.count, isDigit(b[i]) { i += 1 }
        let cpLength = i - start
        guard (6...12).contains(cpLength), i < b.count, b[i] == 46 else { return nil }
        let refStart = i + 1
        let refEnd = refStart + total - cpLength
        guard refEnd <= b.count, b[refStart..<refEnd].allSatisfy(isDigit) else { return nil }
        return (String(decoding: b[start..<start + cpLength], as: UTF8.self), String(decoding: b[refStart..<refEnd], as: UTF8.self), refEnd)
    }

    static func gtin(_ cp: String, _ ref: String) -> String { withCheck(String(ref.prefix(1)) + cp + ref.dropFirst()) }

    /// The EPC URN schemes, each with its kind (the case of `urnToDigitalLink`).
    static let schemes: [([UInt8], Int)] = [
        ("urn:epc:id:sgtin:", 0), ("urn:epc:id:sscc:", 1), ("urn:epc:id:sgln:", 2), ("urn:epc:id:grai:", 3), ("urn:epc:id:giai:", 4),
        ("urn:epc:id:gsrn:", 5), ("urn:epc:id:gsrnp:", 6), ("urn:epc:id:gdti:", 7), ("urn:epc:id:cpi:", 8), ("urn:epc:id:sgcn:", 9),
        ("urn:epc:id:ginc:", 10), ("urn:epc:id:gsin:", 11), ("urn:epc:id:itip:", 12), ("urn:epc:id:upui:", 13), ("urn:epc:id:pgln:", 14),
        ("urn:epc:class:lgtin:", 15), ("urn:epc:idpat:sgtin:", 16), ("urn:epc:idpat:grai:", 17), ("urn:epc:idpat:gdti:", 18),
        ("urn:epc:idpat:sgcn:", 19), ("urn:epc:idpat:cpi:", 20), ("urn:epc:idpat:itip:", 21), ("urn:epc:idpat:upui:", 22),
    ].map { (Array($0.0.utf8), $0.1) }

    /// The length of the scheme `b` starts with and its kind.
    static func scheme(_ b: [UInt8]) -> (length: Int, kind: Int)? {
        for (scheme, kind) in schemes where b.count >= scheme.count && b[0..<scheme.count].elementsEqual(scheme) { return (scheme.count, kind) }
        return nil
    }

    /// What a document's EPCs repeat: the Digital Link prefix (`https://id.gs1.org/01/<GTIN>/21/`)
    /// of the last company prefix and item reference.
    final class SGTINMemo {
        let gtins = EPC.Memo()
        var prefix = ""
    }

    /// `digitalLink` of a plain SGTIN URN (`urn:epc:id:sgtin:CP.IR.Serial`, a 6-12 digit company
    /// prefix, 13 digits together, a serial of 1 to 20 literal X characters), read in place; nil for
    /// anything else, which the general path answers (EPCISTests compares both).
    static func plainSGTINLink(_ u: String, _ memo: SGTINMemo) -> String? {
        var u = u
        return u.withUTF8 { b -> String? in
            let p = EPC.sgtinScheme.count
            guard b.count <= p + 35, let dot = EPC.sgtinReference(b), dot - p >= 6 else { return nil }
            var escapes = false
            for c in b[(p + 15)...] {
                guard xAllowed[Int(c)] else { return nil }
                if pctEscapes[Int(c)] != nil { escapes = true }
            }
            let (gtin, changed) = memo.gtins.gtin(b, dot: dot)
            if changed { memo.prefix = host + "01/" + gtin + "/21/" }
            let serial = UnsafeBufferPointer(rebasing: b[(p + 15)...])
            guard escapes else { return memo.prefix + String(decoding: serial, as: UTF8.self) }
            var out = Array(memo.prefix.utf8)
            for c in serial {
                if let escape = pctEscapes[Int(c)] { out += escape } else { out.append(c) }
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    static func urnToDigitalLink(_ u: String) -> String? {
        let b = Array(u.utf8)
        func rest(_ from: Int) -> Substring { Substring(String(decoding: b[from...], as: UTF8.self)) }
        func dotThen(_ i: Int) -> Bool { i < b.count && b[i] == 46 }
        guard let (s, kind) = scheme(b) else { return nil }
        func allDigits(_ from: Int, _ to: Int) -> Bool { to > from && to <= b.count && b[from..<to].allSatisfy(isDigit) }
        func isStarEnd(_ i: Int) -> Bool { i + 2 == b.count && b[i] == 46 && b[i + 1] == 42 }
        switch kind {
        case 0, 15:  // sgtin, lgtin: CP.IR.X{1,20}
            guard let (cp, ref, end) = prefixed(b, s, total: 13), dotThen(end), isXString(b, end + 1, b.count, max: 20) else { return nil }
            return "01/\(gtin(cp, ref))/\(kind == 0 ? "21" : "10")/\(pct(rest(end + 1)))"
        case 1:  // sscc: CP.SR (17)
            guard let (cp, ref, end) = prefixed(b, s, total: 17), end == b.count else { return nil }
            return "00/" + withCheck(String(ref.prefix(1)) + cp + ref.dropFirst())
        case 2:  // sgln: CP.LR(12).X{1,20}
            guard let (cp, ref, end) = prefixed(b, s, total: 12), dotThen(end), isXString(b, end + 1, b.count, max: 20) else { return nil }
            let ext = rest(end + 1)
            return "414/" + withCheck(cp + ref) + (ext == "0" ? "" : "/254/" + pct(ext))
        case 3:  // grai: CP.AT(12).X{1,16}
            guard let (cp, ref, end) = prefixed(b, s, total: 12), dotThen(end), isXString(b, end + 1, b.count, max: 16) else { return nil }
            return "8003/" + withCheck("0" + cp + ref) + pct(rest(end + 1))
        case 4, 10:  // giai, ginc: CP.X{1,30-len(CP)}
            var i = s
            while i < b.count, isDigit(b[i]) { i += 1 }
            let cpLength = i - s
            guard (6...12).contains(cpLength), dotThen(i), isXString(b, i + 1, b.count, max: 30 - cpLength) else { return nil }
            return (kind == 4 ? "8004/" : "401/") + String(decoding: b[s..<i], as: UTF8.self) + pct(rest(i + 1))
        case 5, 6:  // gsrn, gsrnp: CP.SR (17)
            guard let (cp, ref, end) = prefixed(b, s, total: 17), end == b.count else { return nil }
            return (kind == 5 ? "8018/" : "8017/") + withCheck(cp + ref)
        case 7:  // gdti: CP.DT(12) then X{1,20} starting with the dot
            guard let (cp, ref, end) = prefixed(b, s, total: 12), isXString(b, end, b.count, max: 20) else { return nil }
            return "253/" + withCheck(cp + ref) + pct(rest(end + 1))
        case 8:  // cpi: CP.C{1,30-len(CP)}.\d{1,12}
            var i = s
            while i < b.count, isDigit(b[i]) { i += 1 }
            let cpLength = i - s
            guard (6...12).contains(cpLength), dotThen(i), let last = b.lastIndex(of: 46), last > i, allDigits(last + 1, b.count), b.count - last - 1 <= 12,
                isCString(b, i + 1, last, max: 30 - cpLength)
            else { return nil }
            return "8010/" + pct(Substring(String(decoding: b[s..<i] + b[(i + 1)..<last], as: UTF8.self))) + "/8011/" + rest(last + 1)
        case 9:  // sgcn: CP.CT(12).\d{1,12}
            guard let (cp, ref, end) = prefixed(b, s, total: 12), dotThen(end), allDigits(end + 1, b.count), b.count - end - 1 <= 12 else { return nil }
            return "255/" + withCheck(cp + ref) + rest(end + 1)
        case 11:  // gsin: CP.SR (16)
            guard let (cp, ref, end) = prefixed(b, s, total: 16), end == b.count else { return nil }
            return "402/" + withCheck(cp + ref)
        case 12:  // itip: CP.IR(13).pp.tt.X{1,20}
            guard let (cp, ref, end) = prefixed(b, s, total: 13), dotThen(end), allDigits(end + 1, end + 3), dotThen(end + 3),
                allDigits(end + 4, end + 6), dotThen(end + 6), isXString(b, end + 7, b.count, max: 20)
            else { return nil }
            let pieces = String(decoding: b[end + 1..<end + 3] + b[end + 4..<end + 6], as: UTF8.self)
            return "8006/" + gtin(cp, ref) + pieces + "/21/" + pct(rest(end + 7))
        case 13:  // upui: CP.IR(13).X{1,28}
            guard let (cp, ref, end) = prefixed(b, s, total: 13), dotThen(end), isXString(b, end + 1, b.count, max: 28) else { return nil }
            return "01/" + gtin(cp, ref) + "/235/" + pct(rest(end + 1))
        case 14:  // pgln: CP.PR (12)
            guard let (cp, ref, end) = prefixed(b, s, total: 12), end == b.count else { return nil }
            return "417/" + withCheck(cp + ref)
        case 16, 22:  // idpat sgtin / upui: CP.IR.*
            guard let (cp, ref, end) = prefixed(b, s, total: 13), isStarEnd(end) else { return nil }
            return "01/" + gtin(cp, ref)
        case 17, 18, 19:  // idpat grai / gdti / sgcn: CP.REF(12).*
            guard let (cp, ref, end) = prefixed(b, s, total: 12), isStarEnd(end) else { return nil }
            return kind == 17 ? "8003/" + withCheck("0" + cp + ref) : (kind == 18 ? "253/" : "255/") + withCheck(cp + ref)
        case 20:  // idpat cpi: CP.C{1,..}.*
            var i = s
            while i < b.count, isDigit(b[i]) { i += 1 }
            let cpLength = i - s
            guard (6...12).contains(cpLength), dotThen(i), b.count >= i + 3, isStarEnd(b.count - 2), isCString(b, i + 1, b.count - 2, max: 30 - cpLength)
            else { return nil }
            return "8010/" + pct(Substring(String(decoding: b[s..<i] + b[(i + 1)..<(b.count - 2)], as: UTF8.self)))
        default:  // 21 idpat itip: CP.IR(13).pp.tt.*
            guard let (cp, ref, end) = prefixed(b, s, total: 13), dotThen(end), allDigits(end + 1, end + 3), dotThen(end + 3),
                allDigits(end + 4, end + 6), isStarEnd(end + 6)
            else { return nil }
            return "8006/" + gtin(cp, ref) + String(decoding: b[end + 1..<end + 3] + b[end + 4..<end + 6], as: UTF8.self)
        }
    }

    // MARK: Digital Link URIs

    static let shortNames: [(String, String)] = [
        ("gtin", "01"), ("itip", "8006"), ("cpid", "8010"), ("gln", "414"), ("party", "417"), ("gsrnp", "8017"), ("gsrn", "8018"), ("gcn", "255"),
        ("sscc", "00"), ("gdti", "253"), ("ginc", "401"), ("gsin", "402"), ("grai", "8003"), ("giai", "8004"), ("cpv", "22"), ("lot", "10"),
        ("ser", "21"),
    ]
    static let candidateKeys = [
        "01", "gtin", "8006", "itip", "8010", "cpid", "414", "gln", "417", "party", "8017", "gsrnp", "8018", "gsrn", "255", "gcn", "00", "sscc",
        "253", "gdti", "401", "ginc", "402", "gsin", "8003", "grai", "8004", "giai",
    ]
    static let primaryAIs = ["00", "01", "253", "255", "401", "402", "414", "417", "8003", "8004", "8006", "8010", "8017", "8018"]
    static let canonicalHostAIs = ["01", "8006", "8010", "414", "417", "8017", "8018", "255", "00", "253", "401", "402", "8003", "8004"]

    static let candidateKeySet: Set<String> = Set(candidateKeys)

    /// Whether some `/KEY/` (KEY a primary AI or its short name) starting before `range.upperBound`
    /// is followed by four digits and at least one more character that is not `/`. One pass over the slashes.
    static func hasKeyValue(_ b: [UInt8], in range: Range<Int>) -> Bool {
        var i = range.lowerBound
        while i < range.upperBound {
            if b[i] == 47 {
                var j = i + 1
                while j < b.count, b[j] != 47, j - i <= 6 { j += 1 }
                // b[i+1..<j] is the segment; it must be a key, followed by '/', inside the range.
                if j < b.count, b[j] == 47, j + 1 <= range.upperBound, j - i - 1 >= 2,
                    candidateKeySet.contains(String(decoding: b[(i + 1)..<j], as: UTF8.self))
                {
                    let v = j + 1
                    if v + 5 <= b.count, b[v..<v + 4].allSatisfy(isDigit), b[v + 4] != 47 { return true }
                }
            }
            i += 1
        }
        return false
    }

    /// A Digital Link value character (`V` in the reference): `"'-.0-9;<=>?A-Z_a-z`.
    static func isV(_ c: UInt8) -> Bool {
        c == 34 || c == 39 || c == 45 || c == 46 || isDigit(c) || (59...63).contains(c) || (65...90).contains(c) || c == 95 || (97...122).contains(c)
    }

    static func normaliseDigitalLink(_ input: String) -> String? {
        var b = Array(input.utf8)
        // Candidate: somewhere before '?' or '#', a key segment with a value of 4+ digits and more.
        let schemeEnd = input.hasPrefix("https:") ? 6 : 5
        let pathEnd = b.firstIndex(where: { $0 == 63 || $0 == 35 }) ?? b.count
        guard hasKeyValue(b, in: schemeEnd..<pathEnd) else { return nil }
        if let q = b.firstIndex(of: 63) { b = Array(b[..<q]) }
        var u = String(decoding: b, as: UTF8.self)
        for (name, ai) in shortNames { u = u.replacing("/\(name)/", with: "/\(ai)/") }
        b = Array(u.utf8)
        let onCanonicalHost =
            u.hasPrefix(host)
            && canonicalHostAIs.contains { ai in
                let v = host.utf8.count + ai.utf8.count + 1
                return u.hasPrefix(host + ai + "/") && v + 5 <= b.count && b[v..<v + 4].allSatisfy(isDigit) && b[v + 4] != 47
            }
        if !onCanonicalHost {
            for ai in primaryAIs {
                if let r = u.firstRange(of: "/\(ai)/") {
                    u = "https://id.gs1.org" + u[r.lowerBound...]
                    break
                }
            }
        }
        // Pad GTIN-13/12/8 to 14 digits.
        func digitsAfter(_ prefix: String) -> Int {
            guard u.hasPrefix(prefix) else { return -1 }
            return u.utf8.dropFirst(prefix.utf8.count).prefix(while: isDigit).count
        }
        if digitsAfter(host + "01/") < 14 {
            let n = digitsAfter(host + "01/")
            if n >= 13 {
                u = u.replacing("/01/", with: "/01/0")
            } else if n >= 12 {
                u = u.replacing("/01/", with: "/01/00")
            } else if n >= 8 {
                u = u.replacing("/01/", with: "/01/000000")
            }
        }
        // Drop the consumer product variant (AI 22), then a lot next to a serial.
        for key in ["01", "8006"] {
            let length = key == "01" ? 14 : 18
            let keyPrefix = host + key + "/"
            guard digitsAfter(keyPrefix) >= length else { continue }
            let afterKey = keyPrefix.utf8.count + length
            let tail = Array(u.utf8.dropFirst(afterKey))
            if tail.starts(with: Array("/22/".utf8)) {
                let value = tail.dropFirst(4)
                if value.count <= 20, value.allSatisfy(isV) {
                    u = String(u.prefix(afterKey))
                } else if value.count <= 20, value.allSatisfy({ isV($0) || $0 == 47 }) {
                    u = String(u.prefix(afterKey)) + String(decoding: value.drop(while: { $0 != 47 }), as: UTF8.self)
                }
            }
            let tail2 = Array(u.utf8.dropFirst(afterKey))
            if tail2.starts(with: Array("/10/".utf8)) {
                let value = tail2.dropFirst(4)
                if let slash = value.firstIndex(of: 47) {
                    let lot = value[value.startIndex..<slash]
                    let next = value[slash...]
                    if lot.count <= 20, lot.allSatisfy(isV), next.starts(with: Array("/21/".utf8)), next.dropFirst(4).count <= 20,
                        next.dropFirst(4).allSatisfy(isV)
                    {
                        u = String(u.prefix(afterKey)) + String(decoding: next, as: UTF8.self)
                    }
                }
            }
        }
        return isValidCanonical(u) ? u : nil
    }

    /// The reference's list of valid constrained Digital Link URIs.
    static func isValidCanonical(_ u: String) -> Bool {
        guard u.hasPrefix(host) else { return false }
        let parts = u.dropFirst(host.utf8.count).split(separator: "/", omittingEmptySubsequences: false).map { Array($0.utf8) }
        func digits(_ p: [UInt8], _ n: Int) -> Bool { p.count == n && p.allSatisfy(isDigit) }
        func v(_ p: [UInt8], _ max: Int) -> Bool { p.count <= max && p.allSatisfy(isV) }
        func qualifier(_ allowed: [String: Int]) -> Bool {
            parts.count == 2 || (parts.count == 4 && allowed[String(decoding: parts[2], as: UTF8.self)].map { v(parts[3], $0) } == true)
        }
        guard parts.count >= 2 else { return false }
        let key = String(decoding: parts[0], as: UTF8.self)
        let value = parts[1]
        switch key {
        case "00": return parts.count == 2 && digits(value, 18)
        case "01": return digits(value, 14) && qualifier(["21": 20, "10": 20, "235": 28])
        case "253": return parts.count == 2 && value.count >= 13 && digits(Array(value.prefix(13)), 13) && v(Array(value.dropFirst(13)), 17)
        case "255": return parts.count == 2 && value.count >= 13 && value.count <= 25 && value.allSatisfy(isDigit)
        case "401": return parts.count == 2 && v(value, 30)
        case "402": return parts.count == 2 && digits(value, 17)
        case "414": return digits(value, 13) && qualifier(["254": 20])
        case "417": return parts.count == 2 && digits(value, 13)
        case "8003": return parts.count == 2 && value.count >= 14 && digits(Array(value.prefix(14)), 14) && v(Array(value.dropFirst(14)), 16)
        case "8004": return parts.count == 2 && v(value, 30)
        case "8006": return digits(value, 18) && qualifier(["21": 20, "10": 20])
        case "8010":
            let rest = Array(u.utf8.dropFirst(host.utf8.count + 5))
            let cpid: (UInt8) -> Bool = { c in c == 35 || c == 45 || c == 47 || isDigit(c) || (65...90).contains(c) }
            if rest.count <= 30, rest.allSatisfy(cpid) { return true }
            guard parts.count == 4, parts[2] == Array("8011".utf8) else { return false }
            return parts[1].count <= 30 && parts[1].allSatisfy(cpid) && parts[3].count <= 12 && parts[3].allSatisfy(isDigit)
        case "8017", "8018": return parts.count == 2 && digits(value, 18)
        default: return false
        }
    }
}
