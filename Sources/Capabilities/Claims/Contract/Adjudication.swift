import LedgerCore

/// One line of a FHIR R4 Claim as adjudication reads it (docs/claims.md): the service (system, code),
/// the date of service, the submitted amount in minor units.
public struct ClaimLine: Sendable, Equatable {
    public let sequence: Int64
    public let system: String
    public let code: String
    public let date: CivilDate
    public let submitted: Int64
}

/// A FHIR R4 Claim as adjudication reads it.
public struct ClaimInput: Sendable, Equatable {
    public let id: String
    public let patient: String
    public let provider: String
    public let created: CivilDate?
    public let preAuthRefs: [String]
    public let lines: [ClaimLine]

    /// Reads a Claim; `path` is where it sits in its file (`""`, `[2]`, `entry[1].resource`), so that
    /// an error names the exact path (`item[0].net.value: …`), with the code `bad_claim`.
    public init(json: JSONValue, path: String, minorDigits: Int, currency: String) throws(LedgerError) {
        let c = try PathReader(json, path: path, code: "bad_claim")
        guard c.value["resourceType"]?.stringValue == "Claim" else { throw c.error("resourceType", "must be Claim") }
        id = try c.string("id", pattern: "a FHIR id")
        // The patient by her did (`identifier.value`), or by the reference the FHIR facade writes (`Patient/<multibase>`).
        let subject = try c.object("patient")
        if subject.value["identifier"] == nil, let reference = subject.value["reference"]?.stringValue, reference.hasPrefix("Patient/"),
            let did = try? PublicKey(did: "did:key:" + reference.dropFirst("Patient/".count)).did
        {
            patient = did
        } else {
            patient = try subject.object("identifier").string("value", pattern: "the patient's did:key") { (try? PublicKey(did: $0)) != nil }
        }
        provider = try c.object("provider").object("identifier").string("value", pattern: "the provider's identifier")
        created = try c.optionalString("created").map { (text) throws(LedgerError) -> CivilDate in
            guard let d = CivilDate(dateOrDateTime: text) else { throw c.error("created", "must be a FHIR dateTime") }
            return d
        }
        var refs: [String] = []
        if let insurance = c.value["insurance"]?.arrayValue, let first = insurance.first {
            let i = try PathReader(first, path: c.at("insurance[0]"), code: "bad_claim")
            if let list = i.value["preAuthRef"], list != .null {
                guard let items = list.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
                    throw i.error("preAuthRef", "must be an array of strings (R4)")
                }
                refs = items.compactMap(\.stringValue).filter { !$0.isEmpty }
            }
        }
        preAuthRefs = refs
        let billableStart: CivilDate? = try {
            () throws(LedgerError) -> CivilDate? in
            guard let period = c.value["billablePeriod"], period != .null else { return nil }
            let p = try PathReader(period, path: c.at("billablePeriod"), code: "bad_claim")
            guard let text = try p.optionalString("start") else { return nil }
            guard let d = CivilDate(dateOrDateTime: text) else { throw p.error("start", "must be a FHIR date or dateTime") }
            return d
        }()
        var lines: [ClaimLine] = []
        let items = try c.array("item")
        guard !items.isEmpty else { throw c.error("item", "a claim has at least one item") }
        for (index, item) in items.enumerated() {
            let sequence = try item.optionalInteger("sequence", in: 1...999_999, meaning: "a positive integer") ?? Int64(index + 1)
            let codings = try item.object("productOrService").array("coding")
            guard let coding = codings.first else { throw item.error("productOrService.coding", "names the service: at least one coding") }
            let system = try coding.string("system", pattern: "a code system URI")
            let code = try coding.string("code", pattern: "a code")
            let date: CivilDate
            if let text = try item.optionalString("servicedDate") {
                guard let d = CivilDate(text) else { throw item.error("servicedDate", "must be a date YYYY-MM-DD") }
                date = d
            } else if let start = billableStart {
                date = start
            } else {
                throw item.error("servicedDate", "is required when the claim has no billablePeriod.start")
            }
            let net = try item.object("net")
            if let given = try net.optionalString("currency"), given != currency {
                throw net.error("currency", "is \(given); the policy pays in \(currency)")
            }
            let submitted = try Money.minorUnits(try net.required("value"), digits: minorDigits, at: net.at("value"))
            lines.append(ClaimLine(sequence: sequence, system: system, code: code, date: date, submitted: submitted))
        }
        if let repeated = Dictionary(grouping: lines, by: \.sequence).first(where: { $0.value.count > 1 })?.key {
            throw c.error("item", "sequence \(repeated) is used twice")
        }
        self.lines = lines
    }

    /// The Claims of a file: one Claim, a JSON array of Claims, or a Bundle of them (each with its path).
    public static func claims(in json: JSONValue, minorDigits: Int, currency: String) throws(LedgerError) -> [ClaimInput] {
        var out: [ClaimInput] = []
        if let list = json.arrayValue {
            for (i, c) in list.enumerated() { out.append(try ClaimInput(json: c, path: "[\(i)]", minorDigits: minorDigits, currency: currency)) }
        } else if json["resourceType"]?.stringValue == "Bundle" {
            for (i, entry) in (json["entry"]?.arrayValue ?? []).enumerated() where entry["resource"]?["resourceType"]?.stringValue == "Claim" {
                out.append(try ClaimInput(json: entry["resource"]!, path: "entry[\(i)].resource", minorDigits: minorDigits, currency: currency))
            }
        } else {
            out.append(try ClaimInput(json: json, path: "", minorDigits: minorDigits, currency: currency))
        }
        guard !out.isEmpty else { throw LedgerError("bad_claim", "the document holds no Claim") }
        var ids = Set<String>()
        for c in out where !ids.insert(c.id).inserted { throw LedgerError("bad_claim", "Claim id \(c.id) appears twice") }
        return out
    }
}

