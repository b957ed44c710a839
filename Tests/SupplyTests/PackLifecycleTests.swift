import ContractKit
import LedgerCore
import LedgerTesting
import Standards
import SupplyContract
import Synchronization
import Testing

extension MemoryChain {
    /// The supply item at `key`, as the chain holds it.
    func item(_ key: String) throws -> SupplyItem { try SupplyItem(json: try JSONValue.parse(state[SupplyItem.stateKey(key)]!)) }
}

@Suite struct PackLifecycleTests {
    /// An alert every node raises for one chain event (a recalled lot) is recorded once: each node
    /// submits it, the first is kept, the others are refused as already_alerted.
    @Test func alertsRaisedByEveryNodeAreRecordedOnce() throws {
        let chain = MemoryChain(contracts: .supply)
        let recipient = SigningKey().publicKey.did
        func alert(once: String?) -> Receipt {
            var p: [String: JSONValue] = ["rule": .string("lot_recalled"), "outcome": .string("recalled"), "recipients": .array([.string(recipient)])]
            if let once { p["once"] = .string(once) }
            return chain.run(chain.operatorKey, "supply", "alert", .object(p))
        }
        #expect(alert(once: "lot_recalled/abc/7").status == .committed)
        #expect(alert(once: "lot_recalled/abc/7").errorCode == "already_alerted")
        #expect(alert(once: "lot_recalled/abc/9").status == .committed, "another recall of the lot")
        #expect(alert(once: nil).status == .committed)
        #expect(alert(once: nil).status == .committed, "alerts without `once` are each recorded")
        let inbox = chain.state.keys.filter { $0.hasPrefix(SupplyState.inboxPrefix(recipient)) }
        #expect(inbox.count == 4)
    }

    /// Scans recorded by any node are compared on chain at block time: two parties within the window
    /// raise `simultaneous_scans` once per scanning party; the same party, or a scan after the window, does not.
    @Test func scansAtTwoPlacesAreComparedOnChain() throws {
        let chain = MemoryChain(contracts: .supply)
        let item = String(repeating: "ab", count: 32)
        let (a, b, c, mah) = (SigningKey().publicKey.did, SigningKey().publicKey.did, SigningKey().publicKey.did, SigningKey().publicKey.did)
        let t0: UInt64 = 1_790_000_000_000
        func scan(_ party: String, at time: UInt64, by signer: SigningKey? = nil) -> Receipt {
            chain.run(signer ?? chain.operatorKey, "supply", "scans", .object(["scans": .array([.object([
                "item": .string(item), "party": .string(party), "outcome": .string("verified"), "recipients": .array([.string(party), .string(mah)]),
            ])])]), time: time)
        }
        func alerts() -> [JSONValue] {
            chain.state.filter { $0.key.hasPrefix("supply/alert/") }.compactMap { try? JSONValue.parse($0.value) }
        }
        #expect(scan(a, at: t0).result["alerts"] == .int(0))
        #expect(scan(a, at: t0 + 1_000).result["alerts"] == .int(0), "the same party again")
        let second = scan(b, at: t0 + 60_000)
        #expect(second.result["alerts"] == .int(1))
        let alert = try #require(alerts().first)
        #expect(alert["rule"] == .string("simultaneous_scans") && alert["item"] == .string(item) && alert["verifier"] == .string(b))
        #expect(Set(alert["recipients"]?.arrayValue?.compactMap(\.stringValue) ?? []) == [a, b, mah])
        #expect(alert["detail"]?.stringValue?.contains(a) == true)
        #expect(chain.state.keys.contains { $0.hasPrefix(SupplyState.inboxPrefix(a)) }, "the earlier party is told")
        #expect(scan(a, at: t0 + 120_000).result["alerts"] == .int(1), "a back and forth: a's scan after b's")
        #expect(scan(b, at: t0 + 180_000).result["alerts"] == .int(0), "b was already alerted in this window")
        #expect(scan(c, at: t0 + 240_000).result["alerts"] == .int(1), "a third place")
        #expect(scan(a, at: t0 + 240_000 + UInt64(SupplyContract.scanWindowMillis) + 1).result["alerts"] == .int(0), "after the window")
        #expect(alerts().count == 3)
        #expect(scan(a, at: t0, by: SigningKey()).errorCode == "forbidden", "only consortium nodes record scans")
    }

