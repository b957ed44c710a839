import ContractKit
import Foundation
import LedgerCore

/// The founding document of a chain: its id, the log origin, the proposer (validator) key, the
/// genesis time and the founding members, each of whom signs it. Stored as `genesis.json` in the data
/// directory; block 0 is derived from it; a node refuses to start until every founding member has signed.
public struct Genesis: Sendable, Hashable {
    public let chainID: String
    public let origin: String
    public let proposer: PublicKey
    public let timeMillis: UInt64
    /// The founding members' dids (none for a development chain).
    public let members: [String]
    /// Member did → base64 Ed25519 signature over `signingBytes`.
    public let signatures: [String: String]
    /// The validator keys of a consortium (each organisation's node key); empty for a single-node chain,
    /// whose only validator is the proposer.
    public let validatorKeys: [PublicKey]
    /// Governance proposals pass with approvals from more than numerator/denominator of the active members.
    public let governanceThreshold: (numerator: Int, denominator: Int)

    public init(
        chainID: String, proposer: PublicKey, timeMillis: UInt64, origin: String? = nil, members: [String] = [], signatures: [String: String] = [:],
        validators: [PublicKey] = [], governanceThreshold: (numerator: Int, denominator: Int) = (1, 2)
    ) {
        self.governanceThreshold = governanceThreshold
        self.chainID = chainID
        self.origin = origin ?? "careledger/\(chainID)"
        self.proposer = proposer
        self.timeMillis = timeMillis
        self.members = members
        self.signatures = signatures
        validatorKeys = validators
    }

    public static func == (a: Genesis, b: Genesis) -> Bool { a.json.canonicalBytes == b.json.canonicalBytes }
    public func hash(into hasher: inout Hasher) { hasher.combine(json.canonicalBytes) }

    /// The validator set of the first block: the consortium's validators, or the proposer alone.
    public var validators: [PublicKey] { validatorKeys.isEmpty ? [proposer] : validatorKeys }

    /// The keys that may act as the chain's operator in the contracts (admit parties, organisations…):
    /// the proposer and every validator, until governance transactions take this over.
    public var operators: Set<String> { Set(validators.map(\.did) + [proposer.did]) }

    /// Who votes on governance proposals at first: the founding members, or the operators of a chain without any.
    public var governanceMembers: [String] { members.isEmpty ? operators.sorted() : members }

    /// The contracts every node of this chain runs (identical everywhere: derived from genesis and the
    /// release's capabilities alone).
    public func registry(_ contracts: ContractSet) -> ContractRegistry {
        contracts.registry(
            operators: operators, governance: GovernanceContract(members: governanceMembers, validators: validators.map(\.did), threshold: governanceThreshold))
    }

    /// Votes needed for finality.
    public var quorum: Int { Quorum.size(validators: validators.count) }

    /// Everything but the signatures.
    var body: JSONValue {
        var o: [String: JSONValue] = [
            "chainId": .string(chainID),
            "origin": .string(origin),
            "proposer": .string(proposer.did),
            "time": .int(Int64(timeMillis)),
        ]
        if !members.isEmpty { o["members"] = .array(members.map { .string($0) }) }
        if !validatorKeys.isEmpty { o["validators"] = .array(validatorKeys.map { .string($0.did) }) }
        if governanceThreshold != (1, 2) {
            o["governanceThreshold"] = .array([.int(Int64(governanceThreshold.numerator)), .int(Int64(governanceThreshold.denominator))])
        }
        return .object(o)
    }

    /// What each founding member signs: a domain prefix and the canonical JSON of the body.
    public var signingBytes: [UInt8] { Array("careledger-genesis\n".utf8) + body.canonicalBytes }

    public var json: JSONValue {
        var o = body.objectValue!
        if !signatures.isEmpty { o["signatures"] = .object(signatures.mapValues { .string($0) }) }
        return .object(o)
    }

