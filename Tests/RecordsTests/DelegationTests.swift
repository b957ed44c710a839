import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Node
import RecordsContract
import Server
import Standards
import Testing

/// A delegate acts only within her delegation: its types, purposes, period and the rights it names
/// (`grant`, `revoke`, `erase`, `delegate`); what she grants is bounded by it, ends no later, and
/// falls with it. Checked by the contracts, so every node refuses the same.
@Suite struct DelegationTests {
    @Test func aDelegateActsOnlyWithinHerDelegation() async throws {
        let hospital = Party(), clinician = Party(), alice = Party(), carer = Party(), carer2 = Party()
        let clock = ManualClock(startingAt: LedgerNode.systemClock() + 1000)
        let network = try TestNetwork(
            contracts: .records, capabilities: recordsAlone,
            acting: ActingOrganisation(signing: hospital.key, encryption: hospital.encryption), clock: clock.read)
        let operatorParty = network.operatorParty
        try await network.run { client in
            var rc = RecordsClient(client: client)
            _ = try await rc.register(operatorParty, hospital, "organisation", name: "Hospital")
            try await rc.registerAll([
                (hospital, clinician, "practitioner", nil), (alice, alice, "patient", nil), (carer, carer, "patient", nil),
                (carer2, carer2, "patient", nil),
            ])
            let condition: JSONValue = .object(["resourceType": .string("Condition"), "id": .string("c1"), "code": .object(["text": .string("Epilepsy")])])
            let immunization: JSONValue = .object([
                "resourceType": .string("Immunization"), "id": .string("i1"), "status": .string("completed"),
                "vaccineCode": .object(["text": .string("Tetanus")]), "patient": .object(["reference": .string("Patient/alice")]),
                "occurrenceDateTime": .string("2026-01-01"),
            ])
            #expect(try await rc.put(alice, patient: alice, recordID: "c1", version: 1, resource: condition, custodian: hospital)["status"] == .string("committed"))
            #expect(try await rc.put(alice, patient: alice, recordID: "i1", version: 1, resource: immunization, custodian: hospital)["status"] == .string("committed"))
            let now = Int64(clock.read())
            let minute: Int64 = 60_000
            func grant(_ author: Party, _ fields: [String: JSONValue]) async throws -> JSONValue {
                var payload = fields
                if author.did != alice.did { payload["patient"] = .string(alice.did) }
                return try await rc.submit(author, "consent", "grant", .object(payload))
            }
            func code(_ answer: JSONValue) -> String? { answer["error"]?["code"]?.stringValue ?? answer["status"]?.stringValue }
            func status(_ path: String, as party: Party) async throws -> HTTPResponse.Status { try await rc.get(path, as: party).status }
            let treatment: JSONValue = .array([.string("treatment")])
            let immunizations: JSONValue = .array([.string("Immunization")])

            // Alice: carer may act for her on Immunization, for treatment, for 10 minutes, and grant within that.
            let delegation = try await grant(alice, [
                "grantee": .string(carer.did), "purposes": treatment, "resourceTypes": immunizations, "end": .int(now + 10 * minute),
                "delegate": .bool(true), "actions": .array([.string("grant")]),
            ])
            #expect(code(delegation) == "committed")
            // Beyond it: herself all types and purposes with no end; a delegation to herself with no end; a clinician all types.
            #expect(code(try await grant(carer, [
                "grantee": .string(carer.did), "purposes": .array(ConsentGrant.purposes.sorted().map { .string($0) }), "resourceTypes": .array([.string("*")]),
            ])) == "beyond_delegation")
            #expect(code(try await grant(carer, [
                "grantee": .string(carer.did), "purposes": treatment, "resourceTypes": immunizations, "delegate": .bool(true),
                "actions": .array([.string("grant")]),
            ])) == "beyond_delegation")
            #expect(code(try await grant(carer, [
                "grantee": .string(carer.did), "purposes": treatment, "resourceTypes": immunizations, "end": .int(now + 5 * minute), "delegate": .bool(true),
            ])) == "beyond_delegation", "no right to delegate")
            #expect(code(try await grant(carer, ["grantee": .string(clinician.did), "purposes": treatment, "resourceTypes": .array([.string("*")])])) == "beyond_delegation")
            #expect(code(try await grant(carer, ["grantee": .string(clinician.did), "purposes": treatment, "categories": .array([.string("clinical")])])) == "beyond_delegation")
            #expect(code(try await grant(carer, [
                "grantee": .string(clinician.did), "purposes": .array([.string("research")]), "resourceTypes": immunizations, "end": .int(now + minute),
            ])) == "beyond_delegation", "another purpose")
            // So the clinician reads nothing of Alice's Condition, through /v1 or /fhir.
            #expect(try await status("/v1/records/c1", as: clinician) == .forbidden)
            let fhir = try await client.execute(
                uri: "/fhir/Condition/c1", method: .get, headers: [.authorization: "Bearer \(try await rc.token(clinician))"])
            #expect(fhir.status == .forbidden)
            // Within it: the clinician may read Alice's immunizations until 5 minutes from now.
            #expect(code(try await grant(carer, [
                "grantee": .string(clinician.did), "purposes": treatment, "resourceTypes": immunizations, "end": .int(now + 5 * minute),
            ])) == "committed")
            #expect(try await status("/v1/records/i1", as: clinician) != .forbidden)
            #expect(try await status("/v1/records/c1", as: clinician) == .forbidden)
            // Carer reads Alice's access log and the history of the records of her delegation's types only.
            #expect(try await status("/v1/patients/\(alice.did)/access-log", as: carer) == .ok)
            #expect(try await status("/v1/records/i1/history", as: carer) == .ok)
            #expect(try await status("/v1/records/c1/history", as: carer) == .forbidden)
            // Nor the record's ledger entry (authors, endorsements, hashes) outside her types.
            #expect(try await status("/v1/state/\(RecordEntry.key("i1"))", as: carer) == .ok)
            #expect(try await status("/v1/state/\(RecordEntry.key("c1"))", as: carer) == .forbidden)
            // No right to erase.
            #expect(code(try await rc.submit(carer, "records", "erase", .object(["recordId": .string("i1")]))) == "forbidden")

            // Ten minutes later her delegation is over, and with it what she granted and what she reads.
            clock.advance(by: UInt64(10 * minute))
            #expect(try await status("/v1/patients/\(alice.did)/access-log", as: carer) == .forbidden)
            #expect(try await status("/v1/records/i1/history", as: carer) == .forbidden)
            #expect(try await status("/v1/records/i1", as: clinician) == .forbidden)
            #expect(code(try await grant(carer, [
                "grantee": .string(clinician.did), "purposes": treatment, "resourceTypes": immunizations, "end": .int(now + 20 * minute),
            ])) == "forbidden")

            // A grant falls when the delegation it rests on is revoked.
            let open = try await grant(alice, [
                "grantee": .string(carer.did), "purposes": treatment, "resourceTypes": immunizations, "delegate": .bool(true),
                "actions": .array([.string("grant")]),
            ])
            #expect(code(try await grant(carer, ["grantee": .string(clinician.did), "purposes": treatment, "resourceTypes": immunizations])) == "committed")
            #expect(try await status("/v1/records/i1", as: clinician) != .forbidden)
            #expect(code(try await rc.submit(alice, "consent", "revoke", .object(["grant": .string(try #require(open["result"]?["id"]?.stringValue))]))) == "committed")
            #expect(try await status("/v1/records/i1", as: clinician) == .forbidden, "the clinician's grant fell with carer's delegation")

            // A second delegate, on Immunization for treatment and payment with no named right, erases nothing
            // and grants nothing; with the right to erase she erases immunizations only.
            #expect(code(try await grant(alice, [
                "grantee": .string(carer2.did), "purposes": .array([.string("payment"), .string("treatment")]), "resourceTypes": immunizations,
                "delegate": .bool(true),
            ])) == "committed")
            #expect(code(try await rc.submit(carer2, "records", "erase", .object(["recordId": .string("c1")]))) == "forbidden")
            #expect(code(try await rc.submit(carer2, "records", "erase", .object(["recordId": .string("i1")]))) == "forbidden")
            #expect(code(try await grant(carer2, ["grantee": .string(clinician.did), "purposes": treatment, "resourceTypes": immunizations])) == "forbidden")
            #expect(code(try await grant(alice, [
                "grantee": .string(carer2.did), "purposes": treatment, "resourceTypes": immunizations, "delegate": .bool(true),
                "actions": .array([.string("erase")]),
            ])) == "committed")
            #expect(code(try await rc.submit(carer2, "records", "erase", .object(["recordId": .string("c1")]))) == "forbidden")
            #expect(code(try await rc.submit(carer2, "records", "erase", .object(["recordId": .string("i1")]))) == "committed")
            #expect(try await status("/v1/records/c1", as: alice) == .ok, "the Condition is still there")

            // Lifting a deny widens access: a delegate needs the right to grant as well as to revoke.
            let carer3 = Party()
            try await rc.registerAll([(carer3, carer3, "patient", nil)])
            let deny = try await grant(alice, ["grantee": .string(clinician.did), "purposes": treatment, "resourceTypes": immunizations, "decision": .string("deny")])
            let denyID = try #require(deny["result"]?["id"]?.stringValue)
            #expect(code(try await grant(alice, [
                "grantee": .string(carer3.did), "purposes": treatment, "resourceTypes": immunizations, "delegate": .bool(true), "actions": .array([.string("revoke")]),
            ])) == "committed")
            #expect(code(try await rc.submit(carer3, "consent", "revoke", .object(["patient": .string(alice.did), "grant": .string(denyID)]))) == "forbidden")
            #expect(code(try await grant(alice, [
                "grantee": .string(carer3.did), "purposes": treatment, "resourceTypes": immunizations, "delegate": .bool(true),
                "actions": .array([.string("grant"), .string("revoke")]),
            ])) == "committed")
            #expect(code(try await rc.submit(carer3, "consent", "revoke", .object(["patient": .string(alice.did), "grant": .string(denyID)]))) == "committed")

            // A right a delegation does not carry is refused in the payload itself.
            #expect(code(try await grant(alice, ["grantee": .string(carer.did), "purposes": treatment, "resourceTypes": immunizations, "actions": .array([.string("grant")])])) == "bad_payload")
            #expect(code(try await grant(alice, [
                "grantee": .string(carer.did), "purposes": treatment, "resourceTypes": immunizations, "delegate": .bool(true), "actions": .array([.string("recover")]),
            ])) == "bad_payload")
        }
    }
}
