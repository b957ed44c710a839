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

public enum ClaimsCommands: CommandCapability {
    public static let commandGroup = CommandGroup(name: "Insurance claims", subcommands: [ClaimCommand.self])
}
