import ArgumentParser
import AsyncHTTPClient
import Foundation
import LedgerCore
import NIOCore
import NIOHTTP1
import Standards
import Store
import Synchronization

/// Minimal JSON-over-HTTP client for the CLI.
public enum API {
    /// The command line's HTTP client: a node that refuses the connection is reported at once (exit 3),
    /// not retried until the request's deadline; a connection attempt gives up after 10 s.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// The CLI's exit code for each error code a node answered in this run (see `ExitCodes`): a 5xx
    /// is a failure (1) whatever its code.
    public static let answered = Mutex<[String: Int32]>([:])

    /// Notes how the node answered `code`: by its HTTP status, or, for a transaction the contract
    /// refused, by the code itself.
    static func note(_ code: String, status: Int?) {
        let exit = status.map(ExitCodes.forStatus) ?? ExitCodes.forContractError(code)
        answered.withLock { $0[code] = exit }
    }

    public static func request(
        _ method: HTTPMethod, _ url: String, body: [UInt8]? = nil, contentType: String = "application/json", headers: [String: String] = [:],
        timeout: TimeAmount = .seconds(60)
    ) async throws -> (status: Int, body: [UInt8]) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await client.execute(request, timeout: timeout)
            let buffer = try await response.body.collect(upTo: 64 * 1024 * 1024)
            return (Int(response.status.code), Array(buffer.readableBytesView))
        } catch {
            throw LedgerError("connection_failed", "\(method.rawValue) \(url): \(error)")
        }
    }

    /// JSON body of a 2xx answer; a 4xx/5xx becomes the server's error (exit 2 for 4xx, 1 for 5xx).
    public static func json(
        _ method: HTTPMethod, _ url: String, body: [UInt8]? = nil, contentType: String = "application/json", headers: [String: String] = [:]
    ) async throws -> JSONValue {
        let (status, bytes) = try await request(method, url, body: body, contentType: contentType, headers: headers)
        let parsed = try? JSONValue.parse(bytes)
        if status >= 400 {
            let code = parsed?["error"]?["code"]?.stringValue ?? "http_\(status)"
            let message = parsed?["error"]?["message"]?.stringValue ?? String(decoding: bytes.prefix(200), as: UTF8.self)
            let thrown = status >= 500 && code.hasPrefix("http_") ? "server_error" : code
            note(thrown, status: status)
            throw LedgerError(thrown, message)
        }
        guard let parsed else { throw LedgerError("server_error", "answer is not JSON") }
        return parsed
    }

    public static func text(_ url: String) async throws -> String {
        let (status, bytes) = try await request(.GET, url)
        guard status == 200 else {
            let code = status >= 500 ? "server_error" : "http_\(status)"
            note(code, status: status)
            throw LedgerError(code, "GET \(url) answered \(status)")
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// One exit-code rule for the whole command line (docs/cli.md): 0 done; 1 refused by policy or state
/// (consent denied, forbidden, not found, erased, already done, a conflict, a failure of the node);
/// 2 bad input (an unreadable file, a malformed argument, a request the node found malformed); 3 the
/// node could not be reached.
public enum ExitCodes {
    public static let done: Int32 = 0, refused: Int32 = 1, badInput: Int32 = 2, unreachable: Int32 = 3

    /// A node's answer by its status: 400, 413, 414, 415 and 422 are bad input; every other 4xx (401,
    /// 403, 404, 405, 409, 410, 412, 429) a refusal; a 5xx a failure (1).
    public static func forStatus(_ status: Int) -> Int32 {
        [400, 413, 414, 415, 422].contains(status) ? badInput : refused
    }

    /// A transaction the contract refused: its payload was malformed (`bad_…`, `missing_…`,
    /// `malformed_…`, `invalid_…`) — bad input — or the state or policy refused it — a refusal.
    public static func forContractError(_ code: String) -> Int32 {
        ["bad_", "missing_", "malformed", "invalid_"].contains(where: code.hasPrefix) ? badInput : refused
    }

    /// The exit code of an error: the node's answer when it gave one, 3 when it could not be reached,
    /// 1 for the local failures listed, else bad input.
    public static func forError(_ code: String, localFailures: Set<String>) -> Int32 {
        if code == "connection_failed" { return unreachable }
        if let answered = API.answered.withLock({ $0[code] }) { return answered }
        return localFailures.contains(code) ? refused : badInput
    }
}
