import ClaimsContract
import ContractKit
import Crypto
import Foundation
import Hummingbird
import LedgerCore
import Node
import Server
import ServiceLifecycle
import Synchronization
import App

/// What the claims capability needs of the records capability, supplied by the composition: the sealed
/// FHIR Claim, read as the insurer for payment.
public protocol ClaimRecords: Sendable {
    /// The current version of the Claim record `id`, read (consent-checked, audited) and opened as `reader`.
    func read(claim id: String, as reader: ActingOrganisation, host: LedgerAPI) async throws -> JSONValue
}

/// Insurance claims on a node: who may read a claim's state and transactions, who hears its news,
/// `GET /v1/claims/{id}`, and the payer service that adjudicates the claims of the insurers this node
/// acts for as they arrive (and again after an appeal).
public struct ClaimsCapability: NodeCapability {
    let records: any ClaimRecords

    public init(records: any ClaimRecords) { self.records = records }

    public var appContribution: AppContribution {
        let module = "/app/claims/claims.js"
        return AppContribution(
            pages: [
                AppPage(id: "claims", title: "Claims", roles: ["organisation"], module: module,
                        summary: "an insurer's work queue (pended, adjudicated, paid) and a provider's claims with their status"),
                AppPage(id: "my-claims", title: "My claims", roles: ["patient"], module: module,
                        summary: "what your insurer paid on each claim, and why, in plain words"),
            ], files: Self.webFiles)
    }

    static let webFiles = AppContribution.files(in: .module, prefix: "claims")

    public var openAPIRoutes: [OpenAPIRoute] {
        [
            OpenAPIRoute(method: "get", path: "/v1/claims",
                         summary: "The claims the caller is patient, provider or insurer of, newest first (at most 200), each with its plan's currency; status filters",
                         parameters: [("status", "query", false, "queued, pended, adjudicated, paid or appealed")], responseType: "application/json", hasBody: false,
                         schemas: ["status": OpenAPIDocument.oneOf(["queued", "pended", "adjudicated", "paid", "appealed"])]),
            OpenAPIRoute(method: "get", path: "/v1/claims/{id}",
                         summary: "A claim on the ledger: parties, lines (date of service, submitted), status and history, the adjudication (amounts, CARC reasons, policy version per line, payment instruction), payments (its patient, provider and insurer)",
                         parameters: [("id", "path", true, "claim id")], responseType: "application/json", hasBody: false),
        ]
    }

    public func addRoutes(to router: Router<LedgerRequestContext>, api: LedgerAPI) {
        router.get("/v1/claims") { request, _ in
            await api.handle {
                let did = try api.auth.authenticate(request)
                let status = request.uri.queryParameters.get("status").map { String($0) }
                if let status, !Self.statuses.contains(status) {
                    throw LedgerError("bad_parameter", "status is one of \(Self.statuses.sorted().joined(separator: ", "))")
                }
                var found: [JSONValue] = []
                for key in try api.node.store.stateKeys(prefix: "claims/claim/", limit: 1_000_000) {
                    guard let claim = try api.node.stateJSON(key), [claim["patient"], claim["provider"], claim["insurer"]].contains(.string(did)),
                        status == nil || claim["status"]?.stringValue == status
                    else { continue }
                    found.append(try Self.withCurrency(claim, node: api.node))
                }
                found.sort { ($0["time"]?.intValue ?? 0) > ($1["time"]?.intValue ?? 0) }
                return JSONResponse.make(.object(["claims": .array(Array(found.prefix(200)))]))
            }
        }
        router.get("/v1/claims/:id") { request, context in
            await api.handle {
                let did = try api.auth.authenticate(request)
                let id = context.parameters.get("id") ?? ""
                let claim = try api.node.stateJSON(ClaimState.key(id))
                // The same answer for a claim that does not exist and one the caller may not see.
                guard let claim, [claim["patient"], claim["provider"], claim["insurer"]].contains(.string(did)) else {
                    throw LedgerError("forbidden", "claim \(id) is served to its patient, provider and insurer")
                }
                return JSONResponse.make(try Self.withCurrency(claim, node: api.node))
            }
        }
    }

    static let statuses: Set<String> = ["queued", "pended", "adjudicated", "paid", "appealed"]

    /// A claim with its plan's currency and the currency's minor unit (to show its amounts).
    static func withCurrency(_ claim: JSONValue, node: LedgerNode) throws -> JSONValue {
        guard var o = claim.objectValue, let insurer = claim["insurer"]?.stringValue, let plan = claim["plan"]?.stringValue,
            let currency = try node.stateJSON(ClaimsContract.planKey(insurer: insurer, plan: plan))?["currency"]?.stringValue
        else { return claim }
        o["currency"] = .string(currency)
        o["minorDigits"] = .int(Int64(ClaimsPolicy.currencies[currency] ?? 2))
        return .object(o)
    }

