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
import RecoveryContract
import Standards
import Store
import Testing

@testable import Server

@Suite struct RecoveryTests {
    @Test func twoOfThreeGuardiansRecoverThePatientsKeys() async throws {
        let network = try TestNetwork(contracts: .recovery, capabilities: recoveryAlone)
        let node = network.node
        let patient = Party()
        let guardians = [Party(), Party(), Party()]
        let newDevice = Party()

        try await network.run { client in
                var rc = RecordsClient(client: client)
                for p in [patient] + guardians {
                    #expect(try await rc.register(p, p, "patient")["status"] == .string("committed"))
                }
                // On her device: a secret S, the kit (her private keys under S) in the vault, S split 2 of 3.
                let setup = try RecoveryKit.setup(
                    signing: patient.key, encryption: patient.encryption, guardians: guardians.map { ($0.did, $0.encryption.publicKey) }, threshold: 2)
                let upload = try await client.execute(
                    uri: "/v1/vault/\(setup.kitHash.hex)", method: .put, headers: [.authorization: "Bearer \(try await rc.token(patient))"],
                    body: ByteBuffer(bytes: setup.blob))
                #expect(upload.status == .created)
                #expect(try await rc.submit(patient, "recovery", "setup", setup.payload)["status"] == .string("committed"))
                // The chain holds wrapped shares only: no key of hers in the clear.
                let onChain = String(decoding: node.stateValue(forKey: RecoveryContract.key(patient.did)) ?? [], as: UTF8.self)
                #expect(!onChain.contains(Base64.encode(patient.key.seed)) && !onChain.contains(Base64.encode(patient.encryption.rawRepresentation)))

                // She loses her device. A new key opens a request; a stranger cannot approve; two guardians do.
                #expect(try await rc.submit(newDevice, "recovery", "request", .object(["patient": .string(patient.did), "encryptionKey": .string(Base64.encode(newDevice.encryption.publicKey))]))["status"] == .string("committed"))
                #expect(try await rc.get("/v1/recovery/\(patient.did)/kit", as: guardians[0]).status == .forbidden)
                let state = try JSONValue.parse(node.stateValue(forKey: RecoveryContract.key(patient.did))!)
                func approve(_ index: Int) async throws -> JSONValue {
                    let request = try JSONValue.parse(node.stateValue(forKey: RecoveryContract.requestKey(patient.did, requester: newDevice.did))!)
                    let payload = try RecoveryKit.approval(patient: patient.did, setup: state, request: request, guardian: guardians[index].did, key: guardians[index].encryption)
                    return try await rc.submit(guardians[index], "recovery", "approve", payload)
                }
                let shareOfFirst = state["shares"]![guardians[0].did]!
                let requestID = try JSONValue.parse(node.stateValue(forKey: RecoveryContract.requestKey(patient.did, requester: newDevice.did))!)["id"]!
                #expect(try await rc.submit(Party(), "recovery", "approve", .object(["patient": .string(patient.did), "requester": .string(newDevice.did), "request": requestID, "x": .int(1), "enc": shareOfFirst["enc"]!, "ct": shareOfFirst["ct"]!]))["status"] == .string("failed"))
                // An approval names the request it is for: one for another request does not land on this one.
                var stale = try RecoveryKit.approval(
                    patient: patient.did, setup: state, request: try JSONValue.parse(node.stateValue(forKey: RecoveryContract.requestKey(patient.did, requester: newDevice.did))!),
                    guardian: guardians[1].did, key: guardians[1].encryption).objectValue!
                stale["request"] = .string(Hash.sha256([1]).hex)
                #expect(try await rc.submit(guardians[1], "recovery", "approve", .object(stale))["error"]?["code"] == .string("request_mismatch"))
                #expect(throws: LedgerError.code("not_a_guardian")) {
                    try RecoveryKit.approval(patient: patient.did, setup: state, request: .object([:]), guardian: newDevice.did, key: newDevice.encryption)
                }
                #expect(try await approve(0)["result"]?["status"] == .string("open"))
                // Another key's request does not touch the one in progress (its approvals, the key its shares are wrapped for).
                let intruder = Party()
                let other = try await rc.submit(intruder, "recovery", "request", .object(["patient": .string(patient.did), "encryptionKey": .string(Base64.encode(intruder.encryption.publicKey))]))
                #expect(other["status"] == .string("committed"), "\(other)")
                #expect(try JSONValue.parse(node.stateValue(forKey: RecoveryContract.requestKey(patient.did, requester: newDevice.did))!)["approvals"]?.objectValue?.count == 1)
                // An open request, not yet approved, gives no kit.
                #expect(try await rc.get("/v1/recovery/\(patient.did)/kit", as: newDevice).status == .forbidden)
                let early = try JSONValue.parse(node.stateValue(forKey: RecoveryContract.requestKey(patient.did, requester: newDevice.did))!)
                #expect(throws: LedgerError.code("not_ready")) {
                    try RecoveryKit.recover(patient: patient.did, request: early, newKey: newDevice.encryption, kitCiphertext: [])
                }
                #expect(try await approve(2)["result"]?["status"] == .string("ready"))

