import ContractKit
import Foundation
import LedgerCore
import RecoveryContract
import Store
import Testing

/// The patient records walk-through (docs/walkthrough-records.md), through the real CLI against a real node process.
@Suite(.serialized) struct PatientWalkthroughTests {
    func did(_ file: String) throws -> String {
        try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: file))))["did"]!.stringValue!
    }

    @Test func grantReadRevoke() async throws {
        let data = temporaryPath("patient")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let node = try NodeProcess(data: data)
        defer { node.stop() }
        let keys = data + "/keys"
        let alice = try did("\(keys)/alice.key"), bob = try did("\(keys)/dr-bob.key"), carol = try did("\(keys)/dr-carol.key")
        let hospitalA = try did("\(keys)/hospital-a.key")
        let file = data + "/condition.json"
        try #"{"resourceType":"Condition","id":"asthma-1","code":{"text":"Asthma"}}"#.write(toFile: file, atomically: true, encoding: .utf8)
        func cl(_ args: [String]) throws -> CLI.Result { try CLI.run(args + ["--node", node.url]) }

        #expect(try cl(["consent", "grant", "--key", "\(keys)/alice.key", "--grantee", bob]).status == 0)
        let put = try cl(["record", "put", "--key", "\(keys)/dr-bob.key", "--patient", alice, "--file", file, "--custodian", hospitalA])
        #expect(put.status == 0, "\(put.stderr)")
        // Dr Carol at hospital B cannot read.
        let denied = try cl(["record", "get", "--key", "\(keys)/dr-carol.key", "--id", "asthma-1"])
        #expect(denied.status == 1)
        #expect(denied.stderr.contains("consent_denied"))
        // Alice grants her; she reads the decrypted resource.
        let grant = try cl(["consent", "grant", "--key", "\(keys)/alice.key", "--grantee", carol, "--types", "Condition", "--json"])
        #expect(grant.status == 0, "\(grant.stderr)")
        let grantID = try JSONValue.parse(grant.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["grant"]!.stringValue!
        let read = try cl(["record", "get", "--key", "\(keys)/dr-carol.key", "--id", "asthma-1"])
        #expect(read.status == 0, "\(read.stderr)")
        #expect(try JSONValue.parse(read.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["code"]?["text"] == .string("Asthma"))
        // Alice sees Carol's denied and granted reads.
        let log = try cl(["access-log", "--key", "\(keys)/alice.key", "--json"])
        let events = try JSONValue.parse(log.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["events"]!.arrayValue!
        #expect(events.filter { $0["reader"] == .string(carol) }.map { $0["outcome"] } == [.string("deny"), .string("permit")])
        // Her accounting of disclosures: Carol's permitted read only, with purpose and what was released.
        let accounting = try cl(["access-log", "--key", "\(keys)/alice.key", "--disclosures", "--json"])
        #expect(accounting.status == 0, "\(accounting.stderr)")
        let disclosures = try JSONValue.parse(accounting.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["disclosures"]!.arrayValue!
        let toCarol = disclosures.filter { $0["recipient"]?["did"] == .string(carol) }
        #expect(toCarol.count == 1)
        #expect(toCarol.first?["purpose"] == .string("treatment"))
        #expect(toCarol.first?["what"] == .array([.object(["recordId": .string("asthma-1"), "resourceType": .string("Condition")])]))
        #expect(toCarol.first?["recipient"]?["role"] == .string("practitioner"))
        #expect(try cl(["access-log", "--key", "\(keys)/dr-carol.key", "--patient", alice, "--disclosures"]).status == 1, "not Carol's to read")
        // Alice revokes; a new version is written; Carol cannot read it.
        #expect(try cl(["consent", "revoke", "--key", "\(keys)/alice.key", "--grant", grantID]).status == 0)
        try #"{"resourceType":"Condition","id":"asthma-1","code":{"text":"Asthma, controlled"}}"#.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try cl(["record", "put", "--key", "\(keys)/dr-bob.key", "--patient", alice, "--file", file, "--custodian", hospitalA]).status == 0)
        let afterRevocation = try cl(["record", "get", "--key", "\(keys)/dr-carol.key", "--id", "asthma-1"])
        #expect(afterRevocation.status == 1)
        #expect(afterRevocation.stderr.contains("consent_denied"), "\(afterRevocation.stderr)")
        let own = try cl(["record", "get", "--key", "\(keys)/alice.key", "--id", "asthma-1"])
        #expect(own.stdout.contains("Asthma, controlled"))
        // A new patient registers herself; hospital A registers a device (a wearable) it vouches for.
        let dave = data + "/dave.key", watch = data + "/watch.key"
        #expect(try CLI.run(["key", "generate", "--out", dave]).status == 0)
        #expect(try CLI.run(["key", "generate", "--out", watch]).status == 0)
        let registered = try cl(["patient", "register", "--key", dave])
        #expect(registered.status == 0, "\(registered.stderr)")
        #expect(try cl(["patient", "register", "--key", dave]).stderr.contains("already_registered"))
        #expect(try cl(["principal", "register", "--key", "\(keys)/hospital-a.key", "--role", "device", "--subject-key", watch]).status == 0)
        #expect(try cl(["principal", "register", "--key", dave, "--role", "device", "--subject-key", watch]).status == 1, "a patient does not vouch for devices")
        let device = try JSONValue.parse(Array(try cl(["principal", "show", try did(watch)]).stdout.utf8))
        #expect(device["role"] == .string("device"))
        #expect(device["organisation"] == .string(hospitalA))
        #expect(try JSONValue.parse(Array(try cl(["principal", "show", try did(dave)]).stdout.utf8))["role"] == .string("patient"))
        // Alice's consents (Carol's revoked), the record's history, her own timeline.
        let consents = try JSONValue.parse(Array(try cl(["consent", "list", "--key", "\(keys)/alice.key", "--json"]).stdout.utf8))["consents"]!.arrayValue!
        #expect(consents.first { $0["id"] == .string(grantID) }?["status"] == .string("revoked"))
        let history = try cl(["record", "history", "--key", "\(keys)/dr-bob.key", "--id", "asthma-1", "--json"])
        #expect(history.status == 0, "\(history.stderr)")
        #expect(try JSONValue.parse(Array(history.stdout.utf8))["versions"]?.arrayValue?.count == 2)
        let timeline = try cl(["patient", "timeline", "--key", "\(keys)/alice.key", "--json"])
        #expect(timeline.status == 0, "\(timeline.stderr)")
        #expect(try JSONValue.parse(Array(timeline.stdout.utf8))["records"]?.arrayValue?.first?["code"]?["text"] == .string("Asthma, controlled"))
        // Dave, her caregiver (delegate), grants Carol for her and revokes it again.
        #expect(try cl(["consent", "grant", "--key", "\(keys)/alice.key", "--grantee", try did(dave), "--delegate", "--actions", "grant,revoke"]).status == 0)
        let forAlice = try cl(["consent", "grant", "--key", dave, "--patient", alice, "--grantee", carol, "--types", "Condition", "--json"])
        #expect(forAlice.status == 0, "\(forAlice.stderr)")
        let delegated = try JSONValue.parse(Array(forAlice.stdout.utf8))["grant"]!.stringValue!
        // Alice's grant shared her keys with Dave; Dave's grant re-wraps the current one for Carol, who reads it.
        #expect(try JSONValue.parse(Array(forAlice.stdout.utf8))["shared"] == .int(1))
        let carolAgain = try cl(["record", "get", "--key", "\(keys)/dr-carol.key", "--id", "asthma-1"])
        #expect(carolAgain.status == 0 && carolAgain.stdout.contains("Asthma, controlled"), "\(carolAgain.stderr)")
        #expect(try cl(["consent", "revoke", "--key", dave, "--patient", alice, "--grant", delegated]).status == 0)
        #expect(try cl(["consent", "grant", "--key", "\(keys)/dr-carol.key", "--patient", alice, "--grantee", carol]).status == 1, "not her delegate")
        node.stop()
        #expect(try CLI.run(["audit", "--data", data]).status == 0)
    }

    /// Key recovery through the CLI: Alice names three guardians (2 of 3), loses her device, asks from
    /// a new key; two guardians approve, which makes the new device's keys hers; the old key signs nothing more.
    @Test func recoverThroughGuardians() async throws {
        let data = temporaryPath("recovery")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let node = try NodeProcess(data: data)
        defer { node.stop() }
        let keys = data + "/keys"
        func cl(_ args: [String]) throws -> CLI.Result { try CLI.run(args + ["--node", node.url]) }
        let alice = try did("\(keys)/alice.key")
        let guardians = try ["dr-bob", "dr-carol", "hospital-a"].map { try did("\(keys)/\($0).key") }
        let setup = try cl(["recovery", "setup", "--key", "\(keys)/alice.key", "--threshold", "2", "--guardian"] + guardians)
        #expect(setup.status == 0, "\(setup.stderr)")
        let newKey = data + "/new-device.key"
        #expect(try CLI.run(["key", "generate", "--out", newKey]).status == 0)
        // A stranger's key asks too: it holds Alice's request off no more than it gets her kit.
        let strangerKey = data + "/stranger.key"
        #expect(try CLI.run(["key", "generate", "--out", strangerKey]).status == 0)
        #expect(try cl(["recovery", "request", "--key", strangerKey, "--patient", alice]).status == 0)
        let requested = try cl(["recovery", "request", "--key", newKey, "--patient", alice])
        #expect(requested.status == 0, "\(requested.stderr)")
        let newDevice = try did(newKey)
        let code = RecoveryContract.checkCode(requester: newDevice, encryptionKey: Base64.encode(try KeyFile.loadEncryption(newKey).publicKey))
        #expect(requested.stdout.contains(code), "the code she reads out to her guardians")
        // The guardians see both requests with their codes; with two in progress they must name one.
        let listed = try cl(["recovery", "requests", "--key", "\(keys)/dr-bob.key", "--patient", alice])
        let stranger = try did(strangerKey)
        #expect(listed.stdout.contains("\(newDevice)  code \(code)  open") && listed.stdout.contains(stranger), "\(listed.stdout)")
        let ambiguous = try cl(["recovery", "approve", "--key", "\(keys)/dr-bob.key", "--patient", alice])
        #expect(ambiguous.status == 2 && ambiguous.stderr.hasPrefix("error: several_requests"), "\(ambiguous.stderr)")
        // Not a guardian: refused on her own device, nothing submitted.
        #expect(try cl(["recovery", "approve", "--key", "\(keys)/alice.key", "--patient", alice, "--requester", newDevice]).stderr.hasPrefix("error: not_a_guardian"))
        #expect(try cl(["recovery", "approve", "--key", "\(keys)/dr-bob.key", "--patient", alice, "--requester", newDevice]).stdout.contains("open"))
        let early = try cl(["recovery", "complete", "--key", newKey, "--patient", alice, "--out", data + "/early.key"])
        #expect(early.status != 0)
        #expect(try cl(["recovery", "cancel", "--key", "\(keys)/hospital-a.key", "--patient", alice, "--requester", stranger]).status == 0)
        #expect(try cl(["recovery", "approve", "--key", "\(keys)/hospital-a.key", "--patient", alice]).stdout.contains("completed"), "the only request in progress")
        let out = data + "/recovered.key"
        let complete = try cl(["recovery", "complete", "--key", newKey, "--patient", alice, "--out", out])
        #expect(complete.status == 0, "\(complete.stderr)")
        #expect(try CLI.did(keyFile: out) == alice, "the file signs for her did")
        let mode = try FileManager.default.attributesOfItem(atPath: out)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // Her old key (lost, or stolen) is refused; the new file reads her log, which tells of the rotation.
        let old = try cl(["access-log", "--key", "\(keys)/alice.key"])
        #expect(old.status == 1 && old.stderr.hasPrefix("error: key_retired"), "\(old.stderr)")
        let log = try cl(["access-log", "--key", out])
        #expect(log.status == 0 && log.stdout.contains("key rotated"), "\(log.stdout)\(log.stderr)")
    }
}
