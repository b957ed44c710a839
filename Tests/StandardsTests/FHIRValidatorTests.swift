import Foundation
import LedgerCore
import Standards
import Testing

@Suite struct FHIRValidatorTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/vectors/fhir")

    func load(_ path: String) throws -> JSONValue { try JSONValue.parse(Array(try Data(contentsOf: Self.root.appendingPathComponent(path)))) }

    @Test func specificationExamplesAreValid() throws {
        for name in [
            "patient-example", "observation-example", "condition-example", "immunization-example", "encounter-example",
            "consent-example", "auditevent-example", "medicationrequest0301", "organization-example", "practitioner-example", "specimen-example",
        ] {
            let issues = FHIRValidator.validate(try load("examples/\(name).json"))
            #expect(issues.isEmpty, "\(name): \(issues)")
        }
    }

    @Test func syntheaBundlesAreValid() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("synthea").path).filter { $0.hasSuffix(".json") }
        #expect(files.count == 3)
        for file in files {
            let bundle = try load("synthea/\(file)")
            let issues = FHIRValidator.validate(bundle)
            #expect(issues.isEmpty, "\(file): \(issues.prefix(5))")
            #expect((bundle["entry"]?.arrayValue?.count ?? 0) > 60)
        }
    }

    @Test func invalidResourcesAreRefusedWithTheElement() throws {
        func without(_ r: JSONValue, _ key: String) -> JSONValue {
            var o = r.objectValue!
            o[key] = nil
            return .object(o)
        }
        func with(_ r: JSONValue, _ key: String, _ value: JSONValue) -> JSONValue {
            var o = r.objectValue!
            o[key] = value
            return .object(o)
        }
        let obs = try load("examples/observation-example.json")
        #expect(FHIRValidator.validate(without(obs, "status")).map(\.expression) == ["Observation.status"])
        #expect(FHIRValidator.validate(with(obs, "status", .string("done"))).map(\.code) == ["code-invalid"])
        #expect(FHIRValidator.validate(with(obs, "subject", .object(["reference": .string("Practitioner/example")]))).map(\.expression) == ["Observation.subject"])
        #expect(FHIRValidator.validate(with(obs, "subject", .object(["reference": .string("not a reference")]))).first?.expression == "Observation.subject.reference")
        #expect(FHIRValidator.validate(with(obs, "issued", .string("2013-04-03"))).first?.expression == "Observation.issued")
        #expect(FHIRValidator.validate(with(obs, "id", .string("bad id!"))).first?.expression == "Observation.id")
        #expect(FHIRValidator.validate(with(obs, "resourceType", .string("Starship"))).first?.code == "not-supported")
        #expect(FHIRValidator.validate(without(obs, "resourceType")).first?.code == "required")
        let medication = try load("examples/medicationrequest0301.json")
        var noMedication = medication.objectValue!
        for key in noMedication.keys where key.hasPrefix("medication") { noMedication[key] = nil }
        #expect(FHIRValidator.validate(.object(noMedication)).map(\.expression) == ["MedicationRequest.medication[x]"])
        let outcome = FHIRValidator.operationOutcome(FHIRValidator.validate(without(obs, "code")))
        #expect(outcome["resourceType"] == .string("OperationOutcome"))
        #expect(outcome["issue"]?.arrayValue?.first?["severity"] == .string("error"))
    }
}
