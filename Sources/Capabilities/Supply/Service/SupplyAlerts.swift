import ContractKit
import Foundation
import LedgerCore
import Node
import Standards
import Store
import SupplyContract
import Synchronization

/// Alerts and recalls: suspicious scans recorded on chain, recalls fanned out to holders and patients.
extension SupplyService {
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
}
