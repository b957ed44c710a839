import ArgumentParser
import CLIKit
import Foundation
import LedgerCore

/// `careledger auth token`: a bearer token for scripts and curl.
struct AuthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "auth", abstract: "Authentication helpers.", subcommands: [Token.self])

    struct Token: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sign the node's challenge with your key and print a short-lived bearer token.")
        @OptionGroup var options: NodeKeyOptions

        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            let token = try await session.authorization()
            output(.object(["token": .string(token), "did": .string(session.did)]), json: options.json) { token }
        }
    }
}
