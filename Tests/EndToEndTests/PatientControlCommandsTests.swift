import Foundation
import LedgerCore
import Testing

/// The patient's and the privacy officer's actions as commands (docs/cli.md): break the glass with a
/// stated reason, list and review emergency accesses, erase a record and show its erasure receipt.
@Suite struct PatientControlCommandsTests {
    static func did(_ keys: String, _ name: String) throws -> String { try CLI.did(keyFile: "\(keys)/\(name).key") }

    /// `careledger up` where Alice consents to Dr Bob's treatment and he wrote her Condition asthma-1
    /// (Hospital A its custodian): the node and its data directory.
    static func patientWithARecord(_ name: String) throws -> (NodeProcess, String) {
        let data = temporaryPath(name)
        let node = try NodeProcess(data: data)
        let keys = data + "/keys"
        func cl(_ arguments: [String]) throws -> CLI.Result { try CLI.run(arguments + ["--node", node.url]) }
        let alice = try did(keys, "alice"), bob = try did(keys, "dr-bob"), hospitalA = try did(keys, "hospital-a")
        #expect(try cl(["consent", "grant", "--key", "\(keys)/alice.key", "--grantee", bob]).status == 0)
        let file = data + "/condition.json"
        try Data(#"{"resourceType":"Condition","id":"asthma-1","code":{"text":"Asthma"}}"#.utf8).write(to: URL(fileURLWithPath: file))
        #expect(try cl(["record", "put", "--key", "\(keys)/dr-bob.key", "--patient", alice, "--file", file, "--custodian", hospitalA]).status == 0)
        return (node, data)
    }

    /// `key rotate`: new keys are Alice's from a block on, her did unchanged; the old key file is refused,
    /// the new one reads her history; a failed rotation leaves no new key file behind.
    @Test func rotateKeysFromTheCommandLine() async throws {
        let (node, data) = try Self.patientWithARecord("key-rotate")
        defer {
            node.stop()
            try? FileManager.default.removeItem(atPath: data)
        }
        let keys = data + "/keys"
        func cl(_ arguments: [String]) throws -> CLI.Result { try CLI.run(arguments + ["--node", node.url]) }
        let alice = try Self.did(keys, "alice")
        let next = data + "/alice-2.key"
        let rotated = try cl(["key", "rotate", "--key", "\(keys)/alice.key", "--out", next, "--reason", "new phone", "--json"])
        #expect(rotated.status == 0, "\(rotated.stderr)")
        let answer = try JSONValue.parse(Array(rotated.stdout.utf8))
        #expect(answer["did"] == .string(alice) && answer["signingKey"] != .string(alice))
        #expect(try Self.did(data, "alice-2") == alice, "the new file signs for her did")
        let mode = try FileManager.default.attributesOfItem(atPath: next)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let read = try cl(["record", "get", "--key", next, "--id", "asthma-1"])
        #expect(read.status == 0 && read.stdout.contains("Asthma"), "\(read.stdout)\(read.stderr)")
        let old = try cl(["record", "get", "--key", "\(keys)/alice.key", "--id", "asthma-1"])
        #expect(old.status == 1 && old.stderr.hasPrefix("error: key_retired"), "\(old.stderr)")
        let again = try cl(["key", "rotate", "--key", "\(keys)/alice.key", "--out", data + "/stolen.key"])
        #expect(again.status == 1 && !FileManager.default.fileExists(atPath: data + "/stolen.key"), "\(again.stderr)")
        #expect(try cl(["key", "rotate", "--key", next, "--out", next]).status == 2, "never over an existing key file")
        let shown = try JSONValue.parse(Array(try cl(["principal", "show", alice]).stdout.utf8))
        #expect(shown["keyHistory"]?.arrayValue?.count == 2 && shown["signingKey"] == answer["signingKey"])
        let log = try cl(["access-log", "--key", next])
        #expect(log.stdout.contains("key rotated by=\(alice) reason=new phone"), "\(log.stdout)")
    }

    @Test func breakTheGlassItsReviewAndErasureFromTheCommandLine() async throws {
        let (node, data) = try Self.patientWithARecord("patient-control")
        defer {
            node.stop()
            try? FileManager.default.removeItem(atPath: data)
        }
        let keys = data + "/keys"
        func cl(_ arguments: [String]) throws -> CLI.Result { try CLI.run(arguments + ["--node", node.url]) }
        let alice = try Self.did(keys, "alice")

        // Dr Carol has no consent: refused; a reason too short is bad input; a stated reason opens the window.
        #expect(try cl(["record", "get", "--key", "\(keys)/dr-carol.key", "--id", "asthma-1"]).status == 1)
        let short = try cl(["record", "get", "--key", "\(keys)/dr-carol.key", "--id", "asthma-1", "--reason", "urgent"])
        #expect(short.status == 2 && short.stderr.contains("bad_parameter"), "\(short.stderr)")
        let help = try CLI.run(["record", "get", "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(help.contains("--reason") && help.contains("10 characters or more"))
        let emergency = try cl(["record", "get", "--key", "\(keys)/dr-carol.key", "--id", "asthma-1", "--reason", "unconscious in the emergency room, allergies unknown"])
        #expect(emergency.status == 0, "\(emergency.stderr)")
        #expect(emergency.stdout.contains(#""text":"Asthma""#))

        // Hospital B's privacy officer (its organisation key) lists the access and reviews it.
        let listed = try cl(["break-glass", "list", "--key", "\(keys)/hospital-b.key", "--json"])
        #expect(listed.status == 0, "\(listed.stderr)")
        let access = try #require(try JSONValue.parse(listed.stdout)["accesses"]?.arrayValue?.first)
        #expect(access["patient"]?.stringValue == alice && access["status"]?.stringValue == "pending")
        #expect(access["reason"]?.stringValue == "unconscious in the emergency room, allergies unknown")
        let index = try #require(access["index"]?.intValue)
        #expect(try cl(["break-glass", "review", "--key", "\(keys)/hospital-b.key", "--patient", alice, "--index", "\(index)", "--outcome", "maybe"]).status == 2)
        let reviewed = try cl([
            "break-glass", "review", "--key", "\(keys)/hospital-b.key", "--patient", alice, "--index", "\(index)", "--outcome", "justified", "--note", "ER admission confirmed",
        ])
        #expect(reviewed.status == 0, "\(reviewed.stderr)")
        #expect(try JSONValue.parse(try cl(["break-glass", "list", "--key", "\(keys)/hospital-b.key", "--json"]).stdout)["accesses"] == .array([]), "none pending")
        let all = try JSONValue.parse(try cl(["break-glass", "list", "--key", "\(keys)/hospital-b.key", "--all", "--json"]).stdout)
        #expect(all["accesses"]?.arrayValue?.first?["status"]?.stringValue == "justified")
        #expect(all["accesses"]?.arrayValue?.first?["note"]?.stringValue == "ER admission confirmed")

        // Alice erases the record: the receipt names every node's attestation; nobody reads it any more.
        #expect(try cl(["record", "erase", "--key", "\(keys)/dr-bob.key", "--id", "asthma-1"]).status == 1, "only the patient erases")
        let erased = try cl(["record", "erase", "--key", "\(keys)/alice.key", "--id", "asthma-1", "--json"])
        #expect(erased.status == 0, "\(erased.stderr)")
        let receipt = try cl(["record", "erasure-receipt", "--key", "\(keys)/alice.key", "--id", "asthma-1", "--json"])
        #expect(receipt.status == 0, "\(receipt.stderr)")
        let signed = try JSONValue.parse(receipt.stdout)
        #expect(signed["receipt"]?["recordId"]?.stringValue == "asthma-1")
        #expect(signed["receipt"]?["attestations"]?.arrayValue?.isEmpty == false, "the node attested the keys' destruction")
        let text = try cl(["record", "erasure-receipt", "--key", "\(keys)/alice.key", "--id", "asthma-1"]).stdout
        #expect(text.contains("node attestation"))
        let afterwards = try cl(["record", "get", "--key", "\(keys)/dr-bob.key", "--id", "asthma-1"])
        #expect(afterwards.status != 0 && afterwards.stderr.contains("erased"), "\(afterwards.stderr)")
    }

    /// One exit-code rule for every command (docs/cli.md): each kind of outcome through at least two
    /// commands. 1 refused by policy or state (consent denied, forbidden, erased, already done), 2 bad
    /// input, 3 the node could not be reached.
    @Test func oneExitCodeRuleForEveryCommand() async throws {
        let (node, data) = try Self.patientWithARecord("exit-codes")
        defer {
            node.stop()
            try? FileManager.default.removeItem(atPath: data)
        }
        let keys = data + "/keys"
        func cl(_ arguments: [String], node url: String? = nil) throws -> CLI.Result { try CLI.run(arguments + ["--node", url ?? node.url]) }
        let alice = try Self.did(keys, "alice"), hospitalA = try Self.did(keys, "hospital-a")

        func expectExit(_ code: Int32, _ kind: String, _ arguments: [String], node url: String? = nil) throws {
            let result = try cl(arguments, node: url)
            #expect(result.status == code, "\(kind): careledger \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)")
            #expect(result.stderr.hasPrefix("error: ") && result.stderr.split(separator: "\n").count == 1, "\(kind): one error line")
        }
        // Consent denied.
        try expectExit(1, "consent denied", ["record", "get", "--key", "\(keys)/dr-carol.key", "--id", "asthma-1"])
        try expectExit(1, "consent denied", ["patient", "timeline", "--key", "\(keys)/dr-carol.key", "--patient", alice])
        // Forbidden.
        try expectExit(1, "forbidden", ["record", "erase", "--key", "\(keys)/dr-bob.key", "--id", "asthma-1"])
        try expectExit(1, "forbidden", ["consent", "list", "--key", "\(keys)/dr-carol.key", "--patient", alice])
        // Bad input: a file that is not there, a malformed argument, a value the node refuses as malformed.
        try expectExit(2, "bad input", ["record", "put", "--key", "\(keys)/dr-bob.key", "--patient", alice, "--file", data + "/none.json", "--custodian", hospitalA])
        try expectExit(2, "bad input", ["tx", "submit", "--key", "\(keys)/alice.key", "--contract", "notary", "--action", "record", "--payload", "{not json"])
        try expectExit(2, "bad input", ["record", "get", "--key", "\(keys)/dr-bob.key", "--id", "asthma-1", "--purpose", "curiosity"])
        // Erased, and already done.
        #expect(try cl(["record", "erase", "--key", "\(keys)/alice.key", "--id", "asthma-1"]).status == 0)
        try expectExit(1, "erased", ["record", "get", "--key", "\(keys)/dr-bob.key", "--id", "asthma-1"])
        try expectExit(1, "erased", ["record", "get", "--key", "\(keys)/alice.key", "--id", "asthma-1"])
        try expectExit(1, "already done", ["record", "erase", "--key", "\(keys)/alice.key", "--id", "asthma-1"])
        let grant = try #require(try JSONValue.parse(try cl(["consent", "list", "--key", "\(keys)/alice.key", "--json"]).stdout)["consents"]?[0]?["id"]?.stringValue)
        #expect(try cl(["consent", "revoke", "--key", "\(keys)/alice.key", "--grant", grant]).status == 0)
        try expectExit(1, "already done", ["consent", "revoke", "--key", "\(keys)/alice.key", "--grant", grant])
        // The node cannot be reached.
        try expectExit(3, "unreachable", ["record", "get", "--key", "\(keys)/dr-bob.key", "--id", "asthma-1"], node: "http://127.0.0.1:1")
        try expectExit(3, "unreachable", ["consent", "list", "--key", "\(keys)/alice.key"], node: "http://127.0.0.1:1")
    }
}
