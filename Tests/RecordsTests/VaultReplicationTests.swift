import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Node
import RecordsContract
import Standards
import Testing

@testable import Server

/// Record ciphertexts across a consortium: a version is uploaded to one node, read through another
/// organisation's node, and kept by its custodian's node wherever it was uploaded; erasure reaches
/// every copy.
@Suite(.serialized, .timeLimit(.minutes(5))) struct VaultReplicationTests {
    @Test func readersAndCustodiansObtainCiphertextsFromPeers() async throws {
        let hospital = Party()
        let clinic = Party()
        let acting = [
            0: ActingOrganisation(signing: hospital.key, encryption: hospital.encryption),
            1: ActingOrganisation(signing: clinic.key, encryption: clinic.encryption),
        ]
        try await withNetwork(nodes: 4, contracts: .records, capabilities: recordsAlone, http: true, acting: acting) { net in
            try await net.waitServing()
            let patient = Party()
            let doctor = Party()
            let nurse = Party()
            let vault0 = try Vault(path: net.directories[0].vault)
            let vault1 = try Vault(path: net.directories[1].vault)
            @Sendable func recordHash(_ id: String) throws -> Hash {
                let entry = try RecordEntry(json: try JSONValue.parse(try #require(net.node(0).stateValue(forKey: RecordEntry.key(id)))))
                return try Hash(hex: try #require(entry.current?.saltedHash))
            }
            @Sendable func caughtUp(_ answer: JSONValue) async throws {
                let height = try #require(answer["height"]?.intValue)
                try await eventually("every node executed block \(height)") { net.running.allSatisfy { $0.height >= UInt64(height) } }
            }
            try await Application(router: net.api(0).router()).test(.router) { c0 in
                try await Application(router: net.api(1).router()).test(.router) { c1 in
                    var rc0 = RecordsClient(client: c0, chain: net.chainID)
                    var rc1 = RecordsClient(client: c1, chain: net.chainID)
                    let operatorParty = Party(key: try net.key(0))
                    try await rc0.registerAll([
                        (operatorParty, hospital, "organisation", "Hospital"), (operatorParty, clinic, "organisation", "Clinic"),
                        (hospital, doctor, "practitioner", nil), (clinic, nurse, "practitioner", nil), (patient, patient, "patient", nil),
                    ])
                    for grantee in [doctor, nurse] {
                        let grant = try await rc0.submit(patient, "consent", "grant", .object([
                            "grantee": .string(grantee.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
                        ]))
                        #expect(grant["status"] == .string("committed"), "\(grant)")
                        try await caughtUp(grant)
                    }

                    // The doctor files an observation with the hospital through its node: the blob is there only.
                    let observation: JSONValue = .object([
                        "resourceType": .string("Observation"), "id": .string("obs-1"), "status": .string("final"),
                        "code": .object(["text": .string("Heart rate")]), "valueQuantity": .object(["value": .int(72), "unit": .string("/min")]),
                    ])
                    let put = try await rc0.put(doctor, patient: patient, recordID: "obs-1", version: 1, resource: observation, custodian: hospital)
                    #expect(put["result"]?["status"] == .string("current"), "\(put)")
                    try await caughtUp(put)
                    let hash = try recordHash("obs-1")
                    #expect(vault0.contains(hash))
                    #expect(!vault1.holds(hash))

                    // The nurse reads through the clinic's node: it fetches the ciphertext from its peers (checked
                    // against the salted hash on chain) and keeps it in memory only; she decrypts with her own key.
                    let timeline = try await rc1.get("/v1/patients/\(patient.did)/records", as: nurse)
                    #expect(timeline.status == .ok, "\(String(buffer: timeline.body))")
                    let reads = try #require(try rc1.json(timeline)["records"]?.arrayValue)
                    #expect(reads.count == 1)
                    #expect(try SealedVersion.open(read: reads[0], with: nurse.encryption) == observation.canonicalBytes)
                    let single = try await rc1.get("/v1/records/obs-1", as: nurse)
                    #expect(single.status == .ok, "\(String(buffer: single.body))")
                    #expect(try SealedVersion.open(read: try rc1.json(single), with: nurse.encryption) == observation.canonicalBytes)
                    #expect(vault1.holds(hash) && !vault1.contains(hash), "a reader's node keeps no copy on disk")

                    // The blobs are served to consortium nodes only, and only for the record that names them.
                    #expect(try await rc0.get("/v1/sync/vault/\(hash.hex)?record=obs-1", as: patient).status == .forbidden)
                    #expect(try await rc0.get("/v1/sync/vault/\(hash.hex)?record=obs-1", as: nurse).status == .forbidden)
                    #expect(Hash.sha256(Array(try await memberGet(net.url(0) + "/v1/sync/vault/\(hash.hex)?record=obs-1", as: net.node(2)))) == hash)
                    #expect(try await memberStatus(net.url(0) + "/v1/sync/vault/\(hash.hex)", net.node(2).peerCredentials) == 400)
                    // A blob the record does not name (anything else a vault holds, e.g. a recovery kit) is not served.
                    let other = RandomBytes.make(32) + RandomBytes.make(100)
                    try await rc0.upload(other, hash: Hash.sha256(other), as: patient)
                    #expect(try await memberStatus(net.url(0) + "/v1/sync/vault/\(Hash.sha256(other).hex)?record=obs-1", net.node(2).peerCredentials) == 404)
                    #expect(await net.node(1).fetchVaultBlob(Hash.sha256(other), for: VaultOwner(kind: "record", id: "obs-1")) == nil)

                    // A version larger than the in-memory cache takes (over 4 MiB) is read through another node too.
                    let large: JSONValue = .object([
                        "resourceType": .string("Observation"), "id": .string("obs-3"), "status": .string("final"),
                        "code": .object(["text": .string("Long ECG strip")]), "valueString": .string(String(repeating: "0123456789", count: 500_000)),
                    ])
                    let bigPut = try await rc0.put(doctor, patient: patient, recordID: "obs-3", version: 1, resource: large, custodian: hospital)
                    #expect(bigPut["result"]?["status"] == .string("current"), "\(bigPut)")
                    try await caughtUp(bigPut)
                    let bigRead = try await rc1.get("/v1/records/obs-3", as: nurse)
                    #expect(bigRead.status == .ok)
                    #expect(try SealedVersion.open(read: try rc1.json(bigRead), with: nurse.encryption) == large.canonicalBytes)

                    // The patient writes through the clinic's node a record she files with the hospital: the
                    // hospital's node fetches it as the version commits and keeps it.
                    let note: JSONValue = .object([
                        "resourceType": .string("Observation"), "id": .string("obs-2"), "status": .string("final"),
                        "code": .object(["text": .string("Body weight")]), "valueQuantity": .object(["value": .int(61), "unit": .string("kg")]),
                    ])
                    let own = try await rc1.put(patient, patient: patient, recordID: "obs-2", version: 1, resource: note, custodian: hospital)
                    #expect(own["result"]?["status"] == .string("current"), "\(own)")
                    try await caughtUp(own)
                    let noteHash = try recordHash("obs-2")
                    #expect(vault1.contains(noteHash))
                    try await eventually("the custodian's node keeps its copy") { vault0.contains(noteHash) }
                    let doctorRead = try await rc0.get("/v1/records/obs-2", as: doctor)
                    #expect(try SealedVersion.open(read: try rc0.json(doctorRead), with: doctor.encryption) == note.canonicalBytes)

                    // Erasure reaches every copy: the custodian's file, the uploading node's file, the reader's memory.
                    for id in ["obs-1", "obs-2", "obs-3"] {
                        let erased = try await rc0.submit(patient, "records", "erase", .object(["recordId": .string(id)]))
                        #expect(erased["status"] == .string("committed"), "\(erased)")
                        try await caughtUp(erased)
                    }
                    #expect(!vault0.holds(hash) && !vault1.holds(hash))
                    #expect(!vault0.holds(noteHash) && !vault1.holds(noteHash))
                    #expect(await net.node(1).fetchVaultBlob(hash, for: VaultOwner(kind: "record", id: "obs-1")) == nil, "no peer serves an erased version")
                    #expect(try await rc1.get("/v1/records/obs-1", as: nurse).status == .gone)

                    // Every consortium node attests on chain, with its own key, what it destroyed; the patient's
                    // erasure receipt, signed by the node that issues it, names all four attestations.
                    let nodes = Set((0..<4).map { net.node($0).publicKey.did })
                    for id in ["obs-1", "obs-2", "obs-3"] {
                        @Sendable func attesters() throws -> [String: Int64] {
                            guard let bytes = net.node(0).stateValue(forKey: AuditContract.erasureKey(patient: patient.did, recordID: id)) else { return [:] }
                            var out: [String: Int64] = [:]
                            for a in try JSONValue.parse(bytes)["attestations"]?.arrayValue ?? [] { out[a["node"]?.stringValue ?? ""] = a["destroyed"]?.intValue }
                            return out
                        }
                        try await eventually("every node attests the erasure of \(id)") { Set(try attesters().keys) == nodes }
                        #expect((try attesters()[net.node(0).publicKey.did] ?? 0) >= 1, "the uploading node destroyed its copy of \(id)")
                        let answer = try await rc0.get("/v1/records/\(id)/erasure", as: patient)
                        #expect(answer.status == .ok)
                        let signed = try rc0.json(answer)
                        let receipt = try #require(signed["receipt"])
                        #expect(signed["signer"]?.stringValue == net.node(0).publicKey.did)
                        let signature = try Base64.decode(try #require(signed["signature"]?.stringValue))
                        #expect(net.node(0).publicKey.isValidSignature(signature, for: receipt.canonicalBytes), "the receipt is signed by the node")
                        let listed = Set((receipt["attestations"]?.arrayValue ?? []).compactMap { $0["node"]?.stringValue })
                        #expect(listed == nodes, "the receipt of \(id) names every node's attestation")
                    }
                }
            }
        }
    }
}
