/// A signed transaction.
///
/// Canonical encoding (version 1), in order: version byte `0x01`; chain id (string); author
/// (32-byte Ed25519 public key); nonce (varint); contract (string); action (string); payload
/// (bytes: the canonical JSON of an object); signature (64 bytes, Ed25519 by the author over
/// every preceding byte). The transaction id is SHA-256 of the whole canonical encoding.
public struct Transaction: Hashable, Sendable {
    public static let version: UInt8 = 1
    public static let maxPayloadBytes = 2 * 1024 * 1024

    /// The fields, shared by every copy (a transaction is copied through the mempool, blocks and
    /// receipts: one reference to count instead of one per field).
    private final class Fields: Sendable {
        let chainID: String
        let author: PublicKey
        let nonce: UInt64
        let contract: String
        let action: String
        let payload: JSONValue
        let signature: [UInt8]
        let encoded: [UInt8]
        let id: Hash
        let decoded: (any Sendable)?
        let signedHere: Bool

        init(
            chainID: String, author: PublicKey, nonce: UInt64, contract: String, action: String, payload: JSONValue, signature: [UInt8],
            encoded: [UInt8], id: Hash, decoded: (any Sendable)? = nil, signedHere: Bool = false
        ) {
            self.chainID = chainID
            self.author = author
            self.nonce = nonce
            self.contract = contract
            self.action = action
            self.payload = payload
            self.signature = signature
            self.encoded = encoded
            self.id = id
            self.decoded = decoded
            self.signedHere = signedHere
        }
    }

    private let fields: Fields

    public var chainID: String { fields.chainID }
    public var author: PublicKey { fields.author }
    public var nonce: UInt64 { fields.nonce }
    public var contract: String { fields.contract }
    public var action: String { fields.action }
    public var payload: JSONValue { fields.payload }
    public var signature: [UInt8] { fields.signature }
    /// The canonical bytes (what is hashed into the log).
    public var encoded: [UInt8] { fields.encoded }
    public var id: Hash { fields.id }
    /// What the payload decodes to (e.g. a contract's typed events), attached in this process by the
    /// code that built the payload from it, so that execution need not decode the payload again.
    /// Never encoded: nil on every transaction read from bytes or JSON.
    public var decoded: (any Sendable)? { fields.decoded }
    /// Signed in this process by `init(chainID:signer:…)` (its signature is valid by construction,
    /// so `signatureErrors` does not check it again). Never encoded: false on every transaction
    /// read from bytes or JSON, or assembled from a signature made elsewhere.
    public var signedHere: Bool { fields.signedHere }

    /// A fresh random nonce, below 2^62 (it fits any JSON reader's integers): the nonce of every
    /// transaction a client or a node builds without choosing one.
    public static func freshNonce() -> UInt64 { UInt64.random(in: 0..<(1 << 62)) }

    /// Builds and signs a transaction (with a fresh random nonce unless `nonce` is given).
    /// `decoded`: what the payload decodes to, when the caller built the payload from it (see `decoded`).
    public init(
        chainID: String, signer: SigningKey, nonce: UInt64 = freshNonce(), contract: String, action: String, payload: JSONValue, decoded: (any Sendable)? = nil
    ) throws(LedgerError) {
        try self.init(
            chainID: chainID, signer: signer, nonce: nonce, contract: contract, action: action, payload: payload,
            canonicalPayload: payload.canonicalBytes, decoded: decoded)
    }

    /// Builds and signs a transaction whose payload's canonical bytes the caller wrote itself
    /// (`canonicalPayload` must equal `payload.canonicalBytes`: checked in debug builds; the types
    /// that write them test it).
    public init(
        chainID: String, signer: SigningKey, nonce: UInt64 = freshNonce(), contract: String, action: String, payload: JSONValue, canonicalPayload: [UInt8],
        decoded: (any Sendable)? = nil
    ) throws(LedgerError) {
        assert(canonicalPayload == payload.canonicalBytes, "the payload's bytes must be its canonical JSON")
        guard case .object = payload else { throw LedgerError("bad_payload", "payload must be a JSON object") }
        let body = try Transaction.body(
            chainID: chainID, author: signer.publicKey, nonce: nonce, contract: contract, action: action, payloadBytes: canonicalPayload)
        try self.init(
            chainID: chainID, author: signer.publicKey, nonce: nonce, contract: contract, action: action, payload: payload, body: body,
            signature: signer.signature(for: body), decoded: decoded, signedHere: true)
    }

