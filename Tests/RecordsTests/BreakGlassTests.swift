import ContractKit
import Foundation
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Node
import Prometheus
@testable import Records
import RecordsContract
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
        let node = try LedgerNode(directory: chain.directory, contracts: .records, configuration: c, metrics: PrometheusMetricsFactory(registry: registry))
        let vault = try Vault(path: chain.directory.vault)
        var serverConfiguration = ServerConfiguration()
        var records = RecordsCapability.Settings()
        records.breakGlassWindowMillis = 90 * 60 * 1000
        serverConfiguration.capabilities[RecordsCapability.Settings.self] = records
        let operatorParty = Party(key: try KeyFile.load(chain.directory.nodeKey))
        let hospitalA = Party(), hospitalB = Party(), drA = Party(), drB = Party(), patient = Party(), caregiver = Party(), officerB = Party()
        // This node is hospital A's: it holds A's keys, so it can open A's records for an emergency reader.
        let api = try LedgerAPI(
            node: node, configuration: serverConfiguration, registry: registry, vault: vault,
            organisations: [ActingOrganisation(signing: hospitalA.key, encryption: hospitalA.encryption)], capabilities: recordsAlone)
        let app = Application(router: api.router())
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
                    (hospitalB, officerB, "practitioner", nil),
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
                // …with a reason the access is granted and recorded as break-the-glass; hospital A's node (the
                // custodian) re-wraps the content key from its escrow copy for dr B alone, who decrypts.
                let glass = try await rc.get("/v1/records/a1?purpose=emergency&reason=unconscious%20patient%20in%20ER", as: drB)
                #expect(glass.status == .ok, "\(String(buffer: glass.body))")
                let glassRead = try rc.json(glass)
                #expect(glassRead["keyHolder"] == .string(drB.did))
                #expect(try SealedVersion.open(read: glassRead, with: drB.encryption) == allergy.canonicalBytes)
                #expect(throws: LedgerError.self) { try SealedVersion.open(read: glassRead, with: drA.encryption) }
                // The emergency key is handed to dr B, not recorded on chain: her later versions are not hers.
                let entry = try RecordEntry(json: try JSONValue.parse(node.stateValue(forKey: RecordEntry.key("a1"))!))
                #expect(entry.current?.recipients.contains(drB.did) == false)
                #expect(entry.current?.recipients.contains(hospitalA.did) == true, "the custodian holds the key in escrow")
                // A treatment read by dr B of the same record still has no key and no consent.
                #expect(try await rc.get("/v1/records/a1", as: drB).status == .forbidden)
                let log = try rc.json(try await rc.get("/v1/patients/\(patient.did)/access-log", as: caregiver))["events"]!.arrayValue!
                let glassEvent = try #require(log.last { $0["breakGlass"] == .bool(true) })
                #expect(glassEvent["outcome"] == .string("permit"))
                #expect(glassEvent["reader"] == .string(drB.did))
                let until = try #require(glassEvent["until"]?.intValue)
                // The window is the configured 90 minutes (the event's time is the block's, a few ms later than the read).
                let window = until - glassEvent["time"]!.intValue!
                #expect(window > 89 * 60 * 1000 && window <= 90 * 60 * 1000)
                // Inside the window a further emergency read needs no new reason; the timeline opens too.
                #expect(try await rc.get("/v1/records/a1?purpose=emergency", as: drB).status == .ok)
                let timeline = try rc.json(try await rc.get("/v1/patients/\(patient.did)/records?purpose=emergency", as: drB))
                #expect(timeline["records"]?.arrayValue?.count == 1)
                #expect(try SealedVersion.open(read: timeline["records"]![0]!, with: drB.encryption) == allergy.canonicalBytes)
                // A treatment read by B is still refused: break-the-glass is for emergencies only.
                #expect(try await rc.get("/v1/records/a1", as: drB).status == .forbidden)

                // Review: only a privacy officer of dr B's organisation (or its key) may review, once, and never dr B herself.
                let index = glassEvent["index"]!
                func review(_ by: Party) async throws -> JSONValue {
                    try await rc.submit(by, "audit", "review", .object(["patient": .string(patient.did), "index": index, "outcome": .string("justified")]))
                }
                func duty(_ by: Party, _ subject: Party) async throws -> JSONValue {
                    try await rc.submit(by, "identity", "duties", .object(["subject": .string(subject.did), "add": .array([.string("privacy-officer")])]))
                }
                #expect(try await review(hospitalA)["error"]?["code"] == .string("forbidden"))
                #expect(try await review(officerB)["error"]?["code"] == .string("forbidden"), "no privacy-officer duty yet")
                // Hospital B's pending reviews are listed for it (and its privacy officers), not for others.
                let pendingList = try rc.json(try await rc.get("/v1/organisations/\(hospitalB.did)/break-glass", as: hospitalB))["accesses"]!.arrayValue!
                #expect(pendingList.count == 1)
                #expect(pendingList.first?["index"] == index && pendingList.first?["reader"] == .string(drB.did))
                #expect(pendingList.first?["reason"] == .string("unconscious patient in ER"))
                #expect(try await rc.get("/v1/organisations/\(hospitalB.did)/break-glass", as: officerB).status == .forbidden)
                #expect(try await rc.get("/v1/organisations/\(hospitalB.did)/break-glass", as: hospitalA).status == .forbidden)
                let alert: JSONValue = .object(["type": .string("break-glass"), "patient": .string(patient.did), "reader": .string(drB.did)])
                #expect(service.concerns(alert, did: hospitalB.did))
                #expect(!service.concerns(alert, did: hospitalA.did))
                #expect(!service.concerns(alert, did: officerB.did))
                #expect(try await duty(hospitalA, officerB)["error"]?["code"] == .string("forbidden"), "only her organisation gives a duty")
                #expect(try await duty(hospitalB, officerB)["status"] == .string("committed"))
                #expect(try await duty(hospitalB, drB)["status"] == .string("committed"))
                #expect(try await review(drB)["error"]?["code"] == .string("forbidden"), "nobody reviews her own access")
                let reviewed = try await review(officerB)
                #expect(reviewed["status"] == .string("committed"))
                #expect(reviewed["result"]?["reviewedBy"] == .string(officerB.did))
                #expect(try await review(hospitalB)["error"]?["code"] == .string("already_reviewed"))
                #expect(service.concerns(alert, did: officerB.did), "a privacy officer gets the alerts")
                #expect(try rc.json(try await rc.get("/v1/organisations/\(hospitalB.did)/break-glass", as: officerB))["accesses"]?.arrayValue?.isEmpty == true)
                let all = try rc.json(try await rc.get("/v1/organisations/\(hospitalB.did)/break-glass?status=all", as: officerB))["accesses"]!.arrayValue!
                #expect(all.first?["status"] == .string("justified") && all.first?["reviewedBy"] == .string(officerB.did))
                // The patient's accounting of disclosures shows the emergency accesses and how their review ended.
                let disclosed = try rc.json(try await rc.get("/v1/patients/\(patient.did)/disclosures", as: patient))["disclosures"]!.arrayValue!
                let emergency = disclosed.filter { $0["breakGlass"] == .bool(true) }
                #expect(emergency.count == 3, "the opening read, the read inside the window and the timeline")
                #expect(emergency.allSatisfy { $0["review"] == .string("justified") && $0["recipient"]?["did"] == .string(drB.did) })
                // Once reviewed, a further emergency read in the window is a new access to review; an
                // unjustified review closes the window at once.
                #expect(try await rc.get("/v1/records/a1?purpose=emergency", as: drB).status == .ok)
                let next = try rc.json(try await rc.get("/v1/organisations/\(hospitalB.did)/break-glass", as: officerB))["accesses"]!.arrayValue!
                #expect(next.count == 1)
                let nextIndex = try #require(next.first?["index"])
                #expect(nextIndex != index)
                #expect(try await rc.submit(officerB, "audit", "review", .object(["patient": .string(patient.did), "index": nextIndex, "outcome": .string("unjustified")]))["status"] == .string("committed"))
                let closed = try await rc.get("/v1/records/a1?purpose=emergency", as: drB)
                #expect(closed.status == .forbidden)
                #expect(try rc.json(closed)["error"]?["code"] == .string("break_glass_reason_required"))
                // The FHIR facade serves the ledger's own Consent and AuditEvent data, valid FHIR R4.
                let metadata = try rc.json(try await client.execute(uri: "/fhir/metadata", method: .get))
                #expect(metadata["resourceType"] == .string("CapabilityStatement"))
                #expect(metadata["fhirVersion"] == .string("4.0.1"))
                let consents = try rc.json(try await rc.get("/fhir/Consent?patient=\(patient.did)", as: caregiver))
                #expect(consents["resourceType"] == .string("Bundle"))
                let consentResources = consents["entry"]!.arrayValue!.map { $0["resource"]! }
                #expect(consentResources.count == 2)
                for r in consentResources { #expect(FHIRValidator.validate(r).isEmpty, "\(FHIRValidator.validate(r))") }
                let oneID = consentResources[0]["id"]!.stringValue!
                let one = try await rc.get("/fhir/Consent/\(oneID)", as: patient)
                #expect(try rc.json(one)["id"] == .string(oneID))
                #expect(one.headers[.contentType]?.hasPrefix("application/fhir+json") == true)
                let audit = try rc.json(try await rc.get("/fhir/AuditEvent?patient=\(patient.did)", as: patient))
                let auditResources = audit["entry"]!.arrayValue!.map { $0["resource"]! }
                #expect(auditResources.count >= 3)
                for r in auditResources { #expect(FHIRValidator.validate(r).isEmpty, "\(FHIRValidator.validate(r))") }
                #expect(auditResources.contains { $0["agent"]?[0]?["purposeOfUse"]?[0]?["coding"]?[0]?["code"] == .string("BTG") } == true)
                #expect(auditResources.contains { $0["outcome"] == .string("4") })
                let forbidden = try await rc.get("/fhir/AuditEvent?patient=\(patient.did)", as: drB)
                #expect(forbidden.status == .forbidden)
                #expect(try rc.json(forbidden)["resourceType"] == .string("OperationOutcome"))
                let anonymous = try await client.execute(uri: "/fhir/Consent?patient=\(patient.did)", method: .get)
                #expect(anonymous.status == .unauthorized)
                #expect(try rc.json(anonymous)["issue"]?[0]?["code"] == .string("login"))
                let unsupported = try await client.execute(uri: "/fhir/Starship", method: .get)
                #expect(unsupported.status == .notFound)
                #expect(try rc.json(unsupported)["resourceType"] == .string("OperationOutcome"))

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

    /// The window closes exactly when it ends (the default 4 hours, or as configured), on the node's
    /// clock; only the custodian's node can open a record for an emergency reader.
    @Test(arguments: [nil, 5000] as [Int64?]) func theWindowClosesAndOnlyTheCustodiansNodeOpensARecord(configured: Int64?) async throws {
        let hospitalA = Party(), hospitalC = Party(), drA = Party(), drB = Party(), hospitalB = Party(), patient = Party()
        let clock = ManualClock(startingAt: LedgerNode.systemClock() + 1000)  // after the genesis block's time
        let window = UInt64(configured ?? 4 * 3600 * 1000)
        let network = try TestNetwork(contracts: .records, capabilities: recordsAlone,
            organisations: [ActingOrganisation(signing: hospitalA.key, encryption: hospitalA.encryption)], clock: clock.read, configure: { server in
                var records = RecordsCapability.Settings()
                if let configured { records.breakGlassWindowMillis = configured }
                server.capabilities[RecordsCapability.Settings.self] = records
            })
        let operatorParty = network.operatorParty
        try await network.run { client in
            var rc = RecordsClient(client: client)
            for org in [hospitalA, hospitalB, hospitalC] { _ = try await rc.register(operatorParty, org, "organisation", name: "Org") }
            try await rc.registerAll([
                (hospitalA, drA, "practitioner", nil),
                (hospitalB, drB, "practitioner", nil),
                (patient, patient, "patient", nil),
            ])
            _ = try await rc.submit(patient, "consent", "grant", .object([
                "grantee": .string(drA.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
            ]))
            let allergy: JSONValue = .object(["resourceType": .string("AllergyIntolerance"), "id": .string("a1"), "code": .object(["text": .string("Latex")])])
            #expect(try await rc.put(drA, patient: patient, recordID: "a1", version: 1, resource: allergy, custodian: hospitalA)["status"] == .string("committed"))
            // A record whose custodian is hospital C, whose keys this node does not hold.
            let condition: JSONValue = .object(["resourceType": .string("Condition"), "id": .string("c1"), "code": .object(["text": .string("Epilepsy")])])
            // A practitioner files what she writes with her own organisation; the patient may choose another custodian.
            #expect(try await rc.put(drA, patient: patient, recordID: "c1", version: 1, resource: condition, custodian: hospitalC)["error"]?["code"] == .string("bad_custodian"))
            #expect(try await rc.put(patient, patient: patient, recordID: "c1", version: 1, resource: condition, custodian: hospitalC)["status"] == .string("committed"))
            // The contract refuses a version whose key is not wrapped for its custodian, or a change of custodian.
            let sealed = try SealedVersion(resource: allergy.canonicalBytes, recordID: "a1", version: 2, recipients: [patient.did: patient.encryption.publicKey])
            let noEscrow = try await rc.submit(drA, "records", "put", sealed.putPayload(recordID: "a1", patient: patient.did, resourceType: "AllergyIntolerance", version: 2, custodian: hospitalA.did))
            #expect(noEscrow["error"]?["code"] == .string("bad_payload"))
            let moved = try SealedVersion(resource: allergy.canonicalBytes, recordID: "a1", version: 2, recipients: [patient.did: patient.encryption.publicKey, hospitalB.did: hospitalB.encryption.publicKey])
            #expect(try await rc.submit(patient, "records", "put", moved.putPayload(recordID: "a1", patient: patient.did, resourceType: "AllergyIntolerance", version: 2, custodian: hospitalB.did))["error"]?["code"] == .string("record_mismatch"))

            let reason = "purpose=emergency&reason=anaphylaxis%20in%20theatre"
            #expect(try await rc.get("/v1/records/a1?\(reason)", as: drB).status == .ok)
            let notHeld = try await rc.get("/v1/records/c1?purpose=emergency", as: drB)
            #expect(notHeld.status == .conflict)
            #expect(try rc.json(notHeld)["error"]?["code"] == .string("not_custodian"))
            #expect(try await rc.get("/v1/records/a1?purpose=emergency", as: drB).status == .ok, "inside the window")
            clock.advance(by: window - 1)
            #expect(try await rc.get("/v1/records/a1?purpose=emergency", as: drB).status == .ok, "1 ms before the window ends")
            clock.advance(by: 1)
            let closed = try await rc.get("/v1/records/a1?purpose=emergency", as: drB)
            #expect(closed.status == .forbidden, "the window has closed")
            #expect(try rc.json(closed)["error"]?["code"] == .string("break_glass_reason_required"))
            let closedTimeline = try await rc.get("/v1/patients/\(patient.did)/records?purpose=emergency", as: drB)
            #expect(closedTimeline.status == .forbidden)
            #expect(try rc.json(closedTimeline)["error"]?["code"] == .string("break_glass_reason_required"), "the timeline asks for the reason too")
            #expect(try await rc.get("/v1/records/a1?\(reason)", as: drB).status == .ok, "a new reason opens a new window")
        }
    }
}
