import ContractKit
import LedgerCore

/// The claim lifecycle's actions (docs/claims.md, "Claims on the ledger"):
///
/// - `submit` `{"claim","record","patient","insurer","plan","use"?,"lines":[{"sequence","date","submitted"}]}` by the
///   provider organisation: the sealed FHIR Claim is the record `record` (the patient's, a Claim, written
///   or held by the provider), and her consent lets the insurer see it for payment. Status `queued`.
/// - `pend` `{"claim","missing":[…],"signals":[…]}` by the insurer: what evidence is missing, which fraud
///   signals it raised. Status `pended`.
/// - `adjudicate` `{"claim","lines":[…],"response"?,"eob"?}` by the insurer: each line's amounts and CARC
///   reasons, checked by `Adjudication.verify` against the version in force at its date of service and
///   the member's accumulators; `response` and `eob` name the sealed ClaimResponse and
///   ExplanationOfBenefit records. A re-adjudication (after an appeal) first takes the previous one's
///   amounts back out of the accumulators. Status `adjudicated`, with the payment instruction.
/// - `pay` `{"claim","amount","reference"}` by the insurer: the amount still owed. Status `paid`.
/// - `appeal` `{"claim","reason"}` by the provider or the patient. Status `appealed`.
struct ClaimsAction {
    let action: String
    let payload: PathReader
    let claim: String

    static let idPattern = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.".unicodeScalars)

    init(action: String, payload: JSONValue) throws(LedgerError) {
        self.action = action
        self.payload = try PathReader(payload, path: "", code: "bad_payload")
        claim = try self.payload.string("claim", pattern: "a claim id: 1 to 64 of A-Z a-z 0-9 - .") { text in
            (1...64).contains(text.count) && text.unicodeScalars.allSatisfy { ClaimsAction.idPattern.contains($0) }
        }
        switch action {
        case "submit":
            try self.payload.only(["claim", "record", "patient", "insurer", "plan", "use", "lines"])
            _ = try lines()
            _ = try self.payload.string("record", pattern: "a record id")
            for key in ["patient", "insurer"] { _ = try self.payload.string(key, pattern: "a did:key") { (try? PublicKey(did: $0)) != nil } }
            _ = try self.payload.string("plan", pattern: "a plan name")
            if let use = try self.payload.optionalString("use"), !["claim", "preauthorization"].contains(use) {
                throw self.payload.error("use", "must be claim or preauthorization")
            }
        case "pend":
            try self.payload.only(["claim", "missing", "signals"])
            let missing = try words("missing"), signals = try words("signals")
            guard !missing.isEmpty || !signals.isEmpty else {
                throw self.payload.error("missing", "a pended claim says what is missing or which signal it raised")
            }
        case "adjudicate":
            try self.payload.only(["claim", "lines", "response", "eob", "seen"])
            let lines = try adjudicated()
            guard try seen().count <= lines.count else { throw self.payload.error("seen", "at most one key per line") }
            for key in ["response", "eob"] { _ = try self.payload.optionalString(key) }
        case "pay":
            try self.payload.only(["claim", "amount", "reference"])
            _ = try self.payload.integer("amount", in: 1...ClaimsPolicy.maxAmount, meaning: "the amount paid, minor units")
            _ = try self.payload.string("reference", pattern: "the payment's reference, 1 to 128 characters") { (1...128).contains($0.count) }
        case "appeal":
            try self.payload.only(["claim", "reason"])
            _ = try self.payload.string("reason", pattern: "why, 10 to 1024 characters") { (10...1024).contains($0.count) }
        default:
            throw LedgerError("unknown_action", "claims has no action \(action)")
        }
    }

    func lines() throws(LedgerError) -> [(sequence: Int64, date: CivilDate, submitted: Int64)] {
        let items = try payload.array("lines")
        guard (1...999).contains(items.count) else { throw payload.error("lines", "1 to 999 lines") }
        var out: [(sequence: Int64, date: CivilDate, submitted: Int64)] = []
        for item in items {
            try item.only(["sequence", "date", "submitted"])
            out.append((
                try item.integer("sequence", in: 1...999_999, meaning: "the claim line's sequence"), try item.date("date"),
                try item.amount("submitted")
            ))
        }
        guard Set(out.map(\.sequence)).count == out.count else { throw payload.error("lines", "each sequence once") }
        return out
    }

