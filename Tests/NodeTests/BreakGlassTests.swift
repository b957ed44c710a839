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

@Suite struct BreakGlassTests {
    @Test func emergencyAccessIsTimeBoxedFlaggedReviewedAndStreamed() async throws {
        let chain = try TempChain()
        var c = NodeConfiguration()
        c.blockInterval = .milliseconds(2)
        let registry = PrometheusCollectorRegistry()
        let node = try LedgerNode(directory: chain.directory, configuration: c, metrics: PrometheusMetricsFactory(registry: registry))
        let vault = try Vault(path: chain.directory.vault)
        let api = LedgerAPI(node: node, configuration: ServerConfiguration(), registry: registry, vault: vault)
        let app = Application(router: api.router())
        let operatorParty = Party(key: try KeyFile.load(chain.directory.nodeKey))
        let hospitalA = Party(), hospitalB = Party(), drA = Party(), drB = Party(), patient = Party(), caregiver = Party()
        let service = RecordsService(node: node, vault: vault)

        // Subscribe before anything happens; collect what concerns the patient and the caregiver.
        let stream = node.events.subscribe()
        let collector = Task {
            var forPatient: [String] = []
            var forCaregiver: [String] = []
            for await event in stream {
                let type = event.body["type"]?.stringValue ?? ""
                if service.concerns(event.body, did: patient.did) { forPatient.append(type) }
                if service.concerns(event.body, did: caregiver.did) { forCaregiver.append(type) }
                if type == "break-glass" && !forCaregiver.isEmpty { break }
            }
            return (forPatient, forCaregiver)
        }

        try await withRunningNode(node) {
            try await app.test(.router) { client in
                var rc = RecordsClient(client: client)
                for (author, subject, role, name) in [
                    (operatorParty, hospitalA, "organisation", "A"), (operatorParty, hospitalB, "organisation", "B"), (hospitalA, drA, "practitioner", nil),
                    (hospitalB, drB, "practitioner", nil), (patient, patient, "patient", nil), (hospitalA, caregiver, "practitioner", nil),
                ] as [(Party, Party, String, String?)] {
                    var p: [String: JSONValue] = ["role": .string(role), "encryptionKey": .string(Base64.encode(subject.encryption.publicKey))]
                    if subject.did != author.did { p["subject"] = .string(subject.did) }
                    if let name { p["name"] = .string(name) }
                    #expect(try await rc.submit(author, "identity", "register", .object(p))["status"] == .string("committed"))
                }
                // The caregiver is the patient's delegate; dr A treats her and writes an allergy for hospital A.
                _ = try await rc.submit(patient, "consent", "grant", .object([
                    "grantee": .string(caregiver.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
                    "delegate": .bool(true),
                ]))
                _ = try await rc.submit(patient, "consent", "grant", .object([
                    "grantee": .string(hospitalA.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
                ]))
                let allergy: JSONValue = .object(["resourceType": .string("AllergyIntolerance"), "id": .string("a1"), "code": .object(["text": .string("Penicillin")])])
                #expect(try await rc.put(drA, patient: patient, recordID: "a1", version: 1, resource: allergy, custodian: hospitalA)["result"]?["status"] == .string("current"))

                // Dr B (hospital B, no consent): an emergency read without a reason is refused…
                let noReason = try await rc.get("/v1/records/a1?purpose=emergency", as: drB)
                #expect(noReason.status == .forbidden)
                #expect(try rc.json(noReason)["error"]?["code"] == .string("break_glass_reason_required"))
                // …with a reason the access is granted and recorded as break-the-glass (the key is not wrapped for B: 409).
                let glass = try await rc.get("/v1/records/a1?purpose=emergency&reason=unconscious%20patient%20in%20ER", as: drB)
                #expect(try rc.json(glass)["error"]?["code"] == .string("no_key_for_reader"))
                let log = try rc.json(try await rc.get("/v1/patients/\(patient.did)/access-log", as: caregiver))["events"]!.arrayValue!
                let glassEvent = try #require(log.last { $0["breakGlass"] == .bool(true) })
                #expect(glassEvent["outcome"] == .string("permit"))
                #expect(glassEvent["reader"] == .string(drB.did))
                let until = try #require(glassEvent["until"]?.intValue)
                #expect(until - glassEvent["time"]!.intValue! > 3 * 3600 * 1000)
                // Inside the window a further emergency read needs no new reason.
                #expect(try rc.json(try await rc.get("/v1/records/a1?purpose=emergency", as: drB))["error"]?["code"] == .string("no_key_for_reader"))
                // A treatment read by B is still refused: break-the-glass is for emergencies only.
                #expect(try await rc.get("/v1/records/a1", as: drB).status == .forbidden)

                // Review: only dr B's organisation may review, once.
                let index = glassEvent["index"]!
                #expect(try await rc.submit(hospitalA, "audit", "review", .object(["patient": .string(patient.did), "index": index, "outcome": .string("justified")]))["error"]?["code"] == .string("forbidden"))
                #expect(try await rc.submit(hospitalB, "audit", "review", .object(["patient": .string(patient.did), "index": index, "outcome": .string("justified")]))["status"] == .string("committed"))
                #expect(try await rc.submit(hospitalB, "audit", "review", .object(["patient": .string(patient.did), "index": index, "outcome": .string("justified")]))["error"]?["code"] == .string("already_reviewed"))
                // Nobody but the node records access events.
                #expect(try await rc.submit(drB, "audit", "access", .object([
                    "patient": .string(patient.did), "reader": .string(drB.did), "records": .array([]), "purpose": .string("treatment"), "outcome": .string("permit"),
                ]))["error"]?["code"] == .string("forbidden"))
            }
        }
        let (forPatient, forCaregiver) = await collector.value
        #expect(forPatient.contains("consent.granted"))
        #expect(forPatient.contains("record.written"))
        #expect(forPatient.contains("access"))
        #expect(forPatient.contains("break-glass"))
        #expect(forCaregiver.contains("break-glass"))
    }
}
