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

@Suite struct FHIRRecordsTests {
    @Test func createReadUpdateHistorySearchThroughTheFacade() async throws {
        let hospital = Party(), other = Party(), doctor = Party(), outsider = Party(), patient = Party()
        let network = try TestNetwork(
            contracts: .records, capabilities: recordsAlone, acting: ActingOrganisation(signing: hospital.key, encryption: hospital.encryption))
        let node = network.node, operatorParty = network.operatorParty
        let patientRef = "Patient/" + patient.did.dropFirst("did:key:".count)

        try await network.run { client in
                var rc = RecordsClient(client: client)
                for (author, subject, role, name) in [
                    (operatorParty, hospital, "organisation", "H"), (operatorParty, other, "organisation", "O"), (hospital, doctor, "practitioner", nil),
                    (other, outsider, "practitioner", nil), (patient, patient, "patient", nil),
                ] as [(Party, Party, String, String?)] {
                    #expect(try await rc.register(author, subject, role, name: name)["status"] == .string("committed"))
                }
                func send(_ method: HTTPRequest.Method, _ uri: String, as party: Party, _ body: JSONValue? = nil, headers extra: HTTPFields = [:]) async throws -> TestResponse {
                    try await rc.fhir(method, uri, as: party, body, headers: extra)
                }
                let observation: JSONValue = .object([
                    "resourceType": .string("Observation"), "status": .string("final"),
                    "code": .object(["coding": .array([.object(["system": .string("http://loinc.org"), "code": .string("8867-4")])]), "text": .string("Heart rate")]),
                    "subject": .object(["reference": .string(patientRef)]), "valueQuantity": .object(["value": .int(72), "unit": .string("/min")]),
                ])
                // Without consent the write is refused with an OperationOutcome.
                let refused = try await send(.post, "/fhir/Observation", as: doctor, observation)
                #expect(refused.status == .forbidden)
                #expect(try rc.json(refused)["resourceType"] == .string("OperationOutcome"))
                _ = try await rc.submit(patient, "consent", "grant", .object([
                    "grantee": .string(hospital.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
                ]))
                // Invalid resources are refused with the element at fault.
                var broken = observation.objectValue!
                broken["status"] = nil
                let invalid = try await send(.post, "/fhir/Observation", as: doctor, .object(broken))
                #expect(invalid.status == .badRequest)
                #expect(try rc.json(invalid)["issue"]?[0]?["expression"]?[0] == .string("Observation.status"))

                let created = try await send(.post, "/fhir/Observation", as: doctor, observation)
                #expect(created.status == .created)
                let stored = try rc.json(created)
                let id = try #require(stored["id"]?.stringValue)
                #expect(created.headers[.eTag] == "W/\"1\"")
                #expect(created.headers[.location] == "/fhir/Observation/\(id)/_history/1")
                // The version on chain names the doctor the hospital wrote for.
                let entry = try RecordEntry(json: try JSONValue.parse(node.stateValue(forKey: RecordEntry.key(id))!))
                #expect(entry.versions[0].author == hospital.did)
                #expect(entry.versions[0].onBehalfOf == doctor.did)

                let read = try rc.json(try await send(.get, "/fhir/Observation/\(id)", as: doctor))
                #expect(read["valueQuantity"]?["value"] == .int(72))
                #expect(FHIRValidator.validate(read).isEmpty)

                // Update needs the current version in If-Match.
                var changed = stored.objectValue!
                changed["valueQuantity"] = .object(["value": .int(80), "unit": .string("/min")])
                changed["meta"] = nil
                let stale = try await send(.put, "/fhir/Observation/\(id)", as: doctor, .object(changed), headers: [.ifMatch: "W/\"7\""])
                #expect(stale.status == .preconditionFailed)
                let updated = try await send(.put, "/fhir/Observation/\(id)", as: doctor, .object(changed), headers: [.ifMatch: "W/\"1\""])
                #expect(updated.status == .ok)
                #expect(updated.headers[.eTag] == "W/\"2\"")
                #expect(try rc.json(try await send(.get, "/fhir/Observation/\(id)", as: doctor))["valueQuantity"]?["value"] == .int(80))
                #expect(try rc.json(try await send(.get, "/fhir/Observation/\(id)/_history/1", as: doctor))["valueQuantity"]?["value"] == .int(72))
                let history = try rc.json(try await send(.get, "/fhir/Observation/\(id)/_history", as: doctor))
                #expect(history["type"] == .string("history"))
                #expect(history["entry"]?.arrayValue?.map { $0["resource"]?["meta"]?["versionId"] } == [.string("2"), .string("1")])

                // Each write yields a Provenance, from the chain: the doctor as author, for the hospital.
                let provenance = try rc.json(try await send(.get, "/fhir/Provenance?target=Observation/\(id)", as: doctor))
                let provenances = provenance["entry"]!.arrayValue!.map { $0["resource"]! }
                #expect(provenances.count == 2)
                for p in provenances { #expect(FHIRValidator.validate(p).isEmpty, "\(FHIRValidator.validate(p))") }
                #expect(provenances[0]["agent"]?[0]?["who"]?["identifier"]?["value"] == .string(doctor.did))
                #expect(provenances[0]["agent"]?[0]?["onBehalfOf"]?["identifier"]?["value"] == .string(hospital.did))
                #expect(provenances[1]["target"]?[0]?["reference"] == .string("Observation/\(id)/_history/2"))
                #expect(try await send(.get, "/fhir/Provenance?target=Observation/\(id)", as: outsider).status == .forbidden)

                // Search by patient and _lastUpdated.
                let search = try rc.json(try await send(.get, "/fhir/Observation?patient=\(patientRef)", as: doctor))
                #expect(search["total"] == .int(1))
                #expect(try rc.json(try await send(.get, "/fhir/Observation?subject=\(patientRef)&_lastUpdated=ge2000-01-01", as: doctor))["total"] == .int(1))
                #expect(try rc.json(try await send(.get, "/fhir/Observation?patient=\(patientRef)&_lastUpdated=le2000-01-01", as: doctor))["total"] == .int(0))
                // No prefix means eq (at the precision given); commas are OR; a bad value is refused.
                let day = String(try #require(search["entry"]?[0]?["resource"]?["meta"]?["lastUpdated"]?.stringValue).prefix(10))
                #expect(try rc.json(try await send(.get, "/fhir/Observation?patient=\(patientRef)&_lastUpdated=\(day)", as: doctor))["total"] == .int(1))
                #expect(try rc.json(try await send(.get, "/fhir/Observation?patient=\(patientRef)&_lastUpdated=2000-01-01", as: doctor))["total"] == .int(0))
                #expect(try rc.json(try await send(.get, "/fhir/Observation?patient=\(patientRef)&_lastUpdated=2000-01-01,\(day)", as: doctor))["total"] == .int(1))
                #expect(try rc.json(try await send(.get, "/fhir/Observation?patient=\(patientRef)&_lastUpdated=ne\(day)", as: doctor))["total"] == .int(0))
                #expect(try await send(.get, "/fhir/Observation?patient=\(patientRef)&_lastUpdated=yesterday", as: doctor).status == .badRequest)
                #expect(try rc.json(try await send(.get, "/fhir/Condition?patient=\(patientRef)", as: doctor))["total"] == .int(0))

                // Another organisation's practitioner is not served by this node's facade.
                #expect(try await send(.get, "/fhir/Observation/\(id)", as: outsider).status == .forbidden)
                // The patient herself reads through /v1 (the key is wrapped for her), not through the organisation's facade.
                let own = try rc.json(try await rc.get("/v1/records/\(id)", as: patient))
                #expect(try JSONValue.parse(try SealedVersion.open(read: own, with: patient.encryption))["valueQuantity"]?["value"] == .int(80))
                // The CapabilityStatement lists the clinical types it really serves.
                let metadata = try rc.json(try await client.execute(uri: "/fhir/metadata", method: .get))
                let types = metadata["rest"]?[0]?["resource"]?.arrayValue?.compactMap { $0["type"]?.stringValue } ?? []
                #expect(types.contains("Observation") && types.contains("Consent"))
                #expect(metadata["rest"]?[0]?["interaction"] == .array([.object(["code": .string("transaction")])]))
                #expect(types.contains("Claim") && types.contains("Practitioner") && !types.contains("Bundle"), "every type it stores")
                #expect(metadata["implementation"]?["description"] != nil, "cpb-15: an instance describes its implementation")
                // Methods it does not serve: 405 with an OperationOutcome.
                let deleted = try await send(.delete, "/fhir/Observation/\(id)", as: doctor)
                #expect(deleted.status == .methodNotAllowed)
                #expect(try rc.json(deleted)["resourceType"] == .string("OperationOutcome"))
                #expect(try await send(.patch, "/fhir/Observation/\(id)", as: doctor, observation).status == .methodNotAllowed)
                #expect(try await send(.post, "/fhir/Bundle", as: doctor, .object(["resourceType": .string("Bundle"), "type": .string("collection")])).status == .methodNotAllowed)
        }
    }

    /// The Synthea patient bundles import through the transaction endpoint and read back equal.
    /// FHIR's $validate answers an OperationOutcome of the issues a write would meet and stores nothing.
    @Test func validateChecksAResourceAndStoresNothing() async throws {
        let patient = Party()
        let network = try TestNetwork(contracts: .records, capabilities: recordsAlone)
        let patientRef = "Patient/" + patient.did.dropFirst("did:key:".count)
        try await network.run { client in
            var rc = RecordsClient(client: client)
            #expect(try await rc.register(patient, patient, "patient")["status"] == .string("committed"))
            let height = network.node.height
            let observation: JSONValue = .object([
                "resourceType": .string("Observation"), "status": .string("final"), "code": .object(["text": .string("Heart rate")]),
                "subject": .object(["reference": .string(patientRef)]), "effectiveDateTime": .string("2026-12-07"),
                "valueQuantity": .object(["value": .int(72), "unit": .string("/min")]),
            ])
            func issues(_ uri: String, _ body: JSONValue) async throws -> [JSONValue] {
                let answer = try await rc.fhir(.post, uri, as: patient, body)
                #expect(answer.status == .ok)
                let outcome = try rc.json(answer)
                #expect(outcome["resourceType"] == .string("OperationOutcome"))
                return outcome["issue"]?.arrayValue ?? []
            }
            let valid = try await issues("/fhir/Observation/$validate", observation)
            #expect(valid.count == 1 && valid[0]["severity"] == .string("information"))

            var badDate = observation.objectValue!
            badDate["effectiveDateTime"] = .string("7 December")
            let dated = try await issues("/fhir/Observation/$validate", .object(badDate))
            #expect(dated.count == 1 && dated[0]["severity"] == .string("error"))
            #expect(dated[0]["expression"]?[0] == .string("Observation.effectiveDateTime"))
            #expect(dated[0]["diagnostics"]?.stringValue?.contains("7 December") == true)

            // The same resource inside a Parameters, as FHIR's operation also takes it.
            let wrapped: JSONValue = .object(["resourceType": .string("Parameters"), "parameter": .array([.object(["name": .string("resource"), "resource": .object(badDate)])])])
            #expect(try await issues("/fhir/Observation/$validate", wrapped).first?["expression"]?[0] == .string("Observation.effectiveDateTime"))

            // The path's type must be the resource's; the patient must be named by her did.
            #expect(try await issues("/fhir/Condition/$validate", observation).first?["expression"]?[0] == .string("resourceType"))
            var anonymous = observation.objectValue!
            anonymous["subject"] = .object(["reference": .string("Patient/123")])
            #expect(try await issues("/fhir/Observation/$validate", .object(anonymous)).first?["expression"]?[0] == .string("Observation.subject"))

            // A body that is no resource at all: 400.
            let notAResource = try await rc.fhir(.post, "/fhir/Observation/$validate", as: patient, .array([observation]))
            #expect(notAResource.status == .badRequest)
            #expect(try rc.json(notAResource)["resourceType"] == .string("OperationOutcome"))

            // Without a token: 401 with an OperationOutcome. Nothing was written by any of it.
            let anonymousCall = try await client.execute(
                uri: "/fhir/Observation/$validate", method: .post, headers: [.contentType: "application/fhir+json"], body: ByteBuffer(bytes: observation.canonicalBytes))
            #expect(anonymousCall.status == .unauthorized)
            #expect(try rc.json(anonymousCall)["resourceType"] == .string("OperationOutcome"))
            #expect(network.node.height == height)
        }
    }

    @Test func syntheaBundlesImportAndReadBackEqual() async throws {
        let hospital = Party(), doctor = Party()
        let network = try TestNetwork(
            contracts: .records, capabilities: recordsAlone, acting: ActingOrganisation(signing: hospital.key, encryption: hospital.encryption))
        let node = network.node, operatorParty = network.operatorParty
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/vectors/fhir/synthea")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }.sorted()
        #expect(files.count == 3)

        try await network.run { client in
                var rc = RecordsClient(client: client)
                func register(_ author: Party, _ subject: Party, _ role: String, name: String? = nil) async throws {
                    #expect(try await rc.register(author, subject, role, name: name)["status"] == .string("committed"))
                }
                try await register(operatorParty, hospital, "organisation", name: "Synthea General")
                try await register(hospital, doctor, "practitioner")
                var imported = 0
                for file in files {
                    // The hospital registers the patient; her keys are made on the importing side and handed to her.
                    let patient = Party()
                    try await register(hospital, patient, "patient")
                    _ = try await rc.submit(patient, "consent", "grant", .object([
                        "grantee": .string(hospital.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
                    ]))
                    var bundle = try JSONValue.parse(Array(try Data(contentsOf: folder.appendingPathComponent(file)))).objectValue!
                    var entries = bundle["entry"]!.arrayValue!
                    for (i, e) in entries.enumerated() where e["resource"]?["resourceType"] == .string("Patient") {
                        var entry = e.objectValue!
                        var resource = entry["resource"]!.objectValue!
                        resource["identifier"] = .array((resource["identifier"]?.arrayValue ?? []) + [.object(["system": .string("urn:ietf:rfc:3986"), "value": .string(patient.did)])])
                        entry["resource"] = .object(resource)
                        entries[i] = .object(entry)
                    }
                    bundle["entry"] = .array(entries)
                    let response = try await client.execute(
                        uri: "/fhir", method: .post,
                        headers: [.authorization: "Bearer \(try await rc.token(doctor))", .contentType: "application/fhir+json"],
                        body: ByteBuffer(bytes: JSONValue.object(bundle).canonicalBytes))
                    #expect(response.status == .ok, "\(file): \(String(buffer: response.body).prefix(300))")
                    let answer = try rc.json(response)
                    #expect(answer["type"] == .string("transaction-response"))
                    let locations = answer["entry"]!.arrayValue!.map { $0["response"]!["location"]!.stringValue! }
                    #expect(locations.count == entries.count)
                    // fullUrl → Type/id, as the server assigned them.
                    var map: [String: String] = [:]
                    for (e, location) in zip(entries, locations) {
                        let parts = location.split(separator: "/")
                        map[e["fullUrl"]!.stringValue!] = "\(parts[0])/\(parts[1])"
                    }
                    // The Patient entry is filed under her did: every reference to its fullUrl reads back as Patient/<multibase>.
                    let patientRef = "Patient/" + patient.did.dropFirst("did:key:".count)
                    let patientFullUrl = try #require(entries.first(where: { $0["resource"]?["resourceType"] == .string("Patient") })?["fullUrl"]?.stringValue)
                    #expect(map[patientFullUrl] == patientRef)
                    var aboutHer = 0
                    for (e, location) in zip(entries, locations) {
                        let parts = location.split(separator: "/")
                        let read = try await client.execute(
                            uri: "/fhir/\(parts[0])/\(parts[1])", method: .get, headers: [.authorization: "Bearer \(try await rc.token(doctor))"])
                        #expect(read.status == .ok)
                        var back = try rc.json(read).objectValue!
                        #expect(back["id"] == .string(String(parts[1])), "\(location)")
                        for field in ["subject", "patient"] where e["resource"]?[field]?["reference"]?.stringValue == patientFullUrl {
                            #expect(back[field]?["reference"] == .string(patientRef), "\(location) \(field)")
                            aboutHer += 1
                        }
                        var meta = back["meta"]?.objectValue ?? [:]
                        #expect(meta["versionId"] == .string("1"))
                        meta["versionId"] = nil
                        meta["lastUpdated"] = nil
                        back["meta"] = meta.isEmpty ? nil : .object(meta)
                        back["id"] = nil
                        // As posted, with each reference to an entry of the Bundle naming the Type/id assigned to it.
                        var original = referencesResolved(e["resource"]!, map).objectValue!
                        original["id"] = nil
                        #expect(JSONValue.object(back) == JSONValue.object(original), "\(location)")
                        imported += 1
                    }
                    #expect(aboutHer > 0, "\(file): entries naming the patient")
                    // Search by patient returns the patient's Observations.
                    let observations = entries.filter { $0["resource"]?["resourceType"] == .string("Observation") }.count
                    let search = try rc.json(try await client.execute(
                        uri: "/fhir/Observation?patient=\(patientRef)", method: .get, headers: [.authorization: "Bearer \(try await rc.token(doctor))"]))
                    #expect(search["total"] == .int(Int64(observations)))
                    // Search parameters, checked against the bundle itself.
                    func count(_ query: String) async throws -> JSONValue {
                        try rc.json(try await client.execute(
                            uri: "/fhir/Observation?patient=\(patientRef)&\(query)", method: .get, headers: [.authorization: "Bearer \(try await rc.token(doctor))"]))
                    }
                    let obs = entries.compactMap { $0["resource"] }.filter { $0["resourceType"] == .string("Observation") }
                    let vital = obs.filter { o in (o["category"]?.arrayValue ?? []).contains { ($0["coding"]?.arrayValue ?? []).contains { $0["code"] == .string("vital-signs") } } }
                    #expect(try await count("category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs")["total"] == .int(Int64(vital.count)))
                    #expect(try await count("category=vital-signs")["total"] == .int(Int64(vital.count)))
                    let firstCode = try #require(obs.first?["code"]?["coding"]?[0])
                    let sameCode = obs.filter { ($0["code"]?["coding"]?.arrayValue ?? []).contains { $0["code"] == firstCode["code"] && $0["system"] == firstCode["system"] } }
                    #expect(try await count("code=\(firstCode["system"]!.stringValue!)|\(firstCode["code"]!.stringValue!)")["total"] == .int(Int64(sameCode.count)))
                    #expect(try await count("code=http://example.org/none|\(firstCode["code"]!.stringValue!)")["total"] == .int(0))
                    let dates = obs.compactMap { $0["effectiveDateTime"]?.stringValue }.sorted()
                    let middle = String(dates[dates.count / 2].prefix(10))
                    #expect(try await count("date=ge\(middle)")["total"] == .int(Int64(dates.filter { String($0.prefix(10)) >= middle }.count)))
                    #expect(try await count("date=lt\(middle)&status=final")["total"] == .int(Int64(obs.filter { ($0["effectiveDateTime"]?.stringValue.map { String($0.prefix(10)) < middle } ?? false) && $0["status"] == .string("final") }.count)))
                    let newest = try await count("_sort=-date&_count=3")
                    #expect(newest["total"] == .int(Int64(observations)))
                    #expect(newest["entry"]?.arrayValue?.count == 3)
                    #expect(newest["entry"]?[0]?["resource"]?["effectiveDateTime"] == .string(dates.last!))
                    let unsupported = try await count("unknown=1")["issue"]?[0]
                    #expect(unsupported?["code"] == .string("invalid"))
                    #expect(unsupported?["diagnostics"]?.stringValue?.hasPrefix("unsupported_parameter:") == true)
                }
                #expect(imported == 312)

                // Atomicity: a bundle with one entry about another (unregistered) patient commits nothing.
                let before = node.logSize
                let bad: JSONValue = .object([
                    "resourceType": .string("Bundle"), "type": .string("transaction"),
                    "entry": .array([.object(["resource": .object(["resourceType": .string("Condition"), "subject": .object(["reference": .string("Patient/z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp")])]), "request": .object(["method": .string("POST"), "url": .string("Condition")])])]),
                ])
                let refused = try await client.execute(
                    uri: "/fhir", method: .post, headers: [.authorization: "Bearer \(try await rc.token(doctor))"], body: ByteBuffer(bytes: bad.canonicalBytes))
                #expect(refused.status == .badRequest)
                let refusal = try rc.json(refused)
                #expect(refusal["resourceType"] == .string("OperationOutcome"))
                #expect(refusal["issue"]?[0]?["code"] == .string("not-found"))
                #expect(refusal["issue"]?[0]?["expression"]?[0] == .string("Bundle.entry[0].resource.subject.reference"))
                #expect(node.logSize == before)
        }
    }

    /// The official FHIR R4 examples import through a transaction Bundle (their relative references
    /// resolved inside it) and read back equal; dangling references, ledger-owned types and a
    /// contract failure inside a Bundle are refused with nothing written; AuditEvent and Provenance
    /// read by id; a pending version is flagged when read.
    @Test func examplesImportAndTheLedgerOwnedTypesReadById() async throws {
        let hospital = Party(), lab = Party(), doctor = Party(), patient = Party(), other = Party()
        let network = try TestNetwork(
            contracts: .records, capabilities: recordsAlone, acting: ActingOrganisation(signing: hospital.key, encryption: hospital.encryption))
        let node = network.node, operatorParty = network.operatorParty
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/vectors/fhir/examples")
        @Sendable func example(_ name: String) throws -> JSONValue { try JSONValue.parse(Array(try Data(contentsOf: folder.appendingPathComponent(name)))) }
        let patientRef = "Patient/" + patient.did.dropFirst("did:key:".count)

        try await network.run { client in
            var rc = RecordsClient(client: client)
            try await rc.registerAll([
                (operatorParty, hospital, "organisation", "H"),
                (operatorParty, lab, "organisation", "Lab"),
                (hospital, doctor, "practitioner", nil),
                (patient, patient, "patient", nil),
                (other, other, "patient", nil),
            ])
            for p in [patient, other] {
                _ = try await rc.submit(p, "consent", "grant", .object([
                    "grantee": .string(hospital.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
                ]))
            }
            func send(_ method: HTTPRequest.Method, _ uri: String, as party: Party, _ body: JSONValue? = nil) async throws -> TestResponse {
                try await rc.fhir(method, uri, as: party, body)
            }

            // The examples as one transaction Bundle, with RESTful fullUrls: Observation/example refers to
            // Patient/example and Encounter/example, which the Bundle carries.
            var entries: [JSONValue] = []
            for name in [
                "patient-example.json", "encounter-example.json", "observation-example.json", "condition-example.json", "immunization-example.json",
                "specimen-example.json", "practitioner-example.json", "organization-example.json",
            ] {
                var resource = try example(name).objectValue!
                let type = resource["resourceType"]!.stringValue!
                if type == "Patient" {
                    resource["identifier"] = .array((resource["identifier"]?.arrayValue ?? []) + [.object(["system": .string("urn:ietf:rfc:3986"), "value": .string(patient.did)])])
                }
                entries.append(.object([
                    "fullUrl": .string("http://hl7.org/fhir/\(type)/\(resource["id"]!.stringValue!)"), "resource": .object(resource),
                    "request": .object(["method": .string("POST"), "url": .string(type)]),
                ]))
            }
            let bundle: JSONValue = .object(["resourceType": .string("Bundle"), "type": .string("transaction"), "entry": .array(entries)])
            let response = try await send(.post, "/fhir", as: doctor, bundle)
            #expect(response.status == .ok, "\(String(buffer: response.body).prefix(400))")
            let locations = try rc.json(response)["entry"]!.arrayValue!.map { $0["response"]!["location"]!.stringValue! }
            var map: [String: String] = [:]
            for (e, location) in zip(entries, locations) {
                let parts = location.split(separator: "/")
                let original = e["resource"]!
                map["\(original["resourceType"]!.stringValue!)/\(original["id"]!.stringValue!)"] = "\(parts[0])/\(parts[1])"
            }
            #expect(map["Patient/example"] == patientRef)
            var readBack: [String: JSONValue] = [:]
            for (e, location) in zip(entries, locations) {
                let parts = location.split(separator: "/")
                let read = try await send(.get, "/fhir/\(parts[0])/\(parts[1])", as: doctor)
                #expect(read.status == .ok)
                let readJSON = try rc.json(read)
                let posted = e["resource"]!
                readBack["\(posted["resourceType"]!.stringValue!)/\(posted["id"]!.stringValue!)"] = readJSON
                #expect(readJSON["id"] == .string(String(parts[1])), "\(location)")
                var back = readJSON.objectValue!
                var meta = back["meta"]?.objectValue ?? [:]
                meta["versionId"] = nil
                meta["lastUpdated"] = nil
                back["meta"] = meta.isEmpty ? nil : .object(meta)
                back["id"] = nil
                // As posted, with each reference to an entry of the Bundle naming the Type/id assigned to it.
                var original = referencesResolved(posted, map).objectValue!
                original["id"] = nil
                #expect(JSONValue.object(back) == JSONValue.object(original), "\(location)")
            }
            let encounter = try #require(map["Encounter/example"])
            let practitioner = try #require(map["Practitioner/example"])
            let organization = try #require(map["Organization/hl7"])
            #expect(encounter.hasPrefix("Encounter/") && encounter != "Encounter/example", "a POSTed entry gets an id of the server's")
            // Field by field, from the published examples: their references to resources the Bundle carries name
            // the ids assigned to those; references to what it does not carry stay as written.
            let observationExample = try example("observation-example.json")
            let observationRead = try #require(readBack["Observation/example"])
            #expect(observationRead["subject"]?["reference"] == .string(patientRef))
            #expect(observationRead["encounter"]?["reference"] == .string(encounter))
            #expect(observationRead["code"]?["coding"]?[0]?["system"] == .string("http://loinc.org"))
            #expect(observationRead["code"]?["coding"]?[0]?["code"] == .string("29463-7"))
            #expect(observationRead["code"]?["coding"]?.arrayValue?.count == 4)
            #expect(observationRead["code"] == observationExample["code"])
            #expect(observationRead["status"] == .string("final") && observationRead["effectiveDateTime"] == .string("2016-03-28"))
            #expect(observationRead["valueQuantity"]?["value"] == .int(185) && observationRead["valueQuantity"]?["code"] == .string("[lb_av]"))
            let immunizationRead = try #require(readBack["Immunization/example"])
            #expect(immunizationRead["patient"]?["reference"] == .string(patientRef))
            #expect(immunizationRead["encounter"]?["reference"] == .string(encounter))
            #expect(immunizationRead["manufacturer"]?["reference"] == .string(organization))
            #expect(immunizationRead["performer"]?[0]?["actor"]?["reference"] == .string(practitioner))
            #expect(immunizationRead["performer"]?[1]?["actor"]?["reference"] == .string(practitioner))
            #expect(immunizationRead["location"]?["reference"] == .string("Location/1"))
            let specimenRead = try #require(readBack["Specimen/101"])
            #expect(specimenRead["subject"]?["reference"] == .string(patientRef))
            #expect(specimenRead["collection"]?["collector"]?["reference"] == .string(practitioner))
            #expect(specimenRead["request"]?[0]?["reference"] == .string("ServiceRequest/example"))
            #expect(specimenRead["container"]?[0]?["additiveReference"]?["reference"] == .string("#hep"))
            let patientRead = try #require(readBack["Patient/example"])
            #expect(patientRead["managingOrganization"]?["reference"] == .string("Organization/1"))
            let encounterRead = try #require(readBack["Encounter/example"])
            #expect(encounterRead["subject"]?["reference"] == .string(patientRef))
            let conditionRead = try #require(readBack["Condition/example"])
            #expect(conditionRead["subject"]?["reference"] == .string(patientRef))
            // The validator's transaction Bundle carries SearchParameter resources, which this server does not
            // store: refused whole, with an OperationOutcome.
            let searchParameters = try JSONValue.parse(Array(try Data(contentsOf: folder.deletingLastPathComponent().appendingPathComponent("validator/bundle-transaction.json"))))
            let refusedBundle = try await send(.post, "/fhir", as: doctor, searchParameters)
            #expect(refusedBundle.status == .badRequest)
            let refusedOutcome = try rc.json(refusedBundle)
            #expect(refusedOutcome["resourceType"] == .string("OperationOutcome"))
            #expect(refusedOutcome["issue"]?[0]?["code"] == .string("not-supported"))
            #expect(refusedOutcome["issue"]?[0]?["expression"]?[0] == .string("Bundle.entry[0].resource.resourceType"))
            // A search by type audits exactly what it read: the Observation, not every record of hers.
            let found = try rc.json(try await send(.get, "/fhir/Observation?patient=\(patientRef)", as: doctor))
            #expect(found["total"] == .int(1))
            let lastAccess = try rc.json(try await rc.get("/v1/patients/\(patient.did)/access-log", as: patient))["events"]!.arrayValue!.last
            #expect(lastAccess?["records"] == .array([.string(String(try #require(map["Observation/example"]).split(separator: "/")[1]))]))

            // The validator's pulse-oximetry Observations (a wearable's SpO2) enter for this patient and read back
            // equal; its IEEE 11073 Observation is refused, naming the Observation it derives from, which is nowhere.
            let validator = folder.deletingLastPathComponent().appendingPathComponent("validator")
            let pulseOx = try JSONValue.parse(Array(try Data(contentsOf: validator.appendingPathComponent("PulseOxBundle_25Oct2022.json"))))
            for entry in pulseOx["entry"]?.arrayValue ?? [] {
                var resource = try #require(entry["resource"]?.objectValue)
                resource["subject"] = .object(["reference": .string(patientRef)])
                resource["id"] = nil
                resource["meta"] = nil
                let created = try await send(.post, "/fhir/Observation", as: doctor, .object(resource))
                #expect(created.status == .created, "\(String(buffer: created.body).prefix(300))")
                var back = try rc.json(created).objectValue!
                back["id"] = nil
                back["meta"] = nil
                #expect(JSONValue.object(back) == JSONValue.object(resource))
            }
            var mdc = try JSONValue.parse(Array(try Data(contentsOf: validator.appendingPathComponent("obs-vital-signs-mdc.json")))).objectValue!
            mdc["subject"] = .object(["reference": .string(patientRef)])
            let refusedMDC = try await send(.post, "/fhir/Observation", as: doctor, .object(mdc))
            #expect(refusedMDC.status == .badRequest)
            #expect(String(buffer: refusedMDC.body).contains("Observation/coin-20181119202022"))

            // A reference to a stored type that does not exist is refused (the examples' MedicationRequest
            // names Encounter/f201, which is nowhere); the same resource pointing at the imported encounter enters.
            var prescription = try example("medicationrequest0301.json").objectValue!
            prescription["subject"] = .object(["reference": .string(patientRef)])
            prescription["id"] = nil
            let dangling = try await send(.post, "/fhir/MedicationRequest", as: doctor, .object(prescription))
            #expect(dangling.status == .badRequest)
            let outcome = try rc.json(dangling)
            #expect(outcome["resourceType"] == .string("OperationOutcome"))
            // Both dangling references are named (Encounter/f201, Procedure/biopsy); Practitioner, Coverage and
            // DetectedIssue references are to directory types kept as given.
            let issues = outcome["issue"]?.arrayValue ?? []
            #expect(issues.count == 2)
            #expect(issues.allSatisfy { $0["code"] == .string("not-found") })
            #expect(issues.contains { $0["diagnostics"]?.stringValue?.contains("Encounter/f201") == true && $0["expression"]?[0] == .string("MedicationRequest.encounter.reference") })
            #expect(issues.contains { $0["diagnostics"]?.stringValue?.contains("Procedure/biopsy") == true })
            prescription["encounter"] = .object(["reference": .string(encounter)])
            prescription["supportingInformation"] = nil
            #expect(try await send(.post, "/fhir/MedicationRequest", as: doctor, .object(prescription)).status == .created)
            // A reference to another patient's record is no target either.
            let crossPatient: JSONValue = .object([
                "resourceType": .string("Condition"), "subject": .object(["reference": .string("Patient/" + other.did.dropFirst("did:key:".count))]),
                "encounter": .object(["reference": .string(encounter)]),
            ])
            #expect(try await send(.post, "/fhir/Condition", as: doctor, crossPatient).status == .badRequest)
            // An unresolved urn:uuid reference is dangling too.
            let orphan: JSONValue = .object([
                "resourceType": .string("Condition"), "subject": .object(["reference": .string(patientRef)]),
                "encounter": .object(["reference": .string("urn:uuid:5bd1a2cc-0ba1-4a6c-a7a6-ec1d0bd0ad6d")]),
            ])
            #expect(try await send(.post, "/fhir/Condition", as: doctor, orphan).status == .badRequest)

            // Consent, AuditEvent and Provenance are the ledger's own: never written as records.
            let consentPost = try await send(.post, "/fhir/Consent", as: doctor, try example("consent-example.json"))
            #expect(consentPost.status == .methodNotAllowed)
            #expect(try rc.json(consentPost)["issue"]?[0]?["code"] == .string("not-supported"))
            #expect(try await send(.post, "/fhir/AuditEvent", as: doctor, try example("auditevent-example.json")).status == .methodNotAllowed)
            let withConsent: JSONValue = .object([
                "resourceType": .string("Bundle"), "type": .string("transaction"),
                "entry": .array([.object(["resource": try example("consent-example.json"), "request": .object(["method": .string("POST"), "url": .string("Consent")])])]),
            ])
            #expect(try await send(.post, "/fhir", as: doctor, withConsent).status == .methodNotAllowed)

            // Atomicity inside the contract: the second entry updates another patient's record, which the
            // records contract refuses; the first entry is not written either.
            let othersRecord = try rc.json(try await send(.post, "/fhir/Condition", as: doctor, .object([
                "resourceType": .string("Condition"), "subject": .object(["reference": .string("Patient/" + other.did.dropFirst("did:key:".count))]),
            ])))["id"]!.stringValue!
            let recordsBefore = try records(of: patient, node)
            let mixed: JSONValue = .object([
                "resourceType": .string("Bundle"), "type": .string("transaction"),
                "entry": .array([
                    .object(["resource": .object(["resourceType": .string("Condition"), "subject": .object(["reference": .string(patientRef)])]), "request": .object(["method": .string("POST"), "url": .string("Condition")])]),
                    .object(["resource": .object(["resourceType": .string("Condition"), "id": .string(othersRecord), "subject": .object(["reference": .string(patientRef)])]),
                             "request": .object(["method": .string("PUT"), "url": .string("Condition/\(othersRecord)")])]),
                ]),
            ])
            let failed = try await send(.post, "/fhir", as: doctor, mixed)
            #expect(failed.status == .badRequest)
            let failure = try rc.json(failed)
            #expect(failure["issue"]?[0]?["code"] == .string("invalid"))
            #expect(failure["issue"]?[0]?["diagnostics"]?.stringValue?.hasPrefix("record_mismatch:") == true)
            #expect(try records(of: patient, node) == recordsBefore, "nothing of the refused Bundle is written")

            // AuditEvent by id: the patient reads what the search lists; the doctor may not.
            let audit = try rc.json(try await send(.get, "/fhir/AuditEvent?patient=\(patient.did)", as: patient))
            let first = try #require(audit["entry"]?[0]?["resource"])
            let auditID = try #require(first["id"]?.stringValue)
            #expect(try rc.json(try await send(.get, "/fhir/AuditEvent/\(auditID)", as: patient)) == first)
            #expect(try await send(.get, "/fhir/AuditEvent/\(auditID)", as: doctor).status == .forbidden)
            #expect(try await send(.get, "/fhir/AuditEvent/\(auditID.dropLast())999999", as: patient).status == .notFound)
            // The ledger-owned types search by reference too (patient= or subject=, Patient/<id>).
            #expect(try rc.json(try await send(.get, "/fhir/AuditEvent?subject=\(patientRef)", as: patient)) == audit)
            let consents = try await send(.get, "/fhir/Consent?patient=\(patientRef)", as: patient)
            #expect(consents.status == .ok)
            #expect(try rc.json(consents)["resourceType"] == .string("Bundle"))
            #expect(try await send(.get, "/fhir/Consent?patient=Patient/nobody", as: patient).status == .badRequest)
            // They search by _lastUpdated (the event's time; the consent's grant or revocation) and page with _count.
            let allEvents = try #require(audit["entry"]?.arrayValue?.count)
            #expect(allEvents > 1)
            #expect(try rc.json(try await send(.get, "/fhir/AuditEvent?patient=\(patientRef)&_lastUpdated=gt2099-01-01", as: patient))["total"] == .int(0))
            let recent = try rc.json(try await send(.get, "/fhir/AuditEvent?patient=\(patientRef)&_lastUpdated=ge2020-01-01&_count=1&_sort=-_lastUpdated", as: patient))
            #expect(recent["total"] == .int(Int64(allEvents)) && recent["entry"]?.arrayValue?.count == 1)
            #expect(try rc.json(try await send(.get, "/fhir/Consent?patient=\(patientRef)&_lastUpdated=gt2099-01-01", as: patient))["total"] == .int(0))
            let consentsNow = try rc.json(try await send(.get, "/fhir/Consent?patient=\(patientRef)&_lastUpdated=ge2020-01-01", as: patient))
            #expect(consentsNow["total"]?.intValue ?? 0 >= 1)
            #expect(FHIRValidator.validate(try #require(consentsNow["entry"]?[0]?["resource"])).isEmpty)
            // What no route serves is an OperationOutcome too, never a bare 404: a path not served, 404; a
            // method the path is not served with, 405 naming the methods it is (Allow).
            let unrouted = try await send(.get, "/fhir/Observation/x/_history/1/extra", as: doctor)
            #expect(unrouted.status == .notFound)
            #expect(try rc.json(unrouted)["resourceType"] == .string("OperationOutcome"))
            let wrongMethod = try await send(.post, "/fhir/Observation/some-id", as: doctor)
            #expect(wrongMethod.status == .methodNotAllowed)
            #expect(wrongMethod.headers[.allow] == "GET, PUT")
            #expect(try rc.json(wrongMethod)["resourceType"] == .string("OperationOutcome"))
            // A literal path before a template: /fhir/metadata is read-only, not a type to create.
            let metadataPost = try await send(.post, "/fhir/metadata", as: doctor, .object(["resourceType": .string("Basic")]))
            #expect(metadataPost.status == .methodNotAllowed && metadataPost.headers[.allow] == "GET")
            // A method served only to refuse it explains itself, and Allow names what is served.
            let delete = try await send(.delete, "/fhir/Observation/some-id", as: doctor)
            #expect(delete.status == .methodNotAllowed && delete.headers[.allow] == "GET, PUT")
            // A MedicationDispense goes through the facade like the other clinical types.
            let dispense: JSONValue = .object([
                "resourceType": .string("MedicationDispense"), "status": .string("completed"),
                "medicationCodeableConcept": .object(["text": .string("Amoxicillin 500 mg")]), "subject": .object(["reference": .string(patientRef)]),
                "quantity": .object(["value": .int(21)]),
            ])
            let dispensed = try await send(.post, "/fhir/MedicationDispense", as: doctor, dispense)
            #expect(dispensed.status == .created)
            let dispenseID = try #require(try rc.json(dispensed)["id"]?.stringValue)
            let dispenseRead = try rc.json(try await send(.get, "/fhir/MedicationDispense/\(dispenseID)", as: doctor))
            #expect(dispenseRead["medicationCodeableConcept"] == dispense["medicationCodeableConcept"] && dispenseRead["quantity"] == dispense["quantity"])
            #expect(try await send(.post, "/fhir/MedicationDispense", as: doctor, .object([
                "resourceType": .string("MedicationDispense"), "subject": .object(["reference": .string(patientRef)]),
            ])).status == .badRequest, "status and medication[x] are required")
            // Provenance by id: <record id>-<version>.
            let observationID = String(try #require(map["Observation/example"]).split(separator: "/")[1])
            let provenance = try rc.json(try await send(.get, "/fhir/Provenance/\(observationID)-1", as: doctor))
            #expect(provenance["target"]?[0]?["reference"] == .string("Observation/\(observationID)/_history/1"))
            #expect(FHIRValidator.validate(provenance).isEmpty)
            // Provenance by patient (every version of her records the requester may see) and _lastUpdated.
            let provenances = try rc.json(try await send(.get, "/fhir/Provenance?patient=\(patientRef)", as: doctor))
            let provenanceIDs = Set((provenances["entry"]?.arrayValue ?? []).compactMap { $0["resource"]?["id"]?.stringValue })
            #expect(provenanceIDs.contains("\(observationID)-1") && Int64(provenanceIDs.count) == provenances["total"]?.intValue)
            #expect(provenanceIDs.count >= entries.count - 2, "one per stored version of the imported clinical resources")
            #expect(try rc.json(try await send(.get, "/fhir/Provenance?subject=\(patientRef)&_lastUpdated=gt2099-01-01", as: doctor))["total"] == .int(0))
            let elsewhere = Party(), outsider = Party()
            try await rc.registerAll([(operatorParty, elsewhere, "organisation", "Elsewhere"), (elsewhere, outsider, "practitioner", nil)])
            #expect(try await send(.get, "/fhir/Provenance?patient=\(patientRef)", as: outsider).status == .forbidden, "no consent covers her")
            #expect(try await send(.get, "/fhir/Provenance/\(observationID)-7", as: doctor).status == .notFound)
            // The ledger's own types have one version each: vread of version 1 and a one-entry _history.
            let consentID = try #require(try rc.json(try await send(.get, "/fhir/Consent?patient=\(patientRef)", as: patient))["entry"]?[0]?["resource"]?["id"]?.stringValue)
            for (path, reader) in [("AuditEvent/\(auditID)", patient), ("Provenance/\(observationID)-1", doctor), ("Consent/\(consentID)", patient)] {
                let current = try rc.json(try await send(.get, "/fhir/\(path)", as: reader))
                #expect(try rc.json(try await send(.get, "/fhir/\(path)/_history/1", as: reader)) == current, "\(path)")
                let other = try await send(.get, "/fhir/\(path)/_history/2", as: reader)
                #expect(other.status == .notFound)
                #expect(try rc.json(other)["resourceType"] == .string("OperationOutcome"))
                let history = try rc.json(try await send(.get, "/fhir/\(path)/_history", as: reader))
                #expect(history["type"] == .string("history") && history["total"] == .int(1))
                #expect(history["entry"]?[0]?["resource"] == current)
            }

            // Through the facade, a report ordered by another practitioner names her as requester: it stays
            // pending until she endorses it with her own key.
            let orderer = Party()
            _ = try await rc.register(lab, orderer, "practitioner")
            let ordered: JSONValue = .object([
                "resourceType": .string("DiagnosticReport"), "status": .string("final"), "code": .object(["text": .string("Lipids")]),
                "subject": .object(["reference": .string(patientRef)]),
            ])
            #expect(try await send(.post, "/fhir/DiagnosticReport?requester=\(hospital.did)", as: doctor, ordered).status == .badRequest, "the requester is a practitioner")
            let filed = try await send(.post, "/fhir/DiagnosticReport?requester=\(orderer.did)", as: doctor, ordered)
            #expect(filed.status == .created)
            let filedReport = try rc.json(filed)
            #expect(filedReport["meta"]?["tag"]?.arrayValue?.contains(FHIRRecords.pendingTag) == true)
            let reportID = try #require(filedReport["id"]?.stringValue)
            #expect(try await rc.submit(doctor, "records", "endorse", .object(["recordId": .string(reportID), "version": .int(1)]))["error"]?["code"] == .string("forbidden"))
            #expect(try await rc.submit(orderer, "records", "endorse", .object(["recordId": .string(reportID), "version": .int(1)]))["result"]?["status"] == .string("current"))
            #expect(try rc.json(try await send(.get, "/fhir/DiagnosticReport/\(reportID)", as: doctor))["meta"]?["tag"] == nil)
            // Without ?requester, the signed-in practitioner is the requester: current at once.
            #expect(try rc.json(try await send(.post, "/fhir/DiagnosticReport", as: doctor, ordered))["meta"]?["tag"] == nil)
            // In a transaction Bundle too, ?requester= names the ordering practitioner: the report waits for her.
            let orderBundle: JSONValue = .object(["resourceType": .string("Bundle"), "type": .string("transaction"), "entry": .array([
                .object(["resource": ordered, "request": .object(["method": .string("POST"), "url": .string("DiagnosticReport")])]),
            ])])
            let bundled = try await send(.post, "/fhir?requester=\(orderer.did)", as: doctor, orderBundle)
            #expect(bundled.status == .ok)
            let bundledID = try #require(try rc.json(bundled)["entry"]?[0]?["response"]?["location"]?.stringValue?.split(separator: "/").dropFirst().first.map(String.init))
            let bundledRead = try rc.json(try await send(.get, "/fhir/DiagnosticReport/\(bundledID)/_history/1", as: doctor))
            #expect(bundledRead["meta"]?["tag"]?.arrayValue?.contains(FHIRRecords.pendingTag) == true, "\(bundledRead)")
            // A report naming another organisation as its performer (the lab) waits for that lab's endorsement.
            let externalLab = Party()
            _ = try await rc.register(operatorParty, externalLab, "organisation", name: "External lab")
            var byLab = ordered.objectValue!
            byLab["performer"] = .array([.object(["reference": .string("Organization/" + externalLab.did.dropFirst("did:key:".count))])])
            let labReport = try await send(.post, "/fhir/DiagnosticReport", as: doctor, .object(byLab))
            #expect(labReport.status == .created)
            let labReportJSON = try rc.json(labReport)
            #expect(labReportJSON["meta"]?["tag"]?.arrayValue?.contains(FHIRRecords.pendingTag) == true)
            let labReportID = try #require(labReportJSON["id"]?.stringValue)
            #expect(try await rc.submit(externalLab, "records", "endorse", .object(["recordId": .string(labReportID), "version": .int(1)]))["result"]?["status"] == .string("current"))

            // A DiagnosticReport waiting for the lab's endorsement is served flagged as pending.
            let report: JSONValue = .object([
                "resourceType": .string("DiagnosticReport"), "id": .string("dr1"), "status": .string("final"),
                "code": .object(["text": .string("CBC")]), "subject": .object(["reference": .string(patientRef)]),
            ])
            let put = try await rc.put(doctor, patient: patient, recordID: "dr1", version: 1, resource: report, custodian: hospital, parties: ["performer": lab.did, "requester": doctor.did])
            #expect(put["result"]?["status"] == .string("pending"))
            let pending = try rc.json(try await send(.get, "/fhir/DiagnosticReport/dr1/_history/1", as: doctor))
            #expect(pending["meta"]?["tag"]?.arrayValue?.contains(FHIRRecords.pendingTag) == true)
            _ = try await rc.submit(lab, "records", "endorse", .object(["recordId": .string("dr1"), "version": .int(1)]))
            let current = try rc.json(try await send(.get, "/fhir/DiagnosticReport/dr1", as: doctor))
            #expect(current["meta"]?["tag"] == nil)
        }
    }

    func records(of patient: Party, _ node: LedgerNode) throws -> JSONValue? {
        try node.stateValue(forKey: RecordEntry.indexKey(patient: patient.did)).map { try JSONValue.parse($0) }
    }

    /// Through the facade: break-the-glass with a stated reason, a Patient created under her did, and a
    /// search that leaves out versions whose key is not the organisation's (instead of failing).
    @Test func facadeBreakGlassPatientCreateAndForeignKeys() async throws {
        let hospital = Party(), other = Party(), doctor = Party(), patient = Party(), newcomer = Party()
        let network = try TestNetwork(
            contracts: .records, capabilities: recordsAlone, acting: ActingOrganisation(signing: hospital.key, encryption: hospital.encryption))
        let operatorParty = network.operatorParty
        let patientRef = "Patient/" + patient.did.dropFirst("did:key:".count)
        try await network.run { client in
            var rc = RecordsClient(client: client)
            try await rc.registerAll([
                (operatorParty, hospital, "organisation", "H"),
                (operatorParty, other, "organisation", "O"),
                (hospital, doctor, "practitioner", nil),
                (patient, patient, "patient", nil),
                (newcomer, newcomer, "patient", nil),
            ])
            func send(_ method: HTTPRequest.Method, _ uri: String, _ body: JSONValue? = nil) async throws -> TestResponse {
                try await rc.fhir(method, uri, as: doctor, body)
            }
            // The patient's own record, held by the hospital; no consent to the hospital or the doctor.
            let condition: JSONValue = .object(["resourceType": .string("Condition"), "id": .string("c1"), "subject": .object(["reference": .string(patientRef)])])
            #expect(try await rc.put(patient, patient: patient, recordID: "c1", version: 1, resource: condition, custodian: hospital)["status"] == .string("committed"))
            #expect(try await send(.get, "/fhir/Condition/c1").status == .forbidden)
            let noReason = try await send(.get, "/fhir/Condition/c1?purpose=emergency")
            #expect(noReason.status == .forbidden)
            #expect(try rc.json(noReason)["issue"]?[0]?["diagnostics"]?.stringValue?.hasPrefix("break_glass_reason_required") == true)
            let emergency = try await send(.get, "/fhir/Condition/c1?purpose=emergency&reason=unresponsive%20in%20the%20ED")
            #expect(emergency.status == .ok)
            #expect(try rc.json(emergency)["subject"]?["reference"] == .string(patientRef))

            // A Patient created through the facade is filed under her did.
            let created = try await send(.post, "/fhir/Patient", .object([
                "resourceType": .string("Patient"), "identifier": .array([.object(["system": .string("urn:ietf:rfc:3986"), "value": .string(newcomer.did)])]),
                "name": .array([.object(["family": .string("Newcomer")])]),
            ]))
            // The hospital needs her consent to write about her.
            #expect(created.status == .forbidden)
            _ = try await rc.submit(newcomer, "consent", "grant", .object([
                "grantee": .string(hospital.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
            ]))
            let retried = try await send(.post, "/fhir/Patient", .object([
                "resourceType": .string("Patient"), "identifier": .array([.object(["system": .string("urn:ietf:rfc:3986"), "value": .string(newcomer.did)])]),
            ]))
            #expect(retried.status == .created, "\(String(buffer: retried.body))")
            #expect(try rc.json(retried)["id"] == .string(String(newcomer.did.dropFirst("did:key:".count))))
            #expect(try await send(.post, "/fhir/Patient", .object(["resourceType": .string("Patient"), "id": .string(String(newcomer.did.dropFirst("did:key:".count)))])).status == .conflict)
            // A Patient that names no did (no identifier with system urn:ietf:rfc:3986, no id) is refused.
            let anonymous = try await send(.post, "/fhir/Patient", .object(["resourceType": .string("Patient")]))
            #expect(anonymous.status == .badRequest)
            let anonymousOutcome = try rc.json(anonymous)
            #expect(anonymousOutcome["issue"]?[0]?["code"] == .string("invalid"))
            #expect(anonymousOutcome["issue"]?[0]?["diagnostics"]?.stringValue?.hasPrefix("unknown_patient:") == true)

            // A record held by the other organisation, its key wrapped for the doctor herself (the patient's grant
            // to her) but not for the hospital: the facade's search leaves it out and still answers.
            _ = try await rc.submit(patient, "consent", "grant", .object([
                "grantee": .string(doctor.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("Observation")]),
            ]))
            let observation: JSONValue = .object([
                "resourceType": .string("Observation"), "id": .string("o1"), "status": .string("final"), "code": .object(["text": .string("BP")]),
                "subject": .object(["reference": .string(patientRef)]),
            ])
            #expect(try await rc.put(patient, patient: patient, recordID: "o1", version: 1, resource: observation, custodian: other)["status"] == .string("committed"))
            let search = try await send(.get, "/fhir/Observation?patient=\(patientRef)")
            #expect(search.status == .ok)
            #expect(try rc.json(search)["total"] == .int(0))
            // She opens it herself through /v1 with her own key.
            let own = try rc.json(try await rc.get("/v1/records/o1", as: doctor))
            #expect(try SealedVersion.open(read: own, with: doctor.encryption) == observation.canonicalBytes)
        }
    }
}

/// `value` with every `reference` string that names a resource of the Bundle (a key of `assigned`: its
/// fullUrl, or its Type/id as written in the Bundle) replaced by the Type/id the server assigned, at any depth.
private func referencesResolved(_ value: JSONValue, _ assigned: [String: String]) -> JSONValue {
    switch value {
    case .object(let members):
        var resolved: [String: JSONValue] = [:]
        for (key, child) in members {
            if key == "reference", let written = child.stringValue, let target = assigned[written] {
                resolved[key] = .string(target)
            } else {
                resolved[key] = referencesResolved(child, assigned)
            }
        }
        return .object(resolved)
    case .array(let items):
        return .array(items.map { referencesResolved($0, assigned) })
    default:
        return value
    }
}
