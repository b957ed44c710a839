import Foundation
import LedgerCore
import Testing

/// The version a binary names is the newest one the changelog lists, and the one its node announces.
@Suite struct VersionTests {
    @Test func versionIsTheChangelogsNewestAndTheNodesOwn() async throws {
        let printed = try CLI.run(["--version"])
        #expect(printed.status == 0)
        #expect(printed.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == Release.version)
        let semver = try Regex(#"^[0-9]+\.[0-9]+\.[0-9]+$"#)
        #expect(Release.version.wholeMatch(of: semver) != nil)

        let changelog = repositoryRoot.appendingPathComponent("CHANGELOG.md")
        let text = try String(contentsOf: changelog, encoding: .utf8)
        let headings = text.split(separator: "\n").filter { $0.hasPrefix("## [") }.map { String($0) }
        #expect(headings.first == "## [Unreleased]")
        // Keep a Changelog: `## [x.y.z] - YYYY-MM-DD`, newest first.
        let released = headings.dropFirst()
        #expect(released.first?.hasPrefix("## [\(Release.version)] - ") == true, "the newest released version is the binary's")
        let form = try Regex(#"^## \[[0-9]+\.[0-9]+\.[0-9]+\] - [0-9]{4}-[0-9]{2}-[0-9]{2}$"#)
        for heading in released { #expect(heading.wholeMatch(of: form) != nil, "\(heading)") }
        let dates = released.map { $0.suffix(10) }
        #expect(dates == dates.sorted(by: >), "newest first")

        let data = temporaryPath("version")
        defer { try? FileManager.default.removeItem(atPath: data) }
        #expect(try CLI.run(["init", "--data", data]).status == 0)
        let node = try NodeProcess(data: data, command: "node")
        defer { node.stop() }
        let openapi = try JSONValue.parse(Array(try Data(contentsOf: URL(string: node.url + "/openapi.json")!)))
        #expect(openapi["info"]?["version"]?.stringValue == Release.version)
        let metadata = try JSONValue.parse(Array(try Data(contentsOf: URL(string: node.url + "/fhir/metadata")!)))
        #expect(metadata["software"]?["version"]?.stringValue == Release.version)
    }
}
