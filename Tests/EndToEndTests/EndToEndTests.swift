import Foundation
import LedgerCore
import Store
import Testing

@Suite(.serialized) struct EndToEndTests {
    @Test func cliAndHTTPWithProofsAndAudit() async throws {
        let data = temporaryPath("walk")
        defer { try? FileManager.default.removeItem(atPath: data) }
        // `init` then `node` (not `up`, which also registers the demo principals), so the log starts empty.
        #expect(try CLI.run(["init", "--data", data]).status == 0)
        #expect(try CLI.run(["init", "--data", data]).status == 2)
        let node = try NodeProcess(data: data, command: "node")
        defer { node.stop() }

        // Submit through the CLI, and the same hash again: the contract refuses it, the CLI exits 2.
        let (_, id) = try CLI.notarizeDischargeLetter(node: node.url, keys: "\(data)/keys")
        // Bad input: exit 2, one line on stderr.
        let bad = try CLI.run(["tx", "submit", "--node", node.url, "--key", "\(data)/keys/alice.key", "--contract", "notary", "--action", "record", "--payload", "{not json"])
        #expect(bad.status == 2)
        #expect(bad.stderr.split(separator: "\n").count == 1)
        #expect(try CLI.run(["tx", "submit", "--bogus"]).status == 2)

        // …and through HTTP with a key made by `careledger key generate`.
        let keyFile = data + "/extra.key"
        let generated = try CLI.run(["key", "generate", "--out", keyFile, "--json"])
        #expect(generated.status == 0)
        let attributes = try FileManager.default.attributesOfItem(atPath: keyFile)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let key = try KeyFile.load(keyFile)
        var ids = [id]
        for i in 0..<3 {
            let tx = try Transaction(
                chainID: "careledger-dev", signer: key, nonce: UInt64(i), contract: "notary", action: "record",
                payload: .object(["hash": .string(Hash.sha256(Array("http \(i)".utf8)).hex), "label": .string("http \(i)")]))
            let response = try await HTTP.request("POST", node.url + "/v1/transactions", body: tx.jsonView.canonicalBytes)
            #expect(response.status == 200)
            ids.append(tx.id.hex)
        }

        // Proofs checked offline by `careledger proof verify` against the signed checkpoint.
        let vkey = try await HTTP.request("GET", node.url + "/v1/checkpoint/key").text.trimmingCharacters(in: .whitespacesAndNewlines)
        let checkpointFile = data + "/checkpoint.txt"
        let early = data + "/checkpoint-early.txt"
        try await HTTP.request("GET", node.url + "/v1/blocks/1").json["checkpoint"]!.stringValue!.write(toFile: early, atomically: true, encoding: .utf8)
        try await HTTP.request("GET", node.url + "/v1/checkpoint").text.write(toFile: checkpointFile, atomically: true, encoding: .utf8)
        let proofFile = data + "/inclusion.json"
        let inclusion = try await HTTP.request("GET", node.url + "/v1/proofs/inclusion?id=\(ids[2])")
        try inclusion.text.write(toFile: proofFile, atomically: true, encoding: .utf8)
        let verified = try CLI.run(["proof", "verify", "--vkey", vkey, "--checkpoint", checkpointFile, "--inclusion", proofFile])
        #expect(verified.status == 0, "\(verified.stderr)")
        let consistencyFile = data + "/consistency.json"
        let consistency = try await HTTP.request("GET", node.url + "/v1/proofs/consistency?from=1&to=5")
        try consistency.text.write(toFile: consistencyFile, atomically: true, encoding: .utf8)
        let consistent = try CLI.run(["proof", "verify", "--vkey", vkey, "--checkpoint", checkpointFile, "--consistency", consistencyFile, "--old-checkpoint", early])
        #expect(consistent.status == 0, "\(consistent.stderr)")
        // A proof file whose tree size is negative is bad input (exit 2), not a crash.
        var negative = consistency.json.objectValue!
        negative["from"] = .int(-1)
        let negativeFile = data + "/consistency-negative.json"
        try JSONValue.object(negative).canonicalString.write(toFile: negativeFile, atomically: true, encoding: .utf8)
        let badFile = try CLI.run(["proof", "verify", "--vkey", vkey, "--checkpoint", checkpointFile, "--consistency", negativeFile, "--old-checkpoint", early])
        #expect(badFile.status == 2 && badFile.stderr.contains("bad_proof_file"), "\(badFile.status) \(badFile.stderr)")
        // A proof for a changed leaf fails with exit 1.
        var forged = inclusion.json.objectValue!
        forged["raw"] = .string(Base64.encode(Array("forged".utf8)))
        try JSONValue.object(forged).canonicalString.write(toFile: proofFile, atomically: true, encoding: .utf8)
        let refused = try CLI.run(["proof", "verify", "--vkey", vkey, "--checkpoint", checkpointFile, "--inclusion", proofFile])
        #expect(refused.status == 1)

        // The block holding leaf 3, which is tampered with below.
        var tamperedHeight: Int64?
        for id in ids {
            let view = try await HTTP.request("GET", node.url + "/v1/transactions/\(id)").json
            if view["leafIndex"] == .int(3) { tamperedHeight = view["height"]?.intValue }
        }
        let badHeight = try #require(tamperedHeight)

        // Audit the data offline, then tamper with it and audit again.
        node.stop()
        let audit = try CLI.run(["audit", "--data", data, "--json"])
        #expect(audit.status == 0, "\(audit.stderr)")
        #expect(try JSONValue.parse(audit.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["transactions"] == .int(5))
        let store = try BlockStore(path: data + "/ledger.sqlite")
        try store.unsafeExecute("UPDATE transactions SET raw = CAST(REPLACE(CAST(raw AS TEXT), 'http 1', 'http 9') AS BLOB) WHERE leaf_index = 3")
        try store.close()
        let tampered = try CLI.run(["audit", "--data", data])
        #expect(tampered.status == 1)
        #expect(tampered.stderr.contains("height \(badHeight):"), "the first bad height is named: \(tampered.stderr)")
        #expect(tampered.stderr.split(separator: "\n").count == 1)
    }