    public init(json: JSONValue) throws(LedgerError) {
        guard let chainID = json["chainId"]?.stringValue, let origin = json["origin"]?.stringValue,
            let proposer = json["proposer"]?.stringValue, let time = json["time"]?.intValue, time >= 0
        else { throw LedgerError("bad_genesis", "genesis needs chainId, origin, proposer and time") }
        var members: [String] = []
        for m in json["members"]?.arrayValue ?? [] {
            guard let did = m.stringValue else { throw LedgerError("bad_genesis", "members are dids") }
            _ = try PublicKey(did: did)
            members.append(did)
        }
        guard Set(members).count == members.count else { throw LedgerError("bad_genesis", "a member is listed twice") }
        var validators: [PublicKey] = []
        for v in json["validators"]?.arrayValue ?? [] {
            guard let did = v.stringValue else { throw LedgerError("bad_genesis", "validators are dids") }
            validators.append(try PublicKey(did: did))
        }
        guard Set(validators).count == validators.count else { throw LedgerError("bad_genesis", "a validator is listed twice") }
        var threshold = (numerator: 1, denominator: 2)
        if let t = json["governanceThreshold"] {
            guard let pair = t.arrayValue, pair.count == 2, let n = pair[0].intValue, let d = pair[1].intValue, d > 0, n >= 0, n < d else {
                throw LedgerError("bad_genesis", "governanceThreshold is [numerator, denominator] with 0 ≤ numerator < denominator")
            }
            threshold = (Int(n), Int(d))
        }
        var signatures: [String: String] = [:]
        for (did, sig) in json["signatures"]?.objectValue ?? [:] {
            guard let text = sig.stringValue else { throw LedgerError("bad_genesis", "signatures are base64 strings") }
            signatures[did] = text
        }
        self.init(chainID: chainID, proposer: try PublicKey(did: proposer), timeMillis: UInt64(time), origin: origin, members: members, signatures: signatures,
            validators: validators, governanceThreshold: threshold)
    }

    /// The genesis with `key`'s signature added; the key must be a founding member's.
    public func signed(by key: SigningKey) throws(LedgerError) -> Genesis {
        let did = key.publicKey.did
        guard members.contains(did) else { throw LedgerError("not_a_member", "\(did) is not a founding member of \(chainID)") }
        var all = signatures
        all[did] = Base64.encode(key.signature(for: signingBytes))
        return Genesis(
            chainID: chainID, proposer: proposer, timeMillis: timeMillis, origin: origin, members: members, signatures: all, validators: validatorKeys,
            governanceThreshold: governanceThreshold)
    }

    /// The founding members who have not signed yet; throws when a signature is invalid or not a member's.
    public func unsignedMembers() throws(LedgerError) -> [String] {
        for (did, text) in signatures {
            guard members.contains(did) else { throw LedgerError("bad_genesis", "\(did) signed but is not a founding member") }
            guard try PublicKey(did: did).isValidSignature(try Base64.decode(text), for: signingBytes) else {
                throw LedgerError("bad_genesis", "the signature of \(did) does not verify: the genesis was changed after it signed")
            }
        }
        return members.filter { signatures[$0] == nil }
    }

    /// Refuses a genesis that some founding member has not signed (or whose signatures do not verify).
    public func requireSigned() throws(LedgerError) {
        let missing = try unsignedMembers()
        guard missing.isEmpty else {
            throw LedgerError("genesis_unsigned", "founding members still to sign genesis.json: \(missing.joined(separator: ", "))")
        }
    }

    public static func load(_ path: String) throws -> Genesis {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LedgerError("no_data", "no genesis file at \(path): run `careledger init` first")
        }
        return try Genesis(json: try JSONValue.parse(Array(data)))
    }

    /// Writes the genesis atomically (temporary file, then rename).
    public func save(to path: String) throws {
        let tmp = path + ".tmp"
        try Data((json.canonicalString + "\n").utf8).write(to: URL(fileURLWithPath: tmp), options: .atomic)
        guard rename(tmp, path) == 0 else { throw LedgerError("io_error", "cannot write \(path)") }
    }

    /// The genesis block header: height 0, empty log, empty state.
    public var header: BlockHeader {
        BlockHeader(
            chainID: chainID, height: 0, previousHash: .zero, timeMillis: timeMillis, logSize: 0, logRoot: MerkleHash.empty,
            stateRoot: SparseMerkleTree().root, transactionCount: 0, transactionsHash: BlockHeader.transactionsHash([]),
            proposer: proposer)
    }

    /// The note key name, equal to the checkpoint origin.
    public var noteKeyName: String { origin }
}

/// File names inside a node's data directory.
public struct DataDirectory: Sendable {
    public let path: String
    public init(_ path: String) { self.path = path }
    public var genesis: String { path + "/genesis.json" }
    public var nodeKey: String { path + "/node.key" }
    public var database: String { path + "/ledger.sqlite" }
    public var keys: String { path + "/keys" }
    public var exists: Bool { FileManager.default.fileExists(atPath: genesis) }
}
