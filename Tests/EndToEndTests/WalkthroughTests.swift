import Foundation
import LedgerCore
import Testing

/// The five-minute walk-through (docs/walkthroughs.md), step by step, against `careledger up`.
@Suite(.serialized) struct WalkthroughTests {
    @Test func fiveMinuteWalkthroughAsTheDocsWriteIt() async throws {
        let data = temporaryPath("readme")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let node = try NodeProcess(data: data)
        defer { node.stop() }

        // The banner's verifier key is the one the API serves.
        let vkey = try await HTTP.request("GET", node.url + "/v1/checkpoint/key").text.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(node.bannerValue("Checkpoint key:") == vkey)
        _ = try NoteVerifier(vkey: vkey)

        // Timestamp a document, signed by alice; dr-bob's copy of its hash is refused (exit 2, one line).
        let (hash, id) = try CLI.notarizeDischargeLetter(node: node.url, keys: "\(data)/keys")

        // The transaction, its raw bytes hashing to its id.
        let transaction = try await HTTP.request("GET", node.url + "/v1/transactions/\(id)")
        #expect(transaction.status == 200)
        #expect(transaction.json["status"] == .string("committed"))
        let raw = try Base64.decode(try #require(transaction.json["raw"]?.stringValue))
        #expect(Hash.sha256(raw).hex == id)

        // The state entry, with a proof against the state root it names.
        let state = try await HTTP.request("GET", node.url + "/v1/state/notary/\(hash)")
        #expect(state.status == 200)
        #expect(state.json["value"]?["label"] == .string("discharge letter"))
        let proof = try StateProof(json: try #require(state.json["proof"]))
        let root = try Hash(hex: try #require(state.json["stateRoot"]?.stringValue))
        let valueRaw = try Base64.decode(try #require(state.json["valueRaw"]?.stringValue))
        try proof.verify(root: root, key: Array("notary/\(hash)".utf8), value: valueRaw)
        let blocks = try await HTTP.request("GET", node.url + "/v1/blocks?from=0&limit=5")
        #expect(blocks.status == 200)

        // Inclusion, offline, against the signed checkpoint.
        let checkpoint = try await HTTP.request("GET", node.url + "/v1/checkpoint").text
        let checkpointFile = data + "/checkpoint.txt"
        try checkpoint.write(toFile: checkpointFile, atomically: true, encoding: .utf8)
        let inclusionFile = data + "/inclusion.json"
        try await HTTP.request("GET", node.url + "/v1/proofs/inclusion?id=\(id)").text.write(toFile: inclusionFile, atomically: true, encoding: .utf8)
        let included = try CLI.run(["proof", "verify", "--vkey", vkey, "--checkpoint", checkpointFile, "--inclusion", inclusionFile])
        #expect(included.status == 0, "\(included.stderr)")

        // Consistency from block 1's checkpoint to the latest, with the sizes read from the two notes.
        let old = try #require(try await HTTP.request("GET", node.url + "/v1/blocks/1").json["checkpoint"]?.stringValue)
        let oldFile = data + "/old.txt"
        try old.write(toFile: oldFile, atomically: true, encoding: .utf8)
        let oldSize = try #require(old.split(separator: "\n").dropFirst().first.map(String.init))
        let size = try #require(checkpoint.split(separator: "\n").dropFirst().first.map(String.init))
        #expect(Int(oldSize)! < Int(size)!)
        let consistencyFile = data + "/consistency.json"
        try await HTTP.request("GET", node.url + "/v1/proofs/consistency?from=\(oldSize)&to=\(size)").text
            .write(toFile: consistencyFile, atomically: true, encoding: .utf8)
        let consistent = try CLI.run(["proof", "verify", "--vkey", vkey, "--checkpoint", checkpointFile, "--consistency", consistencyFile, "--old-checkpoint", oldFile])
        #expect(consistent.status == 0, "\(consistent.stderr)")

        // Bad input: 400 with a stable code.
        let bad = try await HTTP.request("POST", node.url + "/v1/transactions", body: Array("{oops".utf8))
        #expect(bad.status == 400)
        #expect(bad.json["error"]?["code"] == .string("malformed_json"))

        // Ctrl-C stops the node cleanly, then the offline audit passes over everything it wrote.
        #expect(node.stopAndWait(signal: SIGINT) == 0)
        let audit = try CLI.run(["audit", "--data", data, "--json"])
        #expect(audit.status == 0, "\(audit.stderr)")
        let report = try JSONValue.parse(audit.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(report["transactions"] == .int(Int64(size)!))

        // `node --json` prints its banner as one JSON line; SIGTERM stops it cleanly too.
        let restarted = CLIProcess()
        let banner = try restarted.start(["node", "--data", data, "--http", "127.0.0.1:0", "--json"]) { buffer in
            buffer.split(separator: "\n").first.flatMap { try? JSONValue.parse(String($0)) }
        }
        #expect(banner["checkpointKey"] == .string(vkey))
        let api = try #require(banner["api"]?.stringValue)
        let health = try await HTTP.request("GET", api + "/healthz")
        #expect(health.json["height"] == banner["height"])
        restarted.stop(signal: SIGTERM)
        #expect(restarted.process.terminationStatus == 0)

        // Usage errors: exit 2 and one line.
        let usage = try CLI.run(["tx", "submit", "--bogus"])
        #expect(usage.status == 2)
        #expect(usage.stderr.split(separator: "\n").count == 1, "\(usage.stderr)")
    }
}
