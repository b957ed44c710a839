import ArgumentParser
import CLIKit
import ContractKit
import Foundation
import LedgerCore
import Node
import Records
import RecordsContract
import Standards
import Store

/// `careledger bench rewrap`: a patient with N record versions in a hospital's custody rotates her keys;
/// the hospital's node re-wraps every version's content key from its escrow for her new key (HPKE,
/// one envelope per version in the vault, `records.rewrap` transactions committed). Timed from the
/// rotation's commit to the last re-wrap's; and her own client's share of the work (opening with the
/// old key and wrapping for the new, without the node) on its own.
struct RewrapBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rewrap", abstract: "Re-wrapping a patient's record versions after a key rotation.")
    @Option(help: "Record versions in the patient's history.") var versions: Int = 5000
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let directory = try BenchNode.temporaryChain("rewrap")
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        var config = NodeConfiguration()
        config.blockInterval = .milliseconds(5)
        let hospital = ActingOrganisation(signing: SigningKey(), encryption: EncryptionKey())
        let bench = try await BenchNode.start(directory: directory, configuration: config, organisations: [hospital])
        defer { bench.stop() }
        let base = bench.baseURL
        let operatorKey = try KeyFile.load(directory.nodeKey)
        let patient = SigningKey(), patientEnc = EncryptionKey()
        func tx(_ signer: SigningKey, _ action: String, _ payload: JSONValue, contract: String = "identity") throws -> JSONValue {
            try Transaction(chainID: "bench", signer: signer, contract: contract, action: action, payload: payload).jsonView
        }
        func submit(_ items: [JSONValue]) async throws {
            let answer = try await API.json(.POST, base + "/v1/transactions", body: JSONValue.object(["transactions": .array(items)]).canonicalBytes)
            for r in answer["results"]?.arrayValue ?? [] where r["status"] != .string("committed") {
                throw LedgerError("internal_error", "bench set-up failed: \(r.canonicalString)")
            }
        }
        try await submit([try tx(operatorKey, "register", .object([
            "role": .string("organisation"), "name": .string("Bench Hospital"), "subject": .string(hospital.did),
            "encryptionKey": .string(Base64.encode(hospital.encryption.publicKey)),
        ]))])
        try await submit([try tx(patient, "register", .object(["role": .string("patient"), "encryptionKey": .string(Base64.encode(patientEnc.publicKey))]))])

        // Her history, written by her own client: one version per record, the key wrapped for her and the custodian.
        let vault = try Vault(path: directory.vault)
        let session = KeyWrapSession()
        var batch: [JSONValue] = [], items: [KeyRewrap.Item] = []
        for i in 0..<versions {
            let resource: JSONValue = .object(["resourceType": .string("Observation"), "id": .string("obs-\(i)"), "status": .string("final")])
            let sealed = try SealedVersion(
                resource: resource.canonicalBytes, recordID: "obs-\(i)", version: 1,
                recipients: [patient.publicKey.did: patientEnc.publicKey, hospital.did: hospital.encryption.publicKey], session: session)
            try vault.putMany(sealed.uploads)
            items.append(KeyRewrap.Item(recordID: "obs-\(i)", version: 1, wrapped: sealed.wrappedKeys[patient.publicKey.did]!))
            batch.append(try tx(patient, "put", sealed.putPayload(
                recordID: "obs-\(i)", patient: patient.publicKey.did, resourceType: "Observation", version: 1, custodian: hospital.did), contract: "records"))
            if batch.count == 500 || i == versions - 1 {
                try await submit(batch)
                batch = []
            }
        }

        // Her client's share alone: open each key with the old encryption key, wrap it for the new one.
        let next = SigningKey(), nextEnc = EncryptionKey()
        let t0 = ContinuousClock.now
        let clientBatch = try await KeyRewrap.rewrap(patient: patient.publicKey.did, items: items, with: patientEnc, for: nextEnc.publicKey)
        let clientSeconds = (ContinuousClock.now - t0) / .seconds(1)
        guard clientBatch.uploads.count == versions else { throw LedgerError("internal_error", "re-wrapped \(clientBatch.uploads.count) of \(versions)") }

        // The rotation; the custodian's node re-wraps everything as it commits.
        let encryptionKey = Base64.encode(nextEnc.publicKey)
        let proof = next.signature(for: IdentityContract.rotationMessage(chainID: "bench", did: patient.publicKey.did, signingKey: next.publicKey.did, encryptionKey: encryptionKey))
        try await submit([try tx(patient, "rotate", .object([
            "signingKey": .string(next.publicKey.did), "encryptionKey": .string(encryptionKey), "proof": .string(Base64.encode(proof)),
        ]))])
        let t1 = ContinuousClock.now
        let keysFrom = try bench.node.principal(patient.publicKey.did)?.keysFrom ?? 0
        var pending = Array(0..<versions)
        while !pending.isEmpty {
            pending = try pending.filter { i in
                guard let json = try bench.node.stateJSON(RecordEntry.key("obs-\(i)")) else { return true }
                return try RecordEntry(json: json).versions.contains { $0.needsRewrap(keysFrom: keysFrom) }
            }
            if !pending.isEmpty { try await Task.sleep(for: .milliseconds(2)) }
            guard ContinuousClock.now - t1 < .seconds(300) else { throw LedgerError("internal_error", "the custodian re-wrap did not finish in 5 minutes") }
        }
        let custodianSeconds = (ContinuousClock.now - t1) / .seconds(1)
        bench.stop()
        let result: JSONValue = .object([
            "versions": .int(Int64(versions)),
            "custodianSeconds": .double(custodianSeconds), "custodianVersionsPerSecond": .double(Double(versions) / custodianSeconds),
            "clientSeconds": .double(clientSeconds), "clientVersionsPerSecond": .double(Double(versions) / clientSeconds),
        ])
        output(result, json: json) {
            """
            careledger bench rewrap: a patient with \(versions) record versions rotates her keys
              custodian node (escrow → new key, envelopes in the vault, records.rewrap committed): \(String(format: "%.2f", custodianSeconds)) s, \(Int(Double(versions) / custodianSeconds)) versions/s
              her client's re-wrap alone (old key → new key, in memory): \(String(format: "%.3f", clientSeconds)) s, \(Int(Double(versions) / clientSeconds)) versions/s
            """
        }
    }
}
