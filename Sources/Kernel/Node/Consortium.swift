import Foundation
import LedgerCore
import Standards
import Store

/// Creates a development consortium in a data directory: genesis, the node's key and keys for
/// the principals named (the executable's demo set-up names those of the walk-through, docs/walkthroughs.md).
public enum Consortium {
    /// Creates the directory's contents; refuses when a chain is already there.
    @discardableResult
    public static func create(
        in directory: DataDirectory, chainID: String = "careledger-dev", timeMillis: UInt64 = LedgerNode.systemClock(),
        principals: [String], members: [String] = []
    ) throws -> Genesis {
        if directory.exists { throw LedgerError("already_initialised", "\(directory.path) already holds a chain") }
        try FileManager.default.createDirectory(atPath: directory.path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let nodeKey = SigningKey()
        try KeyFile.save(nodeKey, to: directory.nodeKey, overwrite: true)
        for name in principals {
            try KeyFile.save(SigningKey(), to: "\(directory.keys)/\(name).key", overwrite: true)
        }
        _ = try directory.consortiumSecret()
        let genesis = Genesis(chainID: chainID, proposer: nodeKey.publicKey, timeMillis: timeMillis, members: members)
        // Written last: its presence marks a complete initialisation.
        try genesis.save(to: directory.genesis)
        return genesis
    }

    /// Creates the data directories of a consortium network: one node per organisation, each with its
    /// own node key (a validator), one genesis naming every validator and founding member, signed by
    /// each member, and the consortium's shared secret. `members` are the organisations' keys
    /// (the founding members who sign genesis); the demo principals' keys are the same in every directory.
    @discardableResult
    public static func createNetwork(
        in directories: [DataDirectory], chainID: String, timeMillis: UInt64 = LedgerNode.systemClock(), members: [SigningKey] = [],
        principals: [String], governanceThreshold: (numerator: Int, denominator: Int) = (1, 2)
    ) throws -> Genesis {
        guard !directories.isEmpty else { throw LedgerError("bad_request", "a network needs at least one node") }
        for d in directories where d.exists { throw LedgerError("already_initialised", "\(d.path) already holds a chain") }
        let nodeKeys = directories.map { _ in SigningKey() }
        let principalKeys = principals.map { ($0, SigningKey(), EncryptionKey()) }
        let secret = ConsortiumSecret.random()
        var genesis = Genesis(
            chainID: chainID, proposer: nodeKeys[0].publicKey, timeMillis: timeMillis, members: members.map(\.publicKey.did),
            validators: nodeKeys.map(\.publicKey), governanceThreshold: governanceThreshold)
        for m in members { genesis = try genesis.signed(by: m) }
        for (d, key) in zip(directories, nodeKeys) {
            try FileManager.default.createDirectory(atPath: d.path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try KeyFile.save(key, to: d.nodeKey, overwrite: true)
            for (name, signing, encryption) in principalKeys {
                try KeyFile.save(signing, encryption: encryption, to: "\(d.keys)/\(name).key", overwrite: true)
            }
            try d.install(secret: secret)
            try genesis.save(to: d.genesis)
        }
        return genesis
    }
}
