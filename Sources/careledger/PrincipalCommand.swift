import ArgumentParser
import CLIKit
import Foundation
import ContractKit
import LedgerCore
import NIOHTTP1
import Store

/// `careledger principal`: register and show principals (the identity contract).
struct PrincipalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "principal", abstract: "Register principals; freeze a patient's key suspected stolen.",
        subcommands: [Register.self, Show.self, Freeze.self, Unfreeze.self, Rotate.self])

    /// An act two organisations do on a patient's key: the first proposes, the second (another organisation) confirms.
    static func twoOrganisationAct(_ options: NodeKeyOptions, action: String, payload: JSONValue, done: String) async throws {
        let session = try await Session(node: options.node, keyFile: options.key)
        let receipt = try await session.submit("identity", action, payload)
        let status = receipt["result"]?["status"]?.stringValue ?? "?"
        output(receipt, json: options.json) {
            status == "proposed" ? "proposed: a second organisation confirms with the same command" : "\(payload["subject"]?.stringValue ?? "") \(done)"
        }
    }

    /// The patient an act names and why (both kept on chain, on her access log).
    struct ActOptions: ParsableArguments {
        @Option(help: "The patient's did.") var subject: String
        @Option(help: "Why (kept on chain, on her access log).") var reason: String?

        var payload: JSONValue {
            var o: [String: JSONValue] = ["subject": .string(subject)]
            if let reason { o["reason"] = .string(reason) }
            return .object(o)
        }
    }

    struct Freeze: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "As an organisation that verified the patient in person, freeze her key (suspected theft); a second organisation confirms.",
            discussion: "A frozen key signs nothing and receives no new wrapped key until the patient's keys are rotated (guardian recovery, or `principal rotate` by two organisations) or the freeze is lifted. Both steps are on her access log.")
        @OptionGroup var options: NodeKeyOptions
        @OptionGroup var act: ActOptions

        func run() async throws {
            try await PrincipalCommand.twoOrganisationAct(options, action: "freeze", payload: act.payload, done: "frozen")
        }
    }

    struct Unfreeze: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift the freeze on a patient's key (false alarm); a second organisation confirms.")
        @OptionGroup var options: NodeKeyOptions
        @OptionGroup var act: ActOptions

        func run() async throws {
            try await PrincipalCommand.twoOrganisationAct(options, action: "unfreeze", payload: act.payload, done: "unfrozen")
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "For a frozen patient seen in person: make the keys of her new device hers (a second organisation confirms the same keys).",
            discussion: "She makes the proof on her own device with `careledger key rotation-proof`; no key of hers leaves it.")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "The patient's did.") var subject: String
        @Option(help: "The proof file `careledger key rotation-proof` wrote on her device.") var proof: String

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: proof), var o = try? JSONValue.parse(Array(data)).objectValue else {
                throw LedgerError("bad_proof_file", "cannot read a rotation proof from \(proof)")
            }
            guard o["did"]?.stringValue == subject else { throw LedgerError("bad_proof_file", "the proof is for \(o["did"]?.stringValue ?? "?"), not \(subject)") }
            o["did"] = nil
            o["subject"] = .string(subject)
            try await PrincipalCommand.twoOrganisationAct(options, action: "rotate", payload: .object(o), done: "has new keys")
        }
    }

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
