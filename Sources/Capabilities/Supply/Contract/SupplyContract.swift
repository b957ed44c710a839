import ContractKit
import LedgerCore
import Standards

/// `supply`: serial-level pack lifecycle from the factory to the patient.
///
/// Actions:
/// - `party` `{"party": did, "roles": [...], "glns"?: [13 digits], "companyPrefixes"?: [digits]}`: a consortium operator
///   admits a registered organisation to the supply chain with its roles (manufacturer, mah, wholesaler, logistics,
///   pharmacy, hospital, regulator), its locations (GLN) and its GS1 company prefixes.
/// - `product` `{"gtin", "name"?, "manufacturers"?: [did]}`: the marketing authorisation holder registers a product
///   whose GTIN falls under one of its company prefixes.
/// - `events` `{"events": [...], "document"?: {"id", "saltedHash", "wrappedKeys", "holder"}}`: EPCIS events as the node
///   derived them (see `SupplyEvent`); the sealed document's metadata is kept under `supply/document/<id>`,
///   all applied or none; an event whose hash id is already on the chain is skipped and reported as a duplicate.
/// - `decommission` `{"item", "state"}`: the holder sets an EU FMD state CBV has no business step for
///   (sample, free_sample, exported, checked_out) or any other inactive state, for a pack or a whole case.
/// - `reactivate` `{"item"}`: undo a decommissioning within 240 h by the party that did it (Regulation (EU)
///   2016/161 Art. 13), never for stolen or destroyed packs, expired packs or recalled lots.
/// - `lock` / `unlock` `{"item", "reason"}`: the MAH or a regulator locks a pack under investigation.
/// - `recall` `{"gtin", "lot", "reason"}`: the MAH or a regulator recalls a lot (by its blinded key).
/// - `alert` `{"rule", "outcome", "recipients": [did], ...}`: a node records a verification alert.
public struct SupplyContract: Contract {
    public let name = "supply"
    public let actions = ["party", "product", "events", "decommission", "reactivate", "lock", "unlock", "recall", "alert", "scans"]
    public let operators: OperatorSet
    /// The reactivation window (Art. 13(b): 10 days).
    public static let reactivationWindowMillis: UInt64 = 240 * 3_600_000

    public init(operators: Set<String>) { self.operators = OperatorSet(operators) }

    public func validate(action: String, payload: JSONValue) throws(LedgerError) {
        switch action {
        case "party":
            let p = try Payload(payload, allowed: ["party", "roles", "glns", "companyPrefixes"])
            _ = try p.did("party")
            _ = try p.strings("roles", allowed: Set(SupplyRole.allCases.map(\.rawValue)))
            for gln in try p.optionalStrings("glns") where !Self.isGS1Key(gln, length: 13) {
                throw LedgerError("bad_payload", "GLN \(gln) must be 13 digits with a valid check digit")
            }
            for prefix in try p.optionalStrings("companyPrefixes")
            where !(4...12).contains(prefix.count) || !prefix.utf8.allSatisfy({ (48...57).contains($0) }) {
                throw LedgerError("bad_payload", "company prefix \(prefix) must be 4 to 12 digits")
            }
        case "product":
            let p = try Payload(payload, allowed: ["gtin", "name", "manufacturers"])
            guard Self.isGS1Key(try p.string("gtin"), length: 14) else {
                throw LedgerError("bad_payload", "gtin must be 14 digits with a valid check digit")
            }
            _ = try p.optionalString("name", maxLength: 200)
            for m in try p.optionalStrings("manufacturers") { _ = try PublicKey(did: m) }
        case "events":
            try validateEvents(payload, typed: nil)
        case "reactivate":
            _ = try Self.itemKey(try Payload(payload, allowed: ["item"]), "item")
        case "decommission":
            let p = try Payload(payload, allowed: ["item", "state"])
            _ = try Self.itemKey(p, "item")
            guard let state = PackStatus(rawValue: try p.string("state")), state != .active, state != .locked else {
                throw LedgerError("bad_payload", "state must be an inactive pack state (dispensed, destroyed, stolen, sample, free_sample, exported, checked_out, decommissioned)")
            }
        case "lock", "unlock":
            let p = try Payload(payload, allowed: ["item", "reason"])
            _ = try Self.itemKey(p, "item")
            _ = try p.string("reason", maxLength: 1024)
        case "recall":
            let p = try Payload(payload, allowed: ["gtin", "lot", "reason"])
            guard Self.isGS1Key(try p.string("gtin"), length: 14) else { throw LedgerError("bad_payload", "gtin must be 14 digits") }
            _ = try Self.itemKey(p, "lot")
            _ = try p.string("reason", maxLength: 1024)
        case "scans":
            let p = try Payload(payload, allowed: ["scans"])
            guard let list = p.fields["scans"]?.arrayValue, (1...1000).contains(list.count) else {
                throw LedgerError("bad_payload", "scans must be an array of 1 to 1000 scans")
            }
            for scan in list {
                let s = try Payload(scan, allowed: ["item", "party", "recipients", "gtin", "outcome"])
                _ = try Self.itemKey(s, "item")
                _ = try s.did("party")
                _ = try s.optionalString("gtin", maxLength: 14)
                _ = try s.string("outcome", maxLength: 64)
                guard let recipients = s.fields["recipients"]?.arrayValue, recipients.count <= 16 else {
                    throw LedgerError("bad_payload", "a scan's recipients are an array of at most 16 dids")
                }
                for r in recipients { _ = try PublicKey(did: r.stringValue ?? "") }
            }
        default:
            let p = try Payload(payload, allowed: ["rule", "outcome", "recipients", "gtin", "item", "lot", "verifier", "detail", "state", "once", "reportedBy"])
            _ = try p.optionalString("once", maxLength: 256)
            _ = try p.string("rule", maxLength: 64)
            _ = try p.string("outcome", maxLength: 64)
            guard let recipients = p.fields["recipients"]?.arrayValue, !recipients.isEmpty, recipients.count <= 10_000 else {
                throw LedgerError("bad_payload", "recipients must be an array of 1 to 10000 dids")
            }
            for r in recipients {
                guard let did = r.stringValue else { throw LedgerError("bad_payload", "recipients holds a non-string") }
                _ = try PublicKey(did: did)
            }
            _ = try p.optionalString("detail", maxLength: 1024)
        }
    }

