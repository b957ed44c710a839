import ArgumentParser
import CLIKit
import ClaimsContract
import Foundation
import LedgerCore

/// `careledger claim …`: insurance claims adjudicated by the payer's published policy.
public struct ClaimCommand: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "claim", abstract: "Insurance claims: adjudicated by the payer's policy, exactly and in integers.",
        subcommands: [Submit.self, Status.self, Appeal.self, Pay.self, Adjudicate.self])

    /// The plan's currency and its minor unit, from the ledger (public state).
    static func currency(node: String, insurer: String, plan: String) async throws -> (code: String, digits: Int) {
        let base = node.hasSuffix("/") ? String(node.dropLast()) : node
        let answer = try await API.json(.GET, base + "/v1/state/" + ClaimsContract.planKey(insurer: insurer, plan: plan))
        guard answer["present"]?.boolValue == true, let code = answer["value"]?["currency"]?.stringValue, let digits = ClaimsPolicy.currencies[code] else {
            throw LedgerError("not_found", "\(insurer) has published no plan \(plan)")
        }
        return (code, digits)
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "As a provider organisation, submit a FHIR R4 Claim: sealed in your node's vault as the patient's record, then on the ledger.",
            discussion: """
                Your key is the organisation's and --node is its node (acting for it). The patient is named by \
                patient.identifier.value (her did); her consent must let the insurer see her claims for payment. \
                The insurer's node adjudicates it; follow it with `careledger claim status`.
                """)
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "The insurer's did.") var insurer: String
        @Option(help: "The plan (as the insurer published it).") var plan: String
        @Argument(help: "The FHIR R4 Claim (JSON).") var file: String

        func run() async throws {
            var resource = try Adjudicate.parse(file, code: "bad_claim")
            let (currency, digits) = try await ClaimCommand.currency(node: options.node, insurer: insurer, plan: plan)
            let claim = try ClaimInput(json: resource, path: "", minorDigits: digits, currency: currency)
            // The FHIR facade files a record under its patient's reference: add it when the claim names her by did only.
            if var o = resource.objectValue, var patient = o["patient"]?.objectValue, patient["reference"] == nil {
                patient["reference"] = .string("Patient/" + claim.patient.dropFirst("did:key:".count))
                o["patient"] = .object(patient)
                resource = .object(o)
            }
            var session = try await Session(node: options.node, keyFile: options.key)
            let stored = try await session.post("/fhir/Claim", resource)
            guard let record = stored["id"]?.stringValue else { throw LedgerError("server_error", "the node did not say where it filed the claim") }
            let payload: JSONValue = .object([
                "claim": .string(claim.id), "record": .string(record), "patient": .string(claim.patient), "insurer": .string(insurer), "plan": .string(plan),
                "use": .string(resource["use"]?.stringValue == "preauthorization" ? "preauthorization" : "claim"),
                "lines": .array(claim.lines.map { .object(["sequence": .int($0.sequence), "date": .string($0.date.description), "submitted": .int($0.submitted)]) }),
            ])
            let receipt = try await session.submit("claims", "submit", payload)
            output(.object(["claim": .string(claim.id), "record": .string(record), "status": receipt["result"]?["status"] ?? .null, "receipt": receipt]), json: options.json) {
                "claim \(claim.id) submitted to \(insurer) (\(plan)); sealed as record \(record); queued"
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A claim's status, and once adjudicated what the plan pays on each line and why (its patient, provider or insurer).")
        @OptionGroup var options: NodeKeyOptions
        @Argument(help: "The claim id.") var id: String

        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            let claim = try await session.get("/v1/claims/\(id)")
            output(claim, json: options.json) { ClaimCommand.describe(claim) }
        }
    }

    struct Appeal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "As the claim's provider or patient, appeal its adjudication: the insurer adjudicates it again.")
        @OptionGroup var options: NodeKeyOptions
        @Argument(help: "The claim id.") var id: String
        @Option(help: "Why, 10 to 1024 characters.") var reason: String

        func validate() throws {
            guard (10...1024).contains(reason.count) else { throw ValidationError("--reason is 10 to 1024 characters") }
        }

        func run() async throws {
            let session = try await Session(node: options.node, keyFile: options.key)
            let receipt = try await session.submit("claims", "appeal", .object(["claim": .string(id), "reason": .string(reason)]))
            output(receipt, json: options.json) { "claim \(id) appealed" }
        }
    }

    struct Pay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "As the insurer, confirm the payment of what an adjudicated claim still owes.")
        @OptionGroup var options: NodeKeyOptions
        @Argument(help: "The claim id.") var id: String
        @Option(help: "The payment's reference (e.g. the bank transfer's).") var reference: String

        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            let claim = try await session.get("/v1/claims/\(id)")
            let owed = (claim["adjudication"]?["benefit"]?.intValue ?? 0) - (claim["paid"]?.intValue ?? 0)
            guard claim["status"]?.stringValue == "adjudicated" else { throw LedgerError("wrong_status", "claim \(id) is \(claim["status"]?.stringValue ?? "?"): only an adjudicated claim is paid") }
            guard owed > 0 else { throw LedgerError("nothing_to_pay", "claim \(id) owes nothing") }
            let receipt = try await session.submit("claims", "pay", .object(["claim": .string(id), "amount": .int(owed), "reference": .string(reference)]))
            output(receipt, json: options.json) { "paid \(owed) (minor units) on claim \(id)" }
        }
    }

    /// A claim on the ledger in words.
    static func describe(_ claim: JSONValue) -> String {
        var lines = ["claim \(claim["id"]?.stringValue ?? "?"): \(claim["status"]?.stringValue ?? "?")"]
        if let pended = claim["pended"], claim["status"] == .string("pended") {
            for m in pended["missing"]?.arrayValue ?? [] { lines.append("  missing: \(m.stringValue ?? "")") }
            for s in pended["signals"]?.arrayValue ?? [] { lines.append("  signal: \(s.stringValue ?? "")") }
        }
        if let adjudication = claim["adjudication"] {
            for line in adjudication["lines"]?.arrayValue ?? [] {
                let reasons = (line["reasons"]?.arrayValue ?? []).compactMap { $0.intValue }.map { CARC.words[Int($0)] ?? "CARC \($0)" }
                lines.append("  line \(line["sequence"]?.intValue ?? 0): submitted \(line["submitted"]?.intValue ?? 0), the plan pays \(line["benefit"]?.intValue ?? 0)"
                    + (reasons.isEmpty ? "" : " — " + reasons.joined(separator: "; ")))
            }
            lines.append("  benefit \(adjudication["benefit"]?.intValue ?? 0), paid \(claim["paid"]?.intValue ?? 0) (minor units)")
        }
        return lines.joined(separator: "\n")
    }

    struct Adjudicate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Adjudicate FHIR R4 Claims under a policy file, offline: the same code the ledger runs, with no node.",
            discussion: """
                CLAIMS is a Claim, a JSON array of Claims or a Bundle of them. Offline, evidence counts as present, \
                except prior authorisation (a claim shows it with insurance[0].preAuthRef); accumulators start at zero. \
                Money in the output is in integer minor units; reasons are X12 CARC codes (docs/claims.md). \
                A bad policy or claim file exits 2 with the JSON path and the reason.
                """)
        @Option(help: "The payer's policy (JSON; docs/schemas/claims-policy.schema.json).") var policy: String
        @Argument(help: "The claims file.") var claims: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let policy = try ClaimsPolicy(json: try Self.parse(policy, code: "bad_policy"))
            let claims = try ClaimInput.claims(in: try Self.parse(claims, code: "bad_claim"), minorDigits: policy.minorDigits, currency: policy.currency)
            let results = Adjudication.run(claims, policy: policy)
            output(.object(["claims": .array(results.map(\.json))]), json: json) {
                results.map { Self.describe($0, policy: policy) }.joined(separator: "\n\n")
            }
        }

        static func parse(_ path: String, code: String) throws -> JSONValue {
            do {
                return try JSONValue.parse(try readInputFile(path))
            } catch let error as LedgerError where error.code != "no_file" {
                throw LedgerError(code, "\(path) is not JSON: \(error.message)")
            }
        }

        /// A claim's result for a person: each line's amounts and the reasons in words.
        static func describe(_ claim: ClaimAdjudication, policy: ClaimsPolicy) -> String {
            func money(_ minor: Int64) -> String {
                guard policy.minorDigits > 0 else { return "\(minor) \(policy.currency)" }
                var unit: Int64 = 1
                for _ in 0..<policy.minorDigits { unit *= 10 }
                let fraction = String(minor % unit)
                return "\(minor / unit).\(String(repeating: "0", count: policy.minorDigits - fraction.count))\(fraction) \(policy.currency)"
            }
            let verdict = ["complete": "approved", "partial": "partly denied", "error": "denied"][claim.outcome] ?? claim.outcome
            var lines = ["Claim \(claim.id): \(verdict), the plan pays \(money(claim.benefit))"]
            for item in claim.items {
                let words = item.reasons.map { CARC.words[$0] ?? "CARC \($0)" }.joined(separator: "; ")
                if item.denied {
                    lines.append("  line \(item.sequence): submitted \(money(item.submitted)), not paid — \(words)")
                    continue
                }
                lines.append(
                    "  line \(item.sequence): submitted \(money(item.submitted)), allowed \(money(item.eligible)), you pay "
                        + "\(money(item.deductible + item.copay + item.coinsurance)), the plan pays \(money(item.benefit))"
                        + (words.isEmpty ? "" : " — \(words)"))
            }
            return lines.joined(separator: "\n")
        }
    }
}

