import ContractKit
import Foundation
import Node
import Server
import LedgerCore
import Store

/// Registers the demo principals of a development consortium on its first start: the two
/// hospitals, an insurer and the supply-chain organisations (admitted by the operator, the node key), the
/// doctors (vouched for by their hospital) and the patient alice (herself); then what each
/// capability's demo needs (the supply chain's parties).
enum DemoSetup {
    /// The demo principals whose keys a development consortium is created with (`up`, `init`, `cluster up`).
    static let principals = ["alice", "dr-bob", "dr-carol", "hospital-a", "hospital-b", "pharma-co", "wholesaler", "pharmacy", "regulator", "insurer"]

    /// (key name, role, registered by, organisation name)
    static let plan: [(String, String, String?, String?)] = [
        ("hospital-a", "organisation", nil, "Hospital A"),
        ("hospital-b", "organisation", nil, "Hospital B"),
        ("dr-bob", "practitioner", "hospital-a", nil),
        ("dr-carol", "practitioner", "hospital-b", nil),
        ("alice", "patient", "alice", nil),
        ("pharma-co", "organisation", nil, "Pharma Co"),
        ("wholesaler", "organisation", nil, "Wholesaler W"),
        ("pharmacy", "organisation", nil, "Pharmacy P"),
        ("regulator", "organisation", nil, "Medicines Regulator"),
        ("insurer", "organisation", nil, "Gold Health Insurance"),
    ]

    static func registerDemoPrincipals(node: LedgerNode, directory: DataDirectory, capabilities: [any NodeCapability]) async throws {
        let operatorKey = try KeyFile.load(directory.nodeKey)
        for (name, role, by, orgName) in plan {
            let path = "\(directory.keys)/\(name).key"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let subject = try KeyFile.load(path)
            let encryption = try KeyFile.loadEncryption(path)
            let author = try by.map { try KeyFile.load("\(directory.keys)/\($0).key") } ?? operatorKey
            var payload: [String: JSONValue] = [
                "role": .string(role), "encryptionKey": .string(Base64.encode(encryption.publicKey)),
            ]
            if author.publicKey != subject.publicKey { payload["subject"] = .string(subject.publicKey.did) }
            if let orgName { payload["name"] = .string(orgName) }
            let tx = try Transaction(
                chainID: node.genesis.chainID, signer: author, contract: "identity",
                action: "register", payload: .object(payload))
            _ = try await node.submit([tx])
        }
        for capability in capabilities { try await capability.setUpDemo(node: node, keys: directory.keys) }
    }
}