    /// From fields checked by `body` and a signature over it: the payload is kept as given when it
    /// reads back exactly from its canonical bytes (what every other node decodes), otherwise the
    /// whole encoding is decoded again.
    private init(
        chainID: String, author: PublicKey, nonce: UInt64, contract: String, action: String, payload: JSONValue, body: [UInt8],
        signature: [UInt8], decoded: (any Sendable)?, signedHere: Bool = false
    ) throws(LedgerError) {
        let encoded = body + signature
        guard payload.readsBackExactly else {
            self = try Transaction(encoded: encoded)
            return
        }
        fields = Fields(
            chainID: chainID, author: author, nonce: nonce, contract: contract, action: action, payload: payload, signature: signature,
            encoded: encoded, id: Hash.sha256(encoded), decoded: decoded, signedHere: signedHere)
    }

    /// Assembles a transaction from its fields and a signature made elsewhere; checks nothing but the shape.
    public init(
        chainID: String, author: PublicKey, nonce: UInt64, contract: String, action: String, payload: JSONValue,
        signature: [UInt8]
    ) throws(LedgerError) {
        guard signature.count == 64 else { throw LedgerError("bad_signature", "an Ed25519 signature is 64 bytes") }
        let body = try Transaction.body(
            chainID: chainID, author: author, nonce: nonce, contract: contract, action: action, payload: payload)
        try self.init(
            chainID: chainID, author: author, nonce: nonce, contract: contract, action: action, payload: payload, body: body, signature: signature,
            decoded: nil)
    }

    /// The bytes the author signs.
    public static func body(
        chainID: String, author: PublicKey, nonce: UInt64, contract: String, action: String, payload: JSONValue
    ) throws(LedgerError) -> [UInt8] {
        guard case .object = payload else { throw LedgerError("bad_payload", "payload must be a JSON object") }
        return try body(chainID: chainID, author: author, nonce: nonce, contract: contract, action: action, payloadBytes: payload.canonicalBytes)
    }

    static func body(
        chainID: String, author: PublicKey, nonce: UInt64, contract: String, action: String, payloadBytes: [UInt8]
    ) throws(LedgerError) -> [UInt8] {
        try checkName(chainID, field: "chainId")
        try checkName(contract, field: "contract")
        try checkName(action, field: "action")
        guard payloadBytes.count <= maxPayloadBytes else {
            throw LedgerError("payload_too_large", "payload is \(payloadBytes.count) bytes, limit \(maxPayloadBytes)")
        }
        var w = BinaryWriter(capacity: 128 + payloadBytes.count)
        w.writeByte(version)
        w.writeString(chainID)
        w.writeFixed(author.rawRepresentation)
        w.writeVarint(nonce)
        w.writeString(contract)
        w.writeString(action)
        w.writeBytes(payloadBytes)
        return w.bytes
    }

