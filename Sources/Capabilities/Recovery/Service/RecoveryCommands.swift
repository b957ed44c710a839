import ArgumentParser
import CLIKit
import ContractKit
import Foundation
import LedgerCore
import RecoveryContract
import Standards
import Store

/// `careledger recovery …`: a patient's key recovery through guardians (k of n): k approvals make the
/// new device's keys hers (a rotation), and her lost (or stolen) key signs nothing more.
public struct RecoveryCommand: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "recovery", abstract: "Key recovery through guardians (k of n): their approvals make a new device's keys yours.",
        subcommands: [Setup.self, Request.self, Requests.self, Approve.self, Complete.self, Cancel.self])

    /// A recovery state entry (served to the patient, her guardians and the requester, authenticated).
    static func state(_ session: inout Session, _ key: String) async throws -> JSONValue? {
        let answer = try await session.get("/v1/state/" + key)
        return answer["present"]?.boolValue == true ? answer["value"] : nil
    }

    /// The patient's recovery requests the session may see (newest first).
    static func requests(_ session: inout Session, patient: String) async throws -> [JSONValue] {
        try await session.get("/v1/recovery/\(patient)/requests")["requests"]?.arrayValue ?? []
    }

    /// The request `requester` names, or the only one in progress when she names none.
    static func pick(_ list: [JSONValue], requester: String?, patient: String) throws -> JSONValue {
        let inProgress = list.filter { $0["status"]?.stringValue == "open" && $0["current"]?.boolValue != false }
        if let requester {
            guard let found = list.first(where: { $0["requester"]?.stringValue == requester }) else {
                throw LedgerError("no_request", "\(requester) has no recovery request for \(patient)")
            }
            return found
        }
        guard inProgress.count == 1 else {
            if inProgress.isEmpty { throw LedgerError("no_request", "no recovery request for \(patient) is in progress") }
            let lines = inProgress.map { "\($0["requester"]?.stringValue ?? "?") (code \($0["checkCode"]?.stringValue ?? "?"))" }
            throw LedgerError(
                "several_requests",
                "\(inProgress.count) recovery requests for \(patient) are in progress; name the one whose code the patient read out to you with --requester: "
                    + lines.joined(separator: ", "))
        }
        return inProgress[0]
    }

    struct Setup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Name your guardians and how many of them it takes to make a new device's keys yours.")
        @OptionGroup var options: NodeKeyOptions
        @Option(parsing: .upToNextOption, help: "The guardians' dids (registered principals).") var guardian: [String]
        @Option(help: "How many guardians it takes to recover.") var threshold: Int

        func validate() throws {
            guard !guardian.isEmpty, guardian.count <= 32, (1...guardian.count).contains(threshold), Set(guardian).count == guardian.count else {
                throw ValidationError("give 1 to 32 distinct guardians and 1 ≤ threshold ≤ guardians")
            }
        }

        func run() async throws {
            let session = try await Session(node: options.node, keyFile: options.key)
            let payload: JSONValue = .object(["threshold": .int(Int64(threshold)), "guardians": .array(guardian.map { .string($0) })])
            let receipt = try await session.submit("recovery", "setup", payload)
            output(receipt, json: options.json) { "recovery set up: \(threshold) of \(guardian.count) guardians" }
        }
    }

    struct Request: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "From a new device (a new key file, `careledger key generate`), ask the guardians to recover a patient's keys.",
            discussion: "Prints the request's check code: read it out to your guardians, who compare it with `careledger recovery requests` before they approve.")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "The patient's did.") var patient: String

        func run() async throws {
            let session = try await Session(node: options.node, keyFile: options.key)
            let key = Base64.encode(try session.requireEncryption().publicKey)
            var receipt = try await session.submit("recovery", "request", .object(["patient": .string(patient), "encryptionKey": .string(key)]))
            let code = RecoveryContract.checkCode(requester: session.did, encryptionKey: key)
            if var o = receipt.objectValue, receipt["status"] == .string("committed") {
                o["checkCode"] = .string(code)
                receipt = .object(o)
            }
            output(receipt, json: options.json) {
                "recovery requested for \(patient); read the code \(code) out to your guardians, who approve with "
                    + "`careledger recovery approve --patient \(patient) --requester \(session.did)`"
            }
        }
    }

    struct Requests: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a patient's recovery requests (all of them for the patient and her guardians, your own for a requester).")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "The patient's did.") var patient: String

        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            let list = try await RecoveryCommand.requests(&session, patient: patient)
            output(.object(["requests": .array(list)]), json: options.json) {
                list.isEmpty
                    ? "no recovery request for \(patient)"
                    : list.map {
                        "\($0["requester"]?.stringValue ?? "?")  code \($0["checkCode"]?.stringValue ?? "?")  \($0["status"]?.stringValue ?? "?")"
                            + "  approvals \($0["approvals"]?.objectValue?.count ?? 0)\($0["current"]?.boolValue == false ? "  (before the latest set-up)" : "")"
                    }.joined(separator: "\n")
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "As a guardian, approve a recovery request: the last approval needed makes its key the patient's.",
            discussion: "Approve only the request whose check code the patient read out to you (`careledger recovery requests`).")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "The patient's did.") var patient: String
        @Option(help: "The requester (the new device's did) whose request you approve; needed when several are in progress.") var requester: String?

        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            guard let setup = try await RecoveryCommand.state(&session, RecoveryContract.key(patient)) else {
                throw LedgerError("not_found", "\(patient) has not set up recovery")
            }
            guard RecoveryContract.guardians(setup).contains(session.did) else {
                throw LedgerError("not_a_guardian", "\(session.did) is not a guardian of \(patient)")
            }
            let request = try RecoveryCommand.pick(try await RecoveryCommand.requests(&session, patient: patient), requester: requester, patient: patient)
            let payload: JSONValue = .object(["patient": .string(patient), "requester": request["requester"] ?? .null, "request": request["id"] ?? .null])
            let receipt = try await session.submit("recovery", "approve", payload)
            output(receipt, json: options.json) {
                "approved the request of \(request["requester"]?.stringValue ?? "?") (code \(request["checkCode"]?.stringValue ?? "?")); "
                    + "it is \(receipt["result"]?["status"]?.stringValue ?? "?")"
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "As a guardian or the requester, cancel a recovery request.")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "The patient's did.") var patient: String
        @Option(help: "The requester whose request to cancel; needed when several are in progress.") var requester: String?
        @Option(help: "Why (kept on chain).") var reason: String?

        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            let request = try RecoveryCommand.pick(try await RecoveryCommand.requests(&session, patient: patient), requester: requester, patient: patient)
            var payload: [String: JSONValue] = ["patient": .string(patient), "requester": request["requester"] ?? .null]
            if let reason { payload["reason"] = .string(reason) }
            let receipt = try await session.submit("recovery", "cancel", .object(payload))
            output(receipt, json: options.json) { "recovery request of \(request["requester"]?.stringValue ?? "?") for \(patient) cancelled" }
        }
    }

    struct Complete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "On the new device, once enough guardians approved: write its key file as the patient's (mode 0600).",
            discussion: "The guardians' approvals made the new device's keys the patient's current keys; the file written names her did, so that every command signs and reads as her. Her custodians re-wrap her records for the new key.")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "The patient's did.") var patient: String
        @Option(help: "Where to write the patient's key file.") var out: String

        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            guard let request = try await RecoveryCommand.state(&session, RecoveryContract.requestKey(patient, requester: session.key.publicKey.did)) else {
                throw LedgerError("no_request", "this key has no recovery request for \(patient)")
            }
            guard request["status"]?.stringValue == "completed" else {
                throw LedgerError(
                    "not_ready", "the recovery request is \(request["status"]?.stringValue ?? "?") with \(request["approvals"]?.arrayValue?.count ?? 0) approvals")
            }
            try KeyFile.save(session.key, encryption: try session.requireEncryption(), principal: patient, to: out)
            output(.object(["did": .string(patient), "signingKey": .string(session.key.publicKey.did), "file": .string(out), "completedAtHeight": request["completedAtHeight"] ?? .null]), json: options.json) {
                "recovered: \(out) holds \(patient)'s keys from height \(request["completedAtHeight"]?.intValue ?? 0) (the old key signs nothing more)"
            }
        }
    }
}

/// Key recovery's commands.
public enum RecoveryCommands: CommandCapability {
    public static let commandGroup = CommandGroup(name: "Key recovery", subcommands: [RecoveryCommand.self])
}
