import ArgumentParser
import Foundation
import LedgerCore
import Standards

/// `careledger gs1 …`: GS1 barcode data.
struct GS1Command: ParsableCommand {
    static let configuration = CommandConfiguration(
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
