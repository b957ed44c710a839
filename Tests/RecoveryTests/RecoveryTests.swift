import Composition
import ContractKit
import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Node
import Prometheus
import Recovery
import Records
import RecoveryContract
import Standards
import Store
import Testing

@testable import Server

/// A patient's network: a hospital the node acts for (the custodian of her records), the patient, three guardians.
struct RecoveryScene {
    let network: TestNetwork
    let hospital = Party(), patient = Party(), guardians = [Party(), Party(), Party()]

    init() throws {
        let h = hospital
        network = try TestNetwork(
            contracts: .careLedger, capabilities: HostedCapabilities.careLedger,
            organisations: [ActingOrganisation(signing: h.key, encryption: h.encryption)])
    }

    func setUp(_ rc: inout RecordsClient, threshold: Int) async throws {
        try await rc.registerAll([(network.operatorParty, hospital, "organisation", "Hospital")] + ([patient] + guardians).map { ($0, $0, "patient", nil) })
        let setup: JSONValue = .object(["threshold": .int(Int64(threshold)), "guardians": .array(guardians.map { .string($0.did) })])
        #expect(try await rc.submit(patient, "recovery", "setup", setup)["status"] == .string("committed"))
    }

    func request(_ rc: inout RecordsClient, _ device: Party) async throws -> JSONValue {
        try await rc.submit(device, "recovery", "request", .object(["patient": .string(patient.did), "encryptionKey": .string(Base64.encode(device.encryption.publicKey))]))
    }

    func approve(_ rc: inout RecordsClient, _ guardian: Party, _ device: Party) async throws -> JSONValue {
        let request = try JSONValue.parse(network.node.stateValue(forKey: RecoveryContract.requestKey(patient.did, requester: device.did))!)
        return try await rc.submit(guardian, "recovery", "approve", .object([
            "patient": .string(patient.did), "requester": .string(device.did), "request": request["id"]!,
        ]))
    }
}

