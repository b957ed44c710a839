/// The size of a finality quorum among `n` validators: with n = 3f + 1 (f faulty tolerated), 2f + 1;
/// in general n − ⌊(n − 1) / 3⌋, so any two quorums share an honest validator.
public enum Quorum {
    public static func size(validators n: Int) -> Int { n <= 0 ? 1 : n - (n - 1) / 3 }
}

/// A validator's vote for a block: its Ed25519 signature over (chain id, height, block hash, state root)
/// with a domain prefix, and its C2SP note signature over the block's checkpoint text (origin, log size,
/// log root), so that a quorum's votes also make a checkpoint cosigned by a quorum. Encoding (version 2):
/// version byte, chain id, height (varint), block hash (32), state root (32), validator key (32),
/// signature (64), checkpoint signature (64). Version 1 (no checkpoint signature) is still read.
public struct BlockVote: Sendable, Hashable {
    public static let version: UInt8 = 2
    public let chainID: String
    public let height: UInt64
    public let blockHash: Hash
    public let stateRoot: Hash
    public let validator: PublicKey
    public let signature: [UInt8]
    /// Ed25519 over the checkpoint text of the block (empty in a version-1 vote).
    public let checkpointSignature: [UInt8]

    public static func signingBytes(chainID: String, height: UInt64, blockHash: Hash, stateRoot: Hash) -> [UInt8] {
        var w = BinaryWriter(capacity: 120)
        w.writeFixed(Array("careledger-vote\n".utf8))
        w.writeString(chainID)
        w.writeVarint(height)
        w.writeFixed(blockHash.bytes)
        w.writeFixed(stateRoot.bytes)
        return w.bytes
    }

    /// `signer`'s vote for the block with `header`; `origin` names the log (for the checkpoint signature).
    public init(header: BlockHeader, signer: SigningKey, origin: String) {
        chainID = header.chainID
        height = header.height
        blockHash = header.hash
        stateRoot = header.stateRoot
        validator = signer.publicKey
        signature = signer.signature(for: Self.signingBytes(chainID: chainID, height: height, blockHash: blockHash, stateRoot: stateRoot))
        checkpointSignature = signer.signature(for: Array(Checkpoint(origin: origin, size: header.logSize, rootHash: header.logRoot).text.utf8))
    }

    public var isSignatureValid: Bool {
        validator.isValidSignature(signature, for: Self.signingBytes(chainID: chainID, height: height, blockHash: blockHash, stateRoot: stateRoot))
    }

    public var encoded: [UInt8] {
        var w = BinaryWriter(capacity: 200)
        // A version-1 vote (read from an older chain, no checkpoint signature) keeps its version, so
        // that its bytes read back.
        w.writeByte(checkpointSignature.isEmpty ? 1 : Self.version)
        w.writeString(chainID)
        w.writeVarint(height)
        w.writeFixed(blockHash.bytes)
        w.writeFixed(stateRoot.bytes)
        w.writeFixed(validator.rawRepresentation)
        w.writeFixed(signature)
        w.writeFixed(checkpointSignature)
        return w.bytes
    }

    public init(encoded: [UInt8]) throws(LedgerError) {
        var r = BinaryReader(encoded)
        try self.init(reading: &r)
        try r.finish()
    }

    init(reading r: inout BinaryReader) throws(LedgerError) {
        let version = try r.readByte()
        guard version == 1 || version == 2 else { throw LedgerError("unsupported_version", "vote version \(version)") }
        chainID = try r.readString(limit: 128)
        height = try r.readVarint()
        blockHash = try Hash(try r.readFixed(32))
        stateRoot = try Hash(try r.readFixed(32))
        validator = try PublicKey(rawRepresentation: try r.readFixed(32))
        signature = try r.readFixed(64)
        checkpointSignature = version == 2 ? try r.readFixed(64) : []
    }

    public var json: JSONValue {
        .object([
            "height": .int(Int64(height)), "blockHash": .string(blockHash.hex), "stateRoot": .string(stateRoot.hex),
            "validator": .string(validator.did), "signature": .string(Base64.encode(signature)),
            "checkpointSignature": .string(Base64.encode(checkpointSignature)),
        ])
    }
}

/// Proof that a block is final: votes of at least a quorum of the validator set for one
/// (chain id, height, block hash, state root). Encoding: version byte, vote count (varint), each vote
/// length-prefixed, in validator key order.
public struct QuorumCertificate: Sendable, Hashable {
    public let votes: [BlockVote]

    public init(votes: [BlockVote]) { self.votes = votes.sorted { $0.validator < $1.validator } }

    public var height: UInt64 { votes.first?.height ?? 0 }
    public var blockHash: Hash { votes.first?.blockHash ?? .zero }

