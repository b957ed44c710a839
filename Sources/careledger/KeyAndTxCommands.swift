import ArgumentParser
import AsyncHTTPClient
import Foundation
import LedgerCore
import NIOCore
import NIOHTTP1
import Store
import Synchronization

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "key", abstract: "Manage Ed25519 keys.", subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Generate a key pair into a file (mode 0600).")
        @Option(help: "Where to write the key.") var out: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let key = SigningKey()
            try KeyFile.save(key, to: out)
            output(.object(["did": .string(key.publicKey.did), "file": .string(out)]), json: json) { key.publicKey.did }
        }
    }
}

/// Minimal JSON-over-HTTP client for the CLI.
enum API {
    /// Error codes a node answered with a 5xx status in this run: the operation failed (exit 1), whatever
    /// the code (bad input is a 4xx).
    static let serverFailures = Mutex<Set<String>>([])

    static func request(
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
    static func json(
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

    static func text(_ url: String) async throws -> String {
        let (status, bytes) = try await request(.GET, url)
        guard status == 200 else { throw LedgerError(status >= 500 ? "server_error" : "http_\(status)", "GET \(url) answered \(status)") }
        return String(decoding: bytes, as: UTF8.self)
    }
}

struct TxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tx", abstract: "Sign and submit transactions.", subcommands: [Submit.self, Get.self])

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sign a transaction with a key file and submit it to a node.")
        @Option(help: "Node URL, e.g. http://127.0.0.1:8080.") var node: String
        @Option(help: "Key file of the author.") var key: String
        @Option(help: "Contract name, e.g. notary.") var contract: String
        @Option(help: "Action, e.g. record.") var action: String
        @Option(help: "Payload: a JSON object.") var payload: String
        @Option(help: "Nonce (default: random).") var nonce: UInt64?
        @Option(help: "Chain id (default: asked from the node).") var chainId: String?
        @Flag(help: "Print the committed receipt.") var wait = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let signer = try KeyFile.load(key)
            let payloadValue: JSONValue
            do {
                payloadValue = try JSONValue.parse(payload)
            } catch {
                throw LedgerError("bad_payload", "--payload is not JSON: \(error.message)")
            }
            guard case .object = payloadValue else { throw LedgerError("bad_payload", "--payload must be a JSON object") }
            let base = node.hasSuffix("/") ? String(node.dropLast()) : node
            let chain: String
            if let chainId {
                chain = chainId
            } else {
                guard let c = try await API.json(.GET, base + "/healthz")["chainId"]?.stringValue else {
                    throw LedgerError("server_error", "node did not say its chain id")
                }
                chain = c
            }
            let tx = try Transaction(
                chainID: chain, signer: signer, nonce: nonce ?? Transaction.freshNonce(), contract: contract, action: action,
                payload: payloadValue)
            let receipt = try await API.json(.POST, base + "/v1/transactions", body: JSONValue.object(["raw": .string(Base64.encode(tx.encoded))]).canonicalBytes)
            let status = receipt["status"]?.stringValue ?? "unknown"
            if wait {
                output(receipt, json: json) {
                    var lines = ["id      \(tx.id.hex)", "status  \(status)", "height  \(receipt["height"]?.intValue ?? -1)", "leaf    \(receipt["leafIndex"]?.intValue ?? -1)"]
                    if let error = receipt["error"] { lines.append("error   \(error["code"]?.stringValue ?? ""): \(error["message"]?.stringValue ?? "")") }
                    return lines.joined(separator: "\n")
                }
            } else {
                output(.object(["id": .string(tx.id.hex), "status": .string(status)]), json: json) { "\(tx.id.hex) \(status)" }
            }
            if status == "failed" {
                throw LedgerError(receipt["error"]?["code"]?.stringValue ?? "failed", receipt["error"]?["message"]?.stringValue ?? "transaction failed")
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a committed transaction.")
        @Option(help: "Node URL.") var node: String
        @Argument(help: "Transaction id (hex).") var id: String
        @Option(help: "Your key file: a patient's records, consents, access events and recovery are shown only to her, her delegates, the parties they name and consortium members.")
        var key: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let value: JSONValue
            if let key {
                var session = try await Session(node: node, keyFile: key)
                value = try await session.get("/v1/transactions/" + id)
            } else {
                let base = node.hasSuffix("/") ? String(node.dropLast()) : node
                value = try await API.json(.GET, base + "/v1/transactions/" + id)
            }
            output(value, json: json) { value.canonicalString }
        }
    }
}
