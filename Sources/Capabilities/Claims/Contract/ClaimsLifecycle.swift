import ContractKit
import LedgerCore

/// What the claims contract reads of other capabilities' state, declared here and supplied by the
/// composition (capabilities never import each other): the sealed FHIR Claim record and the patient's
/// consent for payment.
public protocol ClaimsEvidence: Sendable {
    /// The record `id`: its patient, resource type, custodian and the authors of its versions; nil if unknown.
    func record(_ id: String, state: (String) throws(LedgerError) -> JSONValue?) throws(LedgerError) -> (patient: String, resourceType: String, custodian: String, authors: [String])?
    /// Whether the patient's consent lets `insurer` (or its groups) see her `resourceType` for purpose `payment` at `time`.
    func permitsPayment(patient: String, insurer: String, resourceType: String, time: Int64, state: (String) throws(LedgerError) -> JSONValue?) throws(LedgerError) -> Bool
}

/// A claim on the ledger: no health data — the sealed FHIR Claim is a record in the vault; here are
/// its parties, its lines' dates of service and submitted amounts, its status and the adjudication.
public enum ClaimState {
    public static func key(_ id: String) -> String { "claims/claim/\(id)" }
    public static func accumulatorKey(insurer: String, plan: String, patient: String) -> String { "claims/accumulator/\(insurer)/\(plan)/\(patient)" }
    /// A payer's duplicate key of an approved line (see `ClaimsAction.seen`).
    public static func seenKey(insurer: String, key: String) -> String { "claims/seen/\(insurer)/\(key)" }

    /// The statuses and the moves between them.
    public static let moves: [String: Set<String>] = [
        "pend": ["queued", "pended", "appealed"],
        "adjudicate": ["queued", "pended", "appealed"],
        "pay": ["adjudicated"],
        "appeal": ["adjudicated", "paid"],
    ]
}

extension Adjudication {
    /// Checks a payer's adjudication of one line against what the ledger can check without the
    /// service's code: the membership and coverage period in the policy version in force (31, 26, 27),
    /// timely filing against the submission's time (29), the base rule's arithmetic and the member's
    /// accumulators (the deductible taken is what is left of it, coinsurance by the rate, the
    /// out-of-pocket cap), and reasons that match the amounts. Answers the accumulator after the line.
    /// The rest (which fee and copay apply to the line's code, coverage of the code, prior
    /// authorisation, duplicates) the payer decides with the sealed claim, and the patient and the
    /// provider can check with `careledger claim adjudicate`.
    public static func verify(
        _ reported: LineAdjudication, line: (date: CivilDate, submitted: Int64), patient: String, policy: ClaimsPolicy?,
        planYear: (start: CivilDate, end: CivilDate), filed: CivilDate, accumulator: Accumulator, path: String
    ) throws(LedgerError) -> Accumulator {
        func refuse(_ reason: String) -> LedgerError { LedgerError("bad_adjudication", "\(path): \(reason)") }
        guard reported.submitted == line.submitted else { throw refuse("submitted is \(line.submitted) on the claim") }
        // The checks the ledger can make itself come first in the rule's order: their code, exactly.
        let mustDeny: Int?
        if let policy {
            let periods = policy.periods(of: patient)
            if periods.isEmpty {
                mustDeny = 31
            } else if !periods.contains(where: { $0.from <= line.date && line.date <= $0.to }) {
                mustDeny = line.date < periods.map(\.from).min()! ? 26 : 27
            } else if let days = policy.timelyFilingDays, filed.day - line.date.day > days {
                mustDeny = 29
            } else {
                mustDeny = nil
            }
        } else {
            mustDeny = line.date > planYear.end ? 27 : 26  // no version of the plan is in force that day
        }
        let isDenial = reported.reasons.count == 1 && denials.contains(reported.reasons[0])
        if let mustDeny {
            guard reported.reasons == [mustDeny] else { throw refuse("the line must be denied with CARC \(mustDeny)") }
        } else if isDenial, ![18, 96, 197].contains(reported.reasons[0]) {
            throw refuse("CARC \(reported.reasons[0]) does not apply: the member was covered and the claim filed in time")
        }
        if isDenial {
            guard reported.eligible == 0, reported.deductible == 0, reported.copay == 0, reported.coinsurance == 0, reported.benefit == 0 else {
                throw refuse("a denied line has every amount 0")
            }
            return accumulator
        }
        guard let policy else { throw refuse("no version of the plan is in force on \(line.date)") }  // unreachable: mustDeny
        let (eligible, deductible, copay, coinsurance) = (reported.eligible, reported.deductible, reported.copay, reported.coinsurance)
        guard [eligible, deductible, copay, coinsurance, reported.benefit].allSatisfy({ $0 >= 0 }) else { throw refuse("amounts are never negative") }
        guard eligible <= line.submitted else { throw refuse("eligible exceeds the submitted amount") }
        guard eligible <= (policy.services.map(\.allowed).max() ?? 0) else { throw refuse("eligible exceeds every fee of the policy") }
        let share = deductible + copay + coinsurance
        guard reported.benefit == eligible - share else { throw refuse("benefit is eligible − (deductible + copay + coinsurance)") }
        let deductibleLeft = max(0, policy.deductible - accumulator.deductible)
        let outOfPocketLeft = max(0, policy.outOfPocketMax - accumulator.outOfPocket)
        guard share <= outOfPocketLeft else { throw refuse("the member's share exceeds what is left of the out-of-pocket maximum") }
        guard deductible <= min(eligible, deductibleLeft) else { throw refuse("the deductible exceeds what is left of it") }
        guard copay <= (policy.services.map(\.copay).max() ?? 0) else { throw refuse("the copay exceeds every copay of the policy") }
        if share < outOfPocketLeft {
            // Not capped: the rule's amounts exactly.
            guard deductible == min(eligible, deductibleLeft) else { throw refuse("the deductible must be \(min(eligible, deductibleLeft))") }
            guard copay <= eligible - deductible else { throw refuse("the copay exceeds the allowed amount after the deductible") }
            let expected = ((eligible - deductible - copay) * policy.coinsuranceBp + 5000) / 10000
            guard coinsurance == expected else { throw refuse("coinsurance must be \(expected)") }
        }
        var expectedReasons: [Int] = []
        if deductible > 0 { expectedReasons.append(1) }
        if coinsurance > 0 { expectedReasons.append(2) }
        if copay > 0 { expectedReasons.append(3) }
        if eligible < line.submitted { expectedReasons.append(45) }
        guard reported.reasons == expectedReasons else { throw refuse("reasons must be \(expectedReasons)") }
        var next = accumulator
        next.deductible += deductible
        next.outOfPocket += share
        return next
    }
}

