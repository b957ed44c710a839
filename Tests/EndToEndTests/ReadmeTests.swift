import Foundation
import LedgerCore
import Testing

/// The README's three-minute walk-through, run as it stands: its shell block, with only the binary,
/// the node's address and the data directory pointed at this test's.
@Suite struct ReadmeTests {
    @Test func theReadmesThreeMinutesRunAsWritten() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.range(of: "## Three minutes with it"))
        let rest = readme[section.upperBound...]
        let open = try #require(rest.range(of: "```sh\n"))
        let close = try #require(rest[open.upperBound...].range(of: "```"))
        let written = String(rest[open.upperBound..<close.lowerBound])

        let data = temporaryPath("readme-3min")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let node = try NodeProcess(data: data)
        defer { node.stop() }
        let substitutions = [
            ("CL=.build/release/careledger", "CL=\(CLI.binary)"), ("NODE=http://127.0.0.1:8080", "NODE=\(node.url)"),
            ("K=careledger-data/keys", "K=\(data)/keys"),
        ]
        var script = written
        for (from, to) in substitutions {
            #expect(script.contains(from), "the README's block sets \(from)")
            script = script.replacingOccurrences(of: from, with: to)
        }
        let directory = temporaryPath("readme-cwd")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-euo", "pipefail", "-c", script]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = Pipe()
        process.standardOutput = out
        process.standardError = Pipe()
        try process.run()
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(printed)")
        #expect(printed.contains(#""text":"Asthma""#), "Dr Bob reads the diagnosis back")
        #expect(printed.contains("refused: Dr Carol has no consent"))

        // What the block claims: the ledger's access log has Dr Bob's read permitted and Dr Carol's denied.
        let did = { (name: String) in try CLI.run(["key", "show", "--key", "\(data)/keys/\(name).key"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
        let bob = try did("dr-bob"), carol = try did("dr-carol")
        let log = try JSONValue.parse(try CLI.run(["access-log", "--node", node.url, "--key", "\(data)/keys/alice.key", "--json"]).stdout)
        let events = log["events"]?.arrayValue ?? []
        #expect(events.contains { $0["reader"]?.stringValue == bob && $0["outcome"]?.stringValue == "permit" && $0["records"] == .array([.string("asthma-1")]) })
        #expect(events.contains { $0["reader"]?.stringValue == carol && $0["outcome"]?.stringValue == "deny" })
        #expect(printed.contains("deny \(carol)"), "the block's own access log shows the refusal")
    }
}
