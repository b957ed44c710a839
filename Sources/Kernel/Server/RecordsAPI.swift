import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import Node
import RecordsContract
import RecoveryContract

/// Routes for patients, consent and health records (all reads authenticated and audited).
struct RecordsAPI: Sendable {
    let api: LedgerAPI
    let records: RecordsService
    let auth: AuthService

    /// `<height>-<index>`, as the stream's `id:` lines carry.
    static func eventPosition(_ text: String?) throws -> (height: UInt64, index: Int)? {
        guard let text else { return nil }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let height = UInt64(parts[0]), let index = Int(parts[1]), index >= 0 else {
            throw LedgerError("bad_parameter", "Last-Event-ID is <height>-<index>, as the stream's ids")
        }
        return (height, index)
    }

    /// The hub's events, with a nil (a heartbeat) every `seconds`; ends with the hub's stream.
    static func withHeartbeats(_ events: AsyncStream<CommittedEvent>, every seconds: Double) -> AsyncStream<CommittedEvent?> {
        let (merged, continuation) = AsyncStream<CommittedEvent?>.makeStream(bufferingPolicy: .bufferingOldest(EventHub.bufferSize))
        let forward = Task {
            // A reader more than a buffer behind is disconnected (it resumes with Last-Event-ID), never skipped.
            for await event in events {
                if case .dropped = continuation.yield(event) { break }
            }
            continuation.finish()
        }
        let beat = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                if Task.isCancelled { break }
                continuation.yield(nil)
            }
        }
        continuation.onTermination = { _ in
            forward.cancel()
            beat.cancel()
        }
        return merged
    }

    func register(on router: Router<LedgerRequestContext>) {
        router.get("/v1/events") { request, _ in
            await api.handle {
                let did = try auth.authenticate(request)
                guard try records.principal(did) != nil else { throw LedgerError("forbidden", "event streams are for registered principals") }
                // Resuming: `Last-Event-ID: <height>-<index>` (or ?lastEventId=) replays what was committed since.
                let resume = try Self.eventPosition(request.headers[HTTPField.Name("Last-Event-ID")!] ?? request.uri.queryParameters.get("lastEventId").map { String($0) })
                // `limit`: the stream ends after that many events (for batch consumers); endless by default.
                let limit = try request.uri.queryParameters.get("limit").map { text in
                    guard let n = Int(text), (1...100_000).contains(n) else { throw LedgerError("bad_parameter", "limit is 1 to 100000 events") }
                    return n
                } ?? Int.max
                let lease = try EventStreamSlots.Lease(api.eventStreams, did: did)
                // Subscribed before the replay is read: nothing committed in between is missed.
                let stream = Self.withHeartbeats(records.node.events.subscribe(), every: api.configuration.eventHeartbeatSeconds)
                let records = records
                let body = ResponseBody { writer in
                    defer { lease.release() }
                    try await writer.write(ByteBuffer(string: ": careledger events for \(did)\n\n"))
                    var sent = 0
                    func send(_ height: UInt64, _ index: Int, _ body: JSONValue, local: Bool = false) async throws {
                        let type = body["type"]?.stringValue ?? "event"
                        // A node-local notice has no ledger position: no id, so Last-Event-ID stays on the ledger's order.
                        let id = local ? "" : "id: \(height)-\(index)\n"
                        try await writer.write(ByteBuffer(string: "\(id)event: \(type)\ndata: \(body.canonicalString)\n\n"))
                        sent += 1
                    }
                    var last = resume
                    if var position = resume {
                        replay: while sent < limit {
                            let page = try records.node.store.events(afterHeight: position.height, seq: position.index, limit: 1000)
                            for e in page {
                                position = (e.height, e.seq)
                                if records.concerns(e.body, did: did) { try await send(e.height, e.seq, e.body) }
                                if sent >= limit { break replay }
                            }
                            if page.count < 1000 { break }
                        }
                        last = position
                    }
                    if sent < limit {
                        for await item in stream {
                            // A comment line while nothing is sent: a client that left makes the write fail.
                            guard let event = item else {
                                try await writer.write(ByteBuffer(string: ":\n\n"))
                                continue
                            }
                            if !event.local, let last, (event.height, event.index) <= (last.height, last.index) { continue }
                            guard records.concerns(event.body, did: did) else { continue }
                            try await send(event.height, event.index, event.body, local: event.local)
                            if sent >= limit { break }
                        }
                    }
                    try await writer.finish(nil)
                }
                return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
            }
        }
        let authLimiter = api.authLimiter
        router.post("/v1/auth/challenge") { _, context in
            if let refused = api.limited(context, by: authLimiter) { return refused }
            let (challenge, expires) = auth.challenge()
            return JSONResponse.make(.object(["challenge": .string(challenge), "expiresAt": .int(Int64(expires))]))
        }
        router.post("/v1/auth/token") { request, context in
            if let refused = api.limited(context, by: authLimiter) { return refused }
            return await api.handle {
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
                let uploader = try auth.authenticate(request)
                let hash = try Hash(hex: context.parameters.get("hash") ?? "")
                guard try records.principal(uploader) != nil else {
                    throw LedgerError("not_registered", "only a registered principal uploads to the vault: register \(uploader) first")
                }
                let blob = try await LedgerAPI.body(request, limit: api.uploads.limits.maxBlobBytes)
                if !records.vault.contains(hash), let refusal = api.uploads.overQuota(adding: blob.count, uploader: uploader, now: records.node.now) {
                    var response = APIError.response(refusal.error)
                    response.headers[.retryAfter] = String(refusal.retryAfter)
                    return response
                }
                try api.uploads.upload(blob, saltedHash: hash, uploader: uploader, now: records.node.now)
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
        router.get("/v1/recovery/:did/requests") { request, context in
            await api.handle {
                let reader = try auth.authenticate(request)
                let patient = context.parameters.get("did") ?? ""
                let setup = records.node.stateValue(forKey: RecoveryContract.key(patient)).flatMap { try? JSONValue.parse($0) }
                let everyone = reader == patient || setup?["shares"]?[reader] != nil
                var list: [JSONValue] = []
                let keys = everyone
                    ? try records.node.store.stateKeys(prefix: RecoveryContract.requestsPrefix(patient), limit: 1000)
                    : [RecoveryContract.requestKey(patient, requester: reader)]
                for key in keys {
                    guard let bytes = records.node.stateValue(forKey: key), var r = try JSONValue.parse(bytes).objectValue else { continue }
                    r["checkCode"] = .string(RecoveryContract.checkCode(requester: r["requester"]?.stringValue ?? "", encryptionKey: r["encryptionKey"]?.stringValue ?? ""))
                    r["current"] = .bool(r["setupHeight"] == setup?["height"])
                    list.append(.object(r))
                }
                guard everyone || !list.isEmpty else {
                    throw LedgerError("forbidden", "the recovery requests of \(patient) are served to her, her guardians, and each requester her own")
                }
                list.sort { ($0["timeMillis"]?.intValue ?? 0, $0["id"]?.stringValue ?? "") > ($1["timeMillis"]?.intValue ?? 0, $1["id"]?.stringValue ?? "") }
                return JSONResponse.make(.object(["requests": .array(list)]))
            }
        }
        router.get("/v1/recovery/:did/kit") { request, context in
            await api.handle {
                let requester = try auth.authenticate(request)
                let patient = context.parameters.get("did") ?? ""
                guard let bytes = records.node.stateValue(forKey: RecoveryContract.requestKey(patient, requester: requester)),
                    let request = try? JSONValue.parse(bytes), request["status"]?.stringValue == "ready"
                else {
                    throw LedgerError("forbidden", "only the key whose recovery request the guardians approved (status ready) fetches the kit")
                }
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
