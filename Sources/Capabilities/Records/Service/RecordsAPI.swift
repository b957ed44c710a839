import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import Node
import Server
import RecordsContract

/// Routes for patients, consent and health records (all reads authenticated and audited).
struct RecordsAPI: Sendable {
    /// On an emergency timeline read: when the reader's break-the-glass window closes (ms since the epoch).
    static let breakGlassUntil = HTTPField.Name("CareLedger-Break-Glass-Until")!
    let api: LedgerAPI
    let records: RecordsService

    var auth: AuthService { api.auth }

    func register(on router: Router<LedgerRequestContext>) {
        // The consent categories a grant may name, each with the resource types it covers (public: the
        // same on every node; the app's grant form offers them).
        router.get("/v1/consent/categories") { _, _ in
            await api.handle {
                let categories = ConsentGrant.categoryTypes.keys.sorted().map { name -> JSONValue in
                    .object(["name": .string(name), "resourceTypes": .array(ConsentGrant.categoryTypes[name]!.sorted().map { .string($0) })])
                }
                return JSONResponse.make(.object(["categories": .array(categories)]))
            }
        }
        router.get("/v1/records/:id") { request, context in
            await api.handle {
                let reader = try auth.authenticate(request)
                let read = try await records.read(
                    recordID: context.parameters.get("id") ?? "", readerDID: reader, purpose: request.uri.queryParameters.get("purpose") ?? "treatment",
                    reason: request.uri.queryParameters.get("reason").map { String($0) })
                return JSONResponse.make(read.json)
            }
        }
        router.get("/v1/records/:id/erasure") { request, context in
            await api.handle {
                let requester = try auth.authenticate(request)
                return JSONResponse.make(try records.erasureReceipt(recordID: context.parameters.get("id") ?? "", requesterDID: requester))
            }
        }
        router.get("/v1/records/:id/history") { request, context in
            await api.handle {
                let reader = try auth.authenticate(request)
                let record = try await records.metadataRead(recordID: context.parameters.get("id") ?? "", readerDID: reader)
                return JSONResponse.make(record.json)
            }
        }
        router.get("/v1/patients/:did/records") { request, context in
            await api.handle {
                let reader = try auth.authenticate(request)
                let patient = context.parameters.get("did") ?? "", purpose = request.uri.queryParameters.get("purpose") ?? "treatment"
                let body = try await records.timeline(
                    patient: patient, readerDID: reader, purpose: purpose, reason: request.uri.queryParameters.get("reason").map { String($0) }
                ) { reads, withheld in await RecordRead.timelineBytes(reads, withheld: withheld) }
                var response = JSONResponse.make(bytes: body)
                // An emergency read: when the open break-the-glass window closes (ms since the epoch).
                if purpose == "emergency", let until = try records.json(AuditContract.breakGlassKey(patient: patient, reader: reader))?["until"]?.intValue {
                    response.headers[RecordsAPI.breakGlassUntil] = String(until)
                }
                return response
            }
        }
        router.get("/v1/patients/:did/access-log") { request, context in
            await api.handle {
                let requester = try auth.authenticate(request)
                let events = try records.accessLog(patient: context.parameters.get("did") ?? "", requesterDID: requester)
                return JSONResponse.make(.object(["events": .array(events)]))
            }
        }
        router.get("/v1/patients/:did/keys") { request, context in
            await api.handle {
                let requester = try auth.authenticate(request)
                return JSONResponse.make(try records.staleKeys(patient: context.parameters.get("did") ?? "", requesterDID: requester))
            }
        }
        router.get("/v1/practitioners/:did/endorsements") { request, context in
            await api.handle {
                let requester = try auth.authenticate(request)
                return JSONResponse.make(.object(["pending": .array(try records.pendingEndorsements(of: context.parameters.get("did") ?? "", requesterDID: requester))]))
            }
        }
        router.get("/v1/practitioners/:did/patients") { request, context in
            await api.handle {
                let requester = try auth.authenticate(request)
                return JSONResponse.make(.object(["patients": .array(try records.patients(of: context.parameters.get("did") ?? "", requesterDID: requester))]))
            }
        }
        router.get("/v1/organisations/:did/break-glass") { request, context in
            await api.handle {
                let requester = try auth.authenticate(request)
                let status = request.uri.queryParameters.get("status") ?? "pending"
                guard status == "pending" || status == "all" else { throw LedgerError("bad_parameter", "status is pending (default) or all") }
                let list = try records.breakGlassReviews(organisation: context.parameters.get("did") ?? "", requesterDID: requester, pendingOnly: status == "pending")
                return JSONResponse.make(.object(["accesses": .array(list)]))
            }
        }
        router.get("/v1/patients/:did/disclosures") { request, context in
            await api.handle {
                let requester = try auth.authenticate(request)
                let list = try records.disclosures(patient: context.parameters.get("did") ?? "", requesterDID: requester)
                return JSONResponse.make(.object(["disclosures": .array(list)]))
            }
        }
        router.get("/v1/patients/:did/consents") { request, context in
            await api.handle {
                let requester = try auth.authenticate(request)
                let patient = context.parameters.get("did") ?? ""
                let grants = try records.grants(patient: patient)
                guard ConsentPolicy.mayActFor(patient: patient, actor: requester, grants: grants, time: Int64(records.node.now)) else {
                    throw LedgerError("forbidden", "only the patient or her delegate lists her consents")
                }
                return JSONResponse.make(.object(["consents": .array(grants.map(\.json))]))
            }
        }
        router.get("/v1/patients/:did/recipients") { request, context in
            await api.handle {
                let caller = try auth.authenticate(request)
                guard let type = request.uri.queryParameters.get("resourceType") else {
                    throw LedgerError("missing_parameter", "query parameter resourceType is required")
                }
                guard type.wholeMatch(of: RecordsRoutes.resourceTypeName) != nil else {
                    throw LedgerError("bad_parameter", "resourceType is a FHIR resource type name, e.g. Observation")
                }
                let patient = context.parameters.get("did") ?? ""
                // Who holds her keys says who she consents to: told only to those who may write for her.
                let grants = try records.grants(patient: patient)
                let now = Int64(records.node.now)
                let groups = try records.principal(caller)?.groups ?? []
                let writer = ConsentPolicy.mayActFor(patient: patient, actor: caller, grants: grants, time: now)
                    || ConsentPolicy.evaluate(
                        grants: grants, patient: patient, reader: caller, readerGroups: groups, purpose: "treatment", resourceType: String(type), time: now
                    ).permitted
                guard writer || api.readPolicy.isMember(caller, request: request) else {
                    throw LedgerError("consent_denied", "no consent lets \(caller) write \(type) for this patient")
                }
                let custodian = request.uri.queryParameters.get("custodian").map { String($0) }
                let list = try records.recipients(patient: patient, resourceType: String(type), custodian: custodian)
                return JSONResponse.make(.object(["recipients": .array(list.map(\.json))]))
            }
        }
    }
}