    func adjudicated() throws(LedgerError) -> [LineAdjudication] {
        guard let items = try payload.required("lines").arrayValue, (1...999).contains(items.count) else { throw payload.error("lines", "1 to 999 lines") }
        var out: [LineAdjudication] = []
        for (i, item) in items.enumerated() { out.append(try LineAdjudication(json: item, path: "lines[\(i)]")) }
        return out
    }

    /// The payer's duplicate keys of the approved lines: 64 hex digits each, opaque to everyone else
    /// (an HMAC of patient, provider, service and day under a key only the payer holds).
    func seen() throws(LedgerError) -> [String] {
        guard let v = payload.value["seen"], v != .null else { return [] }
        guard let list = v.arrayValue, list.allSatisfy({ ($0.stringValue.map { $0.utf8.count == 64 && $0.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) } }) ?? false }),
            Set(list).count == list.count
        else { throw payload.error("seen", "distinct keys of 64 lower-case hex digits") }
        return list.compactMap(\.stringValue)
    }

    func words(_ key: String) throws(LedgerError) -> [String] {
        guard let v = payload.value[key], v != .null else { return [] }
        guard let list = v.arrayValue, list.count <= 16, list.allSatisfy({ ($0.stringValue.map { (1...256).contains($0.count) }) ?? false }) else {
            throw payload.error(key, "up to 16 strings of 1 to 256 characters")
        }
        return list.compactMap(\.stringValue)
    }

    func execute(context: inout ExecutionContext, evidence: any ClaimsEvidence) throws(LedgerError) -> JSONValue {
        let key = ClaimState.key(claim)
        let read: (String) throws(LedgerError) -> JSONValue? = { [context] (k: String) throws(LedgerError) -> JSONValue? in try context.json(forKey: k) }
        if action == "submit" { return try submit(context: &context, evidence: evidence, key: key, read: read) }
        guard var stored = try context.json(forKey: key)?.objectValue else { throw LedgerError("not_found", "no claim \(claim)") }
        let status = stored["status"]?.stringValue ?? ""
        let insurer = stored["insurer"]?.stringValue ?? "", provider = stored["provider"]?.stringValue ?? "", patient = stored["patient"]?.stringValue ?? ""
        if action == "appeal" {
            guard context.author == provider || context.author == patient else { throw LedgerError("forbidden", "the provider or the patient appeals") }
        } else {
            guard context.author == insurer else { throw LedgerError("forbidden", "only the claim's insurer \(insurer) may \(action) it") }
        }
        guard ClaimState.moves[action]?.contains(status) == true else {
            throw LedgerError("wrong_status", "claim \(claim) is \(status): it cannot be \(action == "pay" ? "paid" : action + "ed") now")
        }
        var event: [String: JSONValue] = ["claim": .string(claim), "insurer": .string(insurer), "provider": .string(provider), "patient": .string(patient)]
        var result: [String: JSONValue] = ["claim": .string(claim)]
        switch action {
        case "pend":
            stored["pended"] = .object(["missing": .array(try words("missing").map { .string($0) }), "signals": .array(try words("signals").map { .string($0) })])
            stored["status"] = .string("pended")
        case "adjudicate":
            let adjudication = try adjudicate(stored: stored, context: &context, read: read)
            stored["adjudication"] = adjudication
            stored["status"] = .string("adjudicated")
            result["benefit"] = adjudication["benefit"]
            result["payment"] = adjudication["payment"]
            event["benefit"] = adjudication["benefit"]
        case "pay":
            let benefit = stored["adjudication"]?["benefit"]?.intValue ?? 0, paid = stored["paid"]?.intValue ?? 0
            let amount = try payload.integer("amount", in: 1...ClaimsPolicy.maxAmount, meaning: "the amount paid")
            guard amount == benefit - paid else {
                throw LedgerError(benefit - paid <= 0 ? "nothing_to_pay" : "wrong_amount", "the claim's benefit is \(benefit), \(paid) paid: \(max(0, benefit - paid)) is owed")
            }
            stored["paid"] = .int(paid + amount)
            stored["payments"] = .array((stored["payments"]?.arrayValue ?? []) + [.object([
                "amount": .int(amount), "reference": .string(try payload.string("reference", pattern: "a reference")), "height": .int(Int64(context.height)),
            ])])
            stored["status"] = .string("paid")
            result["paid"] = .int(paid + amount)
            event["amount"] = .int(amount)
        default:  // appeal
            stored["appeal"] = .object(["by": .string(context.author), "reason": .string(try payload.string("reason", pattern: "why"))])
            stored["status"] = .string("appealed")
        }
        let newStatus = stored["status"]!
        stored["history"] = .array((stored["history"]?.arrayValue ?? []) + [.object([
            "status": newStatus, "by": .string(context.author), "height": .int(Int64(context.height)), "time": .int(Int64(context.timeMillis)),
        ])])
        context.set(key, .object(stored))
        event["type"] = .string("claims.\(newStatus.stringValue!)")
        context.emit(.object(event))
        result["status"] = newStatus
        return .object(result)
    }

    func submit(
        context: inout ExecutionContext, evidence: any ClaimsEvidence, key: String, read: (String) throws(LedgerError) -> JSONValue?
    ) throws(LedgerError) -> JSONValue {
        guard try Principal.load(context.author, from: context)?.role == .organisation else {
            throw LedgerError("forbidden", "a provider organisation submits claims")
        }
        guard try context.json(forKey: key) == nil else { throw LedgerError("duplicate_claim", "claim \(claim) was submitted before") }
        let patient = try payload.string("patient", pattern: "a did"), insurer = try payload.string("insurer", pattern: "a did")
        let plan = try payload.string("plan", pattern: "a plan"), record = try payload.string("record", pattern: "a record id")
        guard try context.json(forKey: ClaimsContract.planKey(insurer: insurer, plan: plan)) != nil else {
            throw LedgerError("not_found", "\(insurer) has published no plan \(plan)")
        }
        guard let sealed = try evidence.record(record, state: read), sealed.patient == patient, sealed.resourceType == "Claim" else {
            throw LedgerError("missing_evidence", "record \(record) is not a Claim of \(patient) on the ledger")
        }
        guard sealed.custodian == context.author || sealed.authors.contains(context.author) else {
            throw LedgerError("forbidden", "the Claim record \(record) is not the provider's")
        }
        guard try evidence.permitsPayment(patient: patient, insurer: insurer, resourceType: "Claim", time: Int64(context.timeMillis), state: read) else {
            throw LedgerError("consent_denied", "no consent of the patient lets \(insurer) see her claims for payment")
        }
        let lines = try lines()
        let stored: JSONValue = .object([
            "id": .string(claim), "provider": .string(context.author), "patient": .string(patient), "insurer": .string(insurer), "plan": .string(plan),
            "record": .string(record), "use": .string(try payload.optionalString("use") ?? "claim"),
            "lines": .array(lines.map { .object(["sequence": .int($0.sequence), "date": .string($0.date.description), "submitted": .int($0.submitted)]) }),
            "filed": .string(CivilDate(millis: context.timeMillis).description), "status": .string("queued"), "paid": .int(0),
            "height": .int(Int64(context.height)), "time": .int(Int64(context.timeMillis)),
            "history": .array([.object(["status": .string("queued"), "by": .string(context.author), "height": .int(Int64(context.height)), "time": .int(Int64(context.timeMillis))])]),
        ])
        context.set(key, stored)
        context.emit(.object([
            "type": .string("claims.queued"), "claim": .string(claim), "insurer": .string(insurer), "provider": .string(context.author), "patient": .string(patient),
        ]))
        return .object(["claim": .string(claim), "status": .string("queued")])
    }

    /// Checks and applies the insurer's adjudication: every line of the claim, in date-of-service order,
    /// against the version in force that day and the member's accumulators.
    func adjudicate(stored: [String: JSONValue], context: inout ExecutionContext, read: (String) throws(LedgerError) -> JSONValue?) throws(LedgerError) -> JSONValue {
        let insurer = stored["insurer"]!.stringValue!, plan = stored["plan"]!.stringValue!, patient = stored["patient"]!.stringValue!
        guard let planEntry = try read(ClaimsContract.planKey(insurer: insurer, plan: plan)),
            let start = planEntry["year"]?["start"]?.stringValue.flatMap({ CivilDate($0) }), let end = planEntry["year"]?["end"]?.stringValue.flatMap({ CivilDate($0) })
        else { throw LedgerError("not_found", "plan \(plan) is gone") }
        let submitted = (stored["lines"]?.arrayValue ?? []).compactMap { l -> (sequence: Int64, date: CivilDate, submitted: Int64)? in
            guard let s = l["sequence"]?.intValue, let d = l["date"]?.stringValue.flatMap({ CivilDate($0) }), let a = l["submitted"]?.intValue else { return nil }
            return (s, d, a)
        }
        let reported = try adjudicated()
        guard Set(reported.map(\.sequence)) == Set(submitted.map(\.sequence)), reported.count == submitted.count else {
            throw LedgerError("bad_adjudication", "lines: one result for each of the claim's lines \(submitted.map(\.sequence))")
        }
        let byLine = Dictionary(uniqueKeysWithValues: reported.map { ($0.sequence, $0) })
        let accumulatorKey = ClaimState.accumulatorKey(insurer: insurer, plan: plan, patient: patient)
        var accumulator = Adjudication.Accumulator(json: try read(accumulatorKey))
        // A re-adjudication takes the previous one's amounts back out first.
        for previous in stored["adjudication"]?["lines"]?.arrayValue ?? [] {
            accumulator.deductible -= previous["deductible"]?.intValue ?? 0
            accumulator.outOfPocket -= (previous["deductible"]?.intValue ?? 0) + (previous["copay"]?.intValue ?? 0) + (previous["coinsurance"]?.intValue ?? 0)
        }
        let filed = stored["filed"]?.stringValue.flatMap { CivilDate($0) } ?? CivilDate(millis: context.timeMillis)
        var policies: [Int64: ClaimsPolicy] = [:]
        var versions: [Int64: JSONValue] = [:]
        for (i, line) in submitted.sorted(by: { ($0.date, $0.sequence) < ($1.date, $1.sequence) }).enumerated() {
            var policy: ClaimsPolicy?
            if let version = ClaimsContract.inForce(plan: planEntry, on: line.date) {
                if policies[version] == nil {
                    policies[version] = try ClaimsPolicy.published(chain: context.transaction.chainID, key: ClaimsContract.policyKey(insurer: insurer, plan: plan, version: version), read: read)
                }
                policy = policies[version]
                versions[line.sequence] = .int(version)
            }
            accumulator = try Adjudication.verify(
                byLine[line.sequence]!, line: (line.date, line.submitted), patient: patient, policy: policy, planYear: (start, end), filed: filed,
                accumulator: accumulator, path: "lines[\(reported.firstIndex { $0.sequence == line.sequence }!)] (sequence \(line.sequence), line \(i + 1) by date)")
        }
        context.set(accumulatorKey, accumulator.json)
        // A line the payer approved before, under another claim, is a duplicate: its key is taken.
        for key in try seen() {
            let seenKey = ClaimState.seenKey(insurer: insurer, key: key)
            if let owner = try read(seenKey)?["claim"]?.stringValue, owner != claim {
                throw LedgerError("bad_adjudication", "seen: a line of claim \(owner) was approved with the same service, day, patient and provider (CARC 18)")
            }
            context.set(seenKey, .object(["claim": .string(claim)]))
        }
        let benefit = reported.reduce(Int64(0)) { $0 + $1.benefit }
        var adjudication: [String: JSONValue] = [
            "lines": .array(reported.map { line in
                var o = line.json.objectValue!
                o["version"] = versions[line.sequence] ?? .null
                return .object(o)
            }),
            "benefit": .int(benefit), "height": .int(Int64(context.height)), "time": .int(Int64(context.timeMillis)),
            "payment": .object(["payee": stored["provider"]!, "amount": .int(benefit - (stored["paid"]?.intValue ?? 0)), "currency": planEntry["currency"] ?? .null]),
        ]
        for key in ["response", "eob"] { if let r = try payload.optionalString(key) { adjudication[key] = .string(r) } }
        return .object(adjudication)
    }
}
