import ArgumentParser
import CLIKit
import AsyncHTTPClient
import Foundation
import LedgerCore
import NIOCore
import NIOHTTP1
import Store
import Synchronization

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "key", abstract: "Manage Ed25519 keys.", subcommands: [Generate.self, Show.self])

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

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the did of a key file (never the private key).")
        @Option(help: "The key file.") var key: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let signer = try KeyFile.load(key)
            output(.object(["did": .string(signer.publicKey.did), "file": .string(key)]), json: json) { signer.publicKey.did }
        }
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
