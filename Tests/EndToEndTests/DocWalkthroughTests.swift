import Foundation
import LedgerCore
import Testing

/// Shell blocks of the docs, run as they stand against `careledger up`: only the binary, the node's
/// address and the data directory are pointed at this test's. The README's three-minute walk-through
/// and the patient-records walk-through.
@Suite struct DocWalkthroughTests {
    static let root = repositoryRoot

    /// The first ```sh block of `file` after `heading` (or the first one), run with bash against a fresh
    /// `careledger up`; answers what it printed, the node and its data directory.
    static func run(_ file: String, after heading: String? = nil) throws -> (printed: String, node: NodeProcess, data: String) {
        let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
        var rest = text[...]
        if let heading { rest = rest[try #require(rest.range(of: heading)).upperBound...] }
        let open = try #require(rest.range(of: "```sh\n"))
        let close = try #require(rest[open.upperBound...].range(of: "```"))
        let written = String(rest[open.upperBound..<close.lowerBound])

        let data = temporaryPath("docs-walk")
        let node = try NodeProcess(data: data)
        let substitutions = [
            ("CL=.build/release/careledger", "CL=\(CLI.binary)"), ("NODE=http://127.0.0.1:8080", "NODE=\(node.url)"),
            ("K=careledger-data/keys", "K=\(data)/keys"),
        ]
        var script = written
        for (from, to) in substitutions {
            #expect(script.contains(from), "\(file)'s block sets \(from)")
            script = script.replacingOccurrences(of: from, with: to)
        }
        let directory = temporaryPath("docs-walk-cwd")
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
        #expect(process.terminationStatus == 0, "\(file): \(printed)")
        return (printed, node, data)
    }

    /// `run`, then `check` with what it printed, the node and its data directory; the node stopped
    /// and its data removed afterwards.
    static func walk(_ file: String, after heading: String? = nil, _ check: (String, NodeProcess, String) throws -> Void) throws {
        let (printed, node, data) = try run(file, after: heading)
        defer {
            node.stop()
            try? FileManager.default.removeItem(atPath: data)
        }
        try check(printed, node, data)
    }

    static func did(_ data: String, _ name: String) throws -> String { try CLI.did(keyFile: "\(data)/keys/\(name).key") }

    @Test func theReadmesThreeMinutesRunAsWritten() async throws {
        try Self.walk("README.md", after: "## Three minutes with it") { printed, node, data in
            #expect(printed.contains(#""text":"Asthma""#), "Dr Bob reads the diagnosis back")
            #expect(printed.contains("refused: Dr Carol has no consent"))
            // What the block claims: the ledger's access log has Dr Bob's read permitted and Dr Carol's denied.
            let bob = try Self.did(data, "dr-bob"), carol = try Self.did(data, "dr-carol")
            let log = try JSONValue.parse(try CLI.run(["access-log", "--node", node.url, "--key", "\(data)/keys/alice.key", "--json"]).stdout)
            let events = log["events"]?.arrayValue ?? []
            #expect(events.contains { $0["reader"]?.stringValue == bob && $0["outcome"]?.stringValue == "permit" && $0["records"] == .array([.string("asthma-1")]) })
            #expect(events.contains { $0["reader"]?.stringValue == carol && $0["outcome"]?.stringValue == "deny" })
            #expect(printed.contains("deny \(carol)"), "the block's own access log shows the refusal")
        }
    }

    @Test func thePatientRecordsWalkthroughRunsAsWritten() async throws {
        try Self.walk("docs/walkthrough-records.md") { printed, node, data in
            // Carol refused, then reads the first version, then is refused the second after the revocation.
            #expect(printed.components(separatedBy: "refused (exit 1)").count - 1 == 2, "\(printed)")
            #expect(printed.contains(#""text":"Asthma""#))
            let carol = try Self.did(data, "dr-carol")
            let consents = try JSONValue.parse(try CLI.run(["consent", "list", "--node", node.url, "--key", "\(data)/keys/alice.key", "--json"]).stdout)
            let carols = (consents["consents"]?.arrayValue ?? []).filter { $0["grantee"]?.stringValue == carol }
            #expect(carols.count == 1 && carols.first?["status"]?.stringValue == "revoked", "\(carols)")
            // The history shows both versions.
            #expect(printed.contains("v1 ") && printed.contains("v2 "), "\(printed)")
        }
    }

    @Test func theCommandLinesPatientControlExamplesRunAsWritten() async throws {
        try Self.walk("docs/cli.md", after: "## Examples: break the glass, review, erase") { printed, node, data in
            #expect(printed.contains(#""text":"Asthma""#), "Dr Carol reads in the emergency")
            #expect(printed.contains("reason=\"unconscious in the emergency room\""), "\(printed)")
            #expect(printed.contains("reviewed: justified"))
            #expect(printed.contains("node attestation"))
            #expect(printed.hasSuffix("exit 1 (erased)\n"), "\(printed)")
        }
    }
}
