import ArgumentParser
import CLIKit
import AsyncHTTPClient
import ContractKit
import Foundation
import LedgerCore
import Logging
import NIOCore
import Node
import Prometheus
import RecordsContract
import Server
import Standards
import Store
import Synchronization

/// `careledger bench records`: a clinician reads a patient timeline of N encrypted resources
/// (authentication, consent check, access event committed, ciphertexts and wrapped keys over
/// HTTP, decryption on the reader's side), and consent grants and revocations take effect.
struct RecordsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "records", abstract: "Timeline read latency and consent-to-effect time.")
    @Option(help: "Resources in the patient's timeline.") var resources: Int = 1000
    @Option(help: "Timeline reads to time.") var reads: Int = 100
    @Option(help: "Block interval (ms).") var blockIntervalMs: Int = 5
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let directory = try BenchNode.temporaryChain("records")
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        var config = NodeConfiguration()
        config.blockInterval = .milliseconds(blockIntervalMs)
        let bench = try await BenchNode.start(directory: directory, configuration: config)
        defer { bench.stop() }
        let base = bench.baseURL

        // Principals: the operator admits a hospital, which registers a doctor; a patient registers herself.
        let operatorKey = try KeyFile.load(directory.nodeKey)
        let hospital = SigningKey(), doctor = SigningKey(), patient = SigningKey()
        let hospitalEnc = EncryptionKey(), doctorEnc = EncryptionKey(), patientEnc = EncryptionKey()
        func tx(_ signer: SigningKey, _ contract: String, _ action: String, _ payload: JSONValue) throws -> JSONValue {
            try Transaction(chainID: "bench", signer: signer, contract: contract, action: action, payload: payload).jsonView
        }
        func submit(_ items: [JSONValue]) async throws {
            let answer = try await API.json(.POST, base + "/v1/transactions", body: JSONValue.object(["transactions": .array(items)]).canonicalBytes)
            for r in answer["results"]?.arrayValue ?? [] where r["status"] != .string("committed") {
                throw LedgerError("internal_error", "bench set-up failed: \(r.canonicalString)")
            }
        }
        func reg(_ author: SigningKey, _ subject: SigningKey, _ enc: EncryptionKey, _ role: String) throws -> JSONValue {
            var p: [String: JSONValue] = ["role": .string(role), "encryptionKey": .string(Base64.encode(enc.publicKey))]
            if author.publicKey != subject.publicKey { p["subject"] = .string(subject.publicKey.did) }
            if role == "organisation" { p["name"] = .string("Bench Hospital") }
            return try tx(author, "identity", "register", .object(p))
        }
        try await submit([try reg(operatorKey, hospital, hospitalEnc, "organisation")])
        try await submit([try reg(hospital, doctor, doctorEnc, "practitioner"), try reg(patient, patient, patientEnc, "patient")])
        try await submit([try tx(patient, "consent", "grant", .object([
            "grantee": .string(doctor.publicKey.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
        ]))])

        // The doctor writes the timeline: sealed on her side, blobs in the vault, puts in batches.
        var doctorSession = try await Session(node: base, signing: doctor, encryption: doctorEnc)
        let vault = try Vault(path: directory.vault)
        let session = KeyWrapSession()
        var batch: [JSONValue] = []
        for i in 0..<resources {
            let resource: JSONValue = .object([
                "resourceType": .string("Observation"), "id": .string("obs-\(i)"), "status": .string("final"),
                "code": .object(["text": .string("Heart rate")]), "valueQuantity": .object(["value": .int(Int64(60 + i % 40)), "unit": .string("/min")]),
            ])
            let sealed = try SealedVersion(
                resource: resource.canonicalBytes, recordID: "obs-\(i)", version: 1,
                recipients: [
                    patient.publicKey.did: patientEnc.publicKey, doctor.publicKey.did: doctorEnc.publicKey, hospital.publicKey.did: hospitalEnc.publicKey,
                ], session: session)
            for (hash, blob) in sealed.uploads { try vault.put(saltedHash: hash, blob: blob) }
            batch.append(try tx(doctor, "records", "put", sealed.putPayload(
                recordID: "obs-\(i)", patient: patient.publicKey.did, resourceType: "Observation", version: 1, custodian: hospital.publicKey.did)))
            if batch.count == 500 {
                try await submit(batch)
                batch = []
            }
        }
        if !batch.isEmpty { try await submit(batch) }

        // Timeline reads: request, consent check, access event commit, transfer, and decryption of every resource.
        var latencies: [Double] = []
        var serverLatencies: [Double] = []
        for _ in 0..<reads {
            let t0 = ContinuousClock.now
            let answer = try await doctorSession.get("/v1/patients/\(patient.publicKey.did)/records")
            serverLatencies.append((ContinuousClock.now - t0) / .milliseconds(1))
            // Decrypted on every core, with fresh unwrappers per read: a cold read.
            let opened = try await SealedVersion.openAll(reads: answer["records"]?.arrayValue ?? [], with: doctorEnc).count
            guard opened == resources else { throw LedgerError("internal_error", "read \(opened) of \(resources) resources") }
            latencies.append((ContinuousClock.now - t0) / .milliseconds(1))
        }
        // Consent to effect: a grant or revocation is in force when its submission returns (committed).
        var consentLatencies: [Double] = []
        let other = SigningKey()
        try await submit([try reg(hospital, other, EncryptionKey(), "practitioner")])
        for _ in 0..<20 {
            let t0 = ContinuousClock.now
            let grant = try await API.json(.POST, base + "/v1/transactions", body: try tx(patient, "consent", "grant", .object([
                "grantee": .string(other.publicKey.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
            ])).canonicalBytes)
            consentLatencies.append((ContinuousClock.now - t0) / .milliseconds(1))
            let id = grant["result"]?["id"]?.stringValue ?? ""
            let t1 = ContinuousClock.now
            _ = try await API.json(.POST, base + "/v1/transactions", body: try tx(patient, "consent", "revoke", .object(["grant": .string(id)])).canonicalBytes)
            consentLatencies.append((ContinuousClock.now - t1) / .milliseconds(1))
        }
        bench.stop()
        // The first read is cold: the node has not parsed the record entries nor cached the vault blobs.
        let coldRead = latencies.first ?? 0
        latencies.sort()
        serverLatencies.sort()
        consentLatencies.sort()
        let pct = percentile
        let result: JSONValue = .object([
            "resources": .int(Int64(resources)), "reads": .int(Int64(reads)), "blockIntervalMs": .int(Int64(blockIntervalMs)),
            "timelineColdMillis": .double(coldRead), "timelineP50Millis": .double(pct(latencies, 0.5)), "timelineP99Millis": .double(pct(latencies, 0.99)),
            "answerP50Millis": .double(pct(serverLatencies, 0.5)), "answerP99Millis": .double(pct(serverLatencies, 0.99)),
            "consentP50Millis": .double(pct(consentLatencies, 0.5)), "consentP99Millis": .double(pct(consentLatencies, 0.99)),
        ])
        output(result, json: json) {
            """
            careledger bench records: timeline of \(resources) encrypted resources, \(reads) reads, block interval \(blockIntervalMs) ms
              timeline read (auth, consent, access event commit, transfer, decrypt all): p50 \(String(format: "%.1f", pct(latencies, 0.5))) ms, p99 \(String(format: "%.1f", pct(latencies, 0.99))) ms
              first (cold) read: \(String(format: "%.1f", coldRead)) ms (record entries not yet parsed, vault blobs not yet cached)
              of which the node's answer received and parsed: p50 \(String(format: "%.1f", pct(serverLatencies, 0.5))) ms, p99 \(String(format: "%.1f", pct(serverLatencies, 0.99))) ms
              consent grant/revoke to effect (committed): p50 \(String(format: "%.1f", pct(consentLatencies, 0.5))) ms, p99 \(String(format: "%.1f", pct(consentLatencies, 0.99))) ms
            """
        }
    }
}
