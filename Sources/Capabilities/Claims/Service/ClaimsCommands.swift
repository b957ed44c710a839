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
        subcommands: [Adjudicate.self])

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
