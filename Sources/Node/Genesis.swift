import Foundation
import LedgerCore

/// The founding document of a chain: its id, the log origin, the proposer (validator) key and the
/// genesis time. Stored as `genesis.json` in the data directory; block 0 is derived from it.
public struct Genesis: Sendable, Hashable {
    public let chainID: String
    public let origin: String
    public let proposer: PublicKey
    public let timeMillis: UInt64

    public init(chainID: String, proposer: PublicKey, timeMillis: UInt64, origin: String? = nil) {
        self.chainID = chainID
        self.origin = origin ?? "careledger/\(chainID)"
        self.proposer = proposer
        self.timeMillis = timeMillis
    }

    public var json: JSONValue {
        .object([
            "chainId": .string(chainID),
            "origin": .string(origin),
            "proposer": .string(proposer.did),
            "time": .int(Int64(timeMillis)),
        ])
    }

    public init(json: JSONValue) throws(LedgerError) {
        guard let chainID = json["chainId"]?.stringValue, let origin = json["origin"]?.stringValue,
            let proposer = json["proposer"]?.stringValue, let time = json["time"]?.intValue, time >= 0
        else { throw LedgerError("bad_genesis", "genesis needs chainId, origin, proposer and time") }
        self.init(chainID: chainID, proposer: try PublicKey(did: proposer), timeMillis: UInt64(time), origin: origin)
    }

    public static func load(_ path: String) throws -> Genesis {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LedgerError("no_data", "no genesis file at \(path): run `careledger init` first")
        }
        return try Genesis(json: try JSONValue.parse(Array(data)))
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