                // On the new device: the two shares and the kit rebuild the old keys.
                let request = try JSONValue.parse(node.stateValue(forKey: RecoveryContract.requestKey(patient.did, requester: newDevice.did))!)
                let kit = try rc.json(try await rc.get("/v1/recovery/\(patient.did)/kit", as: newDevice))
                let keys = try RecoveryKit.recover(
                    patient: patient.did, request: request, newKey: newDevice.encryption, kitCiphertext: try Base64.decode(kit["ciphertext"]!.stringValue!))
                #expect(keys.signing.publicKey.did == patient.did)
                #expect(keys.encryption.rawRepresentation == patient.encryption.rawRepresentation)
                // The completion is recorded on chain, signed by the recovered key; nobody else can close it.
                #expect(try await rc.submit(newDevice, "recovery", "complete", .object(["patient": .string(patient.did), "requester": .string(newDevice.did)]))["error"]?["code"] == .string("forbidden"))
                #expect(try await rc.submit(Party(key: keys.signing), "recovery", "complete", .object(["patient": .string(patient.did), "requester": .string(intruder.did)]))["error"]?["code"] == .string("not_ready"))
                let completed = try await rc.submit(Party(key: keys.signing), "recovery", "complete", .object(["patient": .string(patient.did), "requester": .string(newDevice.did)]))
                #expect(completed["result"]?["status"] == .string("completed"))
                #expect(completed["result"]?["requester"] == .string(newDevice.did))
                // A closed request gives its requester nothing more: neither the kit nor the recovery state.
                #expect(try await rc.get("/v1/recovery/\(patient.did)/kit", as: newDevice).status == .forbidden)
                #expect(try await rc.get("/v1/state/\(RecoveryContract.requestKey(patient.did, requester: newDevice.did))", as: newDevice).status == .forbidden)
                #expect(try await rc.get("/v1/state/\(RecoveryContract.requestKey(patient.did, requester: newDevice.did))", as: guardians[0]).status == .ok)
                #expect(try await approve(1)["error"]?["code"] == .string("no_open_request"), "a completed request takes no approvals")
                // The other request stays open for nothing: it was never approved.
                #expect(try await rc.get("/v1/recovery/\(patient.did)/kit", as: intruder).status == .forbidden)
        }
    }

    /// The attack of a stranger holding a patient's recovery off: a fresh key nobody registered opens a
    /// request for Alice. It gets neither her kit nor a hold on her recovery: her own request opens at
    /// once, her guardians see both with their check codes and approve hers, and only hers gets the kit.
    @Test func aStrangersRequestHoldsNobodyOff() async throws {
        // The release's capabilities: recovery news reaches the patient by the records capability's rule.
        let network = try TestNetwork(contracts: .careLedger, capabilities: HostedCapabilities.careLedger)
        let alice = Party(), guardians = [Party(), Party()], newDevice = Party(), stranger = Party()
        try await network.run(live: true) { client in
            var rc = RecordsClient(client: client)
            for p in [alice] + guardians { #expect(try await rc.register(p, p, "patient")["status"] == .string("committed")) }
            let setup = try RecoveryKit.setup(
                signing: alice.key, encryption: alice.encryption, guardians: guardians.map { ($0.did, $0.encryption.publicKey) }, threshold: 2)
            try await rc.upload(setup.blob, hash: setup.kitHash, as: alice)
            #expect(try await rc.submit(alice, "recovery", "setup", setup.payload)["status"] == .string("committed"))
            func open(_ p: Party) async throws -> JSONValue {
                try await rc.submit(p, "recovery", "request", .object(["patient": .string(alice.did), "encryptionKey": .string(Base64.encode(p.encryption.publicKey))]))
            }
            #expect(try await open(stranger)["status"] == .string("committed"))
            #expect(try await rc.get("/v1/recovery/\(alice.did)/kit", as: stranger).status == .forbidden)
            #expect(try await open(newDevice)["status"] == .string("committed"), "no request holds another off")

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

            // The guardians approve Alice's request; a guardian cancels the stranger's.
            let state = try JSONValue.parse(network.node.stateValue(forKey: RecoveryContract.key(alice.did))!)
            for g in guardians {
                let payload = try RecoveryKit.approval(patient: alice.did, setup: state, request: mine, guardian: g.did, key: g.encryption)
                #expect(try await rc.submit(g, "recovery", "approve", payload)["status"] == .string("committed"))
            }
            #expect(try await rc.submit(guardians[0], "recovery", "cancel", .object([
                "patient": .string(alice.did), "requester": .string(stranger.did), "reason": .string("not her"),
            ]))["status"] == .string("committed"))
            #expect(try await rc.get("/v1/recovery/\(alice.did)/kit", as: stranger).status == .forbidden)
            #expect(try await rc.get("/v1/recovery/\(alice.did)/kit", as: newDevice).status == .ok)
            // Recovery news goes to the patient, her guardians and the request's own requester, not to another requester.
            let news: JSONValue = .object(["type": .string("recovery.ready"), "patient": .string(alice.did), "requester": .string(newDevice.did)])
            #expect(network.api.concerns(news, did: alice.did) && network.api.concerns(news, did: newDevice.did))
            #expect(guardians.allSatisfy { network.api.concerns(news, did: $0.did) })
            #expect(!network.api.concerns(news, did: stranger.did) && !network.api.concerns(news, did: Party().did))
        }
    }

    /// Requests by block time and set-up: any number open at once, the same key opening again
    /// replaces its own, a new set-up leaves the older requests unapprovable, and who may cancel.
    @Test func requestsAndCancellation() throws {
        let chain = MemoryChain(contracts: .recovery)
        let patient = SigningKey(), patientEnc = EncryptionKey(), guardian = SigningKey(), guardianEnc = EncryptionKey()
        for (key, enc) in [(patient, patientEnc), (guardian, guardianEnc)] {
            #expect(chain.run(key, "identity", "register", .object(["role": .string("patient"), "encryptionKey": .string(Base64.encode(enc.publicKey))])).status == .committed)
        }
        func setUp() throws {
            let setup = try RecoveryKit.setup(signing: patient, encryption: patientEnc, guardians: [(guardian.publicKey.did, guardianEnc.publicKey)], threshold: 1)
            #expect(chain.run(patient, "recovery", "setup", setup.payload).status == .committed)
        }
        try setUp()
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
        #expect(cancel(guardian, intruder).status == .committed)
        #expect(cancel(patient, intruder).errorCode == "no_open_request")
        #expect(cancel(newDevice, newDevice).status == .committed)
        #expect(request(newDevice, at: t0 + 3 * hour).status == .committed, "a cancelled request may be opened again")
        // After a new set-up, a request opened before it takes no approval (its shares are no longer the patient's).
        try setUp()
        let setup = try JSONValue.parse(try #require(chain.state[RecoveryContract.key(patient.publicKey.did)]))
        let approval = try RecoveryKit.approval(patient: patient.publicKey.did, setup: setup, request: try state(newDevice), guardian: guardian.publicKey.did, key: guardianEnc)
        #expect(chain.run(guardian, "recovery", "approve", approval).errorCode == "no_open_request")
    }
}
