import ContractKit
import Foundation
import LedgerCore
import LedgerTesting
import RecordsContract
import Standards
import Testing

/// Key rotation and the two-organisation freeze, at the contracts: a principal's did stays while her
/// keys change; an old or frozen key signs nothing; a frozen key receives no new wrapped key.
@Suite struct KeyRotationTests {
    let chain = MemoryChain(contracts: .records)

    func register(_ key: SigningKey, role: String, by author: SigningKey? = nil, name: String? = nil) {
        var p: [String: JSONValue] = ["role": .string(role), "encryptionKey": .string(Base64.encode(EncryptionKey().publicKey))]
        if let author, author.publicKey != key.publicKey { p["subject"] = .string(key.publicKey.did) }
        if let name { p["name"] = .string(name) }
        #expect(chain.run(author ?? key, "identity", "register", .object(p)).status == .committed)
    }

    /// A `rotate` payload to `next` (its proof signed by `prover`, by default the new key itself) for `did`.
    func rotation(_ did: String, to next: SigningKey, encryption: EncryptionKey = EncryptionKey(), prover: SigningKey? = nil, subject: Bool = false) -> JSONValue {
        let enc = Base64.encode(encryption.publicKey)
        let proof = (prover ?? next).signature(for: IdentityContract.rotationMessage(chainID: "memory", did: did, signingKey: next.publicKey.did, encryptionKey: enc))
        var o: [String: JSONValue] = ["signingKey": .string(next.publicKey.did), "encryptionKey": .string(enc), "proof": .string(Base64.encode(proof))]
        if subject { o["subject"] = .string(did) }
        return .object(o)
    }

