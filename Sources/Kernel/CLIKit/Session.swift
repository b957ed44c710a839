import ArgumentParser
import AsyncHTTPClient
import Foundation
import LedgerCore
import NIOCore
import NIOHTTP1
import Standards
import Store
import Synchronization

/// A principal talking to a node: signs transactions, authenticates reads, decrypts locally.
public struct Session {
    public let base: String
    public let key: SigningKey
    public let encryption: EncryptionKey?
    /// The principal the key signs for (a key file's `principal` after a rotation; else the key's own did).
    public let did: String
    public private(set) var chainID = ""
    private var token: String?

    public init(node: String, keyFile: String) async throws {
        try await self.init(
            node: node, signing: try KeyFile.load(keyFile), encryption: try? KeyFile.loadEncryption(keyFile), principal: try KeyFile.principal(keyFile))
    }

    public init(node: String, signing: SigningKey, encryption: EncryptionKey?, principal: String? = nil) async throws {
        base = node.hasSuffix("/") ? String(node.dropLast()) : node
        key = signing
        did = principal ?? signing.publicKey.did
        self.encryption = encryption
        guard let chain = try await API.json(.GET, base + "/healthz")["chainId"]?.stringValue else {
            throw LedgerError("server_error", "node did not say its chain id")
        }
        chainID = chain
    }

    /// Signs, submits and waits; a failed receipt becomes an error with the contract's code.
    public func submit(_ contract: String, _ action: String, _ payload: JSONValue) async throws -> JSONValue {
        let tx = try Transaction(
            chainID: chainID, signer: key, contract: contract, action: action, payload: payload)
        let receipt = try await API.json(.POST, base + "/v1/transactions", body: JSONValue.object(["raw": .string(Base64.encode(tx.encoded))]).canonicalBytes)
        if receipt["status"]?.stringValue == "failed" {
            let code = receipt["error"]?["code"]?.stringValue ?? "failed"
            API.note(code, status: nil)
            throw LedgerError(code, receipt["error"]?["message"]?.stringValue ?? "transaction failed")
        }
        return receipt
    }

    public mutating func authorization() async throws -> String {
        if let token { return token }
        let challenge = try await API.json(.POST, base + "/v1/auth/challenge")["challenge"]?.stringValue ?? ""
        let signature = key.signature(for: Array("careledger-auth\n\(chainID)\n\(challenge)\n".utf8))
        var body: JSONValue = .object(["did": .string(did), "challenge": .string(challenge), "signature": .string(Base64.encode(signature))])
        if did != key.publicKey.did { body = .object(body.objectValue!.merging(["key": .string(key.publicKey.did)]) { $1 }) }
        guard let t = try await API.json(.POST, base + "/v1/auth/token", body: body.canonicalBytes)["token"]?.stringValue else {
            throw LedgerError("unauthenticated", "no token")
        }
        token = t
        return t
    }

    public mutating func get(_ path: String) async throws -> JSONValue {
        try await API.json(.GET, base + path, headers: ["Authorization": "Bearer \(try await authorization())"])
    }

    public mutating func post(_ path: String, _ body: JSONValue) async throws -> JSONValue {
        try await API.json(.POST, base + path, body: body.canonicalBytes, headers: ["Authorization": "Bearer \(try await authorization())"])
    }

    public mutating func putBlob(_ hash: Hash, _ blob: [UInt8]) async throws {
        _ = try await API.json(.PUT, base + "/v1/vault/\(hash.hex)", body: blob, contentType: "application/octet-stream",
                               headers: ["Authorization": "Bearer \(try await authorization())"])
    }

    public func requireEncryption() throws -> EncryptionKey {
        guard let encryption else { throw LedgerError("bad_key_file", "this key file has no encryption key") }
        return encryption
    }
}

public struct NodeKeyOptions: ParsableArguments {
    public init() {}

    @Option(help: "Node URL.") public var node: String = "http://127.0.0.1:8080"
    @Option(help: "Your key file.") public var key: String
    @Flag(help: "Print JSON.") public var json = false
}
