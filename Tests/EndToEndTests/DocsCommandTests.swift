import Foundation
import LedgerCore
import Testing

/// Every `careledger` command the README and docs/ show names a command that exists and only options
/// it takes, so that the docs cannot drift from the binary. (The README's walk-through is also run
/// as written: `DocWalkthroughTests`; the other walk-throughs step by step by `WalkthroughTests` and its siblings.)
@Suite struct DocsCommandTests {
    static let root = repositoryRoot

    /// The commands in a markdown text: lines of ```sh blocks (continuations joined) and inline code,
    /// that start with `careledger ` or `$CL ` (after a `$(`), as their words after the program name.
    static func commands(in text: String) -> [[String]] {
        var found: [String] = []
        var inBlock = false
        var pending = ""
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if line.hasPrefix("```") {
                inBlock = line.hasPrefix("```sh") && !inBlock
                continue
            }
            if inBlock {
                if line.hasSuffix("\\") {
                    pending += line.dropLast() + " "
                    continue
                }
                found.append(pending + line)
                pending = ""
            } else {
                // Inline code spans.
                let spans = line.split(separator: "`", omittingEmptySubsequences: false)
                for (i, span) in spans.enumerated() where i % 2 == 1 { found.append(String(span)) }
            }
        }
        var commands: [[String]] = []
        for line in found {
            // Every invocation on the line: after the start, `$(`, `|`, `&&`, `||` or `;`.
            var text = line.replacingOccurrences(of: "$(", with: " ; ").replacingOccurrences(of: "&&", with: ";")
                .replacingOccurrences(of: "||", with: ";").replacingOccurrences(of: "|", with: ";")
            if let comment = text.range(of: " #") { text = String(text[..<comment.lowerBound]) }
            for part in text.split(separator: ";") {
                var words = part.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                guard let first = words.first, ["careledger", "$CL", ".build/release/careledger"].contains(first) else { continue }
                words.removeFirst()
                commands.append(words)
            }
        }
        return commands
    }

    @Test func everyDocumentedCommandAndOptionExists() throws {
        var files = [Self.root.appendingPathComponent("README.md")]
        files += try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("docs").path).filter { $0.hasSuffix(".md") }
            .sorted().map { Self.root.appendingPathComponent("docs/\($0)") }
        var help: [String: String?] = [:]
        func helpText(_ path: [String]) throws -> String? {
            let key = path.joined(separator: " ")
            if let known = help[key] { return known }
            let result = try CLI.run(["help"] + path)
            let text = result.status == 0 && !result.stdout.isEmpty ? result.stdout : nil
            help[key] = text
            return text
        }
        var checked = 0
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            for words in Self.commands(in: text) {
                // The longest run of leading words that is a command (`consent grant`, `bench`).
                var path: [String] = []
                for word in words {
                    guard !word.hasPrefix("-"), word.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" }), try helpText(path + [word]) != nil else { break }
                    path.append(word)
                }
                let context = "\(file.lastPathComponent): careledger \(words.joined(separator: " "))"
                if words.isEmpty || words.first == "--version" || words.first == "--help" { continue }
                guard var usage = try helpText(path), !path.isEmpty else {
                    Issue.record("no such command: \(context)")
                    continue
                }
                // A group run without its subcommand runs its default one (`bench` is `bench ledger`).
                if let line = usage.split(separator: "\n").first(where: { $0.contains(" (default) ") }),
                    let name = line.split(separator: " ").first, let defaultUsage = try helpText(path + [String(name)])
                {
                    usage += defaultUsage
                }
                for word in words where word.hasPrefix("--") {
                    let option = String(word.prefix { $0 != "=" }).trimmingCharacters(in: CharacterSet(charactersIn: "[]…,"))
                    #expect(usage.contains(option + " ") || usage.contains(option + "\n") || usage.contains(option + ","), "\(option) is not an option of careledger \(path.joined(separator: " ")): \(context)")
                }
                checked += 1
            }
        }
        #expect(checked > 50, "found \(checked) commands in the docs")
    }
}