/// The X12 Claim Adjustment Reason Codes this release gives, in words a patient understands.
public enum CARC {
    public static let words: [Int: String] = [
        1: "part of your deductible (1)",
        2: "your coinsurance share (2)",
        3: "your copay (3)",
        18: "already claimed: the same service, provider and day was billed before (18)",
        26: "the service was before your coverage began (26)",
        27: "the service was after your coverage ended (27)",
        29: "the claim was filed too late (29)",
        31: "you are not a member of this plan (31)",
        45: "the charge is more than the plan's fee for it (45)",
        96: "the plan does not cover this service (96)",
        197: "the service needed prior authorisation, and there was none (197)",
    ]
}

/// `careledger policy …`: a payer's policies on the ledger.
public struct PolicyCommand: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "A payer's policies on the ledger: publish a version, show one.",
        subcommands: [Publish.self, Show.self])

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish a policy file as the plan's next version, signed with the insurer's key (a registered organisation).",
            discussion: "The policy is checked before it is sent and again on the ledger; a bad one exits 2 with its JSON path and the reason.")
        @OptionGroup var options: NodeKeyOptions
        @Argument(help: "The policy (JSON; docs/schemas/claims-policy.schema.json).") var file: String

        func run() async throws {
            let policy = try ClaimCommand.Adjudicate.parse(file, code: "bad_policy")
            let checked = try ClaimsPolicy(json: policy)
            let session = try await Session(node: options.node, keyFile: options.key)
            let receipt = try await session.submit("claims", "publish-policy", .object(["policy": policy]))
            output(receipt, json: options.json) {
                "published \(checked.plan) version \(receipt["result"]?["version"]?.intValue ?? 0), in force for services from \(checked.effective)"
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a plan's versions, or one version's policy: by number, or the one in force on a day of service.")
        @Option(help: "Node URL.") var node: String = "http://127.0.0.1:8080"
        @Option(help: "The insurer's did.") var insurer: String
        @Option(help: "The plan.") var plan: String
        @Option(help: "A version number.") var version: Int64?
        @Option(help: "A day of service (YYYY-MM-DD): the version in force that day.") var date: String?
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if version != nil && date != nil { throw ValidationError("give --version or --date, not both") }
            if let date, CivilDate(date) == nil { throw ValidationError("--date is a day YYYY-MM-DD") }
        }

        func run() async throws {
            let base = node.hasSuffix("/") ? String(node.dropLast()) : node
            func state(_ key: String) async throws -> JSONValue? {
                let answer = try await API.json(.GET, base + "/v1/state/" + key)
                return answer["present"]?.boolValue == true ? answer["value"] : nil
            }
            guard let entry = try await state(ClaimsContract.planKey(insurer: insurer, plan: plan)) else {
                throw LedgerError("not_found", "\(insurer) has published no plan \(plan)")
            }
            var wanted = version
            if let date {
                guard let inForce = ClaimsContract.inForce(plan: entry, on: CivilDate(date)!) else {
                    throw LedgerError("not_found", "no version of \(plan) is in force on \(date)")
                }
                wanted = inForce
            }
            guard let wanted else {
                output(entry, json: json) {
                    (entry["versions"]?.arrayValue ?? []).map {
                        "version \($0["version"]?.intValue ?? 0): in force from \($0["effective"]?.stringValue ?? "?"), published at height \($0["height"]?.intValue ?? 0)"
                    }.joined(separator: "\n")
                }
                return
            }
            guard let stored = try await state(ClaimsContract.policyKey(insurer: insurer, plan: plan, version: wanted)) else {
                throw LedgerError("not_found", "\(plan) has no version \(wanted)")
            }
            output(stored, json: json) { stored["policy"]?.canonicalString ?? "" }
        }
    }
}

public enum ClaimsCommands: CommandCapability {
    public static let commandGroup = CommandGroup(name: "Insurance claims", subcommands: [PolicyCommand.self, ClaimCommand.self])
}