    /// SIGKILL under load: every transaction the node acknowledged as committed is there after restart.
    @Test func crashUnderLoadLosesNothingAcknowledged() async throws {
        let data = temporaryPath("crash")
        defer { try? FileManager.default.removeItem(atPath: data) }
        var node = try NodeProcess(data: data, extra: ["--block-interval-ms", "2"])
        let url = node.url
        let acknowledged = Acknowledged()
        let key = SigningKey()
        let writers = Task {
            await withTaskGroup(of: Void.self) { group in
                for w in 0..<4 {
                    group.addTask {
                        for i in 0..<10_000 {
                            let nonce = UInt64(w * 100_000 + i)
                            guard let tx = try? Transaction(
                                chainID: "careledger-dev", signer: key, nonce: nonce, contract: "notary", action: "record",
                                payload: .object(["hash": .string(Hash.sha256(Array("crash \(nonce)".utf8)).hex), "label": .string("c")]))
                            else { return }
                            guard let response = try? await HTTP.request("POST", url + "/v1/transactions", body: tx.jsonView.canonicalBytes, timeout: 5),
                                response.status == 200, response.json["status"] == .string("committed")
                            else { return }
                            acknowledged.add(tx.id.hex)
                        }
                    }
                }
            }
        }
        // Kill once some transactions were acknowledged, while the writers are still going (each
        // writes 10,000: they are never done by then). How fast a node commits is a benchmark's
        // question (`careledger bench`), not this test's; the deadline only guards against a hang.
        let deadline = Date().addingTimeInterval(120)
        while acknowledged.count < 50 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        node.stop(signal: SIGKILL)
        await writers.value
        let acked = acknowledged.all
        try #require(acked.count >= 50, "the node acknowledged transactions before it was killed")
        #expect(acked.count < 40_000, "the writers were still going when the node was killed")

        node = try NodeProcess(data: data, command: "node")
        defer { node.stop() }
        for id in acked {
            let response = try await HTTP.request("GET", node.url + "/v1/transactions/\(id)")
            #expect(response.status == 200, "acknowledged \(id) lost")
        }
        node.stop()
        let audit = try CLI.run(["audit", "--data", data])
        #expect(audit.status == 0, "\(audit.stderr)")
    }
}

final class Acknowledged: Sendable {
    private let ids = Mutex<[String]>([])
    func add(_ id: String) { ids.withLock { $0.append(id) } }
    var count: Int { ids.withLock { $0.count } }
    var all: [String] { ids.withLock { $0 } }
}

import Synchronization
