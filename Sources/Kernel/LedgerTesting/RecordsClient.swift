import Foundation
import HTTPTypes
import HummingbirdTesting
import LedgerCore
import NIOCore
import Server
import Standards
import Testing

/// Drives the records API as a client would.
public struct RecordsClient: Sendable {
    public let client: any TestClientProtocol
    public var chain = "test-chain"
    public var nonce = UInt64.random(in: 0..<(1 << 40))

    public init(client: any TestClientProtocol, chain: String = "test-chain") {
        self.client = client
        self.chain = chain
    }

    public func json(_ r: TestResponse) throws -> JSONValue { try JSONValue.parse(Array(r.body.readableBytesView)) }

    public mutating func submit(_ party: Party, _ contract: String, _ action: String, _ payload: JSONValue) async throws -> JSONValue {
        nonce += 1
        let tx = try Transaction(chainID: chain, signer: party.key, nonce: nonce, contract: contract, action: action, payload: payload)
        let r = try await client.execute(
            uri: "/v1/transactions", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(bytes: tx.jsonView.canonicalBytes))
        return try json(r)
    }

    public func token(_ party: Party) async throws -> String {
        let challenge = try json(try await client.execute(uri: "/v1/auth/challenge", method: .post))["challenge"]!.stringValue!
        let signature = party.key.signature(for: AuthService.message(chainID: chain, challenge: challenge))
        var body: [String: JSONValue] = ["did": .string(party.did), "challenge": .string(challenge), "signature": .string(Base64.encode(signature))]
        if party.did != party.key.publicKey.did { body["key"] = .string(party.key.publicKey.did) }
        let r = try await client.execute(
            uri: "/v1/auth/token", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(bytes: JSONValue.object(body).canonicalBytes))
        guard let token = try json(r)["token"]?.stringValue else { throw LedgerError((try? json(r)["error"]?["code"]?.stringValue) ?? "no_token", "no token") }
        return token
    }

    public func get(_ uri: String, as party: Party) async throws -> TestResponse {
        try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(try await token(party))"])
    }

    /// A FHIR request (application/fhir+json) authenticated as `party`.
    public func fhir(_ method: HTTPRequest.Method, _ uri: String, as party: Party, _ body: JSONValue? = nil, headers extra: HTTPFields = [:]) async throws -> TestResponse {
        var headers: HTTPFields = [.authorization: "Bearer \(try await token(party))", .contentType: "application/fhir+json"]
        headers.append(contentsOf: extra)
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(bytes: $0.canonicalBytes) })
    }

    /// Stores a vault blob (a ciphertext or a key envelope) as `party`, and expects it stored.
    public func upload(_ blob: [UInt8], hash: Hash, as party: Party) async throws {
        let stored = try await client.execute(
            uri: "/v1/vault/\(hash.hex)", method: .put,
            headers: [.authorization: "Bearer \(try await token(party))", .contentType: "application/octet-stream"], body: ByteBuffer(bytes: blob))
        #expect(stored.status == .created)
    }

    /// Seals a resource for the current recipients, uploads the blob and submits `records.put`.
    public mutating func put(_ author: Party, patient: Party, recordID: String, version: Int64, resource: JSONValue, custodian: Party, parties: [String: String] = [:]) async throws -> JSONValue {
        let type = resource["resourceType"]!.stringValue!
        let answer = try json(try await get("/v1/patients/\(patient.did)/recipients?resourceType=\(type)&custodian=\(custodian.did)", as: author))
        // Refused (no consent to write for her): the error, as the submission would have answered.
        guard let recipients = answer["recipients"]?.arrayValue else { return answer }
        var keys: [String: [UInt8]] = [:]
        for r in recipients { keys[r["did"]!.stringValue!] = try Base64.decode(r["encryptionKey"]!.stringValue!) }
        let sealed = try SealedVersion(resource: resource.canonicalBytes, recordID: recordID, version: version, recipients: keys)
        for (hash, blob) in sealed.uploads { try await upload(blob, hash: hash, as: author) }
        return try await submit(author, "records", "put", sealed.putPayload(recordID: recordID, patient: patient.did, resourceType: type, version: version, custodian: custodian.did, parties: parties))
    }
}

extension RecordsClient {
    /// Registers each (author, subject, role, name) and expects every registration committed.
    public mutating func registerAll(_ list: [(Party, Party, String, String?)]) async throws {
        for (author, subject, role, name) in list {
            let receipt = try await register(author, subject, role, name: name)
            #expect(receipt["status"] == .string("committed"), "registering a \(role): \(receipt)")
        }
    }

    /// Submits `identity.register` for `subject`, signed by `author`.
    public mutating func register(_ author: Party, _ subject: Party, _ role: String, name: String? = nil) async throws -> JSONValue {
        var p: [String: JSONValue] = ["role": .string(role), "encryptionKey": .string(Base64.encode(subject.encryption.publicKey))]
        if subject.did != author.did { p["subject"] = .string(subject.did) }
        if let name { p["name"] = .string(name) }
        return try await submit(author, "identity", "register", .object(p))
    }
}