@Suite struct RecoveryTests {
    /// Recovery rotates: a thief holding Alice's old key reads and signs before the recovery; k−1 approvals
    /// change nothing; the k-th makes her new device's keys hers, and from then the thief is refused for
    /// reads (a new token, and the token he already had), for signing, and gets no key of a new version,
    /// while Alice reads her whole history with the new key alone (the custodian re-wrapped it from escrow).
    @Test func recoveryLocksAStolenKeyOut() async throws {
        let scene = try RecoveryScene()
        let alice = scene.patient, hospital = scene.hospital, guardians = scene.guardians
        let thief = Party(key: alice.key, encryption: alice.encryption)
        let newDevice = Party()
        try await scene.network.run { client in
            var rc = RecordsClient(client: client)
            try await scene.setUp(&rc, threshold: 2)
            let observation: JSONValue = .object(["resourceType": .string("Observation"), "id": .string("obs-1"), "status": .string("final")])
            #expect(try await rc.put(alice, patient: alice, recordID: "obs-1", version: 1, resource: observation, custodian: hospital)["status"] == .string("committed"))
            let older: JSONValue = .object(["resourceType": .string("Condition"), "id": .string("cond-1"), "clinicalStatus": .string("active")])
            #expect(try await rc.put(alice, patient: alice, recordID: "cond-1", version: 1, resource: older, custodian: hospital)["status"] == .string("committed"))

            // Before: the thief reads and signs as Alice.
            let before = try await rc.get("/v1/records/obs-1", as: thief)
            #expect(before.status == .ok)
            #expect(try SealedVersion.open(read: try rc.json(before), with: thief.encryption) == observation.canonicalBytes)
            let heldToken = try await rc.token(thief)
            let grant: JSONValue = .object(["grantee": .string(guardians[0].did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")])])
            #expect(try await rc.submit(thief, "consent", "grant", grant)["status"] == .string("committed"))

            // Alice's new device asks; one approval of two changes nothing.
            #expect(try await scene.request(&rc, newDevice)["status"] == .string("committed"))
            #expect(try await scene.approve(&rc, guardians[0], newDevice)["result"]?["status"] == .string("open"))
            #expect(try await rc.submit(thief, "consent", "grant", grant)["status"] == .string("committed"), "k−1 approvals change nothing")
            #expect(try scene.network.node.principal(alice.did)?.signingKey == alice.did)
            #expect(try await rc.submit(guardians[1], "recovery", "approve", .object([
                "patient": .string(alice.did), "requester": .string(newDevice.did), "request": .string(Hash.sha256([1]).hex),
            ]))["error"]?["code"] == .string("request_mismatch"))
            #expect(try await rc.submit(Party(), "recovery", "approve", .object([
                "patient": .string(alice.did), "requester": .string(newDevice.did), "request": .string(Hash.sha256([1]).hex),
            ]))["error"]?["code"] == .string("not_a_guardian"))
            // The k-th approval rotates.
            let done = try await scene.approve(&rc, guardians[2], newDevice)
            #expect(done["result"]?["status"] == .string("completed"), "\(done)")
            let rotated = try #require(try scene.network.node.principal(alice.did))
            #expect(rotated.signingKey == newDevice.did && rotated.encryptionKey == newDevice.encryption.publicKey)

            // After: the thief is refused everything.
            await #expect(throws: LedgerError.code("key_retired")) { _ = try await rc.token(thief) }
            let withOldToken = try await client.execute(uri: "/v1/records/obs-1", method: .get, headers: [.authorization: "Bearer \(heldToken)"])
            #expect(withOldToken.status == .forbidden)
            #expect(try await rc.submit(thief, "consent", "grant", grant)["error"]?["code"] == .string("key_retired"))
            // Alice, on her new device, is Alice: her did, her consents, her records.
            let alice2 = Party(key: newDevice.key, encryption: newDevice.encryption, principal: alice.did)
            let v2: JSONValue = .object(["resourceType": .string("Observation"), "id": .string("obs-1"), "status": .string("amended")])
            #expect(try await rc.put(alice2, patient: alice, recordID: "obs-1", version: 2, resource: v2, custodian: hospital)["status"] == .string("committed"))
            // The new version's key is wrapped for her new key only: the old one opens nothing of it.
            let read2 = try rc.json(try await rc.get("/v1/records/obs-1", as: alice2))
            #expect(try SealedVersion.open(read: read2, with: alice2.encryption) == v2.canonicalBytes)
            #expect(throws: LedgerError.self) { try SealedVersion.open(read: read2, with: thief.encryption) }
            // The version written before: re-wrapped by the custodian's node from escrow, as the rotation committed.
            var stale = try rc.json(try await rc.get("/v1/patients/\(alice.did)/keys", as: alice2))
            for _ in 0..<500 where !(stale["keys"]?.arrayValue?.isEmpty ?? true) {
                try await Task.sleep(for: .milliseconds(10))
                stale = try rc.json(try await rc.get("/v1/patients/\(alice.did)/keys", as: alice2))
            }
            #expect(stale["keys"] == .array([]) && stale["missing"] == .array([]), "\(stale)")
            let first = try rc.json(try await rc.get("/v1/records/cond-1", as: alice2))
            #expect(try SealedVersion.open(read: first, with: alice2.encryption) == older.canonicalBytes)
            #expect(throws: LedgerError.self) { try SealedVersion.open(read: first, with: thief.encryption) }
            // Her access log says what happened to her keys.
            let log = try rc.json(try await rc.get("/v1/patients/\(alice.did)/access-log", as: alice2))["events"]?.arrayValue ?? []
            let keyEvent = try #require(log.first { $0["kind"] == .string("key") })
            #expect(keyEvent["event"] == .string("rotated") && keyEvent["reason"] == .string("recovery"))
            #expect(keyEvent["by"] == .array([guardians[0].did, guardians[2].did].sorted().map { .string($0) }))
        }
    }

    /// Her own client moves what no custodian node here re-wraps: after she rotates (with her old key),
    /// every version still wrapped for the old key only is listed for her, opened with the old key,
    /// wrapped for the new one (`KeyRewrap`, as `careledger key rotate` does) and read with the new key alone.
    @Test func aPatientRewrapsHerOwnHistory() async throws {
        let hospital = Party(), alice = Party()
        let network = try TestNetwork(contracts: .careLedger, capabilities: HostedCapabilities.careLedger)
        try await network.run { client in
            var rc = RecordsClient(client: client)
            try await rc.registerAll([(network.operatorParty, hospital, "organisation", "Hospital"), (alice, alice, "patient", nil)])
            var resources: [String: JSONValue] = [:]
            for i in 0..<40 {
                let r: JSONValue = .object(["resourceType": .string("Observation"), "id": .string("obs-\(i)"), "valueString": .string("value \(i)")])
                resources["obs-\(i)"] = r
                #expect(try await rc.put(alice, patient: alice, recordID: "obs-\(i)", version: 1, resource: r, custodian: hospital)["status"] == .string("committed"))
            }
            let next = SigningKey(), nextEncryption = EncryptionKey()
            let enc = Base64.encode(nextEncryption.publicKey)
            let proof = next.signature(for: IdentityContract.rotationMessage(chainID: rc.chain, did: alice.did, signingKey: next.publicKey.did, encryptionKey: enc))
            #expect(try await rc.submit(alice, "identity", "rotate", .object([
                "signingKey": .string(next.publicKey.did), "encryptionKey": .string(enc), "proof": .string(Base64.encode(proof)),
            ]))["status"] == .string("committed"))
            let alice2 = Party(key: next, encryption: nextEncryption, principal: alice.did)
            // Before the re-wrap, the new key opens none of her history.
            let unmoved = try rc.json(try await rc.get("/v1/records/obs-0", as: alice2))
            #expect(throws: LedgerError.self) { try SealedVersion.open(read: unmoved, with: nextEncryption) }
            let stale = try rc.json(try await rc.get("/v1/patients/\(alice.did)/keys", as: alice2))
            #expect(try await rc.get("/v1/patients/\(alice.did)/keys", as: hospital).status == .forbidden)
            let items = try (stale["keys"]?.arrayValue ?? []).map { k in
                KeyRewrap.Item(recordID: k["recordId"]!.stringValue!, version: k["version"]!.intValue!, wrapped: try WrappedKey(json: k["wrappedKey"]!))
            }
            #expect(items.count == 40)
            let batch = try await KeyRewrap.rewrap(patient: alice.did, items: items, with: alice.encryption, for: nextEncryption.publicKey)
            for upload in batch.uploads { try await rc.upload(upload.blob, hash: upload.hash, as: alice2) }
            for payload in batch.payloads { #expect(try await rc.submit(alice2, "records", "rewrap", payload)["status"] == .string("committed")) }
            #expect(try rc.json(try await rc.get("/v1/patients/\(alice.did)/keys", as: alice2))["keys"] == .array([]))
            for (id, resource) in resources {
                let read = try rc.json(try await rc.get("/v1/records/\(id)", as: alice2))
                #expect(try SealedVersion.open(read: read, with: nextEncryption) == resource.canonicalBytes)
            }
        }
    }

    /// The attack of a stranger holding a patient's recovery off: a fresh key nobody registered opens a
    /// request for Alice. It gets no hold on her recovery: her own request opens at once, her guardians see
    /// both with their check codes and approve hers, and only hers becomes her keys.
    @Test func aStrangersRequestHoldsNobodyOff() async throws {
        let scene = try RecoveryScene()
        let alice = scene.patient, guardians = scene.guardians, newDevice = Party(), stranger = Party()
        try await scene.network.run(live: true) { client in
            var rc = RecordsClient(client: client)
            try await scene.setUp(&rc, threshold: 2)
            #expect(try await scene.request(&rc, stranger)["status"] == .string("committed"))
            #expect(try await scene.request(&rc, newDevice)["status"] == .string("committed"), "no request holds another off")
            // A registered principal's key is no new device.
            #expect(try await scene.request(&rc, guardians[0])["error"]?["code"] == .string("key_in_use"))

            // The guardians see both, with the codes to compare; a requester sees her own only; others nothing.
            let listed = try rc.json(try await rc.get("/v1/recovery/\(alice.did)/requests", as: guardians[0]))["requests"]?.arrayValue ?? []
            #expect(Set(listed.compactMap { $0["requester"]?.stringValue }) == [stranger.did, newDevice.did])
            let mine = try #require(listed.first { $0["requester"] == .string(newDevice.did) })
            #expect(mine["checkCode"] == .string(RecoveryContract.checkCode(requester: newDevice.did, encryptionKey: Base64.encode(newDevice.encryption.publicKey))))
            #expect(mine["checkCode"] != listed.first { $0["requester"] == .string(stranger.did) }?["checkCode"])
            let own = try rc.json(try await rc.get("/v1/recovery/\(alice.did)/requests", as: stranger))["requests"]?.arrayValue ?? []
            #expect(own.count == 1 && own[0]["requester"] == .string(stranger.did))
            #expect(try await rc.get("/v1/recovery/\(alice.did)/requests", as: Party()).status == .forbidden)
            // Nor does a requester read the set-up (who the guardians are) or another's request.
            #expect(try await rc.get("/v1/state/\(RecoveryContract.key(alice.did))", as: stranger).status == .forbidden)
            #expect(try await rc.get("/v1/state/\(RecoveryContract.requestKey(alice.did, requester: newDevice.did))", as: stranger).status == .forbidden)
            #expect(try await rc.get("/v1/state/\(RecoveryContract.requestKey(alice.did, requester: newDevice.did))", as: newDevice).status == .ok)

            // A guardian cancels the stranger's; the guardians approve Alice's, which makes its key hers alone.
            #expect(try await rc.submit(guardians[0], "recovery", "cancel", .object([
                "patient": .string(alice.did), "requester": .string(stranger.did), "reason": .string("not her"),
            ]))["status"] == .string("committed"))
            #expect(try await scene.approve(&rc, guardians[0], stranger)["error"]?["code"] == .string("no_open_request"))
            for g in guardians.prefix(2) { #expect(try await scene.approve(&rc, g, newDevice)["status"] == .string("committed")) }
            #expect(try scene.network.node.principal(alice.did)?.signingKey == newDevice.did)
            #expect(try await scene.approve(&rc, guardians[2], newDevice)["error"]?["code"] == .string("no_open_request"), "a completed request takes no approvals")
            // Recovery news goes to the patient, her guardians and the request's own requester, not to another requester.
            let news: JSONValue = .object(["type": .string("recovery.completed"), "patient": .string(alice.did), "requester": .string(newDevice.did)])
            #expect(scene.network.api.concerns(news, did: alice.did) && scene.network.api.concerns(news, did: newDevice.did))
            #expect(guardians.allSatisfy { scene.network.api.concerns(news, did: $0.did) })
            #expect(!scene.network.api.concerns(news, did: stranger.did) && !scene.network.api.concerns(news, did: Party().did))
        }
    }

    /// Requests by block time and set-up: any number open at once, the same key opening again
    /// replaces its own, a new set-up leaves the older requests unapprovable, and who may cancel
    /// (not the patient's current key: it may be the stolen one).
    @Test func requestsAndCancellation() throws {
        let chain = MemoryChain(contracts: .recovery)
        let patient = SigningKey(), guardian = SigningKey()
        for key in [patient, guardian] {
            #expect(chain.run(key, "identity", "register", .object(["role": .string("patient"), "encryptionKey": .string(Base64.encode(EncryptionKey().publicKey))])).status == .committed)
        }
        func setUp() {
            #expect(chain.run(patient, "recovery", "setup", .object(["threshold": .int(1), "guardians": .array([.string(guardian.publicKey.did)])])).status == .committed)
        }
        setUp()
        #expect(chain.run(patient, "recovery", "setup", .object(["threshold": .int(1), "kit": .string(Hash.sha256([1]).hex), "shares": .object([:])])).errorCode == "bad_payload",
            "the old set-up, which held key material, is refused")
        let hour: UInt64 = 3_600_000, t0: UInt64 = 1_790_000_000_000
        let intruder = SigningKey(), newDevice = SigningKey()
        func request(_ key: SigningKey, at time: UInt64) -> Receipt {
            chain.run(key, "recovery", "request", .object(["patient": .string(patient.publicKey.did), "encryptionKey": .string(Base64.encode(EncryptionKey().publicKey))]), time: time)
        }
        func state(_ requester: SigningKey) throws -> JSONValue {
            try JSONValue.parse(try #require(chain.state[RecoveryContract.requestKey(patient.publicKey.did, requester: requester.publicKey.did)]))
        }
        #expect(request(intruder, at: t0).status == .committed)
        #expect(request(newDevice, at: t0 + hour).status == .committed)
        let first = try state(newDevice)["id"]
        #expect(request(newDevice, at: t0 + 2 * hour).status == .committed)
        #expect(try state(newDevice)["id"] != first, "her own request replaced")
        #expect(try state(intruder)["status"] == .string("open"), "the other untouched")
        func cancel(_ key: SigningKey, _ requester: SigningKey) -> Receipt {
            chain.run(key, "recovery", "cancel", .object(["patient": .string(patient.publicKey.did), "requester": .string(requester.publicKey.did), "reason": .string("not her")]))
        }
        #expect(cancel(intruder, newDevice).errorCode == "forbidden", "a requester cancels her own only")
        #expect(cancel(patient, newDevice).errorCode == "forbidden", "the patient's key (maybe the stolen one) cancels nothing")
        #expect(cancel(guardian, intruder).status == .committed)
        #expect(cancel(guardian, intruder).errorCode == "no_open_request")
        #expect(cancel(newDevice, newDevice).status == .committed)
        #expect(request(newDevice, at: t0 + 3 * hour).status == .committed, "a cancelled request may be opened again")
        // After a new set-up, a request opened before it takes no approval.
        setUp()
        let approval: JSONValue = .object(["patient": .string(patient.publicKey.did), "requester": .string(newDevice.publicKey.did), "request": try state(newDevice)["id"]!])
        #expect(chain.run(guardian, "recovery", "approve", approval).errorCode == "no_open_request")
        #expect(chain.state[Signers.key(patient.publicKey.did)] == nil, "nothing rotated")
    }
}