    /// Checks that the votes are valid, distinct, from `validators`, all for `header`, and at least a quorum.
    public func verify(header: BlockHeader, validators: [PublicKey]) throws(LedgerError) {
        let needed = Quorum.size(validators: validators.count)
        var seen: Set<PublicKey> = []
        let hash = header.hash
        for vote in votes {
            guard vote.chainID == header.chainID, vote.height == header.height, vote.blockHash == hash, vote.stateRoot == header.stateRoot else {
                throw LedgerError("bad_certificate", "a vote in the certificate is for another block")
            }
            guard validators.contains(vote.validator) else { throw LedgerError("bad_certificate", "\(vote.validator.did) is not a validator") }
            guard seen.insert(vote.validator).inserted else { throw LedgerError("bad_certificate", "\(vote.validator.did) votes twice") }
            guard vote.isSignatureValid else { throw LedgerError("bad_certificate", "the vote of \(vote.validator.did) does not verify") }
        }
        guard seen.count >= needed else {
            throw LedgerError("bad_certificate", "\(seen.count) of \(validators.count) validators signed; a quorum is \(needed)")
        }
    }

    public var encoded: [UInt8] {
        var w = BinaryWriter(capacity: 64 + votes.count * 200)
        w.writeByte(1)
        w.writeVarint(UInt64(votes.count))
        for v in votes { w.writeBytes(v.encoded) }
        return w.bytes
    }

    public init(encoded: [UInt8]) throws(LedgerError) {
        var r = BinaryReader(encoded)
        let version = try r.readByte()
        guard version == 1 else { throw LedgerError("unsupported_version", "certificate version \(version)") }
        let count = try r.readVarint()
        guard count <= 1024 else { throw LedgerError("bad_certificate", "too many votes") }
        var votes: [BlockVote] = []
        for _ in 0..<count { votes.append(try BlockVote(encoded: try r.readBytes(limit: 4096))) }
        try r.finish()
        self.votes = votes
    }

    public var json: JSONValue {
        .object(["height": .int(Int64(height)), "blockHash": .string(blockHash.hex), "votes": .array(votes.map(\.json))])
    }

    /// The block's checkpoint as a C2SP note cosigned by every voter whose checkpoint signature verifies
    /// (key name `origin`, one signature line per validator).
    public func cosignedCheckpoint(header: BlockHeader, origin: String) throws(LedgerError) -> String {
        let text = Checkpoint(origin: origin, size: header.logSize, rootHash: header.logRoot).text
        var lines = ""
        for vote in votes where !vote.checkpointSignature.isEmpty && vote.validator.isValidSignature(vote.checkpointSignature, for: Array(text.utf8)) {
            let verifier = try NoteVerifier(name: origin, publicKey: vote.validator)
            lines += "\u{2014} \(origin) \(Base64.encode(verifier.keyID + vote.checkpointSignature))\n"
        }
        guard !lines.isEmpty else { throw LedgerError("no_cosignatures", "no vote of this certificate signs the checkpoint") }
        return text + "\n" + lines
    }
}

/// What the ordering leader proposes for one slot: a block header signed by its proposer and the
/// block's transactions (canonical bytes). Every node re-executes the transactions and accepts the
/// proposal only if it computes exactly the same header. Encoding: version byte, header (length-
/// prefixed), signature (64), transaction count (varint), each transaction length-prefixed.
public struct BlockProposal: Sendable {
    public let header: BlockHeader
    public let signature: [UInt8]
    public let transactions: [[UInt8]]

    public init(header: BlockHeader, signature: [UInt8], transactions: [[UInt8]]) {
        self.header = header
        self.signature = signature
        self.transactions = transactions
    }

    public var encoded: [UInt8] {
        var w = BinaryWriter(capacity: 400 + transactions.reduce(0) { $0 + $1.count + 3 })
        w.writeByte(1)
        w.writeBytes(header.encoded)
        w.writeFixed(signature)
        w.writeVarint(UInt64(transactions.count))
        for t in transactions { w.writeBytes(t) }
        return w.bytes
    }

    public init(encoded: [UInt8]) throws(LedgerError) {
        var r = BinaryReader(encoded)
        let version = try r.readByte()
        guard version == 1 else { throw LedgerError("unsupported_version", "proposal version \(version)") }
        header = try BlockHeader(encoded: try r.readBytes(limit: 4096))
        signature = try r.readFixed(64)
        let count = try r.readVarint()
        guard count == header.transactionCount, count <= 1 << 20 else {
            throw LedgerError("bad_proposal", "the proposal carries \(count) transactions, its header says \(header.transactionCount)")
        }
        var txs: [[UInt8]] = []
        txs.reserveCapacity(Int(count))
        for _ in 0..<count { txs.append(try r.readBytes(limit: 1 << 20)) }
        try r.finish()
        transactions = txs
    }

    /// The proposer's signature over the header is valid.
    public var isSignatureValid: Bool { header.proposer.isValidSignature(signature, for: header.encoded) }
}
