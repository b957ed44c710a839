import Domains
import Foundation
import Hummingbird
import LedgerCore
import Node

/// Routes for patients, consent and health records (all reads authenticated and audited).
struct RecordsAPI: Sendable {
    let api: LedgerAPI
    let records: RecordsService
    let auth: AuthService

    func register(on router: Router<BasicRequestContext>) {
        router.get("/v1/events") { request, _ in
            await api.handle {
                let did = try auth.authenticate(request)
                let stream = records.node.events.subscribe()
                let records = records
                let body = ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: ": careledger events for \(did)\n\n"))
                    for await event in stream where records.concerns(event.body, did: did) {
                        let type = event.body["type"]?.stringValue ?? "event"
                        try await writer.write(ByteBuffer(string: "id: \(event.height)-\(event.index)\nevent: \(type)\ndata: \(event.body.canonicalString)\n\n"))
                    }
                    try await writer.finish(nil)
                }
                return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
            }
        }
        router.post("/v1/auth/challenge") { _, _ in
            let (challenge, expires) = auth.challenge()
            return JSONResponse.make(.object(["challenge": .string(challenge), "expiresAt": .int(Int64(expires))]))
        }
        router.post("/v1/auth/token") { request, _ in
            await api.handle {
                let body = try await api.jsonBody(request)
                guard let did = body["did"]?.stringValue, let challenge = body["challenge"]?.stringValue,
                    let signature = body["signature"]?.stringValue
                else { throw LedgerError("bad_request", "send {\"did\", \"challenge\", \"signature\"}") }
                let (token, until) = try auth.token(did: did, challenge: challenge, signature: try Base64.decode(signature, field: "signature"))
                return JSONResponse.make(.object(["token": .string(token), "expiresAt": .int(Int64(until)), "did": .string(did)]))
            }
        }
        router.get("/v1/principals/:did") { _, context in
            await api.handle {
                let did = context.parameters.get("did") ?? ""
                guard let p = try records.principal(did) else { throw LedgerError("not_found", "no principal \(did)") }
                return JSONResponse.make(p.json)
            }
        }
        router.put("/v1/vault/:hash") { request, context in
            await api.handle {
                _ = try auth.authenticate(request)
                let hash = try Hash(hex: context.parameters.get("hash") ?? "")
                try records.vault.put(saltedHash: hash, blob: try await LedgerAPI.body(request, limit: Vault.maxBlobBytes))
                return JSONResponse.make(.object(["saltedHash": .string(hash.hex), "stored": .bool(true)]), status: .created)
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
        router.get("/v1/records/:id/history") { request, context in
            await api.handle {
                let reader = try auth.authenticate(request)
                let id = context.parameters.get("id") ?? ""
                guard let record = try records.record(id) else { throw LedgerError("not_found", "no record \(id)") }
                guard record.erasedAtHeight == nil else { throw LedgerError("erased", "record \(id) was erased") }
                let grants = try records.grants(patient: record.patient)
                guard let principal = try records.principal(reader) else { throw LedgerError("unknown_principal", "the reader is not registered") }
                let decision = ConsentPolicy.evaluate(
                    grants: grants, patient: record.patient, reader: reader, readerGroups: principal.groups, purpose: "treatment",
                    resourceType: record.resourceType, time: Int64(LedgerNode.systemClock()))
                guard decision.permitted else { throw LedgerError("consent_denied", decision.reason) }
                return JSONResponse.make(record.json)
            }
        }
        router.get("/v1/recovery/:did/kit") { request, context in
            await api.handle {
                let requester = try auth.authenticate(request)
                let patient = context.parameters.get("did") ?? ""
                guard let bytes = records.node.stateValue(forKey: RecoveryContract.requestKey(patient)),
                    let open = try? JSONValue.parse(bytes), open["requester"]?.stringValue == requester
                else { throw LedgerError("forbidden", "only the key that opened the recovery request fetches the kit") }
                guard let setupBytes = records.node.stateValue(forKey: RecoveryContract.key(patient)),
                    let kit = try JSONValue.parse(setupBytes)["kit"]?.stringValue, let blob = records.vault.get(try Hash(hex: kit))
                else { throw LedgerError("not_in_vault", "this node does not hold the recovery kit") }
                return JSONResponse.make(.object(["salt": .string(Base64.encode(blob.salt)), "ciphertext": .string(Base64.encode(blob.ciphertext))]))
            }
        }
        router.get("/v1/patients/:did/records") { request, context in
            await api.handle {
                let reader = try auth.authenticate(request)
                let body = try await records.timeline(
                    patient: context.parameters.get("did") ?? "", readerDID: reader, purpose: request.uri.queryParameters.get("purpose") ?? "treatment",
                    reason: request.uri.queryParameters.get("reason").map { String($0) }
                ) { reads, withheld in await RecordRead.timelineBytes(reads, withheld: withheld) }
                return JSONResponse.make(bytes: body)
            }
        }
        router.get("/v1/patients/:did/access-log") { request, context in
            await api.handle {
                let requester = try auth.authenticate(request)
                let events = try records.accessLog(patient: context.parameters.get("did") ?? "", requesterDID: requester)
                return JSONResponse.make(.object(["events": .array(events)]))
            }
        }
        router.get("/v1/patients/:did/consents") { request, context in
            await api.handle {
                let requester = try auth.authenticate(request)
                let patient = context.parameters.get("did") ?? ""
                let grants = try records.grants(patient: patient)
                guard ConsentPolicy.mayActFor(patient: patient, actor: requester, grants: grants) else {
                    throw LedgerError("forbidden", "only the patient or her delegate lists her consents")
                }
                return JSONResponse.make(.object(["consents": .array(grants.map(\.json))]))
            }
        }
        router.get("/v1/patients/:did/recipients") { request, context in
            await api.handle {
                _ = try auth.authenticate(request)
                guard let type = request.uri.queryParameters.get("resourceType") else {
                    throw LedgerError("missing_parameter", "query parameter resourceType is required")
                }
                let custodian = request.uri.queryParameters.get("custodian").map { String($0) }
                let list = try records.recipients(patient: context.parameters.get("did") ?? "", resourceType: type, custodian: custodian)
                return JSONResponse.make(.object(["recipients": .array(list.map(\.json))]))
            }
        }
    }
}
