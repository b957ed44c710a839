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
                let secret = (0..<32).map { _ in UInt8.random(in: 0...255) }
                let kitPlain = JSONValue.object([
                    "privateKey": .string(Base64.encode(patient.key.seed)), "encryptionPrivateKey": .string(Base64.encode(patient.encryption.rawRepresentation)),
                ]).canonicalBytes
                let kitCipher = try ContentCipher.seal(kitPlain, key: SymmetricKey(data: secret), context: "recovery-kit/\(patient.did)")
                let salt = (0..<32).map { _ in UInt8.random(in: 0...255) }
                let kitHash = ContentCipher.saltedHash(salt: salt, ciphertext: kitCipher)
                let upload = try await client.execute(
                    uri: "/v1/vault/\(kitHash.hex)", method: .put, headers: [.authorization: "Bearer \(try await rc.token(patient))"],
                    body: ByteBuffer(bytes: salt + kitCipher))
                #expect(upload.status == .created)
                let shares = try Shamir.split(secret, threshold: 2, count: 3)
                var wrapped: [String: JSONValue] = [:]
                for (g, share) in zip(guardians, shares) {
                    let w = try KeyWrap.wrap(SymmetricKey(data: share.y), for: g.encryption.publicKey, context: RecoveryContract.context(patient: patient.did, x: Int64(share.x)))
                    var o = w.json.objectValue!
                    o["x"] = .int(Int64(share.x))
                    wrapped[g.did] = .object(o)
                }
                let setup = try await rc.submit(patient, "recovery", "setup", .object(["threshold": .int(2), "kit": .string(kitHash.hex), "shares": .object(wrapped)]))
                #expect(setup["status"] == .string("committed"))
                // The chain holds wrapped shares only: no share and no secret in the clear.
                let onChain = node.stateValue(forKey: RecoveryContract.key(patient.did)) ?? []
                #expect(!String(decoding: onChain, as: UTF8.self).contains(Base64.encode(shares[0].y)))

                // She loses her device. A new key opens a request; a stranger cannot approve; two guardians do.
                #expect(try await rc.submit(newDevice, "recovery", "request", .object(["patient": .string(patient.did), "encryptionKey": .string(Base64.encode(newDevice.encryption.publicKey))]))["status"] == .string("committed"))
                #expect(try await rc.get("/v1/recovery/\(patient.did)/kit", as: guardians[0]).status == .forbidden)
                func approve(_ index: Int) async throws -> JSONValue {
                    let g = guardians[index]
                    let mine = wrapped[g.did]!
                    let x = mine["x"]!.intValue!
                    let context = RecoveryContract.context(patient: patient.did, x: x)
                    let share = try KeyWrap.unwrap(try WrappedKey(json: mine), with: g.encryption, context: context)
                    var o = try KeyWrap.wrap(share, for: newDevice.encryption.publicKey, context: context).json.objectValue!
                    o["patient"] = .string(patient.did)
                    o["x"] = .int(x)
                    return try await rc.submit(g, "recovery", "approve", .object(o))
                }
                #expect(try await rc.submit(Party(), "recovery", "approve", .object(["patient": .string(patient.did), "x": .int(1), "enc": wrapped[guardians[0].did]!["enc"]!, "ct": wrapped[guardians[0].did]!["ct"]!]))["status"] == .string("failed"))
                #expect(try await approve(0)["result"]?["status"] == .string("open"))
                #expect(try await approve(2)["result"]?["status"] == .string("ready"))

                // On the new device: the two shares and the kit rebuild the old keys.
                let request = try JSONValue.parse(node.stateValue(forKey: RecoveryContract.requestKey(patient.did))!)
                var rebuilt: [Shamir.Share] = []
                for (_, a) in request["approvals"]!.objectValue! {
                    let x = a["x"]!.intValue!
                    let key = try KeyWrap.unwrap(try WrappedKey(json: a), with: newDevice.encryption, context: RecoveryContract.context(patient: patient.did, x: x))
                    rebuilt.append(Shamir.Share(x: UInt8(x), y: key.withUnsafeBytes { Array($0) }))
                }
                let recovered = try Shamir.combine(rebuilt)
                #expect(recovered == secret)
                let kit = try rc.json(try await rc.get("/v1/recovery/\(patient.did)/kit", as: newDevice))
                let plain = try ContentCipher.open(try Base64.decode(kit["ciphertext"]!.stringValue!), key: SymmetricKey(data: recovered), context: "recovery-kit/\(patient.did)")
                let keys = try JSONValue.parse(plain)
                #expect(try SigningKey(seed: try Base64.decode(keys["privateKey"]!.stringValue!)).publicKey.did == patient.did)
        }
    }
}
