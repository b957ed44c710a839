import Foundation
import LedgerCore
import Store

/// Creates a development consortium in a data directory: genesis, the node's key and keys for
/// the demo principals of the README walk-through.
public enum Consortium {
    public static let demoPrincipals = ["alice", "dr-bob", "dr-carol", "hospital-a", "hospital-b", "pharma-co", "wholesaler", "pharmacy", "regulator"]

    /// Creates the directory's contents; refuses when a chain is already there.
    @discardableResult
    public static func create(
        in directory: DataDirectory, chainID: String = "careledger-dev", timeMillis: UInt64 = LedgerNode.systemClock(),
        principals: [String] = demoPrincipals, members: [String] = []
    ) throws -> Genesis {
        if directory.exists { throw LedgerError("already_initialised", "\(directory.path) already holds a chain") }
        try FileManager.default.createDirectory(atPath: directory.path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let nodeKey = SigningKey()
        try KeyFile.save(nodeKey, to: directory.nodeKey, overwrite: true)
        for name in principals {
            try KeyFile.save(SigningKey(), to: "\(directory.keys)/\(name).key", overwrite: true)
        }
        _ = try SupplyService.secret(in: directory)
        let genesis = Genesis(chainID: chainID, proposer: nodeKey.publicKey, timeMillis: timeMillis, members: members)
        // Written last: its presence marks a complete initialisation.
        try genesis.save(to: directory.genesis)
        return genesis
    }
}