    /// `events`: the payload's shape and document, and each event: decoded from the payload, or, when
    /// the node built the payload from typed events (`typed`, one per payload event), checked by the
    /// same rules without decoding (`SupplyEvent.check`).
    func validateEvents(_ payload: JSONValue, typed: [SupplyEvent]?) throws(LedgerError) {
        let p = try Payload(payload, allowed: ["events", "document"])
        guard let list = p.fields["events"]?.arrayValue, !list.isEmpty, list.count <= 10_000 else {
            throw LedgerError("bad_payload", "events must be an array of 1 to 10000 events")
        }
        if let typed, typed.count == list.count {
            for e in typed { try e.check() }
        } else {
            for e in list { _ = try SupplyEvent(json: e) }
        }
        if let document = p.fields["document"] {
                let d = try Payload(document, allowed: ["id", "saltedHash", "wrappedKeys", "holder"])
                _ = try Hash(hex: try d.string("id", maxLength: 64))
                _ = try Hash(hex: try d.string("saltedHash", maxLength: 64))
                guard let keys = d.fields["wrappedKeys"]?.objectValue, !keys.isEmpty, keys.count <= 64 else {
                    throw LedgerError("bad_payload", "a document's wrappedKeys map 1 to 64 parties to wrapped keys")
                }
                for (did, w) in keys {
                    _ = try PublicKey(did: did)
                    _ = try WrappedKey(json: w)
                }
                _ = try d.optionalDID("holder")
            }
    }

    public func validate(_ transaction: Transaction) throws(LedgerError) {
        guard transaction.action == "events", let typed = transaction.decoded as? [SupplyEvent] else {
            return try validate(action: transaction.action, payload: transaction.payload)
        }
        try validateEvents(transaction.payload, typed: typed)
    }

