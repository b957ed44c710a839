import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Node
@testable import Records
import RecordsContract
import Standards
import Testing

@testable import Server

/// FHIR Consent semantics on chain: categories and resource types, purposes of
/// use, periods, permit and deny (deny wins), and delegation (a caregiver acting for the patient).
/// A refused read answers 403; a permitted read of a version whose key was not shared with the
/// reader answers 409 — so the status tells the consent decision apart from key distribution.
@Suite struct ConsentSemanticsTests {
    @Test func categoriesPurposesPeriodsDenyAndDelegation() async throws {
        // Every denial here is recorded in detail (this test reads the access log after many of them).
        let network = try TestNetwork(contracts: .records, capabilities: recordsAlone, configure: { server in
            var records = RecordsCapability.Settings()
            records.deniedReadsRecorded = 1000
            server.capabilities[RecordsCapability.Settings.self] = records
        })
        let operatorParty = network.operatorParty
        let hospital = Party(), clinic = Party(), drA = Party(), drB = Party(), patient = Party(), caregiver = Party()
        try await network.run { client in
            var rc = RecordsClient(client: client)
            try await rc.registerAll([
                (operatorParty, hospital, "organisation", "Hospital"),
                (operatorParty, clinic, "organisation", "Clinic"),
                (hospital, drA, "practitioner", nil),
                (clinic, drB, "practitioner", nil),
                (patient, patient, "patient", nil),
                (caregiver, caregiver, "patient", nil),
            ])
            // The patient's own records: a condition and an observation, held by the hospital.
            for (id, type) in [("c1", "Condition"), ("o1", "Observation")] {
                let resource: JSONValue = .object(["resourceType": .string(type), "id": .string(id), "code": .object(["text": .string(id)])])
                #expect(try await rc.put(patient, patient: patient, recordID: id, version: 1, resource: resource, custodian: hospital)["status"] == .string("committed"))
            }
            func grant(_ by: Party, _ fields: [String: JSONValue]) async throws -> JSONValue {
                var payload = fields
                if by.did != patient.did { payload["patient"] = .string(patient.did) }
                return try await rc.submit(by, "consent", "grant", .object(payload))
            }
            func revoke(_ by: Party, _ id: String) async throws -> JSONValue {
                try await rc.submit(by, "consent", "revoke", .object(["patient": .string(patient.did), "grant": .string(id)]))
            }
            /// Whether consent permits `reader` to read `record` for `purpose` (403 is a refusal).
            func permitted(_ reader: Party, _ record: String, purpose: String = "treatment") async throws -> Bool {
                let status = try await rc.get("/v1/records/\(record)?purpose=\(purpose)", as: reader).status
                #expect(status == .forbidden || status == .conflict || status == .ok, "\(status)")
                return status != .forbidden
            }
            let treatment: JSONValue = .array([.string("treatment")])

            // Bad grants change nothing.
            #expect(try await grant(patient, ["grantee": .string(drA.did), "purposes": treatment, "categories": .array([.string("astrology")])])["error"]?["code"] == .string("bad_payload"))
            #expect(try await grant(patient, ["grantee": .string(drA.did), "purposes": treatment])["error"]?["code"] == .string("bad_payload"))

            // A category covers its types only, for the purposes named.
            let lab = try await grant(patient, ["grantee": .string(drA.did), "purposes": treatment, "categories": .array([.string("laboratory")])])
            #expect(lab["status"] == .string("committed"))
            #expect(try await permitted(drA, "o1"))
            #expect(try await !permitted(drA, "c1"))
            #expect(try await !permitted(drA, "o1", purpose: "research"))

            // A permit to the organisation covers its practitioners; a deny to one of them wins over it.
            let toHospital = try await grant(patient, ["grantee": .string(hospital.did), "purposes": treatment, "resourceTypes": .array([.string("*")])])
            #expect(try await permitted(drA, "c1"))
            let deny = try await grant(patient, [
                "grantee": .string(drA.did), "purposes": treatment, "categories": .array([.string("clinical")]), "decision": .string("deny"),
            ])
            #expect(try await !permitted(drA, "c1"), "deny wins")
            #expect(try await permitted(drA, "o1"), "the deny names the clinical category only")
            _ = try await revoke(patient, deny["result"]!["id"]!.stringValue!)
            #expect(try await permitted(drA, "c1"), "the revoked deny no longer applies")
            _ = try await revoke(patient, toHospital["result"]!["id"]!.stringValue!)
            #expect(try await !permitted(drA, "c1"))

            // Periods: not yet started, over, current.
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let hour: Int64 = 3_600_000
            _ = try await grant(patient, ["grantee": .string(drB.did), "purposes": treatment, "resourceTypes": .array([.string("Condition")]), "start": .int(now + hour)])
            #expect(try await !permitted(drB, "c1"), "not started yet")
            _ = try await grant(patient, ["grantee": .string(drB.did), "purposes": treatment, "resourceTypes": .array([.string("Condition")]), "start": .int(now - 2 * hour), "end": .int(now - hour)])
            #expect(try await !permitted(drB, "c1"), "over")
            #expect(try await grant(patient, ["grantee": .string(drB.did), "purposes": treatment, "resourceTypes": .array([.string("Condition")]), "start": .int(now), "end": .int(now - 1)])["error"]?["code"] == .string("bad_payload"))
            let current = try await grant(patient, ["grantee": .string(drB.did), "purposes": treatment, "resourceTypes": .array([.string("Condition")]), "start": .int(now - hour), "end": .int(now + hour)])
            #expect(try await permitted(drB, "c1"))
            #expect(try await !permitted(drB, "o1"), "the grant names Condition only")

            // Delegation: the caregiver grants and revokes for the patient and reads her access log; others may not.
            #expect(try await grant(drA, ["grantee": .string(drB.did), "purposes": treatment, "resourceTypes": .array([.string("*")])])["error"]?["code"] == .string("forbidden"))
            #expect(try await rc.get("/v1/patients/\(patient.did)/access-log", as: caregiver).status == .forbidden)
            let delegation = try await grant(patient, [
                "grantee": .string(caregiver.did), "purposes": .array([.string("emergency"), .string("treatment")]), "resourceTypes": .array([.string("*")]),
                "delegate": .bool(true), "actions": .array([.string("grant"), .string("revoke")]),
            ])
            #expect(try await rc.get("/v1/patients/\(patient.did)/access-log", as: caregiver).status == .ok)
            #expect(try await revoke(caregiver, current["result"]!["id"]!.stringValue!)["status"] == .string("committed"))
            #expect(try await !permitted(drB, "c1"), "revoked by the delegate")
            #expect(try await grant(caregiver, ["grantee": .string(drB.did), "purposes": .array([.string("emergency"), .string("treatment")]), "categories": .array([.string("laboratory")])])["status"] == .string("committed"))
            #expect(try await permitted(drB, "o1"))
            _ = try await revoke(patient, delegation["result"]!["id"]!.stringValue!)
            #expect(try await rc.get("/v1/patients/\(patient.did)/access-log", as: caregiver).status == .forbidden)
            #expect(try await !permitted(drB, "o1"), "what the delegate granted falls with her delegation")
            _ = try await grant(patient, ["grantee": .string(drB.did), "purposes": treatment, "categories": .array([.string("laboratory")])])
            #expect(try await grant(caregiver, ["grantee": .string(drA.did), "purposes": treatment, "resourceTypes": .array([.string("*")])])["error"]?["code"] == .string("forbidden"))

            // A delegation outside its period gives no power.
            let lapsed = Party()
            _ = try await rc.register(lapsed, lapsed, "patient")
            _ = try await grant(patient, [
                "grantee": .string(lapsed.did), "purposes": treatment, "resourceTypes": .array([.string("*")]), "delegate": .bool(true),
                "start": .int(now - 2 * hour), "end": .int(now - hour),
            ])
            #expect(try await rc.get("/v1/patients/\(patient.did)/access-log", as: lapsed).status == .forbidden)
            #expect(try await grant(lapsed, ["grantee": .string(drA.did), "purposes": treatment, "resourceTypes": .array([.string("*")])])["error"]?["code"] == .string("forbidden"))

            // The contract refuses a key wrapped for someone consent does not let read the type.
            let condition: JSONValue = .object(["resourceType": .string("Condition"), "id": .string("c1"), "code": .object(["text": .string("v2")])])
            let sealed = try SealedVersion(
                resource: condition.canonicalBytes, recordID: "c1", version: 2,
                recipients: [patient.did: patient.encryption.publicKey, hospital.did: hospital.encryption.publicKey, drB.did: drB.encryption.publicKey])
            let refused = try await rc.submit(patient, "records", "put", sealed.putPayload(recordID: "c1", patient: patient.did, resourceType: "Condition", version: 2, custodian: hospital.did))
            #expect(refused["error"]?["code"] == .string("recipient_not_permitted"))

            // A permitted read that releases nothing (no key wrapped for the reader) is logged as such, not as a disclosure.
            let noKey = try await rc.get("/v1/records/o1", as: drB)
            #expect(noKey.status == .conflict)
            let log = try rc.json(try await rc.get("/v1/patients/\(patient.did)/access-log", as: patient))["events"]!.arrayValue!
            #expect(log.last?["reader"] == .string(drB.did))
            #expect(log.last?["outcome"] == .string("deny"))
            #expect(log.last?["reason"]?.stringValue?.contains("no_key_for_reader") == true)
            let disclosures = try rc.json(try await rc.get("/v1/patients/\(patient.did)/disclosures", as: patient))["disclosures"]!.arrayValue!
            #expect(!disclosures.contains { $0["recipient"]?["did"] == .string(drB.did) })

            // Reading a record's versions (metadata: authors, endorsements, salted hashes) is audited too, with
            // scope metadata, granted or denied — and it is no disclosure of health data.
            #expect(try await rc.get("/v1/records/o1/history", as: drB).status == .ok)
            var events = try rc.json(try await rc.get("/v1/patients/\(patient.did)/access-log", as: patient))["events"]!.arrayValue!
            #expect(events.last?["reader"] == .string(drB.did) && events.last?["scope"] == .string("metadata") && events.last?["outcome"] == .string("permit"))
            #expect(try await rc.get("/v1/records/c1/history", as: drB).status == .forbidden)
            events = try rc.json(try await rc.get("/v1/patients/\(patient.did)/access-log", as: patient))["events"]!.arrayValue!
            #expect(events.last?["scope"] == .string("metadata") && events.last?["outcome"] == .string("deny"))
            let afterMetadata = try rc.json(try await rc.get("/v1/patients/\(patient.did)/disclosures", as: patient))["disclosures"]!.arrayValue!
            #expect(!afterMetadata.contains { $0["recipient"]?["did"] == .string(drB.did) })

            // As FHIR: a category grant lists the types it covers.
            let consents = try rc.json(try await rc.get("/v1/patients/\(patient.did)/consents", as: patient))["consents"]!.arrayValue!
            let labGrant = try ConsentGrant(json: try #require(consents.first { $0["id"] == lab["result"]!["id"]! }))
            let fhir = FHIRAPI.consent(labGrant)
            #expect(FHIRValidator.validate(fhir).isEmpty)
            #expect(fhir["provision"]?["class"]?.arrayValue?.compactMap { $0["code"]?.stringValue } == ["DiagnosticReport", "Observation", "Specimen"])
        }
    }
}