    public func services(api: LedgerAPI) -> [any Service] {
        api.organisations.isEmpty ? [] : [PayerService(payer: Payer(host: api, records: records))]
    }

    /// A claim's state names its parties; an accumulator its patient and insurer; a duplicate key its insurer.
    public func audience(ofStateKey key: String, value: JSONValue?, node: LedgerNode) throws -> Audience? {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 3, parts[0] == "claims" else { return nil }
        switch parts[1] {
        case "claim":
            let parties = [value?["provider"], value?["insurer"]].compactMap { $0?.stringValue }
            return Audience(patients: Set([value?["patient"]?.stringValue].compactMap { $0 }), parties: Set(parties))
        case "accumulator" where parts.count == 5:
            return Audience(patients: [parts[4]], parties: [parts[2]])
        default:
            return nil
        }
    }

    /// A lifecycle transaction concerns the claim's patient, provider and insurer.
    public func audience(ofTransaction tx: Transaction, node: LedgerNode) throws -> Audience? {
        guard tx.contract == "claims", let id = tx.payload["claim"]?.stringValue else { return nil }
        let claim = try node.stateJSON(ClaimState.key(id))
        let patient = (claim?["patient"] ?? tx.payload["patient"])?.stringValue
        let parties = [claim?["provider"], claim?["insurer"], tx.payload["insurer"]].compactMap { $0?.stringValue }
        return Audience(patients: Set([patient].compactMap { $0 }), parties: Set(parties))
    }

    /// A claim's news goes to its provider and insurer (and, as every patient's event, to her).
    public func concerns(_ event: JSONValue, did: String, node: LedgerNode) -> Bool {
        guard event["type"]?.stringValue?.hasPrefix("claims.") == true else { return false }
        return event["provider"]?.stringValue == did || event["insurer"]?.stringValue == did
    }
}

/// Adjudicates the claims of the insurers a node acts for: reads the sealed Claim as the insurer,
/// runs the rule (`Adjudication.run`) with the member's accumulators from the ledger, the policy version
/// in force for each line and the insurer's duplicate keys, and commits `claims.adjudicate` signed with
/// the insurer's key — many claims per batch, each seeing the accumulators and duplicate keys of the
/// ones before it in the batch (the contract executes them in that order). A claim whose record cannot
/// be read or does not match its lines on the ledger is pended, saying why.
public struct Payer: Sendable {
    let host: LedgerAPI
    let records: any ClaimRecords

    public init(host: LedgerAPI, records: any ClaimRecords) {
        self.host = host
        self.records = records
    }

    var node: LedgerNode { host.node }

    /// The claims waiting for an insurer this node acts for (queued, or appealed), oldest first.
    func waiting(among ids: [String]? = nil) throws -> [JSONValue] {
        let keys = try ids.map { $0.map(ClaimState.key) } ?? node.store.stateKeys(prefix: "claims/claim/", limit: 10_000_000)
        return try keys.compactMap { key in
            guard let claim = try node.stateJSON(key), ["queued", "appealed"].contains(claim["status"]?.stringValue ?? ""),
                let insurer = claim["insurer"]?.stringValue, host.organisations[insurer] != nil
            else { return nil }
            return claim
        }.sorted { ($0["height"]?.intValue ?? 0) < ($1["height"]?.intValue ?? 0) }
    }

    /// Adjudicates every claim waiting (`ids`: only these), in batches; answers how many were decided or pended.
    @discardableResult
    public func sweep(_ ids: [String]? = nil) async -> Int {
        guard let claims = try? waiting(among: ids) else { return 0 }
        var decided = 0
        for start in stride(from: 0, to: claims.count, by: Self.batch) {
            decided += await settle(Array(claims[start..<min(claims.count, start + Self.batch)]))
        }
        return decided
    }

    static let batch = 2000

