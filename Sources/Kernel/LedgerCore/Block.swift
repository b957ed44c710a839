import Crypto

/// A block header. Canonical encoding (version 1): version byte; chain id; height (varint);
/// previous block hash (32); time in milliseconds since the Unix epoch (varint); log size after the
/// block (varint); log root after the block (32); state root after the block (32); transaction
/// count (varint); transactions hash (32, SHA-256 of the concatenated transaction ids in order);
/// proposer (32-byte Ed25519 key). The block hash is SHA-256 of this encoding.
public struct BlockHeader: Hashable, Sendable {
    public static let version: UInt8 = 1

    public let chainID: String
    public let height: UInt64
    public let previousHash: Hash
    public let timeMillis: UInt64
    public let logSize: UInt64
    public let logRoot: Hash
    public let stateRoot: Hash
    public let transactionCount: UInt64
    public let transactionsHash: Hash
    public let proposer: PublicKey

    public init(
        chainID: String, height: UInt64, previousHash: Hash, timeMillis: UInt64, logSize: UInt64, logRoot: Hash,
        stateRoot: Hash, transactionCount: UInt64, transactionsHash: Hash, proposer: PublicKey
    ) {
        self.chainID = chainID
        self.height = height
        self.previousHash = previousHash
        self.timeMillis = timeMillis
        self.logSize = logSize
        self.logRoot = logRoot
        self.stateRoot = stateRoot
        self.transactionCount = transactionCount
        self.transactionsHash = transactionsHash
        self.proposer = proposer
    }

    public var encoded: [UInt8] {
        var w = BinaryWriter(capacity: 220)
        w.writeByte(Self.version)
        w.writeString(chainID)
        w.writeVarint(height)
        w.writeFixed(previousHash.bytes)
        w.writeVarint(timeMillis)
        w.writeVarint(logSize)
        w.writeFixed(logRoot.bytes)
        w.writeFixed(stateRoot.bytes)
        w.writeVarint(transactionCount)
        w.writeFixed(transactionsHash.bytes)
        w.writeFixed(proposer.rawRepresentation)
        return w.bytes
    }

    public init(encoded: [UInt8]) throws(LedgerError) {
        var r = BinaryReader(encoded)
        let version = try r.readByte()
        guard version == Self.version else { throw LedgerError("unsupported_version", "block version \(version)") }
        chainID = try r.readString(limit: 128)
        height = try r.readVarint()
        previousHash = try Hash(try r.readFixed(32))
        timeMillis = try r.readVarint()
        logSize = try r.readVarint()
        logRoot = try Hash(try r.readFixed(32))
        stateRoot = try Hash(try r.readFixed(32))
        transactionCount = try r.readVarint()
        transactionsHash = try Hash(try r.readFixed(32))
        proposer = try PublicKey(rawRepresentation: try r.readFixed(32))
        try r.finish()
    }

    public var hash: Hash { Hash.sha256(encoded) }

    /// SHA-256 of the concatenated transaction ids.
    public static func transactionsHash(_ ids: [Hash]) -> Hash {
        var hasher = SHA256Hasher()
        for id in ids { id.withBytes { hasher.update($0) } }
        return hasher.finalize()
    }

    public var json: JSONValue {
        .object([
            "chainId": .string(chainID),
            "height": .int(Int64(height)),
            "hash": .string(hash.hex),
            "previousHash": .string(previousHash.hex),
            "time": .int(Int64(timeMillis)),
            "logSize": .int(Int64(logSize)),
            "logRoot": .string(logRoot.base64),
            "stateRoot": .string(stateRoot.hex),
            "transactionCount": .int(Int64(transactionCount)),
            "transactionsHash": .string(transactionsHash.hex),
            "proposer": .string(proposer.did),
        ])
    }
}
