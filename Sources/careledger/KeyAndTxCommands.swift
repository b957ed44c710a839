import ArgumentParser
import CLIKit
import AsyncHTTPClient
import Foundation
import ContractKit
import LedgerCore
import NIOCore
import Records
import Standards
import NIOHTTP1
import Store
import Synchronization

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "key", abstract: "Manage Ed25519 keys.", subcommands: [Generate.self, Show.self, Rotate.self, RotationProof.self])

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
            let did = try KeyFile.principal(key)
            var shown: [String: JSONValue] = ["did": .string(did), "file": .string(key)]
            if did != signer.publicKey.did { shown["signingKey"] = .string(signer.publicKey.did) }
            output(.object(shown), json: json) { did }
        }
    }

    struct RotationProof: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotation-proof",
            abstract: "On your new device: prove you hold a new key file, for two organisations to rotate your frozen keys to it.",
            discussion: "Marks the key file as yours (your did) and writes {did, signingKey, encryptionKey, proof}: public keys and a signature only.")
        @Option(help: "Node URL, e.g. http://127.0.0.1:8080 (for the chain id).") var node: String
        @Option(help: "The new key file (`careledger key generate`).") var key: String
        @Option(help: "Your did.") var did: String
        @Option(help: "Where to write the proof.") var out: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let signing = try KeyFile.load(key), encryption = try KeyFile.loadEncryption(key)
            _ = try PublicKey(did: did)
            guard let chainID = try await API.json(.GET, node + "/healthz")["chainId"]?.stringValue else {
                throw LedgerError("server_error", "node did not say its chain id")
            }
            let encryptionKey = Base64.encode(encryption.publicKey)
            let proof = signing.signature(
                for: IdentityContract.rotationMessage(chainID: chainID, did: did, signingKey: signing.publicKey.did, encryptionKey: encryptionKey))
            let body: JSONValue = .object([
                "did": .string(did), "signingKey": .string(signing.publicKey.did), "encryptionKey": .string(encryptionKey), "proof": .string(Base64.encode(proof)),
            ])
            guard FileManager.default.createFile(atPath: out, contents: Data(body.canonicalBytes + [0x0a])) else {
                throw LedgerError("io_error", "cannot write \(out)")
            }
            try KeyFile.save(signing, encryption: encryption, principal: did, to: key, overwrite: true)
            output(body, json: json) { "wrote \(out): hand it to the organisation that verifies you in person" }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace your keys: new signing and encryption keys become yours on chain, your did unchanged.",
            discussion: """
                Writes the new key file first (mode 0600), then signs the rotation with the old key. From that block the old key \
                signs nothing for you and receives no new wrapped key. Your records' keys are then wrapped anew for the new key: \
                by their custodians from escrow, and by this command for every version still wrapped for the old key only. \
                Keep the new file; the old one is useless once the rotation is committed.
                """)
        @Option(help: "Node URL, e.g. http://127.0.0.1:8080.") var node: String
        @Option(help: "Your current key file.") var key: String
        @Option(help: "Where to write the new key file (must not exist).") var out: String
        @Option(help: "Why (kept on chain, on your access log).") var reason: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let old = try await Session(node: node, keyFile: key)
            let oldEncryption = try old.requireEncryption()
            let signing = SigningKey(), encryption = EncryptionKey()
            try KeyFile.save(signing, encryption: encryption, principal: old.did, to: out)
            let encryptionKey = Base64.encode(encryption.publicKey)
            let proof = signing.signature(
                for: IdentityContract.rotationMessage(chainID: old.chainID, did: old.did, signingKey: signing.publicKey.did, encryptionKey: encryptionKey))
            var payload: [String: JSONValue] = [
                "signingKey": .string(signing.publicKey.did), "encryptionKey": .string(encryptionKey), "proof": .string(Base64.encode(proof)),
            ]
            if let reason { payload["reason"] = .string(reason) }
            let receipt: JSONValue
            do {
                receipt = try await old.submit("identity", "rotate", .object(payload))
            } catch {
                unlink(out)
                throw error
            }
            // The versions still wrapped for the old key only: opened with it, wrapped for the new one.
            var new = try await Session(node: node, keyFile: out)
            var moved = 0, missing = 0
            if try await API.json(.GET, new.base + "/v1/principals/" + new.did)["role"]?.stringValue == "patient" {
                let stale = try await new.get("/v1/patients/\(new.did)/keys")
                missing = stale["missing"]?.arrayValue?.count ?? 0
                let items = try (stale["keys"]?.arrayValue ?? []).map { k in
                    KeyRewrap.Item(
                        recordID: k["recordId"]?.stringValue ?? "", version: k["version"]?.intValue ?? 0, wrapped: try WrappedKey(json: k["wrappedKey"] ?? .null))
                }
                let batch = try await KeyRewrap.rewrap(patient: new.did, items: items, with: oldEncryption, for: encryption.publicKey)
                for upload in batch.uploads { try await new.putBlob(upload.hash, upload.blob) }
                for p in batch.payloads {
                    _ = try await new.submit("records", "rewrap", p)
                    moved += p["versions"]?.arrayValue?.count ?? 0
                }
            }
            let answer: JSONValue = .object([
                "did": .string(new.did), "signingKey": .string(signing.publicKey.did), "file": .string(out), "from": receipt["height"] ?? .null,
                "rewrapped": .int(Int64(moved)), "leftToCustodians": .int(Int64(missing)),
            ])
            output(answer, json: json) {
                "rotated \(new.did) to \(signing.publicKey.did) from height \(receipt["height"]?.intValue ?? 0); \(out) holds the new keys; "
                    + "\(moved) record versions re-wrapped for them\(missing > 0 ? ", \(missing) left to their custodians" : "")"
            }
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