/// Money in a policy's currency, read exactly (never through floating-point arithmetic).
public enum Money {
    /// A JSON number in major units (150, 150.5, 150.25) as integer minor units; more decimals than the
    /// currency has, a negative amount or one past `ClaimsPolicy.maxAmount` is refused. A decimal's digits
    /// are read from its shortest round-trip form, which gives back the digits written (up to 15
    /// significant digits).
    public static func minorUnits(_ value: JSONValue, digits: Int, at path: String) throws(LedgerError) -> Int64 {
        let text: String
        switch value {
        case .int(let i): text = String(i)
        case .double(let d) where d.isFinite: text = d.description
        default: throw LedgerError("bad_claim", "\(path): must be a number (the amount in the currency's major unit)")
        }
        guard !text.hasPrefix("-") else { throw LedgerError("bad_claim", "\(path): must not be negative") }
        // Shortest form may use an exponent (1e-05, 1e+16).
        var mantissa = Substring(text), exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            guard let x = Int(text[text.index(after: e)...].replacingOccurrences(of: "+", with: "")) else {
                throw LedgerError("bad_claim", "\(path): \(text) is not a decimal")
            }
            exponent = x
        }
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        var digitsText = String(parts[0])
        var fraction = parts.count > 1 ? String(parts[1]) : ""
        while fraction.hasSuffix("0") { fraction.removeLast() }
        digitsText += fraction
        var scale = fraction.count - exponent  // value = digitsText × 10^-scale
        while scale < 0 {
            digitsText += "0"
            scale += 1
        }
        guard scale <= digits else {
            throw LedgerError("bad_claim", "\(path): \(text) has more decimals than the currency's \(digits)")
        }
        digitsText += String(repeating: "0", count: digits - scale)
        guard digitsText.count <= 16, let minor = Int64(digitsText), minor <= ClaimsPolicy.maxAmount else {
            throw LedgerError("bad_claim", "\(path): \(text) is more than this release pays on one line")
        }
        return minor
    }
}

