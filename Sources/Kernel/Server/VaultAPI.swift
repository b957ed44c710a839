import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import Node

/// `PUT /v1/vault/{hash}`: clients' uploads of vault blobs, bounded by `VaultUploads`.
struct VaultAPI: Sendable {
    let api: LedgerAPI
    var auth: AuthService { api.auth }

    func register(on router: Router<LedgerRequestContext>) {
        router.put("/v1/vault/:hash") { request, context in
            await api.handle {
                let uploader = try auth.authenticate(request)
                let hash = try Hash(hex: context.parameters.get("hash") ?? "")
                guard try api.node.principal(uploader) != nil else {
                    throw LedgerError("not_registered", "only a registered principal uploads to the vault: register \(uploader) first")
                }
                let blob = try await LedgerAPI.body(request, limit: api.uploads.limits.maxBlobBytes)
                if let refusal = try api.uploads.upload(blob, saltedHash: hash, uploader: uploader, now: api.node.now) {
                    var response = APIError.response(refusal.error)
                    response.headers[.retryAfter] = String(refusal.retryAfter)
                    return response
                }
                return JSONResponse.make(.object(["saltedHash": .string(hash.hex), "stored": .bool(true)]), status: .created)
            }
        }
    }
}
