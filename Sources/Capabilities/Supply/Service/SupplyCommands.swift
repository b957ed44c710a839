import ArgumentParser
import CLIKit
import Foundation
import LedgerCore
import Standards

/// `careledger gs1 …`: GS1 barcode data.
public struct GS1Command: ParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "gs1", abstract: "Read GS1 barcode data (element strings, bracketed form, Digital Link).",
        subcommands: [GS1Parse.self])
}

struct GS1Parse: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse",
        abstract: "Parse what a scanner read from a pack; prints the application identifiers and values.",
        discussion: """
            TEXT is an element string (GS separator 0x1D after variable-length fields, optional symbology \
            identifier such as ]d2), the bracketed form (01)…(17)…(10)…(21)…, or a GS1 Digital Link URI. \
            Because a shell cannot easily pass 0x1D, the spellings <GS>, {GS} and \\x1D are read as the separator.
            """)

    @Argument(help: "The scanned text.") var text: String
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Reference date (YYYY-MM-DD) for the GS1 century rule; default today.") var today: String?

    func run() throws {
        let scan = try GS1ElementString.parse(scannerText(text), today: try referenceDate(today))
        output(scan.json, json: json) {
            scan.elements.map { e in "(\(e.ai)) \(e.value)" + (e.date.map { "  \($0.iso)" } ?? "") }.joined(separator: "\n")
        }
    }
}

/// Turns the shell-friendly spellings of the GS separator into 0x1D.
func scannerText(_ text: String) -> String {
    text.replacingOccurrences(of: "<GS>", with: "\u{1D}").replacingOccurrences(of: "{GS}", with: "\u{1D}")
        .replacingOccurrences(of: "\\x1D", with: "\u{1D}").replacingOccurrences(of: "\\x1d", with: "\u{1D}")
}

/// Today's date in UTC, or the given `YYYY-MM-DD`.
func referenceDate(_ text: String?) throws -> GS1Date {
    guard let text else { return GS1Date(daysSinceEpoch: Int(Date().timeIntervalSince1970 / 86_400)) }
    let parts = text.split(separator: "-").compactMap { Int($0) }
    guard parts.count == 3, (1...12).contains(parts[1]), (1...31).contains(parts[2]) else {
        throw LedgerError("bad_date", "--today must be YYYY-MM-DD")
    }
    return GS1Date(year: parts[0], month: parts[1], day: parts[2])
}

/// `careledger drug …`: packs at the point of care.
public struct DrugCommand: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(commandName: "drug", abstract: "Verify (and dispense) medicine packs.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a scanned pack against the ledger; with --dispense, decommission it as dispensed in the same step.",
            discussion: "Exit 0 when the pack is verified, 1 for any other outcome (printed with its EMVS/VRS terms), 2 for an unreadable scan.")
        @OptionGroup var options: NodeKeyOptions
        @Argument(help: "The scanned text (element string with <GS> for 0x1D, bracketed form, or Digital Link URI).") var scan: String
        @Flag(help: "Decommission the pack as dispensed when it is verified.") var dispense = false

        func run() async throws {
            let text = scannerText(scan)
            _ = try GS1ElementString.parse(text, today: try referenceDate(nil))
            var session = try await Session(node: options.node, keyFile: options.key)
            var body: [String: JSONValue] = ["scan": .string(text)]
            if dispense { body["dispense"] = .bool(true) }
            let result = try await session.post("/v1/supply/verify", .object(body))
            output(result, json: options.json) {
                let outcome = result["outcome"]?.stringValue ?? "?"
                var line = "\(outcome)\(result["state"]?.stringValue.map { " (\($0))" } ?? "")"
                if result["dispensed"]?.boolValue == true { line += ", dispensed at height \(result["height"]?.intValue ?? 0)" }
                if let alert = result["alert"]?.stringValue { line += "; alert \(alert)" }
                if let code = result["emvs"]?["alert"]?.stringValue { line += "; EMVS \(code)" }
                return line
            }
            if result["verified"]?.boolValue != true { throw ExitCode(1) }
        }
    }
}

