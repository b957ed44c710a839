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
    /// Error codes a node answered with a 5xx status in this run: the operation failed (exit 1), whatever
    /// the code (bad input is a 4xx).
    public static let serverFailures = Mutex<Set<String>>([])

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
            let response = try await HTTPClient.shared.execute(request, timeout: timeout)
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
            if status >= 500 { serverFailures.withLock { _ = $0.insert(code) } }
            throw LedgerError(status >= 500 && code.hasPrefix("http_") ? "server_error" : code, message)
        }
        guard let parsed else { throw LedgerError("server_error", "answer is not JSON") }
        return parsed
    }

    public static func text(_ url: String) async throws -> String {
        let (status, bytes) = try await request(.GET, url)
        guard status == 200 else { throw LedgerError(status >= 500 ? "server_error" : "http_\(status)", "GET \(url) answered \(status)") }
        return String(decoding: bytes, as: UTF8.self)
    }
}
