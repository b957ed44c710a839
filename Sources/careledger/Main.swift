import ArgumentParser
import CLIKit
import Foundation
import LedgerCore
import Logging
import Node
import Composition

/// `careledger`: runs a node and its tools.
struct Careledger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "careledger",
        abstract: "CareLedger: a permissioned ledger for healthcare consortia.",
        version: Release.version,
        subcommands: [
            Up.self, Init.self, NodeCommand.self, KeyCommand.self, TxCommand.self, Audit.self, ProofCommand.self, Bench.self,
            PrincipalCommand.self,
            GenesisCommand.self, AuthCommand.self, ClusterCommand.self,
        ],
        groupedSubcommands: Capability.careLedger.compactMap { $0.commands?.commandGroup })
}

/// Exit codes (`ExitCodes`, docs/cli.md): 0 done, 1 refused by policy or state, 2 bad input, 3 the node
/// could not be reached. Errors go to stderr on one line.
@main
enum Entry {
    /// Local codes that mean "refused or failed" rather than "the input was bad" (a node's answers are
    /// classed by their status, `ExitCodes`).
    static let failureCodes: Set<String> = [
        "verification_failed", "audit_failed", "connection_failed", "server_error", "io_error", "node_stopped", "commit_failed",
        "mempool_full", "internal_error", "corrupt_store", "busy", "genesis_unsigned", "data_locked", "decryption_failed", "unwrap_failed", "consent_denied", "forbidden", "unauthenticated", "not_found", "nothing_to_pay", "wrong_status",
    ]

    static func main() async {
        LoggingSystem.bootstrap { LazyStreamLogHandler(label: $0) }
        do {
            var command = try Careledger.parseAsRoot()
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let error as LedgerError {
            FileHandle.standardError.write(Data("error: \(error.code): \(error.message.replacingOccurrences(of: "\n", with: " "))\n".utf8))
            exit(ExitCodes.forError(error.code, localFailures: failureCodes))
        } catch let error as ExitCode {
            exit(error.rawValue)
        } catch {
            let code = Careledger.exitCode(for: error)
            if code == .success {
                Careledger.exit(withError: error)
            }
            var message = Careledger.fullMessage(for: error)
            if message.hasPrefix("Error: ") { message.removeFirst(7) }
            let line = message.split(separator: "\n").first.map(String.init) ?? ""
            if code == .validationFailure {
                FileHandle.standardError.write(Data("error: \(line) (see `careledger help`)\n".utf8))
                exit(2)
            }
            FileHandle.standardError.write(Data("error: \(line)\n".utf8))
            exit(1)
        }
    }
}