    /// The payer's duplicate key of a line: HMAC-SHA256 of patient, provider, service and day under a key
    /// derived from the insurer's signing key (opaque to everyone else).
    static func duplicateKey(_ claim: ClaimInput, _ line: ClaimLine, insurer: ActingOrganisation) -> String {
        let key = SymmetricKey(data: SHA256.hash(data: Array("careledger claims duplicate key\n".utf8) + insurer.signing.seed))
        let message = [claim.patient, claim.provider, line.system, line.code, line.date.description].joined(separator: "\n")
        return HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: key).map { String(format: "%02x", $0) }.joined()
    }

    struct ReadOutcome: Sendable {
        let index: Int
        let resource: JSONValue?
        let error: String?
    }

    /// What this batch has decided so far that the ledger does not hold yet.
    struct Overlay {
        var accumulators: [String: Adjudication.Accumulator] = [:]
        var seen: [String: String] = [:]
    }

    /// Decides a batch of claims and commits the transactions together; answers how many committed.
    func settle(_ claims: [JSONValue]) async -> Int {
        // The sealed claims are read all at once (each read is audited: their access events commit
        // together), then decided one after the other. (A child result of `(Int, Result<JSONValue, any
        // Error>)` came back with corrupted indices in release builds; a struct does not.)
        let jobs = claims.enumerated().compactMap { i, claim -> (Int, String, ActingOrganisation)? in
            guard let record = claim["record"]?.stringValue, let insurer = claim["insurer"]?.stringValue.flatMap({ host.organisations[$0] }) else { return nil }
            return (i, record, insurer)
        }
        let outcomes = await withTaskGroup(of: ReadOutcome.self) { group -> [ReadOutcome] in
            for (i, record, insurer) in jobs {
                group.addTask {
                    do { return ReadOutcome(index: i, resource: try await records.read(claim: record, as: insurer, host: host), error: nil) } catch {
                        return ReadOutcome(index: i, resource: nil, error: "\(error)")
                    }
                }
            }
            var out: [ReadOutcome] = []
            for await outcome in group { out.append(outcome) }
            return out
        }
        var read: [Int: Result<JSONValue, any Error>] = [:]
        for o in outcomes where claims.indices.contains(o.index) {
            read[o.index] = o.resource.map { .success($0) } ?? .failure(LedgerError("unreadable", o.error ?? "the record could not be read"))
        }
        var overlay = Overlay()
        var txs: [Transaction] = []
        for (i, claim) in claims.enumerated() {
            guard let resource = read[i] else { continue }
            if let tx = decide(claim, resource: resource, overlay: &overlay) { txs.append(tx) }
        }
        guard !txs.isEmpty else { return 0 }
        do {
            let receipts = try await node.submit(txs)
            for receipt in receipts where receipt.status != .committed {
                node.logger.error("claim adjudication refused", metadata: ["error": "\(receipt.errorCode ?? "?"): \(receipt.errorMessage ?? "")"])
            }
            return receipts.filter { $0.status == .committed }.count
        } catch {
            node.logger.error("claim adjudications not committed", metadata: ["error": "\(error)"])
            return 0
        }
    }

    /// The `claims.adjudicate` (or `claims.pend`) transaction for one claim, signed with its insurer's key.
    func decide(_ stored: JSONValue, resource read: Result<JSONValue, any Error>, overlay: inout Overlay) -> Transaction? {
        guard let id = stored["id"]?.stringValue, let insurerDID = stored["insurer"]?.stringValue, let insurer = host.organisations[insurerDID],
            let plan = stored["plan"]?.stringValue, let record = stored["record"]?.stringValue
        else { return nil }
        func signed(_ action: String, _ payload: JSONValue) -> Transaction? {
            try? Transaction(chainID: node.genesis.chainID, signer: insurer.signing, contract: "claims", action: action, payload: payload)
        }
        func pend(missing: [String] = [], signals: [String] = []) -> Transaction? {
            signed("pend", .object([
                "claim": .string(id), "missing": .array(missing.map { .string(String($0.prefix(256))) }), "signals": .array(signals.map { .string(String($0.prefix(256))) }),
            ]))
        }
        do {
            guard let planEntry = try node.stateJSON(ClaimsContract.planKey(insurer: insurerDID, plan: plan)),
                let currency = planEntry["currency"]?.stringValue, let digits = ClaimsPolicy.currencies[currency],
                let start = planEntry["year"]?["start"]?.stringValue.flatMap({ CivilDate($0) }), let end = planEntry["year"]?["end"]?.stringValue.flatMap({ CivilDate($0) })
            else { throw LedgerError("not_found", "plan \(plan) is not on the ledger") }
            let resource: JSONValue
            do {
                resource = try read.get()
            } catch {
                if stored["status"] == .string("pended") { return nil }
                return pend(missing: ["the Claim record \(record) could not be read: \(error)"])
            }
            let claim: ClaimInput
            do {
                claim = try ClaimInput(json: resource, path: "", minorDigits: digits, currency: currency)
            } catch {
                return pend(signals: ["claim_unreadable: \(error)"])
            }
            let onLedger = (stored["lines"]?.arrayValue ?? []).map { "\($0["sequence"]?.intValue ?? 0)/\($0["date"]?.stringValue ?? "")/\($0["submitted"]?.intValue ?? 0)" }
            guard Set(claim.lines.map { "\($0.sequence)/\($0.date)/\($0.submitted)" }) == Set(onLedger) else {
                return pend(signals: ["claim_mismatch: the sealed claim's lines \(claim.lines.map { "\($0.sequence)/\($0.date)/\($0.submitted)" }.sorted()) differ from those on the ledger \(onLedger.sorted())"])
            }
            var policies: [Int64: ClaimsPolicy] = [:]
            func policy(_ line: ClaimLine) -> ClaimsPolicy? {
                guard let version = ClaimsContract.inForce(plan: planEntry, on: line.date) else { return nil }
                if let known = policies[version] { return known }
                policies[version] = try? ClaimsPolicy.published(
                    chain: node.genesis.chainID, key: ClaimsContract.policyKey(insurer: insurerDID, plan: plan, version: version), read: { (k: String) throws(LedgerError) -> JSONValue? in try? node.stateJSON(k) })
                return policies[version]
            }
            let accumulatorKey = ClaimState.accumulatorKey(insurer: insurerDID, plan: plan, patient: claim.patient)
            var accumulator = try overlay.accumulators[accumulatorKey] ?? Adjudication.Accumulator(json: node.stateJSON(accumulatorKey))
            for previous in stored["adjudication"]?["lines"]?.arrayValue ?? [] {
                accumulator.deductible -= previous["deductible"]?.intValue ?? 0
                accumulator.outOfPocket -= (previous["deductible"]?.intValue ?? 0) + (previous["copay"]?.intValue ?? 0) + (previous["coinsurance"]?.intValue ?? 0)
            }
            var accumulators = [claim.patient: accumulator]
            let known = overlay.seen
            let earlier: (ClaimInput, ClaimLine) -> Bool = { c, line in
                let key = Self.duplicateKey(c, line, insurer: insurer)
                let owner = known[key] ?? (try? node.stateJSON(ClaimState.seenKey(insurer: insurerDID, key: key)))??["claim"]?.stringValue
                return owner != nil && owner != id
            }
            let result = Adjudication.run([claim], policy: policy, planYear: (start, end), accumulators: &accumulators, earlier: earlier)[0]
            let seen = zip(claim.lines, result.items).filter { !$0.1.denied }.map { Self.duplicateKey(claim, $0.0, insurer: insurer) }
            overlay.accumulators[accumulatorKey] = accumulators[claim.patient]
            for key in seen { overlay.seen[key] = id }
            return signed("adjudicate", .object(["claim": .string(id), "lines": .array(result.items.map(\.json)), "seen": .array(seen.map { .string($0) })]))
        } catch {
            node.logger.error("claim adjudication failed", metadata: ["claim": "\(id)", "error": "\(error)"])
            return nil
        }
    }
}

