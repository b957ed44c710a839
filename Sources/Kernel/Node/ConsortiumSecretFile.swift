import Foundation
import LedgerCore

extension DataDirectory {
    /// The consortium secret's file (mode 0600).
    public var secret: String { path + "/consortium.secret" }

    /// The consortium secret of this node's chain. `create`: make a random one when there is none
    /// (a new solo chain); never replaced once written, since the chain's private state and blinded
    /// identifiers depend on it.
    public func consortiumSecret(create: Bool = true) throws -> ConsortiumSecret {
        if let data = FileManager.default.contents(atPath: secret) {
            guard data.count == 32 else { throw LedgerError("corrupt_store", "\(secret) must hold 32 bytes; restore it from a consortium member") }
            return try ConsortiumSecret(bytes: Array(data))
        }
        if FileManager.default.fileExists(atPath: path + "/supply.secret") {
            throw LedgerError(
                "old_data",
                "\(path) was written by CareLedger 0.3.0 or earlier (it holds supply.secret): 0.4.0 salts private state "
                    + "and derives its keys differently, and cannot open that chain; start a new one (docs/formats.md, changes by version)")
        }
        guard create else {
            throw LedgerError(
                "no_secret", "\(secret) is missing: the chain's private state is salted with the consortium secret; restore it from the node or a consortium member")
        }
        let fresh = ConsortiumSecret.random()
        let tmp = secret + ".tmp-\(UInt64.random(in: 0..<UInt64.max))"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(fresh.bytes), attributes: [.posixPermissions: 0o600]) else {
            throw LedgerError("io_error", "cannot write \(tmp)")
        }
        // link(2) fails if the file appeared meanwhile: the first secret written wins.
        defer { unlink(tmp) }
        guard link(tmp, secret) == 0 else {
            guard let data = FileManager.default.contents(atPath: secret), data.count == 32 else { throw LedgerError("io_error", "cannot create \(secret)") }
            return try ConsortiumSecret(bytes: Array(data))
        }
        return fresh
    }

    /// Writes the consortium's shared secret into a new node's directory.
    public func install(secret value: ConsortiumSecret) throws {
        guard FileManager.default.createFile(atPath: secret, contents: Data(value.bytes), attributes: [.posixPermissions: 0o600]) else {
            throw LedgerError("io_error", "cannot write \(secret)")
        }
    }
}