    func principal(_ did: String) throws -> Principal { try Principal(json: try JSONValue.parse(try #require(chain.state[Principal.key(did)]))) }

    func grant(_ signer: SigningKey, to grantee: String) -> Receipt {
        chain.run(signer, "consent", "grant", .object([
            "grantee": .string(grantee), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
        ]))
    }

    @Test func aRotationKeepsTheDidAndRetiresTheOldKey() throws {
        let alice = SigningKey(), bob = SigningKey(), k2 = SigningKey(), k3 = SigningKey()
        register(alice, role: "patient")
        register(bob, role: "patient")
        let did = alice.publicKey.did
        #expect(chain.run(alice, "identity", "rotate", rotation(did, to: k2, prover: alice)).errorCode == "bad_proof", "the new key proves itself")
        #expect(chain.run(alice, "identity", "rotate", rotation(bob.publicKey.did, to: k2)).errorCode == "bad_proof", "a proof for another did")
        #expect(chain.run(alice, "identity", "rotate", rotation(did, to: bob)).errorCode == "key_in_use", "a registered principal's key")
        let enc2 = EncryptionKey()
        let rotated = chain.run(alice, "identity", "rotate", rotation(did, to: k2, encryption: enc2))
        #expect(rotated.status == .committed)
        let from = Int64(chain.height)
        let p = try principal(did)
        #expect(p.signingKey == k2.publicKey.did && p.encryptionKey == enc2.publicKey && p.keysFrom == from)
        // The old key signs nothing for anyone any more; the new one signs as Alice.
        #expect(grant(alice, to: bob.publicKey.did).errorCode == "key_retired")
        #expect(throws: LedgerError.code("key_retired")) { try Signers.principal(signedBy: did) { self.chain.state[$0] } }
        #expect(try Signers.principal(signedBy: k2.publicKey.did) { self.chain.state[$0] } == did)
        #expect(grant(k2, to: bob.publicKey.did).status == .committed)
        let grants = try ConsentPolicy.grants(patient: did) { (key) throws(LedgerError) -> JSONValue? in
            guard let bytes = self.chain.state[key] else { return nil }
            return try JSONValue.parse(bytes)
        }
        #expect(grants.contains { $0.grantee == bob.publicKey.did }, "the grant is Alice's, under her did")
        #expect(chain.run(k2, "identity", "register", .object(["role": .string("patient"), "encryptionKey": .string(Base64.encode(EncryptionKey().publicKey))])).errorCode == "already_registered")
        // A second rotation; the history tells which key signed for her at every height.
        #expect(chain.run(k2, "identity", "rotate", rotation(did, to: k3)).status == .committed)
        let second = Int64(chain.height)
        #expect(chain.run(k2, "identity", "rotate", rotation(did, to: SigningKey())).errorCode == "key_retired")
        #expect(chain.run(k3, "identity", "rotate", rotation(did, to: k2)).errorCode == "key_in_use", "a key is never current twice")
        let history = try JSONValue.parse(try #require(chain.state[Principal.key(did)]))["keyHistory"]?.arrayValue ?? []
        #expect(history.map { $0["signingKey"]?.stringValue } == [did, k2.publicKey.did, k3.publicKey.did])
        #expect(history[0]["until"] == .int(from) && history[1]["from"] == .int(from) && history[2]["until"] == nil)
        #expect(history[1]["until"] == .int(second))
    }

    @Test func twoOrganisationsFreezeAKeyUntilItRotates() throws {
        let orgA = SigningKey(), orgB = SigningKey(), alice = SigningKey(), drC = SigningKey()
        register(orgA, role: "organisation", by: chain.operatorKey, name: "Hospital A")
        register(orgB, role: "organisation", by: chain.operatorKey, name: "Clinic B")
        register(alice, role: "patient")
        register(drC, role: "practitioner", by: orgA)
        let did = alice.publicKey.did
        #expect(grant(alice, to: orgA.publicKey.did).status == .committed)
        let freeze: JSONValue = .object(["subject": .string(did), "reason": .string("phone stolen, seen in person")])
        #expect(chain.run(drC, "identity", "freeze", freeze).errorCode == "forbidden", "organisations freeze")
        #expect(chain.run(orgA, "identity", "freeze", freeze).status == .committed)
        #expect(chain.run(orgA, "identity", "freeze", freeze).status == .committed, "the same organisation twice is still one")
        #expect(grant(alice, to: drC.publicKey.did).status == .committed, "one organisation alone freezes nothing")
        let frozen = chain.run(orgB, "identity", "freeze", freeze)
        #expect(frozen.result["status"] == .string("frozen"))
        #expect(chain.run(orgA, "identity", "freeze", freeze).errorCode == "already_frozen")
        // A frozen key signs nothing, not even its own rotation.
        #expect(grant(alice, to: drC.publicKey.did).errorCode == "key_frozen")
        #expect(chain.run(alice, "identity", "rotate", rotation(did, to: SigningKey())).errorCode == "key_frozen")
        // ... and receives no new wrapped key: a version for her is kept for her in the custodian's escrow.
        func put(_ id: String, recipients: [String]) -> Receipt {
            chain.run(orgA, "records", "put", .object([
                "recordId": .string(id), "patient": .string(did), "resourceType": .string("Observation"), "version": .int(1),
                "saltedHash": .string(Hash.sha256(Array(id.utf8)).hex), "custodian": .string(orgA.publicKey.did),
                "recipients": .array(recipients.sorted().map { .string($0) }), "keys": .string(Hash.sha256(Array((id + "k").utf8)).hex),
            ]))
        }
        #expect(put("obs-1", recipients: [did, orgA.publicKey.did]).errorCode == "key_frozen")
        #expect(put("obs-1", recipients: [orgA.publicKey.did]).status == .committed)
        // Two organisations rotate her keys to those of her new device, seen in person.
        let k2 = SigningKey()
        let inPerson = rotation(did, to: k2, subject: true)
        #expect(chain.run(orgA, "identity", "rotate", inPerson).result["status"] == .string("proposed"))
        #expect(chain.run(orgB, "identity", "rotate", inPerson).status == .committed)
        let p = try principal(did)
        #expect(p.frozen == nil && p.signingKey == k2.publicKey.did)
        #expect(grant(alice, to: drC.publicKey.did).errorCode == "key_retired")
        #expect(grant(k2, to: drC.publicKey.did).status == .committed)
        #expect(chain.run(orgA, "identity", "rotate", rotation(did, to: SigningKey(), subject: true)).errorCode == "not_frozen", "organisations rotate frozen keys only")
        // The version written while frozen waits for her new key; its custodian re-wraps it, nobody else.
        let entry = try RecordEntry(json: try JSONValue.parse(try #require(chain.state[RecordEntry.key("obs-1")])))
        #expect(entry.versions[0].needsRewrap(keysFrom: p.keysFrom))
        let rewrap: JSONValue = .object(["patient": .string(did), "versions": .array([.object([
            "recordId": .string("obs-1"), "version": .int(1), "keys": .string(Hash.sha256([9]).hex),
        ])])])
        #expect(chain.run(orgB, "records", "rewrap", rewrap).errorCode == "forbidden")
        #expect(chain.run(orgA, "records", "rewrap", rewrap).status == .committed)
        let after = try RecordEntry(json: try JSONValue.parse(try #require(chain.state[RecordEntry.key("obs-1")])))
        #expect(!after.versions[0].needsRewrap(keysFrom: p.keysFrom) && after.versions[0].recipients.contains(did))
        // A false alarm: frozen and lifted again by two organisations; the key signs again.
        #expect(chain.run(orgB, "identity", "freeze", freeze).status == .committed)
        #expect(chain.run(orgA, "identity", "freeze", freeze).result["status"] == .string("frozen"))
        #expect(chain.run(orgA, "records", "rewrap", rewrap).errorCode == "key_frozen")
        let lift: JSONValue = .object(["subject": .string(did)])
        #expect(chain.run(orgB, "identity", "unfreeze", lift).result["status"] == .string("proposed"))
        #expect(grant(k2, to: orgB.publicKey.did).errorCode == "key_frozen")
        #expect(chain.run(orgA, "identity", "unfreeze", lift).result["status"] == .string("unfrozen"))
        #expect(grant(k2, to: orgB.publicKey.did).status == .committed)
        // Each step is on her identity's key events (her access log shows them).
        let events = try JSONValue.parse(try #require(chain.state[Principal.key(did)]))["keyEvents"]?.arrayValue ?? []
        #expect(events.map { $0["event"]?.stringValue } == ["frozen", "rotated", "frozen", "unfrozen"])
        #expect(events[0]["by"] == .array([.string(orgA.publicKey.did), .string(orgB.publicKey.did)]))
        #expect(events[0]["reason"] == .string("phone stolen, seen in person"))
    }
}
