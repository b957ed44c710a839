import ArgumentParser
import CLIKit
import AsyncHTTPClient
import ContractKit
import Foundation
import LedgerCore
import NIOCore
import Node
import Server
import Standards
import Store
import Supply
import SupplyContract
import Synchronization

/// `careledger bench supply`: EPCIS events ingested per second (HTTP, validation, CBV 2.0 hashing,
/// blinding, sealing the document, one transaction per document, durable commit), then read-only pack
/// verifications per second and their latency under concurrent load, then verify-and-dispense latency.
struct SupplyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "supply", abstract: "EPCIS events ingested per second (commissioning, then shipping and receiving); pack verifications per second and p99.")
    @Option(help: "EPCIS documents to ingest.") var documents: Int = 40
    @Option(help: "Events per document.") var events: Int = 500
    @Option(help: "Packs per commissioning event.") var packsPerEvent: Int = 1
    @Option(help: "Documents in flight.") var ingestConcurrency: Int = 4
    @Option(help: "Single-scan verifications to time over HTTP.") var verifications: Int = 100_000
    @Option(help: "Connections sending single-scan verifications (each waits for its answer before the next), and bulk requests in flight.")
    var concurrency: Int = 32
    @Option(help: "Scans per bulk verification request (the bulk run verifies as many packs as the single-scan run).") var bulk: Int = 100
    @Option(help: "Dispenses to time.") var dispenses: Int = 200
    @Option(help: "Block interval (ms).") var blockIntervalMs: Int = 5
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard documents >= 1, (1...EPCISDocument.maxEvents).contains(events), packsPerEvent >= 1, ingestConcurrency >= 1, verifications >= 1,
            concurrency >= 1, dispenses >= 0, blockIntervalMs >= 1, (1...1000).contains(bulk)
        else { throw ValidationError("counts must be positive; at most \(EPCISDocument.maxEvents) events per document") }
    }


    func run() async throws {
        let directory = try BenchNode.temporaryChain("supply")
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        var config = NodeConfiguration()
        config.blockInterval = .milliseconds(blockIntervalMs)
        let pharma = SigningKey(), pharmacy = SigningKey()
        let pharmaEnc = EncryptionKey(), pharmacyEnc = EncryptionKey()
        let bench = try await BenchNode.start(
            directory: directory, configuration: config,
            organisations: [ActingOrganisation(signing: pharma, encryption: pharmaEnc), ActingOrganisation(signing: pharmacy, encryption: pharmacyEnc)])
        defer { bench.stop() }
        let base = bench.baseURL
        let operatorKey = try KeyFile.load(directory.nodeKey)

        func submit(_ signer: SigningKey, _ contract: String, _ action: String, _ payload: JSONValue) async throws {
            let tx = try Transaction(chainID: "bench", signer: signer, contract: contract, action: action, payload: payload)
            let answer = try await API.json(.POST, base + "/v1/transactions", body: tx.jsonView.canonicalBytes)
            guard answer["status"] == .string("committed") else { throw LedgerError("internal_error", "bench set-up failed: \(answer.canonicalString)") }
        }
        for (key, enc, name) in [(pharma, pharmaEnc, "Bench Pharma"), (pharmacy, pharmacyEnc, "Bench Pharmacy")] {
            try await submit(operatorKey, "identity", "register", .object([
                "role": .string("organisation"), "encryptionKey": .string(Base64.encode(enc.publicKey)), "subject": .string(key.publicKey.did), "name": .string(name),
            ]))
        }
        try await submit(operatorKey, "supply", "party", .object([
            "party": .string(pharma.publicKey.did), "roles": .array([.string("manufacturer"), .string("mah")]), "companyPrefixes": .array([.string("950600")]),
        ]))
        try await submit(operatorKey, "supply", "party", .object([
            "party": .string(pharmacy.publicKey.did), "roles": .array([.string("pharmacy")]), "glns": .array([.string("9506000000022")]),
        ]))
        let gtin = "09506000100012"
        try await submit(pharma, "supply", "product", .object(["gtin": .string(gtin), "name": .string("Bench product")]))

        // EPCIS documents, built before the clock starts.
        let runID = UInt64.random(in: 10_000..<100_000)
        let docs: [[UInt8]] = (0..<documents).map { d in
            var list: [JSONValue] = []
            for e in 0..<events {
                let serials = (0..<packsPerEvent).map { p in JSONValue.string("urn:epc:id:sgtin:950600.0010001.B\(runID)D\(d)E\(e)P\(p)") }
                list.append(.object([
                    "type": .string("ObjectEvent"), "action": .string("ADD"), "bizStep": .string("commissioning"), "disposition": .string("active"),
                    "eventTime": .string("2026-11-25T09:00:00.000+01:00"), "eventTimeZoneOffset": .string("+01:00"), "epcList": .array(serials),
                    "readPoint": .object(["id": .string("urn:epc:id:sgln:950600.000000.0")]),
                    "ilmd": .object(["cbvmda:lotNumber": .string("L\(d % 10)"), "cbvmda:itemExpirationDate": .string("2030-12-31")]),
                ]))
            }
            return JSONValue.object([
                "@context": .array([.string("https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld")]), "type": .string("EPCISDocument"),
                "schemaVersion": .string("2.0"), "creationDate": .string("2026-11-25T10:00:00Z"), "epcisBody": .object(["eventList": .array(list)]),
            ]).canonicalBytes
        }
        let pharmaToken = try await Self.token(base: base, key: pharma)
        let ingestCPU = processCPUSeconds()
        let load = try await BenchLoad.workers(count: docs.count, workers: ingestConcurrency) { i in
            let (status, body) = try await BenchLoad.post(base + "/v1/supply/epcis", docs[i], token: pharmaToken)
            guard status == 201 else { throw LedgerError("internal_error", "ingest answered \(status): \(String(decoding: body.prefix(300), as: UTF8.self))") }
            return 1
        }
        let ingestSeconds = load.seconds
        // CPU per event (the node and the load generator): steadier than the rate on a shared machine.
        let ingestMicrosPerEvent = cpuMicros(processCPUSeconds() - ingestCPU, per: documents * events)
        let ingestLatencies = load.latencies
        let eventsPerSecond = Double(documents * events) / ingestSeconds

        // Custody: every pack shipped to the pharmacy, which receives it (verifications then come from
        // the holder), one event per pack, in documents of `events` events: all the shipping
        // documents, then all the receiving ones, `ingestConcurrency` in flight.
        let pharmacyToken = try await Self.token(base: base, key: pharmacy)
        func custodyDocument(_ d: Int, _ step: String) -> [UInt8] {
            let list: [JSONValue] = (0..<events).map { e in
                var event: [String: JSONValue] = [
                    "type": .string("ObjectEvent"), "action": .string("OBSERVE"), "bizStep": .string(step), "eventTime": .string("2026-11-25T11:00:00.000Z"),
                    "eventTimeZoneOffset": .string("+00:00"),
                    "epcList": .array((0..<packsPerEvent).map { p in JSONValue.string("urn:epc:id:sgtin:950600.0010001.B\(runID)D\(d)E\(e)P\(p)") }),
                ]
                if step == "shipping" {
                    event["destinationList"] = .array([.object(["type": .string("owning_party"), "destination": .string("urn:epc:id:pgln:950600.000002")])])
                }
                return .object(event)
            }
            return JSONValue.object([
                "type": .string("EPCISDocument"), "schemaVersion": .string("2.0"), "creationDate": .string("2026-11-25T11:00:00Z"),
                "epcisBody": .object(["eventList": .array(list)]),
            ]).canonicalBytes
        }
        let shipDocs = (0..<documents).map { custodyDocument($0, "shipping") }, receiveDocs = (0..<documents).map { custodyDocument($0, "receiving") }
        let custodyCPU = processCPUSeconds()
        let custodyStart = ContinuousClock.now
        for (docs, token) in [(shipDocs, pharmaToken), (receiveDocs, pharmacyToken)] {
            _ = try await BenchLoad.workers(count: docs.count, workers: ingestConcurrency) { i in
                let (status, body) = try await BenchLoad.post(base + "/v1/supply/epcis", docs[i], token: token)
                guard status == 201, (try? JSONValue.parse(body))?["applied"] == .int(Int64(events)) else {
                    throw LedgerError("internal_error", "custody document answered \(status): \(String(decoding: body.prefix(300), as: UTF8.self))")
                }
                return 1
            }
        }
        let custodySeconds = (ContinuousClock.now - custodyStart) / .seconds(1)
        let custodyMicrosPerEvent = cpuMicros(processCPUSeconds() - custodyCPU, per: 2 * documents * events)
        let custodyEventsPerSecond = Double(2 * documents * events) / custodySeconds

        // Read-only verification over HTTP, single scans, `concurrency` connections of a lean load
        // generator (one thread, like `wrk -t1`): a general HTTP client in this process would take
        // more of the two cores than the node's route.
        let scans: [[UInt8]] = (0..<min(documents * events * packsPerEvent, 10_000)).map { i in
            let d = i % documents, e = (i / documents) % events
            let scan = "01\(gtin)17301231" + "10L\(d % 10)\u{1D}21B\(runID)D\(d)E\(e)P0"
            return JSONValue.object(["scan": .string(scan)]).canonicalBytes
        }
        let count = verifications
        let authority = String(base.dropFirst("http://".count))
        guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]) else {
            throw LedgerError("internal_error", "bench node at \(base)")
        }
        let requests = scans.map { body in
            Array(
                "POST /v1/supply/verify HTTP/1.1\r\nHost: \(authority)\r\nContent-Type: application/json\r\nAuthorization: Bearer \(pharmacyToken)\r\nContent-Length: \(body.count)\r\n\r\n"
                    .utf8) + body
        }
        let verify = try await BenchLoad.lean(
            host: String(authority[..<colon]), port: port, requests: requests, expect: Array(#""outcome":"verified""#.utf8), connections: concurrency,
            count: count)
        let verifySeconds = verify.seconds
        let verifyLatencies = verify.latencies

        // Bulk verification over HTTP: `bulk` scans per request.
        let bulkBodies: [[UInt8]] = stride(from: 0, to: scans.count, by: bulk).map { start in
            let items = scans[start..<min(scans.count, start + bulk)].map { try! JSONValue.parse($0)["scan"]! }
            return JSONValue.object(["scans": .array(items)]).canonicalBytes
        }
        let bulkRequests = (count + bulk - 1) / bulk
        let bulkState = try await BenchLoad.workers(count: bulkRequests, workers: concurrency) { i in
            let (status, body) = try await BenchLoad.post(base + "/v1/supply/verify", bulkBodies[i % bulkBodies.count], token: pharmacyToken)
            let results = (try? JSONValue.parse(body))?["results"]?.arrayValue ?? []
            let verified = results.filter { $0["outcome"] == .string("verified") }.count
            return status == 200 && verified == results.count && !results.isEmpty ? verified : nil
        }
        let bulkSeconds = bulkState.seconds
        let bulkVerified = bulkState.done
        let bulkLatencies = bulkState.latencies

        // The verification engine alone (no HTTP), all cores.
        let supply = try SupplyService(node: bench.node, vault: try Vault(path: directory.vault), secret: bench.node.secret)
        let parsedScans = try scans.map { try GS1ElementString.parse(JSONValue.parse($0)["scan"]!.stringValue!, today: GS1Date(year: 2026, month: 11, day: 25)) }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let engineStart = ContinuousClock.now
        let engineCount = 200_000
        let engineOK = await withTaskGroup(of: Int.self) { group in
            for c in 0..<cores {
                group.addTask {
                    var ok = 0
                    for i in stride(from: c, to: engineCount, by: cores) where (try? supply.verify(parsedScans[i % parsedScans.count], verifier: pharmacy.publicKey.did))?.outcome == .verified { ok += 1 }
                    return ok
                }
            }
            return await group.reduce(0, +)
        }
        let engineSeconds = (ContinuousClock.now - engineStart) / .seconds(1)

        // Verify and dispense: bounded by the block commit.
        var dispenseLatencies: [Double] = []
        for i in 0..<dispenses {
            let d = i % documents, e = i / documents
            let scan = "01\(gtin)17301231" + "10L\(d % 10)\u{1D}21B\(runID)D\(d)E\(e)P0"
            let t0 = ContinuousClock.now
            let (status, body) = try await BenchLoad.post(
                base + "/v1/supply/verify", JSONValue.object(["scan": .string(scan), "dispense": .bool(true)]).canonicalBytes, token: pharmacyToken)
            guard status == 200, (try? JSONValue.parse(body))?["dispensed"] == .bool(true) else {
                throw LedgerError("internal_error", "dispense answered \(status): \(String(decoding: body.prefix(300), as: UTF8.self))")
            }
            dispenseLatencies.append((ContinuousClock.now - t0) / .milliseconds(1))
        }
        dispenseLatencies.sort()
        bench.stop()
        let failures = count - verify.done
        let p = percentile
        let result: JSONValue = .object([
            "documents": .int(Int64(documents)), "eventsPerDocument": .int(Int64(events)), "packsPerEvent": .int(Int64(packsPerEvent)),
            "eventsPerSecond": .double(eventsPerSecond.rounded()), "ingestSeconds": .double(ingestSeconds), "ingestCPUMicrosPerEvent": .double(ingestMicrosPerEvent),
            "documentP50Millis": .double(p(ingestLatencies, 0.5)), "documentP99Millis": .double(p(ingestLatencies, 0.99)),
            "custodyEventsPerSecond": .double(custodyEventsPerSecond.rounded()), "custodyCPUMicrosPerEvent": .double(custodyMicrosPerEvent),
            "verifications": .int(Int64(count)), "verificationFailures": .int(Int64(failures)), "concurrency": .int(Int64(concurrency)),
            "verificationsPerSecond": .double((Double(count) / verifySeconds).rounded()), "verifyP50Millis": .double(p(verifyLatencies, 0.5)),
            "verifyP99Millis": .double(p(verifyLatencies, 0.99)), "engineVerificationsPerSecond": .double((Double(engineCount) / engineSeconds).rounded()),
            "engineVerified": .int(Int64(engineOK)), "bulk": .int(Int64(bulk)),
            "bulkVerificationsPerSecond": .double((Double(bulkVerified) / bulkSeconds).rounded()), "bulkRequestP50Millis": .double(p(bulkLatencies, 0.5)),
            "bulkRequestP99Millis": .double(p(bulkLatencies, 0.99)), "dispenseP50Millis": .double(p(dispenseLatencies, 0.5)),
            "dispenseP99Millis": .double(p(dispenseLatencies, 0.99)), "blockIntervalMs": .int(Int64(blockIntervalMs)), "cores": .int(Int64(cores)),
        ])
        output(result, json: json) {
            """
            careledger bench supply (\(cores) cores, load generator in the same process)
              EPCIS ingestion:  \(String(format: "%.0f", eventsPerSecond)) events/s (\(documents) documents × \(events) events × \(packsPerEvent) packs, \(ingestConcurrency) in flight; per document p50 \(String(format: "%.0f", p(ingestLatencies, 0.5))) ms, p99 \(String(format: "%.0f", p(ingestLatencies, 0.99))) ms; CPU \(ingestMicrosPerEvent) µs per event)
              shipping+receiving: \(String(format: "%.0f", custodyEventsPerSecond)) events/s (\(2 * documents) documents × \(events) events × \(packsPerEvent) packs; CPU \(custodyMicrosPerEvent) µs per event)
              verify over HTTP: \(String(format: "%.0f", Double(count) / verifySeconds)) verifications/s, p50 \(String(format: "%.2f", p(verifyLatencies, 0.5))) ms, p99 \(String(format: "%.2f", p(verifyLatencies, 0.99))) ms (\(concurrency) in flight, \(failures) not verified)
              bulk verify:      \(String(format: "%.0f", Double(bulkVerified) / bulkSeconds)) verifications/s in requests of \(bulk) scans, per request p50 \(String(format: "%.1f", p(bulkLatencies, 0.5))) ms, p99 \(String(format: "%.1f", p(bulkLatencies, 0.99))) ms
              verify engine:    \(String(format: "%.0f", Double(engineCount) / engineSeconds)) verifications/s (no HTTP, all cores)
              verify+dispense:  p50 \(String(format: "%.1f", p(dispenseLatencies, 0.5))) ms, p99 \(String(format: "%.1f", p(dispenseLatencies, 0.99))) ms (block interval \(blockIntervalMs) ms)
            """
        }
        if failures > 0 || engineOK != engineCount || bulkState.failed > 0 { throw LedgerError("internal_error", "some verifications did not verify") }
    }

    static func token(base: String, key: SigningKey) async throws -> String {
        let chain = try await API.json(.GET, base + "/healthz")["chainId"]?.stringValue ?? ""
        let challenge = try await API.json(.POST, base + "/v1/auth/challenge")["challenge"]?.stringValue ?? ""
        let signature = key.signature(for: AuthService.message(chainID: chain, challenge: challenge))
        let body: JSONValue = .object(["did": .string(key.publicKey.did), "challenge": .string(challenge), "signature": .string(Base64.encode(signature))])
        guard let token = try await API.json(.POST, base + "/v1/auth/token", body: body.canonicalBytes)["token"]?.stringValue else {
            throw LedgerError("unauthenticated", "no token")
        }
        return token
    }
}
