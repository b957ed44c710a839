import ContractKit
import Foundation
import LedgerCore
import RecordsContract
import Standards
import Store
import SupplyContract
import Synchronization

/// The supply-chain service of a node: EPCIS ingestion (validate, hash, blind, seal the document
/// for the parties, submit the derived events), pack verification (EU FMD / DSCSA VRS terms) with
/// dispensing, counterfeit rules and alerts, recall reports.
public final class SupplyService: Sendable {
    public let node: LedgerNode
    let vault: Vault
    public let keys: SupplyKeys
    let clock: @Sendable () -> UInt64
    /// An alert for one (rule, pack, verifier) is raised again only after this window. (Two scans of one
    /// pack by two parties are compared on chain: `SupplyContract.scanWindowMillis`.)
    public let scanWindowMillis: UInt64
    /// The latest scan of each pack this node recorded on chain (a repeat by the same party within
    /// `rescanMillis` is not recorded again).
    private let scans = Mutex<[String: (party: String, time: UInt64)]>([:])
    static let rescanMillis: UInt64 = 60_000
    /// When each (rule, pack or lot, verifier) last raised an alert: repeats within `scanWindowMillis` are not raised again.
    private let raised = Mutex<[String: UInt64]>([:])
    /// Alerts raised and not yet committed (at most `maxQueuedAlerts`; more are counted and dropped),
    /// who waits for none to be left, and a wake-up for the loop that commits them in batches.
    private let pendingAlerts = Mutex<(queue: [JSONValue], scans: [JSONValue], inFlight: Int, dropped: Int, waiters: [CheckedContinuation<Void, Never>])>(([], [], 0, 0, []))
    private let alertSignal: AsyncStream<Void>.Continuation
    private let alertWakeUps: AsyncStream<Void>
    static let maxQueuedAlerts = 100_000

    /// Off-chain, this node only: packs dispensed to patients and the notices owed to them.
    public let local: LocalIndex

