import Hummingbird
import LedgerCore
import Node

/// The HTTP status of each stable error code; anything not listed is the caller's fault (400).
package enum APIError {
    package static func status(for code: String) -> HTTPResponse.Status {
        switch code {
        case "not_found", "leaf_not_in_tree", "not_in_vault", "tree_size_too_large", "unknown_custodian": return .notFound
        case "unauthenticated": return .unauthorized
        case "consent_denied", "forbidden", "not_registered", "break_glass_reason_required", "not_acting_for", "beyond_delegation", "key_retired", "key_frozen":
            return .forbidden
        case "no_key_for_reader", "not_custodian", "no_current_version", "version_conflict": return .conflict
        case "erased": return .gone
        case "not_erased": return .conflict
        case "precondition_failed": return .preconditionFailed
        case "replayed_nonce", "duplicate_transaction", "already_notarized": return .conflict
        case "already_commissioned", "custody_violation", "already_decommissioned", "already_recalled", "conflict", "invalid_state", "not_reversible",
            "window_exceeded":
            return .conflict
        case "unknown_lot": return .notFound
        case "body_too_large": return .contentTooLarge
        case "unsupported_media_type": return .unsupportedMediaType
        case "rate_limited", "too_many_streams", "too_many_denied", "vault_quota": return .tooManyRequests
        case "mempool_full", "node_stopped", "commit_failed", "busy": return .serviceUnavailable
        case "internal_error", "corrupt_store", "state_unavailable": return .internalServerError
        default: return .badRequest
        }
    }

    package static func body(_ error: LedgerError) -> JSONValue {
        .object(["error": .object(["code": .string(error.code), "message": .string(error.message)])])
    }

    package static func response(_ error: LedgerError) -> Response {
        JSONResponse.make(body(error), status: status(for: error.code))
    }
}

package enum JSONResponse {
    package static func make(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        make(bytes: value.canonicalBytes, status: status)
    }

    /// A JSON body already serialised (canonical form, without the final newline).
    package static func make(bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        var bytes = bytes
        bytes.append(0x0a)
        return Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func text(_ text: String, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
