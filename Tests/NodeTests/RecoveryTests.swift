import Crypto
import Domains
import Foundation
import Hummingbird
import HummingbirdTesting
import LedgerCore
import Node
import Prometheus
import Standards
import Store
import Testing

@testable import Server

@Suite struct RecoveryTests {
    @Test func twoOfThreeGuardiansRecoverThePatientsKeys() async throws {
        let network = try TestNetwork()
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
                    let request = try JSONValue.parse(node.stateValue(forKey: RecoveryContract.requestKey(patient.did))!)
                    let payload = try RecoveryKit.approval(patient: patient.did, setup: state, request: request, guardian: guardians[index].did, key: guardians[index].encryption)
                    return try await rc.submit(guardians[index], "recovery", "approve", payload)
                }
                let shareOfFirst = state["shares"]![guardians[0].did]!
                let requestID = try JSONValue.parse(node.stateValue(forKey: RecoveryContract.requestKey(patient.did))!)["id"]!
                #expect(try await rc.submit(Party(), "recovery", "approve", .object(["patient": .string(patient.did), "request": requestID, "x": .int(1), "enc": shareOfFirst["enc"]!, "ct": shareOfFirst["ct"]!]))["status"] == .string("failed"))
                // An approval names the request it is for: one for another request does not land on this one.
                var stale = try RecoveryKit.approval(
                    patient: patient.did, setup: state, request: try JSONValue.parse(node.stateValue(forKey: RecoveryContract.requestKey(patient.did))!),
                    guardian: guardians[1].did, key: guardians[1].encryption).objectValue!
                stale["request"] = .string(Hash.sha256([1]).hex)
                #expect(try await rc.submit(guardians[1], "recovery", "approve", .object(stale))["error"]?["code"] == .string("request_mismatch"))
                #expect(throws: LedgerError.code("not_a_guardian")) {
                    try RecoveryKit.approval(patient: patient.did, setup: state, request: .object([:]), guardian: newDevice.did, key: newDevice.encryption)
                }
                #expect(try await approve(0)["result"]?["status"] == .string("open"))
                // Another key cannot replace the request in progress (which would reset the approvals
                // or swap the key the shares are wrapped for).
                let intruder = Party()
                let replaced = try await rc.submit(intruder, "recovery", "request", .object(["patient": .string(patient.did), "encryptionKey": .string(Base64.encode(intruder.encryption.publicKey))]))
                #expect(replaced["error"]?["code"] == .string("request_pending"), "\(replaced)")
                #expect(try JSONValue.parse(node.stateValue(forKey: RecoveryContract.requestKey(patient.did))!)["requester"] == .string(newDevice.did))
                let early = try JSONValue.parse(node.stateValue(forKey: RecoveryContract.requestKey(patient.did))!)
                #expect(throws: LedgerError.code("not_ready")) {
                    try RecoveryKit.recover(patient: patient.did, request: early, newKey: newDevice.encryption, kitCiphertext: [])
                }
                #expect(try await approve(2)["result"]?["status"] == .string("ready"))

                // On the new device: the two shares and the kit rebuild the old keys.
                let request = try JSONValue.parse(node.stateValue(forKey: RecoveryContract.requestKey(patient.did))!)
                let kit = try rc.json(try await rc.get("/v1/recovery/\(patient.did)/kit", as: newDevice))
                let keys = try RecoveryKit.recover(
                    patient: patient.did, request: request, newKey: newDevice.encryption, kitCiphertext: try Base64.decode(kit["ciphertext"]!.stringValue!))
                #expect(keys.signing.publicKey.did == patient.did)
                #expect(keys.encryption.rawRepresentation == patient.encryption.rawRepresentation)
                // The completion is recorded on chain, signed by the recovered key; nobody else can close it.
                #expect(try await rc.submit(newDevice, "recovery", "complete", .object(["patient": .string(patient.did)]))["error"]?["code"] == .string("forbidden"))
                let completed = try await rc.submit(Party(key: keys.signing), "recovery", "complete", .object(["patient": .string(patient.did)]))
                #expect(completed["result"]?["status"] == .string("completed"))
                #expect(completed["result"]?["requester"] == .string(newDevice.did))
                // A closed request gives its requester nothing more: neither the kit nor the recovery state.
                #expect(try await rc.get("/v1/recovery/\(patient.did)/kit", as: newDevice).status == .forbidden)
                #expect(try await rc.get("/v1/state/\(RecoveryContract.requestKey(patient.did))", as: newDevice).status == .forbidden)
                #expect(try await rc.get("/v1/state/\(RecoveryContract.requestKey(patient.did))", as: guardians[0]).status == .ok)
                #expect(try await approve(1)["error"]?["code"] == .string("no_open_request"), "a completed request takes no approvals")
                // A completed request holds nobody off: a new one may open at once.
                #expect(try await rc.submit(Party(), "recovery", "request", .object(["patient": .string(patient.did), "encryptionKey": .string(Base64.encode(EncryptionKey().publicKey))]))["status"] == .string("committed"))
        }
    }

    /// The request window, by block time: another key is refused for 72 h, the same key opening
    /// again does not extend its window, and after it anyone may open a request.
    @Test func requestWindow() throws {
        let chain = MemoryChain()
        let patient = SigningKey(), patientEnc = EncryptionKey(), guardian = SigningKey(), guardianEnc = EncryptionKey()
        for (key, enc) in [(patient, patientEnc), (guardian, guardianEnc)] {
            #expect(chain.run(key, "identity", "register", .object(["role": .string("patient"), "encryptionKey": .string(Base64.encode(enc.publicKey))])).status == .committed)
        }
        let setup = try RecoveryKit.setup(signing: patient, encryption: patientEnc, guardians: [(guardian.publicKey.did, guardianEnc.publicKey)], threshold: 1)
        #expect(chain.run(patient, "recovery", "setup", setup.payload).status == .committed)
        let hour: UInt64 = 3_600_000, t0: UInt64 = 1_790_000_000_000
        let intruder = SigningKey(), newDevice = SigningKey()
        func request(_ key: SigningKey, at time: UInt64) -> Receipt {
            chain.run(key, "recovery", "request", .object(["patient": .string(patient.publicKey.did), "encryptionKey": .string(Base64.encode(EncryptionKey().publicKey))]), time: time)
        }
        #expect(request(intruder, at: t0).status == .committed)
        #expect(request(newDevice, at: t0 + hour).errorCode == "request_pending")
        #expect(request(intruder, at: t0 + 71 * hour).status == .committed, "the same key may open it again…")
        #expect(request(newDevice, at: t0 + 72 * hour + 1).status == .committed, "…without extending its window")
        #expect(request(intruder, at: t0 + 73 * hour).errorCode == "request_pending")
        // A request by someone else is cancelled by a guardian (or the patient): it holds nobody off any more.
        func cancel(_ key: SigningKey, at time: UInt64) -> Receipt {
            chain.run(key, "recovery", "cancel", .object(["patient": .string(patient.publicKey.did), "reason": .string("not her")]), time: time)
        }
        #expect(cancel(intruder, at: t0 + 74 * hour).errorCode == "forbidden")
        #expect(cancel(guardian, at: t0 + 74 * hour).status == .committed)
        #expect(cancel(patient, at: t0 + 74 * hour).errorCode == "no_open_request")
        #expect(request(intruder, at: t0 + 75 * hour).status == .committed, "a cancelled request holds nobody off")
        #expect(cancel(patient, at: t0 + 75 * hour).status == .committed)
    }
}