    static let day: UInt64 = 86_400_000
    let keys = SupplyKeys(secret: try! ConsortiumSecret(bytes: Array(repeating: 7, count: 32)))
    let gtin = "09506000100012"

    /// A chain with a manufacturer (MAH), a pharmacy, a regulator, the product, and packs held by the pharmacy.
    func world(packs: [String]) -> (MemoryChain, mah: SigningKey, pharmacy: SigningKey, regulator: SigningKey) {
        let chain = MemoryChain(contracts: .supply)
        let mah = SigningKey(), pharmacy = SigningKey(), regulator = SigningKey()
        for (key, roles, prefixes) in [(mah, ["manufacturer", "mah"], ["950600"]), (pharmacy, ["pharmacy"], []), (regulator, ["regulator"], [])] {
            #expect(chain.run(chain.operatorKey, "identity", "register", .object([
                "role": .string("organisation"), "subject": .string(key.publicKey.did), "encryptionKey": .string(Base64.encode(EncryptionKey().publicKey)), "name": .string("Org"),
            ])).status == .committed)
            let r = chain.run(chain.operatorKey, "supply", "party", .object([
                "party": .string(key.publicKey.did), "roles": .array(roles.map { .string($0) }), "companyPrefixes": .array(prefixes.map { .string($0) }),
            ]))
            #expect(r.status == .committed, "\(r.errorMessage ?? "")")
        }
        #expect(chain.run(mah, "supply", "product", .object(["gtin": .string(gtin)])).status == .committed)
        let lot = keys.lot(gtin: gtin, lot: "L1")
        let items = packs.map { JSONValue.object(["key": .string(keys.pack(gtin: gtin, serial: $0)), "gtin": .string(gtin), "lot": .string(lot), "expiry": .string("2027-01-31")]) }
        #expect(events(chain, mah, [event("commissioning", action: "ADD", items: items)]).status == .committed)
        let keysOnly = packs.map { JSONValue.object(["key": .string(keys.pack(gtin: gtin, serial: $0))]) }
        #expect(events(chain, mah, [event("shipping", items: keysOnly, to: pharmacy.publicKey.did)]).status == .committed)
        #expect(events(chain, pharmacy, [event("receiving", items: keysOnly)]).status == .committed)
        return (chain, mah, pharmacy, regulator)
    }

    func event(_ bizStep: String, action: String = "OBSERVE", disposition: String? = nil, items: [JSONValue], to: String? = nil, type: String = "ObjectEvent", extra: [String: JSONValue] = [:]) -> JSONValue {
        var o: [String: JSONValue] = [
            "hash": .string(Hash.sha256(Array("\(bizStep) \(items) \(UInt64.random(in: 0..<UInt64.max))".utf8)).hex), "type": .string(type),
            "action": .string(action), "bizStep": .string(bizStep), "time": .int(0), "items": .array(items),
        ]
        if let disposition { o["disposition"] = .string(disposition) }
        if let to { o["to"] = .string(to) }
        for (k, v) in extra { o[k] = v }
        return .object(o)
    }

    func events(_ chain: MemoryChain, _ author: SigningKey, _ list: [JSONValue], time: UInt64 = 1_790_000_000_000) -> Receipt {
        chain.run(author, "supply", "events", .object(["events": .array(list)]), time: time)
    }

    func pack(_ serial: String) -> JSONValue { .object(["key": .string(keys.pack(gtin: gtin, serial: serial))]) }
    func key(_ serial: String) -> String { keys.pack(gtin: gtin, serial: serial) }

    /// A commissioning event is recorded on the items it creates (no `supply/event/` entry of its
    /// own) and is still recognised when it comes again; another event naming one of its items is
    /// refused; other events keep their entry; an entry written by an earlier version still counts.
    @Test func commissioningEventsAreRecordedOnTheirItems() throws {
        let (chain, mah, pharmacy, _) = world(packs: [])
        let lot = keys.lot(gtin: gtin, lot: "L3")
        func item(_ serial: String) -> JSONValue {
            .object(["key": .string(key(serial)), "gtin": .string(gtin), "lot": .string(lot), "expiry": .string("2028-02-29")])
        }
        let first = event("commissioning", action: "ADD", items: [item("D1"), item("D2")])
        let hash = first["hash"]!.stringValue!
        let applied = events(chain, mah, [first])
        #expect(applied.status == .committed && applied.result["applied"] == .int(1))
        #expect(chain.state[SupplyState.event(hash)] == nil)
        #expect(try chain.item(key("D1")).event == hash && chain.item(key("D2")).event == hash)
        let before = chain.state
        let again = events(chain, mah, [first])
        #expect(again.status == .committed && again.result["applied"] == .int(0))
        #expect(again.result["duplicates"] == .array([.string(hash)]))
        #expect(chain.state == before, "a duplicate changes nothing")
        let other = events(chain, mah, [event("commissioning", action: "ADD", items: [item("D3"), item("D2")])])
        #expect(other.errorCode == "already_commissioned")
        let ship = event("shipping", items: [pack("D1")], to: pharmacy.publicKey.did)
        #expect(events(chain, mah, [ship]).status == .committed)
        #expect(
            chain.state[SupplyState.event(ship["hash"]!.stringValue!)]
                == JSONValue.object(["by": .string(mah.publicKey.did), "height": .int(Int64(chain.height))]).canonicalBytes, "other events keep their entry")
        // As an earlier version recorded it: an entry for the event, items without the field.
        let legacy = event("commissioning", action: "ADD", items: [item("D4")])
        #expect(events(chain, mah, [legacy]).status == .committed)
        var record = try chain.item(key("D4"))
        record.event = nil
        chain.state[SupplyItem.stateKey(key("D4"))] = record.json.canonicalBytes
        chain.state[SupplyState.event(legacy["hash"]!.stringValue!)] = JSONValue.object(["height": .int(1), "by": .string(mah.publicKey.did)]).canonicalBytes
        #expect(events(chain, mah, [legacy]).result["duplicates"] == .array([legacy["hash"]!]))
    }

    /// Events a node derived itself come typed with their transaction (`Transaction.decoded`):
    /// executing them gives the same state and result as decoding the payload, for applied,
    /// duplicate and refused events; a hint of another length is ignored; and the hint is what runs.
    @Test func typedEventsExecuteLikeTheirPayload() throws {
        let (chain, mah, pharmacy, _) = world(packs: ["A1"])
        let lot = keys.lot(gtin: gtin, lot: "L2")
        let commission = event("commissioning", action: "ADD", items: ["B1", "B2"].map {
            .object(["key": .string(key($0)), "gtin": .string(gtin), "lot": .string(lot), "expiry": .string("2028-02-29")])
        })
        let batches: [[JSONValue]] = [
            [commission, event("shipping", items: [pack("B1")], to: pharmacy.publicKey.did), commission],
            [event("commissioning", action: "ADD", items: [.object(["key": .string(key("A1")), "gtin": .string(gtin), "lot": .string(lot), "expiry": .string("2028-02-29")])])],
        ]
        for list in batches {
            let typed = try list.map { try SupplyEvent(json: $0) }
            let payload: JSONValue = .object(["events": .array(list)])
            let before = (chain.state, chain.height, chain.nonce)
            let plain = chain.run(mah, "supply", "events", payload)
            let plainState = chain.state
            for hint in [typed, Array(typed.dropLast())] {
                (chain.state, chain.height, chain.nonce) = before
                let hinted = chain.run(mah, "supply", "events", payload, decoded: hint)
                #expect(hinted.status == plain.status)
                #expect(hinted.result == plain.result)
                #expect(hinted.errorCode == plain.errorCode && hinted.errorMessage == plain.errorMessage)
                #expect(chain.state == plainState)
            }
        }
        #expect(chain.state[SupplyItem.stateKey(key("B2"))] != nil)
        #expect(try chain.item(key("B1")).destination == pharmacy.publicKey.did)
        // The hint is trusted as the payload's decoding: one naming another pack commissions that pack.
        var other = try SupplyEvent(json: commission)
        other.hash = String(repeating: "c", count: 64)
        other.items = [SupplyEvent.Item(key: key("C1"), gtin: gtin, lot: lot, expiry: "2028-02-29")]
        let payload: JSONValue = .object(["events": .array([event("commissioning", action: "ADD", items: [.object(["key": .string(key("C2")), "gtin": .string(gtin), "lot": .string(lot), "expiry": .string("2028-02-29")])])])])
        #expect(chain.run(mah, "supply", "events", payload, decoded: [other]).status == .committed)
        #expect(chain.state[SupplyItem.stateKey(key("C1"))] != nil)
        #expect(chain.state[SupplyItem.stateKey(key("C2"))] == nil)
    }

    /// An item's directly written bytes are its canonical JSON, every optional field present or not,
    /// with and without children, and read back to the same item, directly or as JSON; bytes of
    /// other shapes are read as the JSON path reads them.
    @Test func itemBytesAreTheirCanonicalJSON() throws {
        var rng = SystemRandomNumberGenerator()
        func maybe(_ s: String) -> String? { Bool.random(using: &rng) ? s : nil }
        func pick(_ options: [UInt8]) -> UInt8 { options[Int.random(in: 0..<options.count, using: &rng)] }
        for _ in 0..<2000 {
            var item = SupplyItem(
                kind: Bool.random(using: &rng) ? .pack : .container, gtin: maybe(gtin), lot: maybe(String(repeating: "ab", count: 32)), expiry: maybe("2030-12-31"),
                owner: SigningKey().publicKey.did, commissionedAt: UInt64.random(in: 0...UInt64(Int64.max), using: &rng))
            item.status = PackStatus.allCases.randomElement(using: &rng)!
            item.custody = Bool.random(using: &rng) ? .held : .inTransit
            item.destination = maybe("did:key:z6Mk\"quoted\"")
            item.parent = maybe(String(repeating: "cd", count: 32))
            item.children = (0..<Int.random(in: 0...3, using: &rng)).map { "child\($0)\n" }
            item.statusBy = maybe("did:key:zStatus")
            item.statusTime = Bool.random(using: &rng) ? UInt64.random(in: 0...UInt64(Int64.max), using: &rng) : nil
            item.event = maybe(String(repeating: "ef", count: 32))
            #expect(item.canonicalBytes == item.json.canonicalBytes, "\(item.json.canonicalString)")
            #expect(try SupplyItem(json: JSONValue.parse(item.canonicalBytes)) == item)
            #expect(try SupplyItem(stored: item.canonicalBytes) == item)
            // Stored bytes of other shapes (a byte changed): read as the JSON path reads them, or refused alike.
            var bytes = item.canonicalBytes
            bytes[Int.random(in: 0..<bytes.count, using: &rng)] = pick(Array("\"{}[],:0123456789-.e \\aé".utf8))
            let general = Result { () throws(LedgerError) in try SupplyItem(json: JSONValue.parse(bytes)) }
            let stored = Result { () throws(LedgerError) in try SupplyItem(stored: bytes) }
            #expect(String(describing: stored) == String(describing: general), "\(String(decoding: bytes, as: UTF8.self))")
        }
        // Negative times (a damaged record) are refused as corrupt state, not a trap.
        for damaged in [#"{"commissionedAt":-1,"custody":"held","kind":"pack","owner":"o","status":"active"}"#,
                        #"{"commissionedAt":1,"custody":"held","kind":"pack","owner":"o","status":"active","statusTime":-5}"#] {
            #expect(throws: LedgerError.self) { try SupplyItem(stored: Array(damaged.utf8)) }
        }
    }

    /// A block's writes come out in UTF-8 byte order of their keys (SQLite's BINARY order), with
    /// their values: keys sharing long prefixes, shorter than 16 bytes, with NUL bytes, non-ASCII.
    @Test func blockWritesAreSortedByKeyBytes() {
        var rng = SplitMix64(seed: 11)
        let parts = ["supply/item/", "supply/event/", "a", "\u{0}", "é", "日", "ab", "0f", "supply/item/ab", ""]
        for round in 0..<50 {
            var values: [String: [UInt8]?] = [:]
            for _ in 0..<Int(rng.next() % 300) {
                let key = (0..<Int(rng.next() % 5)).map { _ in parts[Int(rng.next() % UInt64(parts.count))] }.joined()
                values[key] = rng.next() % 5 == 0 ? .some(nil) : .some(Array(key.utf8) + [UInt8(round)])
            }
            let sorted = ContractRegistry.sortedWrites(values)
            #expect(sorted.map(\.key) == values.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
            #expect(sorted.allSatisfy { values[$0.key]! == $0.value })
        }
    }

    /// A typed event passes `check()` exactly when its JSON decodes: admission checks the node's own
    /// typed events that way instead of decoding them, so the two must agree on every field's rules.
    @Test func typedCheckAgreesWithDecoding() {
        var rng = SystemRandomNumberGenerator()
        // The first option (valid) most of the time, so that whole events pass as well as fail.
        func pick<T>(_ options: [T]) -> T { Int.random(in: 0..<10, using: &rng) < 8 ? options[0] : options[Int.random(in: 0..<options.count, using: &rng)] }
        let hex = String(repeating: "ab", count: 32)
        let keysToTry = [hex, hex.uppercased(), String(hex.dropLast()), hex + "a", String(repeating: "zz", count: 32), ""]
        let did = SigningKey().publicKey.did
        var accepted = 0, refused = 0
        for _ in 0..<3000 {
            func item() -> SupplyEvent.Item {
                SupplyEvent.Item(
                    key: pick(keysToTry), gtin: pick([gtin, nil, "09506000100013", "123", "", "095060001000120"]), lot: pick([hex, nil, "L1"]),
                    expiry: pick(["2030-12-31", nil, "", "2030-12-31T00"]))
            }
            let event = SupplyEvent(
                hash: pick(keysToTry), type: pick([SupplyEvent.EventType.object, .aggregation, .transformation]), action: pick([SupplyEvent.Action.add, nil, .observe, .delete]),
                bizStep: pick(["commissioning", "", String(repeating: "s", count: 65)]), disposition: pick(["active", nil, "", String(repeating: "d", count: 64), String(repeating: "d", count: 65)]),
                timeMillis: Int64.random(in: -5...1_800_000_000_000, using: &rng), items: (0..<Int.random(in: 0...2, using: &rng)).map { _ in item() },
                parent: pick([nil, hex, "nothex"]), outputs: (0..<Int.random(in: 0...1, using: &rng)).map { _ in item() },
                destination: pick([nil, did, "did:key:zNope", ""]), lots: pick([[], [(gtin: gtin, lot: hex)], [(gtin: "", lot: hex)], [(gtin: gtin, lot: "x")], [(gtin: "123456789012345", lot: hex)]]))
            let checked = (try? event.check()) != nil
            var written: [UInt8] = []
            event.writeJSON(into: &written)
            #expect(written == event.json.canonicalBytes, "\(event.json.canonicalString)")
            let decoded = try? SupplyEvent(json: event.json)
            #expect(checked == (decoded != nil), "\(event.json.canonicalString)")
            if let decoded { #expect(decoded == event) }
            if checked { accepted += 1 } else { refused += 1 }
        }
        #expect(accepted > 50 && refused > 50)
    }

    @Test func reactivationWindowAndIrreversibleStates() throws {
        let (chain, _, pharmacy, _) = world(packs: ["A", "B", "C"])
        let t0: UInt64 = 1_790_000_000_000
        #expect(events(chain, pharmacy, [event("dispensing", disposition: "dispensed", items: [pack("A"), pack("B")])], time: t0).status == .committed)
        #expect(events(chain, pharmacy, [event("decommissioning", disposition: "stolen", items: [pack("C")])], time: t0).status == .committed)
        #expect(try chain.item(key("C")).status == .stolen)
        // Within 240 h: undone. After: refused. Stolen: never.
        #expect(chain.run(pharmacy, "supply", "reactivate", .object(["item": .string(key("A"))]), time: t0 + 10 * Self.day - 1).status == .committed)
        let late = chain.run(pharmacy, "supply", "reactivate", .object(["item": .string(key("B"))]), time: t0 + 10 * Self.day + 1)
        #expect(late.errorCode == "window_exceeded")
        #expect(chain.run(pharmacy, "supply", "reactivate", .object(["item": .string(key("C"))]), time: t0 + 1).errorCode == "not_reversible")
        // EU FMD states without a CBV business step: by the holder only; exported can be undone, like dispensed.
        #expect(chain.run(pharmacy, "supply", "decommission", .object(["item": .string(key("B")), "state": .string("active")])).errorCode == "bad_payload")
        let (other, _, _, regulator) = world(packs: ["X"])
        #expect(other.run(regulator, "supply", "decommission", .object(["item": .string(key("X")), "state": .string("exported")])).errorCode == "custody_violation")
        #expect(chain.run(pharmacy, "supply", "decommission", .object(["item": .string(key("A")), "state": .string("exported")]), time: t0 + 20).status == .committed)
        #expect(try chain.item(key("A")).status == .exported)
        #expect(chain.run(pharmacy, "supply", "reactivate", .object(["item": .string(key("A"))]), time: t0 + 30).status == .committed)
        // An expired pack is not reactivated (expiry 2027-01-31).
        #expect(events(chain, pharmacy, [event("dispensing", disposition: "dispensed", items: [pack("A")])], time: 1_802_000_000_000).status == .committed)
        #expect(chain.run(pharmacy, "supply", "reactivate", .object(["item": .string(key("A"))]), time: 1_802_000_000_000 + 1).errorCode == "expired")
    }

    @Test func lockRecallByEventAndContainers() throws {
        let (chain, mah, pharmacy, regulator) = world(packs: ["A", "B", "C", "D"])
        // Lock and unlock: MAH or regulator only.
        #expect(chain.run(pharmacy, "supply", "lock", .object(["item": .string(key("A")), "reason": .string("x")])).errorCode == "forbidden")
        #expect(chain.run(regulator, "supply", "lock", .object(["item": .string(key("A")), "reason": .string("investigation")])).status == .committed)
        #expect(try chain.item(key("A")).status == .locked)
        #expect(events(chain, pharmacy, [event("dispensing", disposition: "dispensed", items: [pack("A")])]).errorCode == "already_decommissioned")
        #expect(chain.run(mah, "supply", "unlock", .object(["item": .string(key("A")), "reason": .string("cleared")])).status == .committed)

        // Packing at the pharmacy, then destroying the case destroys its contents.
        let caseKey = keys.container(sscc: "195060010000000011")
        #expect(events(chain, pharmacy, [event("packing", action: "ADD", items: [pack("B"), pack("C")], type: "AggregationEvent", extra: ["parent": .string(caseKey)])]).status == .committed)
        #expect(events(chain, pharmacy, [event("destroying", disposition: "destroyed", items: [.object(["key": .string(caseKey)])])]).status == .committed)
        #expect(try chain.item(key("B")).status == .destroyed)
        #expect(try chain.item(key("C")).status == .destroyed)

        // A recall as an EPCIS event (disposition recalled on the lot class) by the MAH; not by the pharmacy.
        let lots: JSONValue = .array([.object(["gtin": .string(gtin), "lot": .string(keys.lot(gtin: gtin, lot: "L1"))])])
        #expect(events(chain, pharmacy, [event("holding", disposition: "recalled", items: [], extra: ["lots": lots])]).errorCode == "forbidden")
        #expect(events(chain, mah, [event("holding", disposition: "recalled", items: [], extra: ["lots": lots])]).status == .committed)
        let lot = try JSONValue.parse(chain.state[SupplyState.lot(keys.lot(gtin: gtin, lot: "L1"))]!)
        #expect(lot["recalled"] == .bool(true))
        // A recalled lot takes no new packs.
        let more = JSONValue.object(["key": .string(key("E")), "gtin": .string(gtin), "lot": .string(keys.lot(gtin: gtin, lot: "L1")), "expiry": .string("2027-01-31")])
        #expect(events(chain, mah, [event("commissioning", action: "ADD", items: [more])]).errorCode == "recalled")
        // Within one document too: a recall event stops the packs of its lot commissioned after it.
        func lotPack(_ serial: String, _ lotName: String) -> JSONValue {
            .object(["key": .string(key(serial)), "gtin": .string(gtin), "lot": .string(keys.lot(gtin: gtin, lot: lotName)), "expiry": .string("2027-01-31")])
        }
        let lots2: JSONValue = .array([.object(["gtin": .string(gtin), "lot": .string(keys.lot(gtin: gtin, lot: "L2"))])])
        let recallInside = events(chain, mah, [
            event("commissioning", action: "ADD", items: [lotPack("F", "L2")]), event("holding", disposition: "recalled", items: [], extra: ["lots": lots2]),
            event("commissioning", action: "ADD", items: [lotPack("G", "L2")]),
        ])
        #expect(recallInside.errorCode == "recalled")
        #expect(chain.state[SupplyItem.stateKey(key("F"))] == nil, "nothing of a refused document is applied")
        #expect(events(chain, mah, [event("commissioning", action: "ADD", items: [lotPack("F", "L3")]), event("commissioning", action: "ADD", items: [lotPack("G", "L3")])]).status == .committed)

        // Verification sees the states: locked, destroyed and recalled packs are not verified.
        func verify(_ serial: String) throws -> PackVerification.Outcome {
            let scan = try GS1ElementString.parse("01\(gtin)17270131" + "10L1\u{1D}21\(serial)", today: GS1Date(year: 2026, month: 11, day: 25))
            return try PackVerification.check(scan: scan, keys: keys, today: GS1Date(year: 2026, month: 11, day: 25), verifier: nil, verifierRoles: []) { k throws(LedgerError) in
                try chain.state[k].map { bytes throws(LedgerError) in try JSONValue.parse(bytes) }
            }.outcome
        }
        #expect(try verify("D") == .recalled)
        #expect(try verify("ZZ") == .unknownSerial)
    }

    /// Re-admitting a party replaces its record: a regulator demoted stops receiving alerts, freed GLNs can be taken.
    @Test func readmissionReplacesRolesAndLocations() throws {
        let (chain, _, pharmacy, regulator) = world(packs: [])
        func admit(_ key: SigningKey, _ roles: [String], _ glns: [String]) -> Receipt {
            chain.run(chain.operatorKey, "supply", "party", .object([
                "party": .string(key.publicKey.did), "roles": .array(roles.map { .string($0) }), "glns": .array(glns.map { .string($0) }),
            ]))
        }
        func regulators() throws -> [JSONValue] { try JSONValue.parse(chain.state[SupplyState.regulators]!)["parties"]?.arrayValue ?? [] }
        #expect(try regulators() == [.string(regulator.publicKey.did)])
        #expect(admit(regulator, ["wholesaler"], []).status == .committed)
        #expect(try regulators().isEmpty)
        #expect(admit(pharmacy, ["pharmacy"], ["9506000000022"]).status == .committed)
        #expect(admit(regulator, ["pharmacy"], ["9506000000022"]).errorCode == "conflict")
        #expect(admit(pharmacy, ["pharmacy"], ["9506000000039"]).status == .committed)
        #expect(admit(regulator, ["pharmacy"], ["9506000000022"]).status == .committed)
    }

    @Test func transformationAndExpiry() throws {
        let (chain, mah, pharmacy, _) = world(packs: ["A"])
        // Repackaging (parallel distribution): the input pack is decommissioned, the output commissioned by the MAH.
        let out = JSONValue.object(["key": .string(key("R1")), "gtin": .string(gtin), "lot": .string(keys.lot(gtin: gtin, lot: "L2")), "expiry": .string("2026-12-31")])
        #expect(events(chain, pharmacy, [event("repackaging", items: [pack("A")], type: "TransformationEvent", extra: ["outputs": .array([out])])]).errorCode == "forbidden")
        let transfer = events(chain, pharmacy, [event("shipping", items: [pack("A")], to: mah.publicKey.did)])
        #expect(transfer.status == .committed)
        #expect(events(chain, mah, [event("receiving", items: [pack("A")])]).status == .committed)
        #expect(events(chain, mah, [event("repackaging", items: [pack("A")], type: "TransformationEvent", extra: ["outputs": .array([out])])]).status == .committed)
        #expect(try chain.item(key("A")).status == .decommissioned)
        #expect(try chain.item(key("R1")).status == .active)
        // Expired: verification after the expiry date answers expired.
        let scan = try GS1ElementString.parse("01\(gtin)17261231" + "10L2\u{1D}21R1", today: GS1Date(year: 2027, month: 1, day: 5))
        let result = try PackVerification.check(scan: scan, keys: keys, today: GS1Date(year: 2027, month: 1, day: 5), verifier: nil, verifierRoles: []) { k throws(LedgerError) in
            try chain.state[k].map { bytes throws(LedgerError) in try JSONValue.parse(bytes) }
        }
        #expect(result.outcome == .expired)
        #expect(result.vrs["additionalInfo"] == .string("Expired"))
    }
}
