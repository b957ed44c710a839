import ContractKit
import Foundation
import LedgerCore
import Store

/// Registers the demo principals of a development consortium on its first start: the two
/// hospitals (admitted by the operator, the node key), their doctors (vouched for by their
/// hospital) and the patient alice (herself).
public enum DemoSetup {
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
    ]

    /// The demo supply-chain organisations: roles, GLNs and GS1 company prefixes (GS1 example numbers).
    public static let supplyOrganisations: [(name: String, roles: [String], glns: [String], prefixes: [String])] = [
        ("pharma-co", ["manufacturer", "mah"], ["9506000000008"], ["950600"]),
        ("wholesaler", ["wholesaler"], ["9506000000015"], []),
        ("pharmacy", ["pharmacy"], ["9506000000022"], []),
        ("regulator", ["regulator"], [], []),
    ]

    public static func registerDemoPrincipals(node: LedgerNode, directory: DataDirectory) async throws {
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
        for org in supplyOrganisations {
            let path = "\(directory.keys)/\(org.name).key"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            _ = try await node.submitAsNode(
                contract: "supply", action: "party",
                payload: .object([
                    "party": .string(try KeyFile.load(path).publicKey.did), "roles": .array(org.roles.map { .string($0) }),
                    "glns": .array(org.glns.map { .string($0) }), "companyPrefixes": .array(org.prefixes.map { .string($0) }),
                ]))
        }
    }
}
