import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import Node

/// Sign-in (challenge, token; rate-limited per client) and the registered principals.
struct AuthAPI: Sendable {
    let api: LedgerAPI
    var auth: AuthService { api.auth }

    func register(on router: Router<LedgerRequestContext>) {
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
                let (token, until, principal) = try auth.token(
                    did: did, key: body["key"]?.stringValue, challenge: challenge, signature: try Base64.decode(signature, field: "signature"))
                return JSONResponse.make(.object(["token": .string(token), "expiresAt": .int(Int64(until)), "did": .string(principal)]))
            }
        }
        router.get("/v1/principals") { request, _ in
            await api.handle {
                guard let text = request.uri.queryParameters.get("name").map({ String($0) }), (2...128).contains(text.unicodeScalars.count) else {
                    throw LedgerError("bad_parameter", "name is 2 to 128 characters of the name to look for")
                }
                let wanted = text.lowercased()
                var found: [JSONValue] = []
                for key in try api.node.store.stateKeys(prefix: "identity/did:", limit: 1_000_000) {
                    guard let p = try api.node.principal(String(key.dropFirst("identity/".count))), let name = p.name, name.lowercased().contains(wanted) else { continue }
                    found.append(p.json)
                    if found.count == 20 { break }
                }
                return JSONResponse.make(.object(["principals": .array(found)]))
            }
        }
        router.get("/v1/principals/:did") { _, context in
            await api.handle {
                let did = context.parameters.get("did") ?? ""
                guard let p = try api.node.principal(did) else { throw LedgerError("not_found", "no principal \(did)") }
                // With the keys it had, each with the heights it was current from and until (see Signers).
                guard let history = try api.node.stateJSON(Principal.key(did))?["keyHistory"], var o = p.json.objectValue else {
                    return JSONResponse.make(p.json)
                }
                o["keyHistory"] = history
                return JSONResponse.make(.object(o))
            }
        }
    }
}