/// Runs the payer at start (claims that arrived while the node was down), then on the claims the
/// events name (queued or appealed): whatever arrives while a batch is being settled is the next batch.
final class PayerService: Service {
    let payer: Payer
    /// Claim ids named by events, and whether the whole ledger must be looked at again.
    let pending = Mutex<(ids: [String], full: Bool)>(([], false))

    init(payer: Payer) { self.payer = payer }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            let hub = self.payer.node.events
            let (wakeUps, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            let listener = Task {
                while !Task.isCancelled {
                    for await event in hub.subscribe() {
                        guard let type = event.body["type"]?.stringValue, type == "claims.queued" || type == "claims.appealed",
                            let insurer = event.body["insurer"]?.stringValue, self.payer.host.organisations[insurer] != nil, let id = event.body["claim"]?.stringValue
                        else { continue }
                        self.pending.withLock { $0.ids.append(id) }
                        wake.yield()
                    }
                    if hub.isFinished { break }
                    // A stream that fell behind was ended by the hub: look at the whole ledger again.
                    self.pending.withLock { $0.full = true }
                    wake.yield()
                }
                wake.finish()
            }
            await self.payer.sweep()
            for await _ in wakeUps {
                let (ids, full) = self.pending.withLock { p -> ([String], Bool) in
                    defer { p = ([], false) }
                    return (p.ids, p.full)
                }
                if full || !ids.isEmpty { await self.payer.sweep(full ? nil : ids) }
            }
            listener.cancel()
        }
    }
}