    public init(
        node: LedgerNode, vault: Vault, secret: ConsortiumSecret, scanWindowMillis: UInt64 = 600_000,
        clock: @escaping @Sendable () -> UInt64 = LedgerNode.systemClock
    ) throws {
        self.node = node
        self.vault = vault
        local = try LocalIndex(path: vault.path + "/supply-local.sqlite")
        self.keys = SupplyKeys(secret: secret)
        self.clock = clock
        self.scanWindowMillis = scanWindowMillis
        (alertWakeUps, alertSignal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func json(_ key: String) throws(LedgerError) -> JSONValue? { try node.stateJSON(key) }

    public func party(_ did: String) throws(LedgerError) -> JSONValue? { try json(SupplyState.party(did)) }

    /// A registered product by its GTIN.
    public func product(_ gtin: String) throws(LedgerError) -> JSONValue? { try json(SupplyState.product(gtin)) }

    /// A serialised item by its blinded key.
    public func item(_ key: String) throws(LedgerError) -> SupplyItem? { try json(SupplyItem.stateKey(key)).map(SupplyItem.init(json:)) }

    // MARK: EPCIS ingestion

    /// A sealed EPCIS document for one of its parties (the caller, or her organisation): the ciphertext
    /// from this node's vault and the content key wrapped for that party (end to end: the node never
    /// opens it). A document held by another node is fetched from the peers (kept in memory only);
    /// `not_in_vault` (with the holding node) when none serves it.
    public func document(id: String, requesterDID: String) async throws(LedgerError) -> JSONValue {
        guard let meta = try json(SupplyState.document(id)), let keys = meta["wrappedKeys"]?.objectValue else {
            throw LedgerError("not_found", "no EPCIS document \(id)")
        }
        let organisation = try json(Principal.key(requesterDID))?["organisation"]?.stringValue
        guard let holder = [requesterDID, organisation].compactMap({ $0 }).first(where: { keys[$0] != nil }), let wrapped = keys[holder] else {
            throw LedgerError("forbidden", "the document is shared with its trading partners only")
        }
        let hash = try Hash(hex: meta["saltedHash"]?.stringValue ?? "")
        let fetched = vault.holds(hash) ? [:] : await node.obtainVaultBlobs([(hash, .document(id))], into: vault, keep: false)
        guard let ciphertext = fetched[hash].map({ Array($0[32...]) }) ?? vault.ciphertext(hash) else {
            throw LedgerError("not_in_vault", "this node does not hold document \(id); its holder is \(meta["holder"]?.stringValue ?? "unknown")")
        }
        return .object([
            "id": .string(id), "ciphertext": .string(Base64.encode(ciphertext)), "wrappedKey": wrapped, "keyHolder": .string(holder),
            "context": .string(RecordEntry.context(id: "epcis/\(id)", version: 1)), "author": meta["author"] ?? .null,
            "height": meta["height"] ?? .null, "holder": meta["holder"] ?? .null,
        ])
    }

    /// Validates an EPCIS 2.0 document, derives the chain's view of its events (hash ids, blinded
    /// keys, receiving parties), seals the document for the author and the receivers in the vault,
    /// and submits one `supply.events` transaction signed by `author`. All or nothing. `text` is the
    /// document as the author sent it (what is sealed for the parties, and what its id is derived
    /// from); without it, the document's canonical JSON.
    public func ingest(document: JSONValue, as text: [UInt8]? = nil, author: SigningKey) async throws -> JSONValue {
        let (events, hashes, receivers) = try derive(document: document)
        var answer: [String: JSONValue] = [:]
        let parties = receivers.union([author.publicKey.did])
        var payload: [String: JSONValue] = ["events": .array(events.map(\.json))]
        // The payload's canonical bytes, written from the typed events (`SupplyEvent.writeJSON`).
        var eventBytes: [UInt8] = [UInt8(ascii: "[")]
        eventBytes.reserveCapacity(events.count * 400)
        for (i, event) in events.enumerated() {
            if i > 0 { eventBytes.append(UInt8(ascii: ",")) }
            event.writeJSON(into: &eventBytes)
        }
        eventBytes.append(UInt8(ascii: "]"))
        // The document itself (commercial data) stays off-chain, encrypted for the parties.
        var recipients: [String: [UInt8]] = [:]
        for did in parties {
            if let p = try json(Principal.key(did)), let key = p["encryptionKey"]?.stringValue { recipients[did] = try Base64.decode(key) }
        }
        if !recipients.isEmpty {
            let bytes = text ?? document.canonicalBytes
            let id = keys.document(bytes)
            let sealed = try SealedVersion(resource: bytes, recordID: "epcis/\(id)", version: 1, recipients: recipients)
            try vault.put(saltedHash: sealed.saltedHash, blob: sealed.blob)
            payload["document"] = .object([
                "id": .string(id), "saltedHash": .string(sealed.saltedHash.hex), "wrappedKeys": .object(sealed.wrappedKeys.mapValues(\.json)),
                "holder": .string(node.publicKey.did),
            ])
            answer["document"] = .string(id)
        }
        var payloadBytes: [UInt8] = []
        payloadBytes.reserveCapacity(eventBytes.count + 4096)
        var w = JSONObjectWriter()
        if let document = payload["document"] {
            w.key("document", into: &payloadBytes)
            document.write(into: &payloadBytes)
        }
        w.key("events", into: &payloadBytes)
        payloadBytes += eventBytes
        w.end(into: &payloadBytes)
        let tx = try Transaction(
            chainID: node.genesis.chainID, signer: author, contract: "supply", action: "events",
            payload: .object(payload), canonicalPayload: payloadBytes, decoded: events)
        let receipt = try await node.submit(tx)
        guard receipt.status == .committed else {
            throw LedgerError(receipt.errorCode ?? "refused", receipt.errorMessage ?? "the document was refused")
        }
        answer["transaction"] = .string(receipt.transactionID.hex)
        answer["height"] = .int(Int64(receipt.height))
        answer["events"] = .int(Int64(events.count))
        answer["applied"] = receipt.result["applied"] ?? .int(0)
        answer["duplicates"] = receipt.result["duplicates"] ?? .array([])
        answer["hashes"] = .array(hashes.map { JSONValue.string($0) })
        return .object(answer)
    }

    /// Validates a document and derives the chain's view of its events; also answers their hash ids
    /// and the parties that receive shipments. Synchronous on purpose: the work is CPU only.
    func derive(document: JSONValue) throws(LedgerError) -> (events: [SupplyEvent], hashes: [String], receivers: Set<String>) {
        let parsed = try EPCISDocument.parse(document)
        let hashes = try EPCISEventHash.hashIDs(document: document)
        var events: [SupplyEvent] = []
        var receivers: Set<String> = []
        events.reserveCapacity(parsed.events.count)
        var memo = DeriveMemo()
        for (index, (event, hashID)) in zip(parsed.events, hashes).enumerated() {
            do throws(LedgerError) {
                let derived = try derive(event, hashID: hashID, memo: &memo)
                // Execution uses these typed events in place of the payload built from them (`Transaction.decoded`).
                assert((try? SupplyEvent(json: derived.json)) == derived, "a derived event must read back from its JSON")
                if let to = derived.destination { receivers.insert(to) }
                events.append(derived)
            } catch {
                throw LedgerError(error.code, "event \(index): \(error.message)")
            }
        }
        return (events, hashes, receivers)
    }

    func itemKey(_ epc: EPC) throws(LedgerError) -> String {
        switch epc {
        case .sgtin(let gtin, let serial): return keys.pack(gtin: gtin, serial: serial)
        case .sscc(let sscc): return keys.container(sscc: sscc)
        default: throw LedgerError("bad_epcis", "only serialised items (SGTIN, SSCC) can be tracked, not \(epc)")
        }
    }

    /// The registered party behind an EPCIS party or location id (PGLN/SGLN/GLN URI, or a did).
    func resolveParty(_ id: String) throws(LedgerError) -> String {
        if id.hasPrefix("did:key:") { return id }
        guard case .gln(let gln, _) = try EPC.parse(id) else { throw LedgerError("unknown_party", "\(id) is not a GLN") }
        guard let did = try json(SupplyState.location(gln))?["party"]?.stringValue else {
            throw LedgerError("unknown_party", "GLN \(gln) is not registered to a party")
        }
        return did
    }

    /// What the events of a document mostly repeat: the lot they commission, the party they ship to.
    struct DeriveMemo {
        var lot: (gtin: String, lot: String, key: String)?
        var party: (id: String, did: String)?
    }

    func derive(_ e: EPCISEvent, hashID: String, memo: inout DeriveMemo) throws(LedgerError) -> SupplyEvent {
        // Keyed like the serials: the CBV hash of an event is over data holding them, so a plain hash could confirm a guess.
        // The 64 hex digits after `ni:///sha-256;` (sliced in the UTF-8 bytes: all ASCII).
        let hex = keys.event(String(decoding: hashID.utf8.dropFirst(14).prefix(64), as: UTF8.self))
        let type: SupplyEvent.EventType
        switch e.type {
        case .object: type = .object
        case .aggregation: type = .aggregation
        case .transformation: type = .transformation
        default: throw LedgerError("bad_epcis", "\(e.type.rawValue) is not part of the pack lifecycle")
        }
        let bizStep = e.bizStep ?? "other"
        let commissioning = bizStep == "commissioning"
        func item(_ epc: EPC, commissioned: Bool) throws(LedgerError) -> SupplyEvent.Item {
            var out = SupplyEvent.Item(key: try itemKey(epc))
            if commissioned, case .sgtin(let gtin, _) = epc {
                guard let lot = e.lot, let expiry = e.expiry else {
                    throw LedgerError("bad_epcis", "commissioning a pack needs ilmd cbvmda:lotNumber and cbvmda:itemExpirationDate")
                }
                out.gtin = gtin
                if let last = memo.lot, last.gtin == gtin, last.lot == lot {
                    out.lot = last.key
                } else {
                    let key = keys.lot(gtin: gtin, lot: lot)
                    memo.lot = (gtin, lot, key)
                    out.lot = key
                }
                out.expiry = expiry.iso
            }
            return out
        }
        var items: [SupplyEvent.Item] = []
        var lots: [(gtin: String, lot: String)] = []
        for epc in e.epcs { items.append(try item(epc, commissioned: commissioning)) }
        for q in e.quantities {
            if case .lgtin(let gtin, let lot) = q { lots.append((gtin, keys.lot(gtin: gtin, lot: lot))) }
        }
        var destination: String?
        if bizStep == "shipping" || bizStep == "returning", let id = e.destinationParty {
            if let last = memo.party, last.id == id {
                destination = last.did
            } else {
                let did = try resolveParty(id)
                memo.party = (id, did)
                destination = did
            }
        }
        return SupplyEvent(
            hash: hex, type: type, action: e.action.flatMap(SupplyEvent.Action.init(rawValue:)), bizStep: bizStep, disposition: e.disposition,
            timeMillis: e.timeMillis, items: items, parent: try e.parent.map { (p: EPC) throws(LedgerError) in try itemKey(p) },
            outputs: try e.outputs.map { (o: EPC) throws(LedgerError) in try item(o, commissioned: true) }, destination: destination, lots: lots)
    }

    // MARK: Verification

    /// Verifies a scanned pack against the chain at the latest block (read-only).
    /// The organisation a principal acts for in the supply chain: its own, or itself.
    public func organisation(of did: String) throws(LedgerError) -> String {
        try json(Principal.key(did))?["organisation"]?.stringValue ?? did
    }

    /// Verifies a scanned pack against the chain at the latest block (read-only). `verifier` is the
    /// authenticated principal (nil for an anonymous check). Supply-chain parties (and their members)
    /// learn who decommissioned a pack and are named in the alerts they raise; anyone else — a patient
    /// checking her pack — gets the outcome, and a bad outcome alerts the MAH, the holder and the
    /// regulators without naming her.
    public func verify(_ scan: GS1ElementString, verifier user: String?) throws(LedgerError) -> PackVerification {
        // A pharmacist or device verifies for its organisation.
        let verifier = try user.map { (did: String) throws(LedgerError) -> String in try organisation(of: did) }
        let roles = try verifier.map { (did: String) throws(LedgerError) in try self.roles(of: did) } ?? []
        let result = try PackVerification.check(
            scan: scan, keys: keys, today: GS1Date(millis: clock()), verifier: verifier, verifierRoles: roles, state: json)
        guard let verifier else { return result }
        guard !roles.isEmpty else {
            // A patient (or any principal outside the supply chain) who scans a bad pack: the MAH, the
            // holder and the regulators are alerted, without her name (a scan links her to a medicine);
            // she has the outcome in the answer.
            if let rule = result.rule { raise(result, rule: rule, detail: result.detail, extra: [], anonymous: true) }
            return result
        }
        if let key = result.packKey {
            // The scan goes on chain (in a batch with the alerts): the supply contract compares it with the
            // pack's previous scan, made at any node, and records `simultaneous_scans` when two parties
            // scanned it within its window (`SupplyContract.scanWindowMillis`, block time).
            let now = clock()
            let record = scans.withLock { m -> Bool in
                if m.count > 1_000_000 { m.removeAll(keepingCapacity: true) }
                if let last = m[key], last.party == verifier, now >= last.time, now - last.time < Self.rescanMillis { return false }
                m[key] = (verifier, now)
                return true
            }
            if record, result.outcome != .unknownSerial {
                var scan: [String: JSONValue] = [
                    "item": .string(key), "party": .string(verifier), "outcome": .string(result.outcome.rawValue),
                    "recipients": .array(Set([verifier, result.mah, result.holder].compactMap { $0 }).sorted().map { .string($0) }),
                ]
                if let gtin = result.gtin { scan["gtin"] = .string(gtin) }
                pendingAlerts.withLock { p in
                    if p.scans.count < Self.maxQueuedAlerts { p.scans.append(.object(scan)) } else { p.dropped += 1 }
                }
                alertSignal.yield()
            }
        }
        if let rule = result.rule { raise(result, rule: rule, detail: result.detail, extra: []) }
        return result
    }

    func roles(of did: String) throws(LedgerError) -> Set<SupplyRole> {
        Set((try party(did)?["roles"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(SupplyRole.init(rawValue:)) })
    }

    /// Verifies, and when the pack is verified decommissions it as dispensed in the same step
    /// (signed by the pharmacy's organisation key); answers after the block commits.
    public func dispense(_ scan: GS1ElementString, verifier: String, organisation: SigningKey) async throws -> PackVerification {
        let result = try verify(scan, verifier: verifier)
        guard result.outcome == .verified, let key = result.packKey else { return result }
        let hash = Hash.sha256(Array("dispense/\(key)/\(clock())/\(UInt64.random(in: 0..<UInt64.max))".utf8)).hex
        let event = SupplyEvent(
            hash: hash, type: .object, action: .observe, bizStep: "dispensing", disposition: "dispensed", timeMillis: Int64(clock()),
            items: [SupplyEvent.Item(key: key)])
        let tx = try Transaction(
            chainID: node.genesis.chainID, signer: organisation, contract: "supply", action: "events",
            payload: .object(["events": .array([event.json])]))
        let receipt = try await node.submit(tx)
        if receipt.status == .committed { return result.dispensed(height: receipt.height) }
        // The state changed between the check and the block (a second dispense raced this one).
        let again = try verify(scan, verifier: verifier)
        if again.outcome == .verified { throw LedgerError(receipt.errorCode ?? "refused", receipt.errorMessage ?? "dispensing was refused") }
        return again
    }

    // MARK: Alerts

    func raise(_ result: PackVerification, rule: String, detail: String?, extra: [String], anonymous: Bool = false) {
        let verifier = anonymous ? nil : result.verifier
        let fresh = raised.withLock { raised -> Bool in
            let now = clock()
            let key = "\(rule)|\(result.packKey ?? result.gtin ?? "")|\(verifier ?? "anonymous")"
            if let last = raised[key], now < last || now - last < scanWindowMillis { return false }
            if raised.count > 1_000_000 { raised.removeAll(keepingCapacity: true) }
            raised[key] = now
            return true
        }
        guard fresh else { return }
        var recipients = Set(extra)
        if let verifier { recipients.insert(verifier) }
        if let mah = result.mah { recipients.insert(mah) }
        if let holder = result.holder { recipients.insert(holder) }
        for r in (try? json(SupplyState.regulators))?["parties"]?.arrayValue ?? [] { if let s = r.stringValue { recipients.insert(s) } }
        var o: [String: JSONValue] = [
            "rule": .string(rule), "outcome": .string(result.outcome.rawValue), "recipients": .array(recipients.sorted().map { .string($0) }),
        ]
        if let gtin = result.gtin { o["gtin"] = .string(gtin) }
        if let key = result.packKey { o["item"] = .string(key) }
        if let verifier { o["verifier"] = .string(verifier) }
        if anonymous { o["reportedBy"] = .string("a principal outside the supply chain") }
        if let state = result.state { o["state"] = .string(state) }
        if let detail { o["detail"] = .string(String(detail.prefix(1000))) }
        pendingAlerts.withLock { p in
            if p.queue.count < Self.maxQueuedAlerts { p.queue.append(.object(o)) } else { p.dropped += 1 }
        }
        alertSignal.yield()
    }

    /// Returns once every alert raised so far is committed (or given up).
    public func alertsRecorded() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = pendingAlerts.withLock { p -> Bool in
                if p.queue.isEmpty && p.scans.isEmpty && p.inFlight == 0 { return true }
                p.waiters.append(c)
                return false
            }
            if ready { c.resume() }
        }
    }

    /// The alerts addressed to a party, newest last.
    public func alerts(for did: String, limit: Int = 100) throws -> [JSONValue] {
        try node.store.stateKeys(prefix: SupplyState.inboxPrefix(did), limit: limit, descending: true).reversed().compactMap { key in
            // `<inbox prefix><height>-<alert id>`
            try json(SupplyState.alert(String(key.dropFirst(SupplyState.inboxPrefix(did).count).split(separator: "-", maxSplits: 1).last ?? "")))
        }
    }

    /// Records queued alerts on chain and fans lot recalls out to the current holders; runs until cancelled.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Every wake-up commits all queued alerts and scans in one batch of transactions.
                for await _ in self.alertWakeUps {
                    let (batch, scans) = self.pendingAlerts.withLock { p -> ([JSONValue], [JSONValue]) in
                        defer {
                            p.inFlight = p.queue.count + p.scans.count
                            p.queue.removeAll()
                            p.scans.removeAll()
                        }
                        return (p.queue, p.scans)
                    }
                    if !batch.isEmpty || !scans.isEmpty { await self.record(batch, scans: scans) }
                    let waiters = self.pendingAlerts.withLock { p -> [CheckedContinuation<Void, Never>] in
                        p.inFlight = 0
                        guard p.queue.isEmpty, p.scans.isEmpty else { return [] }
                        defer { p.waiters.removeAll() }
                        return p.waiters
                    }
                    for w in waiters { w.resume() }
                }
            }
            group.addTask {
                // Recalls are handled from the stored events past a saved cursor, so none is missed
                // across restarts or when the live stream drops events; the live stream only wakes this up.
                let (wakeUps, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
                let hub = self.node.events
                let listener = Task {
                    // A stream that fell behind is ended by the hub: subscribe again, and look at the stored events.
                    while !Task.isCancelled {
                        for await event in hub.subscribe() where event.body["type"]?.stringValue == "supply.recall" { wake.yield() }
                        if hub.isFinished { break }
                        wake.yield()
                    }
                    wake.finish()
                }
                await self.handleRecalls()
                for await _ in wakeUps { await self.handleRecalls() }
                listener.cancel()
            }
            group.addTask { [alertSignal] in
                await withTaskCancellationHandler {
                    while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                } onCancel: {
                    alertSignal.finish()
                }
            }
            await group.waitForAll()
        }
    }

    /// Commits alerts as node-signed `supply.alert` transactions and scans as `supply.scans` (1,000 per
    /// transaction), in one batch.
    func record(_ alerts: [JSONValue], scans: [JSONValue] = []) async {
        do {
            func signed(_ action: String, _ payload: JSONValue) throws -> Transaction {
                try Transaction(
                    chainID: node.genesis.chainID, signer: node.signingKey, contract: "supply", action: action,
                    payload: payload)
            }
            var txs = try alerts.map { try signed("alert", $0) }
            for start in stride(from: 0, to: scans.count, by: 1000) {
                txs.append(try signed("scans", .object(["scans": .array(Array(scans[start..<min(scans.count, start + 1000)]))])))
            }
            let refused = try await node.submit(txs).filter { $0.status != .committed && $0.errorCode != "already_alerted" }
            if let first = refused.first {
                // A node that is not an operator (not a validator) cannot record alerts or scans.
                node.logger.warning(
                    "supply alerts or scans refused", metadata: ["count": "\(refused.count)", "error": "\(first.errorCode ?? ""): \(first.errorMessage ?? "")"])
            }
        } catch {
            node.logger.warning("supply alerts not recorded", metadata: ["alerts": "\(alerts.count)", "scans": "\(scans.count)", "error": "\(error)"])
        }
    }

    /// Remembers (off-chain, on this node) that a pack of `lotKey` was dispensed to `patient`, so that a
    /// later recall of the lot reaches her and her prescriber.
    public func noteDispensed(_ d: LocalIndex.Dispensed) throws { try local.recordDispensed(d) }

    /// The recall notices this node holds for a patient or prescriber.
    public func notices(for did: String) throws -> [JSONValue] { try local.notices(for: did) }

    /// Notifies the patients this node dispensed packs of a recalled lot to, and their prescribers:
    /// stored notices and a live event on this node's stream (never on the chain: it links a patient to a medicine).
    func notifyPatients(gtin: String, lotKey: String, reason: String?, height: UInt64) {
        guard let dispensed = try? local.dispensed(lotKey: lotKey), !dispensed.isEmpty else { return }
        var live: [JSONValue] = []
        for d in dispensed {
            var o: [String: JSONValue] = [
                "type": .string("supply.recall-notice"), "patient": .string(d.patient), "gtin": .string(gtin), "recordId": .string(d.recordID),
                "reason": reason.map { .string($0) } ?? .null, "height": .int(Int64(height)),
            ]
            if let p = d.prescriber { o["prescriber"] = .string(p) }
            let notice = JSONValue.object(o)
            do {
                try local.addNotice(notice, recipients: [d.patient] + (d.prescriber.map { [$0] } ?? []))
                live.append(notice)
            } catch {
                node.logger.error("recall notice not stored", metadata: ["error": "\(error)"])
            }
        }
        node.events.publishLocal(height: height, events: live)
    }

    /// Handles every committed recall past the saved cursor, then moves the cursor.
    /// A node's first start begins at the current height (older recalls were another node's to fan out).
    func handleRecalls() async {
        do {
            guard let after = try local.cursor("recalls") else {
                try local.setCursor("recalls", node.height)
                return
            }
            let (pending, through) = try node.store.scanEvents(containing: #""type":"supply.recall""#, after: after)
            for (index, (height, event)) in pending.enumerated() {
                await recalled(event, height: height)
                // The cursor moves once a height's recalls are all handled (at least once, never skipped).
                if index == pending.count - 1 || pending[index + 1].height != height { try local.setCursor("recalls", height) }
            }
            // Every block up to `through` was looked at: the next scan starts there, not at the last recall
            // (a scan of the whole history at every wake-up grew with the chain).
            if let through, through > after { try local.setCursor("recalls", through) }
        } catch {
            node.logger.error("recall fan-out failed", metadata: ["error": "\(error)"])
        }
    }

    func recalled(_ event: JSONValue, height: UInt64) async {
        if let gtin = event["gtin"]?.stringValue, let lot = event["lot"]?.stringValue {
            notifyPatients(gtin: gtin, lotKey: lot, reason: event["reason"]?.stringValue, height: height)
        }
        guard let gtin = event["gtin"]?.stringValue, let lot = event["lot"]?.stringValue, let report = try? recallReport(gtin: gtin, lotKey: lot) else { return }
        var recipients = Set(report.holders)
        if let mah = event["mah"]?.stringValue { recipients.insert(mah) }
        for r in (try? json(SupplyState.regulators))?["parties"]?.arrayValue ?? [] { if let s = r.stringValue { recipients.insert(s) } }
        let payload: JSONValue = .object([
            "rule": .string("lot_recalled"), "outcome": .string("recalled"), "gtin": .string(gtin), "lot": .string(lot),
            "recipients": .array(recipients.sorted().map { .string($0) }),
            "detail": .string("\(report.packs.count) packs; \(report.holders.count) current holders"),
            // Every node handles the recall: one alert is recorded, the others are refused as already_alerted.
            "once": .string("lot_recalled/\(lot)/\(height)"),
        ])
        _ = try? await node.submitAsNode(contract: "supply", action: "alert", payload: payload)
    }

    // MARK: Recall report

    public struct RecallReport: Sendable {
        public let gtin: String
        public let recalled: Bool
        public let packs: [JSONValue]
        public let holders: [String]

        public var json: JSONValue {
            .object([
                "gtin": .string(gtin), "recalled": .bool(recalled), "packCount": .int(Int64(packs.count)),
                "holders": .array(holders.map { .string($0) }), "packs": .array(packs),
            ])
        }
    }

    public func recallReport(gtin: String, lot: String) throws -> RecallReport {
        try recallReport(gtin: gtin, lotKey: keys.lot(gtin: gtin, lot: lot))
    }

    /// Where every pack of a lot is now: its status, holder (through its outermost container) and custody.
    public func recallReport(gtin: String, lotKey: String) throws -> RecallReport {
        guard let lot = try json(SupplyState.lot(lotKey)), lot["gtin"]?.stringValue == gtin else {
            throw LedgerError("unknown_lot", "no such lot of \(gtin)")
        }
        let prefix = SupplyState.lotItemPrefix(lotKey)
        var packs: [JSONValue] = []
        var holders = Set<String>()
        var itemKeys: [String] = []
        for key in try node.store.stateKeys(prefix: prefix, limit: 1_000_000) {
            if let items = try json(key)?["items"]?.arrayValue {
                itemKeys += items.compactMap(\.stringValue)
            } else {
                itemKeys.append(String(key.dropFirst(prefix.count)))  // one entry per pack (chains written before)
            }
        }
        for itemKey in itemKeys {
            guard let json = try json(SupplyItem.stateKey(itemKey)) else { continue }
            let item = try SupplyItem(json: json)
            let outermost = try item.containers(load: self.item).last
            let top = outermost?.item ?? item
            let container = outermost?.key
            var o: [String: JSONValue] = [
                "item": .string(itemKey), "status": .string(item.status.rawValue), "holder": .string(top.owner), "custody": .string(top.custody.rawValue),
            ]
            if let to = top.destination { o["destination"] = .string(to) }
            if let container { o["container"] = .string(container) }
            if item.status == .active {
                holders.insert(top.owner)
                if let to = top.destination { holders.insert(to) }
            }
            packs.append(.object(o))
        }
        return RecallReport(gtin: gtin, recalled: lot["recalled"]?.boolValue ?? false, packs: packs, holders: holders.sorted())
    }
}
