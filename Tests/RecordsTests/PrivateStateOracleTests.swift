import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Node
import RecordsContract
import Testing

@testable import Server

/// Public state proofs are no oracle for private state. A proof of a public key ends at whatever
/// leaf shares its path, and shows that leaf's key hash and value hash; an outsider who grinds
/// public keys whose SHA-256 shares a long prefix with SHA-256 of a private key (Alice's record
/// index, a consent's by-id entry) would see that key's leaf — its existence, and a value hash he
/// can match against guesses such as SHA-256 of `{"patient":"<did>"}`. Private entries' leaves are
/// salted with the consortium secret, so the leaves he reaches link to nothing he can compute.
@Suite struct PrivateStateOracleTests {
    /// A public (notary) key whose SHA-256 begins with the same `bits` bits as `target`.
    static func probe(sharing bits: Int, with target: Hash) -> String {
        var i = 0
        while true {
            let key = "notary/probe-\(i)"
            let h = Hash.sha256(utf8: key)
            if (0..<bits).allSatisfy({ h.bit($0) == target.bit($0) }) { return key }
            i += 1
        }
    }

    @Test func publicProofsDoNotRevealPrivateLeaves() async throws {
        let hospital = Party(), doctor = Party(), alice = Party(), outsider = Party()
        let network = try TestNetwork(contracts: .records, capabilities: recordsAlone)
        try await network.run(live: true) { client in
            var rc = RecordsClient(client: client)
            _ = try await rc.register(network.operatorParty, hospital, "organisation", name: "H")
            try await rc.registerAll([(hospital, doctor, "practitioner", nil), (alice, alice, "patient", nil), (outsider, outsider, "patient", nil)])
            let grant = try await rc.submit(alice, "consent", "grant", .object([
                "grantee": .string(doctor.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
            ]))
            #expect(grant["status"] == .string("committed"))
            let grantID = try #require(grant["result"]?["id"]?.stringValue ?? grant["id"]?.stringValue)
            let condition: JSONValue = .object(["resourceType": .string("Condition"), "id": .string("c1"), "code": .object(["text": .string("Asthma")])])
            #expect(try await rc.put(doctor, patient: alice, recordID: "c1", version: 1, resource: condition, custodian: hospital)["status"] == .string("committed"))

            #expect(try await rc.get("/v1/records/c1", as: doctor).status == .ok, "a read: an access event in Alice's audit trail")
            let byID = ConsentGrant.idKey(grantID)
            let privateTargets = [RecordEntry.indexKey(patient: alice.did), byID, RecordEntry.key("c1"), AuditContract.countKey(patient: alice.did)]
            for key in privateTargets { #expect(network.node.stateValue(forKey: key) != nil, "\(key) exists") }
            let consentValueHash = Hash.sha256(JSONValue.object(["patient": .string(alice.did)]).canonicalBytes)
            #expect(network.node.stateValue(forKey: byID).map(Hash.sha256) == consentValueHash, "the guessable value the attack matches")

            // What an outsider sees: the proof of a public key, unauthenticated.
            func leaf(of key: String) async throws -> (keyHash: String?, valueHash: String?, answer: JSONValue) {
                let r = try await client.execute(uri: "/v1/state/\(key)", method: .get)
                #expect(r.status == .ok)
                let answer = try rc.json(r)
                return (answer["proof"]?["leaf"]?["keyHash"]?.stringValue, answer["proof"]?["leaf"]?["valueHash"]?.stringValue, answer)
            }
            // The attack works on public state (there it reveals nothing private): a probe sharing 14
            // bits with Alice's identity entry ends at that entry's leaf.
            let identity = Principal.key(alice.did)
            let control = try await leaf(of: Self.probe(sharing: 14, with: Hash.sha256(utf8: identity)))
            #expect(control.keyHash == Hash.sha256(utf8: identity).hex, "a public leaf is found by its key hash")
            // On private state it ends at an empty subtree or at leaves that link to nothing.
            for key in privateTargets {
                let reached = try await leaf(of: Self.probe(sharing: 14, with: Hash.sha256(utf8: key)))
                #expect(reached.keyHash != Hash.sha256(utf8: key).hex, "\(key): its leaf is not where SHA-256 of its key puts it")
                #expect(reached.valueHash != consentValueHash.hex, "no leaf's value hash is SHA-256 of {\"patient\": alice}")
                #expect(reached.answer["salt"] == nil, "no salt in a public answer")
            }
            // The private entries themselves are not served to an outsider, salt or not.
            #expect(try await client.execute(uri: "/v1/state/\(byID)", method: .get).status == .unauthorized)
            #expect(try await rc.get("/v1/state/\(byID)", as: outsider).status == .forbidden)

            // Alice, whose entry it is, gets the salt and checks the proof with it.
            let own = try rc.json(try await rc.get("/v1/state/\(RecordEntry.indexKey(patient: alice.did))", as: alice))
            let salt = try #require(own["salt"]?.stringValue.flatMap(Hex.decode))
            let proof = try StateProof(json: try #require(own["proof"]))
            let root = try Hash(hex: try #require(own["stateRoot"]?.stringValue))
            let value = try Base64.decode(try #require(own["valueRaw"]?.stringValue))
            try proof.verify(root: root, key: RecordEntry.indexKey(patient: alice.did), value: value, salt: salt)
            #expect(throws: LedgerError.code("bad_proof")) {
                try proof.verify(root: root, key: RecordEntry.indexKey(patient: alice.did), value: value, salt: nil)
            }
        }
        // The offline audit recomputes every state root with the consortium secret: without it, it stops
        // and says why; with another, the roots do not match.
        let directory = network.chain.directory
        #expect(try ChainAuditor.audit(directory: directory, contracts: .records).transactions > 5)
        let secret = directory.secret
        try FileManager.default.moveItem(atPath: secret, toPath: secret + ".away")
        #expect(throws: LedgerError.code("no_secret")) { try ChainAuditor.audit(directory: directory, contracts: .records) }
        #expect(FileManager.default.createFile(atPath: secret, contents: Data(repeating: 7, count: 32)))
        #expect(throws: ChainAuditor.Failure.self) { try ChainAuditor.audit(directory: directory, contracts: .records) }
        try FileManager.default.removeItem(atPath: secret)
        try FileManager.default.moveItem(atPath: secret + ".away", toPath: secret)
        #expect(try ChainAuditor.audit(directory: directory, contracts: .records).transactions > 5)
    }
}
