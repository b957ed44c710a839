import Composition
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
import Store
import Testing

@testable import Server

/// The ledger's own data about a patient (her records' metadata, consents, access events, recovery)
/// is served only to her, her delegates, the parties it names and consortium members; whole blocks
/// only to consortium nodes and members.
@Suite struct LedgerReadPolicyTests {
    @Test func patientMetadataIsServedOnlyToThoseItConcerns() async throws {
        let network = try TestNetwork(contracts: .careLedger, capabilities: HostedCapabilities.careLedger)
        let operatorParty = network.operatorParty
        let node = network.node
        let hospital = Party(), drA = Party(), patient = Party(), caregiver = Party(), stranger = Party()
        try await network.run { client in
            var rc = RecordsClient(client: client)
            try await rc.registerAll([
                (operatorParty, hospital, "organisation", "Hospital"),
                (hospital, drA, "practitioner", nil),
                (patient, patient, "patient", nil),
                (caregiver, caregiver, "patient", nil),
                (stranger, stranger, "patient", nil),
            ])
            let grant = try await rc.submit(patient, "consent", "grant", .object([
                "grantee": .string(drA.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
            ]))
            #expect(grant["status"] == .string("committed"))
            _ = try await rc.submit(patient, "consent", "grant", .object([
                "grantee": .string(caregiver.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
                "delegate": .bool(true),
            ]))
            let condition: JSONValue = .object(["resourceType": .string("Condition"), "id": .string("c1"), "code": .object(["text": .string("Asthma")])])
            let put = try await rc.put(drA, patient: patient, recordID: "c1", version: 1, resource: condition, custodian: hospital)
            #expect(put["status"] == .string("committed"))
            let putID = try #require(put["id"]?.stringValue)
            #expect(try await rc.get("/v1/records/c1", as: drA).status == .ok)

            func status(_ uri: String, as party: Party?) async throws -> HTTPResponse.Status {
                if let party { return try await rc.get(uri, as: party).status }
                return try await client.execute(uri: uri, method: .get).status
            }
            // A records.put transaction: its payload names the patient and the recipients of the content key.
            for uri in ["/v1/transactions/\(putID)", "/v1/proofs/inclusion?id=\(putID)"] {
                #expect(try await status(uri, as: nil) == .unauthorized, "\(uri)")
                #expect(try await status(uri, as: stranger) == .forbidden, "\(uri)")
                let denied = try rc.json(try await rc.get(uri, as: stranger))
                #expect(denied["error"]?["code"] == .string("forbidden"))
                #expect(denied.canonicalString.contains("raw") == false, "nothing of the transaction in a refusal")
                for reader in [patient, caregiver, drA, operatorParty] { #expect(try await status(uri, as: reader) == .ok, "\(uri)") }
            }
            // The consent grant: the patient, her delegate and the grantee.
            let grantID = try #require(grant["id"]?.stringValue)
            #expect(try await status("/v1/transactions/\(grantID)", as: stranger) == .forbidden)
            #expect(try await status("/v1/transactions/\(grantID)", as: drA) == .ok)

            // A bundle naming two patients is served to neither patient alone (it would show her the other's records).
            let second = Party()
            _ = try await rc.register(second, second, "patient")
            _ = try await rc.submit(second, "consent", "grant", .object([
                "grantee": .string(drA.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
            ]))
            var puts: [JSONValue] = []
            for (who, id) in [(patient, "b1"), (second, "b2")] {
                let sealed = try SealedVersion(
                    resource: condition.canonicalBytes, recordID: id, version: 1,
                    recipients: [who.did: who.encryption.publicKey, hospital.did: hospital.encryption.publicKey])
                puts.append(sealed.putPayload(recordID: id, patient: who.did, resourceType: "Condition", version: 1, custodian: hospital.did))
            }
            let bundle = try await rc.submit(drA, "records", "bundle", .object(["puts": .array(puts)]))
            #expect(bundle["status"] == .string("committed"))
            let bundleID = try #require(bundle["id"]?.stringValue)
            #expect(try await status("/v1/transactions/\(bundleID)", as: patient) == .forbidden)
            #expect(try await status("/v1/transactions/\(bundleID)", as: second) == .forbidden)
            #expect(try await status("/v1/transactions/\(bundleID)", as: drA) == .ok)

            // State: the record's entry, her consents, her access log.
            let recordKey = "/v1/state/\(RecordEntry.key("c1"))"
            #expect(try await status(recordKey, as: nil) == .unauthorized)
            #expect(try await status(recordKey, as: stranger) == .forbidden)
            #expect(try await status(recordKey, as: patient) == .ok)
            #expect(try await status(recordKey, as: caregiver) == .ok)
            #expect(try rc.json(try await rc.get(recordKey, as: patient))["value"]?["patient"] == .string(patient.did))
            #expect(try await status("/v1/state/\(RecordEntry.indexKey(patient: patient.did))", as: stranger) == .forbidden)
            #expect(try await status("/v1/state/consent/\(patient.did)", as: stranger) == .forbidden)
            #expect(try await status("/v1/state/consent/\(patient.did)", as: caregiver) == .ok)
            // The access log's count is hers; an access event is also its reader's.
            #expect(try await status("/v1/state/\(AuditContract.countKey(patient: patient.did))", as: drA) == .forbidden)
            #expect(try await status("/v1/state/\(AuditContract.countKey(patient: patient.did))", as: patient) == .ok)
            #expect(try await status("/v1/state/\(AuditContract.eventKey(patient: patient.did, index: 0))", as: drA) == .ok)
            #expect(try await status("/v1/state/\(AuditContract.eventKey(patient: patient.did, index: 0))", as: stranger) == .forbidden)
            // An absent private entry does not say it is absent to a stranger.
            #expect(try await status("/v1/state/\(RecordEntry.key("no-such-record"))", as: stranger) == .forbidden)
            #expect(try await status("/v1/state/\(RecordEntry.key("no-such-record"))", as: operatorParty) == .ok)

            // Public parts stay public: notary entries and transactions, identities, block headers.
            let hash = Hash.sha256(Array("a protocol".utf8)).hex
            let notary = try await rc.submit(stranger, "notary", "record", .object(["hash": .string(hash), "label": .string("protocol v1")]))
            #expect(notary["status"] == .string("committed"))
            #expect(try await status("/v1/transactions/\(notary["id"]!.stringValue!)", as: nil) == .ok)
            #expect(try await status("/v1/state/notary/\(hash)", as: nil) == .ok)
            #expect(try await status("/v1/blocks/1", as: nil) == .ok)

            // Whom a patient's keys go to (her grantees) is told only to those who may write for her.
            #expect(try await status("/v1/patients/\(patient.did)/recipients?resourceType=Condition", as: stranger) == .forbidden)
            #expect(try await status("/v1/patients/\(patient.did)/recipients?resourceType=Condition", as: drA) == .ok)
            #expect(try await status("/v1/patients/\(patient.did)/recipients?resourceType=Condition", as: caregiver) == .ok)
            // Evidence keeps whole signed blocks: their bytes go to members only, the summary to anyone.
            _ = try node.store.addEvidence(.init(height: 9, validator: operatorParty.did, kind: "fork", detail: "test", first: [1, 2, 3], second: [4], timeMillis: 1))
            let publicEvidence = try rc.json(try await client.execute(uri: "/v1/consensus/evidence", method: .get))["evidence"]?[0]
            #expect(publicEvidence?["kind"] == .string("fork"))
            #expect(publicEvidence?["first"] == nil && publicEvidence?["second"] == nil)
            let memberEvidence = try rc.json(try await rc.get("/v1/consensus/evidence", as: operatorParty))["evidence"]?[0]
            #expect(memberEvidence?["first"] == .string(Base64.encode([1, 2, 3])))

            // Whole blocks and snapshots: consortium nodes and members only.
            for uri in ["/v1/sync/blocks?from=1", "/v1/sync/snapshot"] {
                #expect(try await status(uri, as: nil) == .unauthorized)
                #expect(try await status(uri, as: patient) == .forbidden)
                #expect(try await status(uri, as: operatorParty) == .ok)
            }
            func signed(_ uri: String, _ credentials: PeerCredentials) async throws -> HTTPResponse.Status {
                var headers = HTTPFields()
                for (name, value) in try credentials.headers(url: "http://localhost" + uri) { headers[HTTPField.Name(name)!] = value }
                return try await client.execute(uri: uri, method: .get, headers: headers).status
            }
            // A node key the chain does not name yet gets in with the consortium secret's proof, not without.
            let newcomer = SigningKey()
            #expect(try await signed("/v1/sync/blocks?from=1", PeerCredentials(key: newcomer, access: node.peerCredentials.access)) == .ok)
            #expect(try await signed("/v1/sync/blocks?from=1", PeerCredentials(key: newcomer, access: MemberAccess(secret: .random()))) == .forbidden)
            #expect(try await signed("/v1/sync/blocks?from=1", node.peerCredentials) == .ok)
            // The proof is bound to the did: another key cannot reuse it.
            var stolen = HTTPFields()
            for (name, value) in try PeerCredentials(key: newcomer, access: MemberAccess(secret: .random())).headers(url: "http://localhost/v1/sync/blocks?from=1") {
                stolen[HTTPField.Name(name)!] = value
            }
            stolen[HTTPField.Name(MemberAccess.header)!] = node.peerCredentials.access.proof(did: SigningKey().publicKey.did)
            #expect(try await client.execute(uri: "/v1/sync/blocks?from=1", method: .get, headers: stolen).status == .unauthorized, "the signature covers the proof")
        }
    }
}