    static func isGS1Key(_ text: String, length: Int) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.count == length && bytes.allSatisfy({ (48...57).contains($0) })
            && GS1ApplicationIdentifier.checkDigit(of: bytes.dropLast()) == bytes.last
    }

    static func itemKey(_ p: Payload, _ field: String) throws(LedgerError) -> String {
        let key = try p.string(field, maxLength: 64)
        guard key.utf8.count == 64, Hex.isHex(key) else { throw LedgerError("bad_payload", "\(field) must be a 64-hex blinded key") }
        return key
    }

    public func execute(action: String, payload: JSONValue, context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        switch action {
        case "party": return try registerParty(payload, &context)
        case "product": return try registerProduct(payload, &context)
        case "events":
            var lifecycle = PackLifecycle(context: context)
            let result = try lifecycle.apply(payload)
            context = lifecycle.context
            // The sealed document (commercial data, off-chain): where it is and whom its key is wrapped for.
            if case .object(var document) = payload["document"], let id = document["id"]?.stringValue {
                if let existing = try context.json(forKey: SupplyState.document(id)), existing["author"]?.stringValue != context.author {
                    throw LedgerError("document_exists", "document \(id) was recorded by another party")
                }
                document["author"] = .string(context.author)
                document["height"] = .int(Int64(context.height))
                context.set(SupplyState.document(id), .object(document))
            }
            return result
        case "reactivate": return try reactivate(payload, &context)
        case "decommission":
            let p = try Payload(payload, allowed: ["item", "state"])
            let key = try Self.itemKey(p, "item")
            guard let roles = try Self.party(context.author, in: context)?.roles else { throw LedgerError("forbidden", "\(context.author) is not a supply-chain party") }
            let state = PackStatus(rawValue: try p.string("state"))!
            guard state != .dispensed || !roles.isDisjoint(with: SupplyRole.dispensers) else {
                throw LedgerError("forbidden", "only a pharmacy or a hospital dispenses to patients")
            }
            var lifecycle = PackLifecycle(context: context)
            try lifecycle.setStatus(key, state, recursive: true)
            context = lifecycle.context
            return try lifecycle.load(key).json
        case "lock", "unlock": return try lock(action == "lock", payload, &context)
        case "recall": return try recall(payload, &context)
        case "scans": return try scans(payload, &context)
        default: return try alert(payload, &context)
        }
    }

    // MARK: Parties and products

    public static func party(_ did: String, in context: ExecutionContext) throws(LedgerError) -> (roles: Set<SupplyRole>, prefixes: [String])? {
        guard let json = try context.json(forKey: SupplyState.party(did)) else { return nil }
        let roles = Set(json["roles"]?.arrayValue?.compactMap { $0.stringValue.flatMap(SupplyRole.init(rawValue:)) } ?? [])
        return (roles, json["companyPrefixes"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }

    func registerParty(_ payload: JSONValue, _ context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        guard try operators.contains(context.author, in: context) else { throw LedgerError("forbidden", "supply-chain parties are admitted by a consortium operator") }
        let p = try Payload(payload, allowed: ["party", "roles", "glns", "companyPrefixes"])
        let did = try p.did("party")
        guard let principal = try Principal.load(did, from: context), principal.role == .organisation else {
            throw LedgerError("unknown_principal", "\(did) is not a registered organisation")
        }
        let roles = try p.strings("roles")
        let glns = try p.optionalStrings("glns")
        // Re-admission replaces the party's record: locations it no longer has are freed.
        if let previous = try context.json(forKey: SupplyState.party(did)) {
            for old in previous["glns"]?.arrayValue?.compactMap(\.stringValue) ?? [] where !glns.contains(old) {
                context.set(SupplyState.location(old), nil)
            }
        }
        for gln in glns {
            if let holder = try context.json(forKey: SupplyState.location(gln))?["party"]?.stringValue, holder != did {
                throw LedgerError("conflict", "GLN \(gln) belongs to \(holder)")
            }
            context.set(SupplyState.location(gln), .object(["party": .string(did)]))
        }
        var regulators = try context.json(forKey: SupplyState.regulators)?["parties"]?.arrayValue ?? []
        let wasRegulator = regulators.contains(.string(did))
        if roles.contains(SupplyRole.regulator.rawValue) != wasRegulator {
            if wasRegulator { regulators.removeAll { $0 == .string(did) } } else { regulators.append(.string(did)) }
            context.set(SupplyState.regulators, .object(["parties": .array(regulators)]))
        }
        let record: JSONValue = .object([
            "party": .string(did), "roles": .array(roles.map { .string($0) }), "glns": .array(glns.map { .string($0) }),
            "companyPrefixes": p.fields["companyPrefixes"] ?? .array([]),
        ])
        context.set(SupplyState.party(did), record)
        return record
    }

    func registerProduct(_ payload: JSONValue, _ context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        let p = try Payload(payload, allowed: ["gtin", "name", "manufacturers"])
        let gtin = try p.string("gtin")
        guard let party = try Self.party(context.author, in: context), party.roles.contains(.mah) else {
            throw LedgerError("forbidden", "products are registered by a marketing authorisation holder")
        }
        guard party.prefixes.contains(where: { gtin.dropFirst().hasPrefix($0) }) else {
            throw LedgerError("forbidden", "GTIN \(gtin) is not under a company prefix of \(context.author)")
        }
        if let existing = try context.json(forKey: SupplyState.product(gtin)), existing["mah"]?.stringValue != context.author {
            throw LedgerError("conflict", "GTIN \(gtin) is registered by another holder")
        }
        var o: [String: JSONValue] = ["gtin": .string(gtin), "mah": .string(context.author), "manufacturers": p.fields["manufacturers"] ?? .array([])]
        if let name = p.fields["name"] { o["name"] = name }
        context.set(SupplyState.product(gtin), .object(o))
        return .object(o)
    }

    // MARK: Status changes outside EPCIS

    func reactivate(_ payload: JSONValue, _ context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        let key = try Self.itemKey(try Payload(payload, allowed: ["item"]), "item")
        guard var item = try context.json(forKey: SupplyItem.stateKey(key)).map(SupplyItem.init(json:)) else {
            throw LedgerError("unknown_item", "no such pack")
        }
        guard item.status.reversible else {
            throw LedgerError("not_reversible", "a pack in state \(item.status.rawValue) cannot be reactivated")
        }
        guard item.statusBy == context.author else {
            throw LedgerError("forbidden", "only the party that decommissioned the pack may reactivate it")
        }
        guard let at = item.statusTime, context.timeMillis <= at + Self.reactivationWindowMillis else {
            throw LedgerError("window_exceeded", "the 240-hour reactivation window has passed")
        }
        if let expiry = item.expiry, expiry < GS1Date(millis: context.timeMillis).iso {
            throw LedgerError("expired", "an expired pack cannot be reactivated")
        }
        if let lot = item.lot, try context.json(forKey: SupplyState.lot(lot))?["recalled"]?.boolValue == true {
            throw LedgerError("recalled", "a pack of a recalled lot cannot be reactivated")
        }
        item.status = .active
        item.statusBy = context.author
        item.statusTime = context.timeMillis
        context.set(SupplyItem.stateKey(key), item.json)
        return item.json
    }

    func lock(_ locking: Bool, _ payload: JSONValue, _ context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        let p = try Payload(payload, allowed: ["item", "reason"])
        let key = try Self.itemKey(p, "item")
        guard var item = try context.json(forKey: SupplyItem.stateKey(key)).map(SupplyItem.init(json:)), let gtin = item.gtin else {
            throw LedgerError("unknown_item", "no such pack")
        }
        let mah = try context.json(forKey: SupplyState.product(gtin))?["mah"]?.stringValue
        let isRegulator = try Self.party(context.author, in: context)?.roles.contains(.regulator) == true
        guard isRegulator || mah == context.author else { throw LedgerError("forbidden", "the MAH or a regulator locks a pack") }
        if locking {
            guard item.status == .active else { throw LedgerError("invalid_state", "only an active pack can be locked (it is \(item.status.rawValue))") }
            item.status = .locked
        } else {
            guard item.status == .locked else { throw LedgerError("invalid_state", "the pack is not locked") }
            item.status = .active
        }
        item.statusBy = context.author
        item.statusTime = context.timeMillis
        context.set(SupplyItem.stateKey(key), item.json)
        return item.json
    }

    func recall(_ payload: JSONValue, _ context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        let p = try Payload(payload, allowed: ["gtin", "lot", "reason"])
        let gtin = try p.string("gtin")
        let lot = try Self.itemKey(p, "lot")
        return try Self.recallLot(gtin: gtin, lot: lot, reason: try p.string("reason", maxLength: 1024), &context)
    }

    static func recallLot(gtin: String, lot: String, reason: String, _ context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        guard let product = try context.json(forKey: SupplyState.product(gtin)) else { throw LedgerError("unknown_product", "GTIN \(gtin) is not registered") }
        let isRegulator = try party(context.author, in: context)?.roles.contains(.regulator) == true
        guard isRegulator || product["mah"]?.stringValue == context.author else {
            throw LedgerError("forbidden", "a lot is recalled by its MAH or a regulator")
        }
        guard var record = try context.json(forKey: SupplyState.lot(lot))?.objectValue, record["gtin"]?.stringValue == gtin else {
            throw LedgerError("unknown_lot", "no lot with that key for GTIN \(gtin)")
        }
        if record["recalled"]?.boolValue == true { throw LedgerError("already_recalled", "the lot is already recalled") }
        record["recalled"] = .bool(true)
        record["recalledBy"] = .string(context.author)
        record["recalledAt"] = .int(Int64(context.height))
        record["reason"] = .string(reason)
        context.set(SupplyState.lot(lot), .object(record))
        context.emit(.object([
            "type": .string("supply.recall"), "gtin": .string(gtin), "lot": .string(lot), "by": .string(context.author),
            "mah": product["mah"] ?? .null, "reason": .string(reason),
        ]))
        return .object(record)
    }

    func alert(_ payload: JSONValue, _ context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        guard try operators.contains(context.author, in: context) else { throw LedgerError("forbidden", "alerts are recorded by a consortium node") }
        // An alert every node raises for one chain event (a lot recalled) names it in `once`: the first
        // node's alert is recorded, the others' are refused, so recipients get one copy.
        if let once = payload["once"]?.stringValue {
            guard try context.json(forKey: SupplyState.alertOnce(once)) == nil else {
                throw LedgerError("already_alerted", "this alert (\(once)) is already recorded")
            }
            context.set(SupplyState.alertOnce(once), .object(["transaction": .string(context.transaction.id.hex)]))
        }
        return try recordAlert(payload.objectValue!, id: context.transaction.id.hex, &context)
    }

    /// Stores an alert under `id`, indexes it in each recipient's inbox and emits `supply.alert`.
    func recordAlert(_ alert: [String: JSONValue], id: String, _ context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        var o = alert
        o["id"] = .string(id)
        o["time"] = .int(Int64(context.timeMillis))
        o["height"] = .int(Int64(context.height))
        context.set(SupplyState.alert(id), .object(o))
        var seen = Set<String>()
        for recipient in (alert["recipients"]?.arrayValue ?? []).compactMap(\.stringValue) where seen.insert(recipient).inserted {
            context.set(SupplyState.inboxPrefix(recipient) + Self.sortable(context.height) + "-" + id, .object([:]))
        }
        var event = o
        event["type"] = .string("supply.alert")
        context.emit(.object(event))
        return .object(o)
    }

    /// Two scans of one pack by two different parties within this window (block time) raise `simultaneous_scans`.
    public static let scanWindowMillis: Int64 = 600_000

    /// `scans` `{"scans": [{"item", "party", "recipients", "gtin"?, "outcome"}]}` by a consortium node: the
    /// verification scans its supply-chain parties made, at the block's time. Per pack the latest scan is
    /// kept; when the previous one was by another party within `scanWindowMillis`, wherever it was made
    /// (any node, any order within a block, before a restart), the contract records a `simultaneous_scans`
    /// alert to the scan's recipients (the MAH, the holder, the verifier), the earlier party and the
    /// regulators — once per pack and scanning party per window.
    func scans(_ payload: JSONValue, _ context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        guard try operators.contains(context.author, in: context) else { throw LedgerError("forbidden", "scans are recorded by a consortium node") }
        let now = Int64(context.timeMillis)
        var alerts = 0
        for (index, scan) in (payload["scans"]?.arrayValue ?? []).enumerated() {
            guard let item = scan["item"]?.stringValue, let party = scan["party"]?.stringValue else { continue }
            let previous = try context.json(forKey: SupplyState.scan(item))
            // The parties whose scan raised the rule for this pack, and when (one alert per party per window).
            var alerted = (previous?["alerted"]?.objectValue ?? [:]).filter { now - ($0.value.intValue ?? 0) <= Self.scanWindowMillis }
            if let previous, let earlier = previous["party"]?.stringValue, let time = previous["time"]?.intValue, earlier != party,
                now - time <= Self.scanWindowMillis, alerted[party] == nil, alerted.count < 64
            {
                var recipients = Set((scan["recipients"]?.arrayValue ?? []).compactMap(\.stringValue) + [party, earlier])
                for r in try context.json(forKey: SupplyState.regulators)?["parties"]?.arrayValue ?? [] { if let did = r.stringValue { recipients.insert(did) } }
                var o: [String: JSONValue] = [
                    "rule": .string("simultaneous_scans"), "outcome": scan["outcome"] ?? .string("verified"), "item": .string(item),
                    "verifier": .string(party), "recipients": .array(recipients.sorted().map { .string($0) }),
                    "detail": .string("scanned by \(earlier) \((now - time) / 1000) s earlier"),
                ]
                if let gtin = scan["gtin"] { o["gtin"] = gtin }
                _ = try recordAlert(o, id: "\(context.transaction.id.hex)-\(index)", &context)
                alerted[party] = .int(now)
                alerts += 1
            }
            var kept: [String: JSONValue] = ["party": .string(party), "time": .int(now)]
            if !alerted.isEmpty { kept["alerted"] = .object(alerted) }
            context.set(SupplyState.scan(item), .object(kept))
        }
        return .object(["alerts": .int(Int64(alerts))])
    }

    /// A zero-padded height, so that inbox keys sort in commit order.
    static func sortable(_ height: UInt64) -> String {
        let s = String(height)
        return String(repeating: "0", count: max(0, 12 - s.count)) + s
    }
}

extension ContractSet {
    /// The supply-chain capability's contract.
    public static let supply = ContractSet { operators in [SupplyContract(operators: operators)] }
}
