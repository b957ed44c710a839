import Foundation
import LedgerCore
import Testing

/// Founding members sign the genesis through the CLI; the node refuses to start until all have.
@Suite struct GenesisCLITests {
    func did(_ file: String) throws -> String {
        try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: file))))["did"]!.stringValue!
    }

    @Test func membersSignBeforeTheNodeStarts() throws {
        let dir = temporaryPath("genesis")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let keyA = dir + "/a.key", keyB = dir + "/b.key", data = dir + "/data"
        #expect(try CLI.run(["key", "generate", "--out", keyA]).status == 0)
        #expect(try CLI.run(["key", "generate", "--out", keyB]).status == 0)
        #expect(try CLI.run(["init", "--data", data, "--chain-id", "founders", "--member", try did(keyA), try did(keyB)]).status == 0)
        let show = try CLI.run(["genesis", "show", "--data", data])
        #expect(show.status == 1)
        #expect(show.stdout.contains("still to sign"))
        let refused = try CLI.run(["node", "--data", data, "--http", "127.0.0.1:0"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("genesis_unsigned"))
        #expect(try CLI.run(["genesis", "sign", "--data", data, "--key", keyA]).stdout.contains("still to sign"))
        #expect(try CLI.run(["genesis", "sign", "--data", data, "--key", data + "/node.key"]).stderr.hasPrefix("error: not_a_member"))
        #expect(try CLI.run(["genesis", "sign", "--data", data, "--key", keyB]).stdout.contains("every founding member has signed"))
        #expect(try CLI.run(["genesis", "show", "--data", data]).status == 0)
        let node = try NodeProcess(data: data, command: "node")
        defer { node.stop() }
        // The node is up and answering for the founders' chain.
        #expect(!node.url.isEmpty)
        let unknown = try CLI.run(["tx", "get", "--node", node.url, String(repeating: "0", count: 64)])
        #expect(unknown.status == 1, "not found: refused by state")
        #expect(unknown.stderr.contains("not_found"))
    }
}