    static func checkName(_ value: String, field: String) throws(LedgerError) {
        guard !value.isEmpty, value.utf8.count <= 128,
            value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f })
        else { throw LedgerError("bad_\(field == "chainId" ? "chain_id" : field)", "\(field) must be 1-128 printable ASCII characters without spaces") }
    }

    /// Decodes canonical bytes, refusing unknown versions and any non-canonical form.
    /// Does not check the signature: see `verifySignature()`.
    public init(encoded: [UInt8]) throws(LedgerError) {
        var r = BinaryReader(encoded)
        let version = try r.readByte()
        guard version == Transaction.version else {
            throw LedgerError("unsupported_version", "transaction version \(version) is not supported")
        }
        let chainID = try r.readString(limit: 128)
        let author = try PublicKey(rawRepresentation: try r.readFixed(32))
        let nonce = try r.readVarint()
        let contract = try r.readString(limit: 128)
        let action = try r.readString(limit: 128)
        let payloadBytes = try r.readBytes(limit: Transaction.maxPayloadBytes)
        let signature = try r.readFixed(64)
        try r.finish()
        try Transaction.checkName(chainID, field: "chainId")
        try Transaction.checkName(contract, field: "contract")
        try Transaction.checkName(action, field: "action")
        let parsed: JSONValue
        do {
            parsed = try JSONValue.parse(payloadBytes)
        } catch {
            throw LedgerError("bad_payload", "payload is not JSON: \(error.message)")
        }
        guard case .object = parsed else { throw LedgerError("bad_payload", "payload must be a JSON object") }
        guard parsed.canonicalBytes == payloadBytes else {
            throw LedgerError("non_canonical", "payload is not in canonical JSON form")
        }
        fields = Fields(
            chainID: chainID, author: author, nonce: nonce, contract: contract, action: action, payload: parsed, signature: signature,
            encoded: encoded, id: Hash.sha256(encoded))
    }

    /// The signed part of the encoding.
    public var body: ArraySlice<UInt8> { encoded[0..<(encoded.count - 64)] }

    public func verifySignature() throws(LedgerError) {
        guard author.isValidSignature(signature, for: Array(body)) else {
            throw LedgerError("bad_signature", "signature does not verify for author \(author.did)")
        }
    }

    /// `verifySignature` for many transactions at once: nil where the signature verifies.
    /// Transactions signed in this process (`signedHere`) are not checked again.
    public static func signatureErrors(_ txs: some Collection<Transaction>) -> [LedgerError?] {
        let foreign = txs.filter { !$0.signedHere }
        var verdicts = PublicKey.areValidSignatures(foreign.map { ($0.author, $0.signature, Array($0.body)) }).makeIterator()
        return txs.map { tx in
            if tx.signedHere { return nil }
            return verdicts.next()! ? nil : LedgerError("bad_signature", "signature does not verify for author \(tx.author.did)")
        }
    }

    /// The RFC 9162 leaf hash of this transaction in the log.
    public var leafHash: Hash { MerkleHash.leaf(encoded) }

    public static func == (lhs: Transaction, rhs: Transaction) -> Bool { lhs.encoded == rhs.encoded }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }

    /// A JSON view of the decoded fields.
    public var jsonView: JSONValue {
        .object([
            "id": .string(id.hex),
            "chainId": .string(chainID),
            "author": .string(author.did),
            "nonce": .int(Int64(bitPattern: nonce)),
            "contract": .string(contract),
            "action": .string(action),
            "payload": payload,
            "signature": .string(Base64.encode(signature)),
        ])
    }

    /// Reads the JSON form `{"raw": base64}` or the field form
    /// `{"chainId","author","nonce","contract","action","payload","signature"}`.
    public init(json: JSONValue) throws(LedgerError) {
        guard case .object(let o) = json else { throw LedgerError("bad_transaction", "a transaction is a JSON object") }
        if let raw = o["raw"] {
            guard case .string(let text) = raw else { throw LedgerError("bad_transaction", "raw must be a base64 string") }
            try self.init(encoded: try Base64.decode(text, field: "raw"))
            return
        }
        func string(_ key: String) throws(LedgerError) -> String {
            guard let v = o[key] else { throw LedgerError("bad_transaction", "missing field \(key)") }
            guard case .string(let s) = v else { throw LedgerError("bad_transaction", "\(key) must be a string") }
            return s
        }
        guard let nonceValue = o["nonce"] else { throw LedgerError("bad_transaction", "missing field nonce") }
        guard case .int(let n) = nonceValue, n >= 0 else {
            throw LedgerError("bad_transaction", "nonce must be a non-negative integer")
        }
        guard let payload = o["payload"] else { throw LedgerError("bad_transaction", "missing field payload") }
        guard case .object = payload else { throw LedgerError("bad_payload", "payload must be a JSON object") }
        try self.init(
            chainID: try string("chainId"), author: try PublicKey(did: try string("author")), nonce: UInt64(n),
            contract: try string("contract"), action: try string("action"), payload: payload,
            signature: try Base64.decode(try string("signature"), field: "signature"))
    }
}
