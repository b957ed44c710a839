import ArgumentParser
import CLIKit
import Claims
import ClaimsContract
import ContractKit
import Foundation
import LedgerCore
import Node
import Standards
import Store

/// `careledger bench claims`: a node acting for a hospital and an insurer. Set-up (not timed): the
/// insurer's policy with every patient a member, each patient's consent for payment, and each claim
/// sealed in the hospital's vault as the patient's record. Timed: the hospital submits every claim
/// (`claims.submit`, its evidence — the sealed record and the consent — looked up by the contract)
/// and the insurer's node reads each sealed claim, adjudicates it and commits `claims.adjudicate`
/// (checked by the contract against the policy and the accumulators), every block durably committed.
/// Throughput: claims from the first submission to the last adjudication's commit; latency: each
/// claim's submission block to its adjudication block (block times).
struct ClaimsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "claims", abstract: "Claims submitted, adjudicated by the insurer's node and committed.")
    @Option(help: "Claims.") var claims: Int = 10_000
    @Option(help: "Patients (members of the plan).") var patients: Int = 1000
    @Option(help: "Block interval in milliseconds.") var blockInterval: Int = 20
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let directory = try BenchNode.temporaryChain("claims")
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        var config = NodeConfiguration()
        config.blockInterval = .milliseconds(blockInterval)
        let hospital = ActingOrganisation(signing: SigningKey(), encryption: EncryptionKey())
        let insurer = ActingOrganisation(signing: SigningKey(), encryption: EncryptionKey())
        let bench = try await BenchNode.start(directory: directory, configuration: config, organisations: [hospital, insurer])
        defer { bench.stop() }
        let base = bench.baseURL
        let operatorKey = try KeyFile.load(directory.nodeKey)
        func tx(_ signer: SigningKey, _ contract: String, _ action: String, _ payload: JSONValue) throws -> JSONValue {
            try Transaction(chainID: "bench", signer: signer, contract: contract, action: action, payload: payload).jsonView
        }
        func submit(_ items: [JSONValue]) async throws {
            for start in stride(from: 0, to: items.count, by: 500) {
                let slice = Array(items[start..<min(items.count, start + 500)])
                let answer = try await API.json(.POST, base + "/v1/transactions", body: JSONValue.object(["transactions": .array(slice)]).canonicalBytes)
                for r in answer["results"]?.arrayValue ?? [] where r["status"] != .string("committed") {
                    throw LedgerError("internal_error", "bench step failed: \(r.canonicalString)")
                }
            }
        }
        // Set-up: the organisations, the patients with their consent for payment, the policy.
        try await submit([hospital, insurer].enumerated().map { i, o in
            try tx(operatorKey, "identity", "register", .object([
                "role": .string("organisation"), "name": .string(i == 0 ? "Bench Hospital" : "Bench Insurer"), "subject": .string(o.did),
                "encryptionKey": .string(Base64.encode(o.encryption.publicKey)),
            ]))
        })
        let members = (0..<patients).map { _ in (SigningKey(), EncryptionKey()) }
        try await submit(try members.map { key, enc in
            try tx(key, "identity", "register", .object(["role": .string("patient"), "encryptionKey": .string(Base64.encode(enc.publicKey))]))
        })
        try await submit(try members.flatMap { key, _ in
            [
                try tx(key, "consent", "grant", .object([
                    "grantee": .string(hospital.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
                ])),
                try tx(key, "consent", "grant", .object([
                    "grantee": .string(insurer.did), "purposes": .array([.string("payment")]), "categories": .array([.string("financial")]),
                ])),
            ]
        })
        let cpt = "http://www.ama-assn.org/go/cpt"
        let codes = ["99212", "99213", "99214", "93000", "80053", "85025"]
        let policy: JSONValue = .object([
            "plan": .string("bench-2027"), "currency": .string("EUR"), "year": .object(["start": .string("2027-01-01"), "end": .string("2027-12-31")]),
            "deductible": .int(20000), "outOfPocketMax": .int(300000), "coinsuranceBp": .int(2000), "timelyFilingDays": .int(365),
            "services": .array(codes.enumerated().map { i, code in
                .object(["system": .string(cpt), "code": .string(code), "allowed": .int(Int64(4000 + 2000 * i)), "copay": .int(i % 2 == 0 ? 1500 : 0)])
            }),
            "members": .array(members.map { key, _ in
                .object(["patient": .string(key.publicKey.did), "from": .string("2027-01-01"), "to": .string("2027-12-31")])
            }),
        ])
        try await submit([try tx(insurer.signing, "claims", "publish-policy", .object(["policy": policy]))])

        // The claims, sealed in the hospital's vault as each patient's record (two lines each).
        let vault = try Vault(path: directory.vault)
        let session = KeyWrapSession()
        var puts: [JSONValue] = [], submissions: [JSONValue] = []
        for i in 0..<claims {
            let (patient, patientEnc) = members[i % patients]
            let day = 1 + (i / patients) % 28, month = 1 + (i / (patients * 28)) % 12
            let date = String(format: "2027-%02d-%02d", month, day)
            let items: [JSONValue] = (0..<2).map { n in
                .object([
                    "sequence": .int(Int64(n + 1)), "productOrService": .object(["coding": .array([.object(["system": .string(cpt), "code": .string(codes[(i + n * 3) % codes.count])])])]),
                    "servicedDate": .string(date), "net": .object(["value": .int(Int64(50 + (i * 7 + n * 13) % 150)), "currency": .string("EUR")]),
                ])
            }
            let id = "bench-claim-\(i)"
            let resource: JSONValue = .object([
                "resourceType": .string("Claim"), "id": .string(id), "status": .string("active"), "use": .string("claim"),
                "patient": .object(["identifier": .object(["value": .string(patient.publicKey.did)])]), "created": .string(date),
                "provider": .object(["identifier": .object(["value": .string(hospital.did)])]), "item": .array(items),
            ])
            let sealed = try SealedVersion(
                resource: resource.canonicalBytes, recordID: id, version: 1,
                recipients: [patient.publicKey.did: patientEnc.publicKey, hospital.did: hospital.encryption.publicKey, insurer.did: insurer.encryption.publicKey],
                session: session)
            try vault.putMany(sealed.uploads)
            puts.append(try tx(hospital.signing, "records", "put", sealed.putPayload(
                recordID: id, patient: patient.publicKey.did, resourceType: "Claim", version: 1, custodian: hospital.did)))
            submissions.append(try tx(hospital.signing, "claims", "submit", .object([
                "claim": .string(id), "record": .string(id), "patient": .string(patient.publicKey.did), "insurer": .string(insurer.did), "plan": .string("bench-2027"),
                "lines": .array(items.map { item in
                    .object(["sequence": item["sequence"]!, "date": .string(date), "submitted": .int((item["net"]?["value"]?.intValue ?? 0) * 100)])
                }),
            ])))
        }
        try await submit(puts)

        // Timed: every claim submitted, adjudicated by the insurer's node, committed.
        let t0 = ContinuousClock.now
        try await submit(submissions)
        var waiting = Set(0..<claims)
        while !waiting.isEmpty {
            waiting = try waiting.filter { i in
                let claim = try bench.node.stateJSON(ClaimState.key("bench-claim-\(i)"))
                if claim?["status"] == .string("pended") { throw LedgerError("internal_error", "claim \(i) was pended: \(claim?["pended"]?.canonicalString ?? "")") }
                return claim?["status"] != .string("adjudicated")
            }
            if !waiting.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
            guard ContinuousClock.now - t0 < .seconds(600) else { throw LedgerError("internal_error", "\(waiting.count) claims not adjudicated in 10 minutes") }
        }
        let seconds = (ContinuousClock.now - t0) / .seconds(1)
        var latencies: [Int64] = []
        var benefit: Int64 = 0
        for i in 0..<claims {
            let claim = try bench.node.stateJSON(ClaimState.key("bench-claim-\(i)"))!
            latencies.append((claim["adjudication"]?["time"]?.intValue ?? 0) - (claim["time"]?.intValue ?? 0))
            benefit += claim["adjudication"]?["benefit"]?.intValue ?? 0
        }
        latencies.sort()
        func percentile(_ p: Double) -> Int64 { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        bench.stop()
        let result: JSONValue = .object([
            "claims": .int(Int64(claims)), "patients": .int(Int64(patients)), "seconds": .double(seconds), "claimsPerSecond": .double(Double(claims) / seconds),
            "latencyMillis": .object(["p50": .int(percentile(0.5)), "p99": .int(percentile(0.99)), "max": .int(latencies.last ?? 0)]),
            "blockIntervalMillis": .int(Int64(blockInterval)), "benefitMinorUnits": .int(benefit),
        ])
        output(result, json: json) {
            """
            careledger bench claims: \(claims) claims (2 lines each) of \(patients) patients, submitted by the hospital, adjudicated by the insurer's node
              \(String(format: "%.2f", seconds)) s, \(Int(Double(claims) / seconds)) claims/s (submission, evidence checks, the sealed claim read and adjudicated, both commits)
              submission to adjudication (block times): p50 \(percentile(0.5)) ms, p99 \(percentile(0.99)) ms, max \(latencies.last ?? 0) ms (block interval \(blockInterval) ms)
            """
        }
    }
}