/// `careledger epcis …`: EPCIS 2.0 documents.
public struct EPCISCommand: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "epcis", abstract: "EPCIS 2.0 documents: event hash ids, ingestion.", subcommands: [HashIDs.self, Ingest.self])

    struct HashIDs: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "hash", abstract: "Print the CBV 2.0 event hash id of each event of a document.")
        @Argument(help: "EPCIS 2.0 JSON/JSON-LD file.") var file: String
        @Flag(help: "Also print each pre-hash string.") var preHash = false

        func run() throws {
            let document = try JSONValue.parse(try readInputFile(file))
            for p in try EPCISEventHash.preHashes(document: document) {
                print(EPCISEventHash.hashID(preHash: p))
                if preHash { print("  " + p) }
            }
        }
    }

    struct Ingest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit an EPCIS document to your organisation's node: all events applied or none; duplicates are skipped.")
        @OptionGroup var options: NodeKeyOptions
        @Argument(help: "EPCIS 2.0 JSON/JSON-LD file.") var file: String

        func run() async throws {
            let document = try JSONValue.parse(try readInputFile(file))
            _ = try EPCISDocument.parse(document)
            var session = try await Session(node: options.node, keyFile: options.key)
            let result = try await session.post("/v1/supply/epcis", document)
            output(result, json: options.json) {
                "\(result["applied"]?.intValue ?? 0) of \(result["events"]?.intValue ?? 0) events applied at height \(result["height"]?.intValue ?? 0)"
                    + ", \(result["duplicates"]?.arrayValue?.count ?? 0) duplicates"
            }
        }
    }
}

/// `careledger supply …`: parties, products, recalls, alerts.
public struct SupplyCommand: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "supply", abstract: "Supply-chain parties, products, recalls and alerts.",
        subcommands: [Party.self, Product.self, Recall.self, Report.self, Alerts.self])

    struct Party: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Admit a registered organisation to the supply chain (operator key).")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "The organisation's did.") var party: String
        @Option(parsing: .upToNextOption, help: "Roles: manufacturer mah wholesaler logistics pharmacy hospital regulator.") var roles: [String]
        @Option(parsing: .upToNextOption, help: "Its GLNs (13 digits).") var gln: [String] = []
        @Option(parsing: .upToNextOption, help: "Its GS1 company prefixes.") var prefix: [String] = []

        func run() async throws {
            let session = try await Session(node: options.node, keyFile: options.key)
            let receipt = try await session.submit(
                "supply", "party",
                .object([
                    "party": .string(party), "roles": .array(roles.map { .string($0) }), "glns": .array(gln.map { .string($0) }),
                    "companyPrefixes": .array(prefix.map { .string($0) }),
                ]))
            output(receipt, json: options.json) { "\(party) admitted as \(roles.joined(separator: ", "))" }
        }
    }

    struct Product: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a product (GTIN) as its marketing authorisation holder.")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "GTIN-14.") var gtin: String
        @Option(help: "Product name.") var name: String?

        func run() async throws {
            let session = try await Session(node: options.node, keyFile: options.key)
            var payload: [String: JSONValue] = ["gtin": .string(gtin)]
            if let name { payload["name"] = .string(name) }
            let receipt = try await session.submit("supply", "product", .object(payload))
            output(receipt, json: options.json) { "product \(gtin) registered" }
        }
    }

    struct Recall: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Recall a lot (MAH or regulator, through your organisation's node).")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "GTIN-14.") var gtin: String
        @Option(help: "Batch/lot number.") var lot: String
        @Option(help: "Reason.") var reason: String

        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            let receipt = try await session.post(
                "/v1/supply/recalls", .object(["gtin": .string(gtin), "lot": .string(lot), "reason": .string(reason)]))
            output(receipt, json: options.json) { "lot \(lot) of \(gtin) recalled at height \(receipt["height"]?.intValue ?? 0)" }
        }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Where every pack of a lot is now (MAH or regulator).")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "GTIN-14.") var gtin: String
        @Option(help: "Batch/lot number.") var lot: String

        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            let lotParameter = lot.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? lot
            let report = try await session.get("/v1/supply/recalls/report?gtin=\(gtin)&lot=\(lotParameter)")
            output(report, json: options.json) {
                var lines = ["\(report["packCount"]?.intValue ?? 0) packs, recalled: \(report["recalled"]?.boolValue ?? false)"]
                for p in report["packs"]?.arrayValue ?? [] {
                    lines.append("\(p["item"]?.stringValue?.prefix(12) ?? "")…  \(p["status"]?.stringValue ?? "")  \(p["custody"]?.stringValue ?? "")  \(p["holder"]?.stringValue ?? "")")
                }
                return lines.joined(separator: "\n")
            }
        }
    }

    struct Alerts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Alerts addressed to your organisation.")
        @OptionGroup var options: NodeKeyOptions

        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            let alerts = try await session.get("/v1/supply/alerts")
            output(alerts, json: options.json) {
                (alerts["alerts"]?.arrayValue ?? []).map { a in
                    "\(a["height"]?.intValue ?? 0)  \(a["rule"]?.stringValue ?? "")  \(a["outcome"]?.stringValue ?? "")  \(a["detail"]?.stringValue ?? "")"
                }.joined(separator: "\n")
            }
        }
    }
}

/// The supply chain's commands: barcodes, pack verification, EPCIS, parties, products, recalls, alerts.
public enum SupplyCommands: CommandCapability {
    public static let commandGroup = CommandGroup(
        name: "Supply chain", subcommands: [GS1Command.self, DrugCommand.self, EPCISCommand.self, SupplyCommand.self])
}