extension Adjudication.Accumulator {
    public init(json: JSONValue?) {
        self.init()
        deductible = json?["deductible"]?.intValue ?? 0
        outOfPocket = json?["outOfPocket"]?.intValue ?? 0
    }

    public var json: JSONValue { .object(["deductible": .int(deductible), "outOfPocket": .int(outOfPocket)]) }
}

extension LineAdjudication {
    /// A line as a payer reports it (`{"sequence","submitted","eligible","deductible","copay","coinsurance","benefit","reasons"}`).
    public init(json: JSONValue, path: String) throws(LedgerError) {
        let r = try PathReader(json, path: path, code: "bad_payload")
        try r.only(["sequence", "submitted", "eligible", "deductible", "copay", "coinsurance", "benefit", "reasons"])
        let range: ClosedRange<Int64> = 0...ClaimsPolicy.maxAmount
        let meaning = "minor units, 0 to \(ClaimsPolicy.maxAmount)"
        guard let reasons = try r.required("reasons").arrayValue, reasons.count <= 8 else { throw r.error("reasons", "must be an array of CARC codes") }
        var codes: [Int] = []
        for code in reasons {
            guard let c = code.intValue, (1...999).contains(c) else { throw r.error("reasons", "must be an array of CARC codes") }
            codes.append(Int(c))
        }
        self.init(
            sequence: try r.integer("sequence", in: 1...999_999, meaning: "the claim line's sequence"),
            submitted: try r.integer("submitted", in: range, meaning: meaning), eligible: try r.integer("eligible", in: range, meaning: meaning),
            deductible: try r.integer("deductible", in: range, meaning: meaning), copay: try r.integer("copay", in: range, meaning: meaning),
            coinsurance: try r.integer("coinsurance", in: range, meaning: meaning), benefit: try r.integer("benefit", in: range, meaning: meaning),
            reasons: codes)
    }
}