/// The adjudication of one line: the base rule's amounts, after the out-of-pocket cap, and the X12
/// CARC codes of every reduction (1 deductible, 2 coinsurance, 3 copay, 45 over the fee schedule) or
/// its one denial code (18 duplicate, 26 before coverage, 27 after coverage ended, 29 timely filing,
/// 31 not a member, 96 non-covered, 197 no prior authorisation).
public struct LineAdjudication: Sendable, Equatable {
    public let sequence: Int64
    public let submitted: Int64
    public let eligible: Int64
    public let deductible: Int64
    public let copay: Int64
    public let coinsurance: Int64
    public let benefit: Int64
    public let reasons: [Int]

    public init(sequence: Int64, submitted: Int64, eligible: Int64, deductible: Int64, copay: Int64, coinsurance: Int64, benefit: Int64, reasons: [Int]) {
        self.sequence = sequence
        self.submitted = submitted
        self.eligible = eligible
        self.deductible = deductible
        self.copay = copay
        self.coinsurance = coinsurance
        self.benefit = benefit
        self.reasons = reasons
    }

    public var denied: Bool { eligible == 0 && reasons.count == 1 && Adjudication.denials.contains(reasons[0]) }

    public var json: JSONValue {
        .object([
            "sequence": .int(sequence), "submitted": .int(submitted), "eligible": .int(eligible), "deductible": .int(deductible),
            "copay": .int(copay), "coinsurance": .int(coinsurance), "benefit": .int(benefit), "reasons": .array(reasons.map { .int(Int64($0)) }),
        ])
    }
}

/// The adjudication of one claim: its lines in the claim's own order.
public struct ClaimAdjudication: Sendable, Equatable {
    public let id: String
    public let patient: String
    public let items: [LineAdjudication]

    /// FHIR's ClaimResponse.outcome (RemittanceOutcome): `complete` when no line is denied, `partial`
    /// when some are, `error` when every line is.
    public var outcome: String {
        let denied = items.filter(\.denied).count
        return denied == 0 ? "complete" : denied == items.count ? "error" : "partial"
    }

    public var benefit: Int64 { items.reduce(0) { $0 + $1.benefit } }

    public var json: JSONValue {
        .object(["id": .string(id), "patient": .string(patient), "outcome": .string(outcome), "benefit": .int(benefit), "items": .array(items.map(\.json))])
    }
}

/// The base rule (docs/claims.md), deterministic and in integers only: lines in date-of-service order
/// (ties: claim order, then item sequence), checks in order — membership (31), coverage period (26,
/// 27), timely filing (29), covered service (96), prior authorisation (197), duplicate (18) — then the
/// amounts with the member's deductible and out-of-pocket accumulators for the plan year.
public enum Adjudication {
    public static let denials: Set<Int> = [18, 26, 27, 29, 31, 96, 197]

    /// The member's running totals for the plan year.
    public struct Accumulator: Sendable, Equatable {
        public var deductible: Int64 = 0
        public var outOfPocket: Int64 = 0
        public init() {}
    }

    /// Adjudicates `claims` under `policy`, accumulators from `start` (zero offline). Offline, evidence
    /// counts as present except prior authorisation, which a claim shows with `insurance[0].preAuthRef`.
    public static func run(_ claims: [ClaimInput], policy: ClaimsPolicy, start: [String: Accumulator] = [:]) -> [ClaimAdjudication] {
        var accumulators = start
        return run(claims, policy: { _ in policy }, accumulators: &accumulators)
    }

