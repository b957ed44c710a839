import ArgumentParser
import CLIKit
import Foundation
import LedgerCore
import NIOHTTP1
import Store

/// `careledger principal`: register and show principals (the identity contract).
struct PrincipalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "principal", abstract: "Register principals.", subcommands: [Register.self, Show.self])

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a principal: yourself (patient), or with --subject-key a patient, practitioner or device of your organisation, or (operator key) an organisation.")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "patient, practitioner, organisation or device.") var role: String
        @Option(help: "Key file of the principal to register (default: your own).") var subjectKey: String?
        @Option(help: "Organisation name.") var name: String?

        func run() async throws {
            let session = try await Session(node: options.node, keyFile: options.key)
            let subjectFile = subjectKey ?? options.key
            let subject = try KeyFile.load(subjectFile)
            let encryption = try KeyFile.loadEncryption(subjectFile)
            var payload: [String: JSONValue] = ["role": .string(role), "encryptionKey": .string(Base64.encode(encryption.publicKey))]
            if subject.publicKey != session.key.publicKey { payload["subject"] = .string(subject.publicKey.did) }
            if let name { payload["name"] = .string(name) }
            let receipt = try await session.submit("identity", "register", .object(payload))
            output(receipt, json: options.json) { "registered \(subject.publicKey.did) as \(role)" }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a registered principal.")
        @Option(help: "Node URL.") var node: String = "http://127.0.0.1:8080"
        @Argument(help: "did:key") var did: String
        func run() async throws {
            let value = try await API.json(.GET, node + "/v1/principals/" + did)
            print(value.canonicalString)
        }
    }
}
