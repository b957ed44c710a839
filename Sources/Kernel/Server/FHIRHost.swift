import Foundation
import Hummingbird
import LedgerCore
import Node
import Standards

/// The FHIR R4 host under `/fhir`: the CapabilityStatement (`/fhir/metadata`) assembled from what the
/// capabilities serve, every error an OperationOutcome, and a 404 OperationOutcome for what no route
/// answers. The resources themselves are the capabilities' (`NodeCapability.fhirResources`).
public enum FHIRHost {
    public static let contentType = "application/fhir+json; fhirVersion=4.0"

    public static func respond(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: value.canonicalBytes)))
    }

    /// Runs `body`; ledger errors become OperationOutcomes with the HTTP status of their code.
    public static func handle(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let invalid as FHIRInvalid {
            return Self.respond(FHIRValidator.operationOutcome(invalid.issues), status: .badRequest)
        } catch let rejection as BatchRejection {
            let issue = FHIRIssue(severity: .error, code: "invalid", diagnostics: "\(rejection.first.code): \(rejection.first.message)", expression: "$this")
            return Self.respond(FHIRValidator.operationOutcome([issue]), status: APIError.status(for: rejection.first.code))
        } catch let error as LedgerError {
            let code: String
            switch error.code {
            case "unauthenticated": code = "login"
            case "forbidden", "consent_denied": code = "forbidden"
            case "not_found": code = "not-found"
            case "not_supported", "method_not_allowed": code = "not-supported"
            case "rate_limited", "too_many_streams", "too_many_denied": code = "throttled"
            default: code = "invalid"
            }
            let issue = FHIRIssue(severity: .error, code: code, diagnostics: "\(error.code): \(error.message)", expression: "$this")
            let status: HTTPResponse.Status =
                error.code == "not_supported" ? .notFound : error.code == "precondition_failed" ? .preconditionFailed
                : error.code == "method_not_allowed" ? .methodNotAllowed : APIError.status(for: error.code)
            return Self.respond(FHIRValidator.operationOutcome([issue]), status: status)
        } catch {
            let issue = FHIRIssue(severity: .fatal, code: "exception", diagnostics: "\(error)", expression: "$this")
            return Self.respond(FHIRValidator.operationOutcome([issue]), status: .internalServerError)
        }
    }

    /// The CapabilityStatement of this node: the resources and system interactions its capabilities serve.
    /// `custodian`: the did of the organisation the node acts for, if any (`implementation.custodian`,
    /// identified by its did: the app offers its practitioners to work through this node).
    static func capabilityStatement(resources: [JSONValue], interactions: [String], custodian: String? = nil) -> JSONValue {
        var rest: [String: JSONValue] = [
            "mode": .string("server"),
            "security": .object([
                "description": .string(
                    "Bearer token from POST /v1/auth/challenge and /v1/auth/token (Ed25519 signature of the challenge), or RFC 9421 HTTP Message Signatures with the caller's did:key"
                )
            ]),
            "resource": .array(resources),
        ]
        if !interactions.isEmpty { rest["interaction"] = .array(interactions.map { .object(["code": .string($0)]) }) }
        var implementation: [String: JSONValue] = ["description": .string("CareLedger node FHIR R4 facade")]
        if let custodian {
            implementation["custodian"] = .object(["identifier": .object(["system": .string("urn:ietf:rfc:3986"), "value": .string(custodian)])])
        }
        return .object([
            "resourceType": .string("CapabilityStatement"), "status": .string("active"), "date": .string("2026-11-25"),
            "kind": .string("instance"), "fhirVersion": .string("4.0.1"), "format": .array([.string("json")]),
            // cpb-15 (an instance describes its implementation).
            "implementation": .object(implementation),
            "software": .object(["name": .string("CareLedger"), "version": .string(LedgerAPI.version)]),
            "rest": .array([.object(rest)]),
        ])
    }
}

/// A resource that fails FHIR validation: answered 400 with an OperationOutcome of its issues.
public struct FHIRInvalid: Error {
    public let issues: [FHIRIssue]

    public init(issues: [FHIRIssue]) { self.issues = issues }
}