    /// The same, with the policy in force for each line (`policy(line)`; nil: no version in force that
    /// day, denied 26 or 27 by the plan year `planYear`), the accumulators carried in and out, and
    /// `earlier(claim, line)` telling a line approved before, outside these claims (a duplicate, 18).
    public static func run(
        _ claims: [ClaimInput], policy: (ClaimLine) -> ClaimsPolicy?, planYear: (start: CivilDate, end: CivilDate)? = nil,
        accumulators: inout [String: Accumulator], earlier: (ClaimInput, ClaimLine) -> Bool = { _, _ in false }
    ) -> [ClaimAdjudication] {
        var seen = Set<DuplicateKey>()
        var results: [[Int64: LineAdjudication]] = Array(repeating: [:], count: claims.count)
        let order = claims.indices.flatMap { c in claims[c].lines.map { (claim: c, line: $0) } }
            .sorted { a, b in
                if a.line.date != b.line.date { return a.line.date < b.line.date }
                if a.claim != b.claim { return a.claim < b.claim }
                return a.line.sequence < b.line.sequence
            }
        for (c, line) in order {
            let claim = claims[c]
            func denied(_ code: Int) -> LineAdjudication {
                LineAdjudication(sequence: line.sequence, submitted: line.submitted, eligible: 0, deductible: 0, copay: 0, coinsurance: 0, benefit: 0, reasons: [code])
            }
            guard let policy = policy(line) else {
                results[c][line.sequence] = denied(planYear.map { line.date > $0.end } == true ? 27 : 26)
                continue
            }
            let periods = policy.periods(of: claim.patient)
            guard !periods.isEmpty else {
                results[c][line.sequence] = denied(31)
                continue
            }
            guard periods.contains(where: { $0.from <= line.date && line.date <= $0.to }) else {
                results[c][line.sequence] = denied(line.date < periods.map(\.from).min()! ? 26 : 27)
                continue
            }
            if let days = policy.timelyFilingDays, let created = claim.created, created.day - line.date.day > days {
                results[c][line.sequence] = denied(29)
                continue
            }
            guard let service = policy.service(system: line.system, code: line.code) else {
                results[c][line.sequence] = denied(96)
                continue
            }
            if service.priorAuth && claim.preAuthRefs.isEmpty {
                results[c][line.sequence] = denied(197)
                continue
            }
            guard !earlier(claim, line), seen.insert(DuplicateKey(patient: claim.patient, provider: claim.provider, system: line.system, code: line.code, date: line.date)).inserted else {
                results[c][line.sequence] = denied(18)
                continue
            }
            var accumulator = accumulators[claim.patient] ?? Accumulator()
            let result = amounts(line: line, fee: service.allowed, serviceCopay: service.copay, policy: policy, accumulator: &accumulator)
            accumulators[claim.patient] = accumulator
            results[c][line.sequence] = result
        }
        return claims.indices.map { c in
            ClaimAdjudication(id: claims[c].id, patient: claims[c].patient, items: claims[c].lines.map { results[c][$0.sequence]! })
        }
    }

    /// The base rule of one approved line, advancing the member's accumulators.
    public static func amounts(line: ClaimLine, fee: Int64, serviceCopay: Int64, policy: ClaimsPolicy, accumulator: inout Accumulator) -> LineAdjudication {
        let allowed = min(line.submitted, fee)
        var deductible = min(allowed, max(0, policy.deductible - accumulator.deductible))
        var copay = min(allowed - deductible, serviceCopay)
        var coinsurance = ((allowed - deductible - copay) * policy.coinsuranceBp + 5000) / 10000
        // The member's share is capped at what is left of the out-of-pocket maximum: the cap takes
        // from coinsurance first, then copay, then deductible.
        var excess = deductible + copay + coinsurance - max(0, policy.outOfPocketMax - accumulator.outOfPocket)
        if excess > 0 {
            let fromCoinsurance = min(excess, coinsurance)
            coinsurance -= fromCoinsurance
            excess -= fromCoinsurance
            let fromCopay = min(excess, copay)
            copay -= fromCopay
            excess -= fromCopay
            deductible -= min(excess, deductible)
        }
        let share = deductible + copay + coinsurance
        accumulator.deductible += deductible
        accumulator.outOfPocket += share
        var reasons: [Int] = []
        if deductible > 0 { reasons.append(1) }
        if coinsurance > 0 { reasons.append(2) }
        if copay > 0 { reasons.append(3) }
        if line.submitted > fee { reasons.append(45) }
        return LineAdjudication(
            sequence: line.sequence, submitted: line.submitted, eligible: allowed, deductible: deductible, copay: copay, coinsurance: coinsurance,
            benefit: allowed - share, reasons: reasons)
    }

    struct DuplicateKey: Hashable {
        let patient: String
        let provider: String
        let system: String
        let code: String
        let date: CivilDate
    }
}
