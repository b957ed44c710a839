import ContractKit
import LedgerCore

/// `claims`: payers' policies and claims on the ledger (docs/claims.md). The lifecycle's actions
/// (`submit`, `pend`, `adjudicate`, `pay`, `appeal`) are `ClaimsAction`'s.
///
/// Action `publish-policy`, payload `{"policy": <policy>}`, signed by the insurer (a registered
/// organisation): the policy is checked as `ClaimsPolicy` checks it (a bad one fails with
/// `bad_policy` and the path inside the policy) and stored as the plan's next version. A plan keeps
/// its plan year and currency across versions (`plan_year_fixed`).
///
/// State: `claims/plan/<insurer>/<plan>` → `{"insurer","plan","year":{"start","end"},"currency","versions":[{"version","effective","height","time","tx"}]}`;
/// `claims/policy/<insurer>/<plan>/<version>` → `{"insurer","plan","version","effective","height","time","tx","policy"}`.
/// The version in force for a day of service: the latest published whose `effective` is on or
/// before it (`ClaimsContract.inForce`).
public struct ClaimsContract: Contract {
    let evidence: any ClaimsEvidence

    public init(evidence: any ClaimsEvidence) { self.evidence = evidence }

    public let name = "claims"
    /// A claim, a member's accumulators and the payer's duplicate keys concern a patient; policies are public.
    public var privateStatePrefixes: [String] { ["claims/claim/", "claims/accumulator/", "claims/seen/"] }
    public let actions = ["publish-policy", "submit", "pend", "adjudicate", "pay", "appeal"]

    public static func planKey(insurer: String, plan: String) -> String { "claims/plan/\(insurer)/\(plan)" }
    public static func policyKey(insurer: String, plan: String, version: Int64) -> String { "claims/policy/\(insurer)/\(plan)/\(version)" }

    public func validate(action: String, payload: JSONValue) throws(LedgerError) {
        guard payload.objectValue != nil else { throw LedgerError("bad_payload", "payload must be an object") }
        switch action {
        case "publish-policy":
            let p = try PathReader(payload, path: "", code: "bad_payload")
            try p.only(["policy"])
            _ = try ClaimsPolicy(json: try p.required("policy"))
        default:
            _ = try ClaimsAction(action: action, payload: payload)
        }
    }

    public func execute(action: String, payload: JSONValue, context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        if action != "publish-policy" {
            return try ClaimsAction(action: action, payload: payload).execute(context: &context, evidence: evidence)
        }
        guard try Principal.load(context.author, from: context)?.role == .organisation else {
            throw LedgerError("forbidden", "only a registered organisation (the insurer) publishes a policy")
        }
        let json = payload["policy"]!
        let policy = try ClaimsPolicy(json: json)
        let planKey = Self.planKey(insurer: context.author, plan: policy.plan)
        var versions: [JSONValue] = []
        if let existing = try context.json(forKey: planKey) {
            guard existing["year"]?["start"]?.stringValue == policy.yearStart.description, existing["year"]?["end"]?.stringValue == policy.yearEnd.description,
                existing["currency"]?.stringValue == policy.currency
            else {
                throw LedgerError(
                    "plan_year_fixed",
                    "\(policy.plan) covers \(existing["year"]?["start"]?.stringValue ?? "?")…\(existing["year"]?["end"]?.stringValue ?? "?") in \(existing["currency"]?.stringValue ?? "?"); a new plan year or currency is a new plan")
            }
            versions = existing["versions"]?.arrayValue ?? []
        }
        let version = Int64(versions.count + 1)
        let stamp: [String: JSONValue] = [
            "version": .int(version), "effective": .string(policy.effective.description), "height": .int(Int64(context.height)),
            "time": .int(Int64(context.timeMillis)), "tx": .string(context.transaction.id.hex),
        ]
        versions.append(.object(stamp))
        context.set(planKey, .object([
            "insurer": .string(context.author), "plan": .string(policy.plan), "currency": .string(policy.currency),
            "year": .object(["start": .string(policy.yearStart.description), "end": .string(policy.yearEnd.description)]),
            "versions": .array(versions),
        ]))
        var stored = stamp
        stored["insurer"] = .string(context.author)
        stored["plan"] = .string(policy.plan)
        stored["policy"] = json
        context.set(Self.policyKey(insurer: context.author, plan: policy.plan, version: version), .object(stored))
        context.emit(.object([
            "type": .string("claims.policy-published"), "insurer": .string(context.author), "plan": .string(policy.plan), "version": .int(version),
        ]))
        return .object(["insurer": .string(context.author), "plan": .string(policy.plan), "version": .int(version), "effective": .string(policy.effective.description)])
    }

    /// The version of a plan in force for a day of service: the latest published whose `effective` is
    /// on or before it; nil before the first version's effective day or outside the plan year.
    public static func inForce(plan: JSONValue, on day: CivilDate) -> Int64? {
        func date(_ v: JSONValue?) -> CivilDate? { v?.stringValue.flatMap { CivilDate($0) } }
        guard let start = date(plan["year"]?["start"]), let end = date(plan["year"]?["end"]), start <= day, day <= end else { return nil }
        return (plan["versions"]?.arrayValue ?? []).last { v in date(v["effective"]).map { $0 <= day } ?? false }?["version"]?.intValue
    }
}

extension ContractSet {
    /// The claims capability's contract, reading records and consent through `evidence`.
    public static func claims(evidence: any ClaimsEvidence) -> ContractSet { ContractSet { _ in [ClaimsContract(evidence: evidence)] } }
}
