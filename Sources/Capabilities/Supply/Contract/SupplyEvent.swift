import ContractKit
import LedgerCore

/// An EPCIS 2.0 event as the chain holds it: its CBV 2.0 event hash id, type, action, CBV business
/// step and disposition, and the blinded keys of the items it names (serials never in the clear).
/// Derived by the node from the EPCIS document, which itself stays off-chain, encrypted for the parties.
///
/// JSON: `{"hash": 64 hex, "type", "action"?, "bizStep", "disposition"?, "time": ms,
/// "items": [{"key", "gtin"?, "lot"?, "expiry"?}], "parent"?: key, "outputs"?: [item], "to"?: did,
/// "lots"?: [{"gtin", "lot"}]}`; `gtin`, `lot` (blinded) and `expiry` (YYYY-MM-DD) come with commissioning.
public struct SupplyEvent: Sendable, Hashable {
    public enum EventType: String, Sendable { case object = "ObjectEvent", aggregation = "AggregationEvent", transformation = "TransformationEvent" }
    public enum Action: String, Sendable { case add = "ADD", observe = "OBSERVE", delete = "DELETE" }

    public struct Item: Sendable, Hashable {
        public var key: String
        public var gtin: String?
        public var lot: String?
        public var expiry: String?

        public init(key: String, gtin: String? = nil, lot: String? = nil, expiry: String? = nil) {
            self.key = key
            self.gtin = gtin
            self.lot = lot
            self.expiry = expiry
        }

        var json: JSONValue {
            var o: [String: JSONValue] = ["key": .string(key)]
            if let gtin { o["gtin"] = .string(gtin) }
            if let lot { o["lot"] = .string(lot) }
            if let expiry { o["expiry"] = .string(expiry) }
            return .object(o)
        }

        /// `json.canonicalBytes`, written directly (members in key order).
        func writeJSON(into out: inout [UInt8]) {
            var w = JSONObjectWriter()
            w.member("expiry", expiry, into: &out)
            w.member("gtin", gtin, into: &out)
            w.member("key", key, into: &out)
            w.member("lot", lot, into: &out)
            w.end(into: &out)
        }
    }

    public var hash: String
    public var type: EventType
    public var action: Action?
    public var bizStep: String
    public var disposition: String?
    public var timeMillis: Int64
    public var items: [Item]
    public var parent: String?
    public var outputs: [Item]
    public var destination: String?
    /// Class-level lots (GTIN + blinded lot) the event names, e.g. a recall.
    public var lots: [(gtin: String, lot: String)]

    public init(
        hash: String, type: EventType, action: Action?, bizStep: String, disposition: String?, timeMillis: Int64, items: [Item],
        parent: String? = nil, outputs: [Item] = [], destination: String? = nil, lots: [(gtin: String, lot: String)] = []
    ) {
        self.hash = hash
        self.type = type
        self.action = action
        self.bizStep = bizStep
        self.disposition = disposition
        self.timeMillis = timeMillis
        self.items = items
        self.parent = parent
        self.outputs = outputs
        self.destination = destination
        self.lots = lots
    }

    /// Field by field (the JSON form holds every field, so equal events have equal JSON).
    public static func == (a: SupplyEvent, b: SupplyEvent) -> Bool {
        a.hash == b.hash && a.type == b.type && a.action == b.action && a.bizStep == b.bizStep && a.disposition == b.disposition
            && a.timeMillis == b.timeMillis && a.items == b.items && a.parent == b.parent && a.outputs == b.outputs
            && a.destination == b.destination && a.lots.map(\.gtin) == b.lots.map(\.gtin) && a.lots.map(\.lot) == b.lots.map(\.lot)
    }
    public func hash(into hasher: inout Hasher) { hasher.combine(hash) }

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "hash": .string(hash), "type": .string(type.rawValue), "bizStep": .string(bizStep), "time": .int(timeMillis),
            "items": .array(items.map(\.json)),
        ]
        if let action { o["action"] = .string(action.rawValue) }
        if let disposition { o["disposition"] = .string(disposition) }
        if let parent { o["parent"] = .string(parent) }
        if !outputs.isEmpty { o["outputs"] = .array(outputs.map(\.json)) }
        if let destination { o["to"] = .string(destination) }
        if !lots.isEmpty { o["lots"] = .array(lots.map { .object(["gtin": .string($0.gtin), "lot": .string($0.lot)]) }) }
        return .object(o)
    }

    /// `json.canonicalBytes`, written directly (members in key order, no intermediate `JSONValue`):
    /// a node writes the payload of the events it derives this way (PackLifecycleTests compares both
    /// on generated events).
    public func writeJSON(into out: inout [UInt8]) {
        func list(_ items: [Item], _ out: inout [UInt8]) {
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.writeJSON(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        var w = JSONObjectWriter()
        w.member("action", action?.rawValue, into: &out)
        w.member("bizStep", bizStep, into: &out)
        w.member("disposition", disposition, into: &out)
        w.member("hash", hash, into: &out)
        w.key("items", into: &out)
        list(items, &out)
        if !lots.isEmpty {
            w.key("lots", into: &out)
            out.append(UInt8(ascii: "["))
            for (i, lot) in lots.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                var l = JSONObjectWriter()
                l.member("gtin", lot.gtin, into: &out)
                l.member("lot", lot.lot, into: &out)
                l.end(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        if !outputs.isEmpty {
            w.key("outputs", into: &out)
            list(outputs, &out)
        }
        w.member("parent", parent, into: &out)
        w.key("time", into: &out)
        JSONValue.writeInteger(timeMillis, into: &out)
        w.member("to", destination, into: &out)
        w.member("type", type.rawValue, into: &out)
        w.end(into: &out)
    }

    /// The rules `init(json:)` applies to the values, for an event built by a node rather than read
    /// from JSON: it passes exactly when the event's JSON would decode (PackLifecycleTests compares
    /// both on generated valid and broken events).
    public func check() throws(LedgerError) {
        func text(_ field: String, _ value: String, _ maxLength: Int) throws(LedgerError) {
            guard !value.isEmpty, value.utf8.count <= maxLength else {
                throw LedgerError("bad_payload", "\(field) must be a string of 1 to \(maxLength) bytes")
            }
        }
        func key(_ field: String, _ value: String) throws(LedgerError) {
            try text(field, value, 64)
            guard value.utf8.count == 64, Hex.isHex(value) else { throw LedgerError("bad_payload", "\(field) must be a 64-hex blinded key") }
        }
        try text("hash", hash, 64)
        guard hash.utf8.count == 64, Hex.isHex(hash) else { throw LedgerError("bad_payload", "event hash must be 64 hex digits") }
        for list in [items, outputs] {
            guard list.count <= 100_000 else { throw LedgerError("bad_payload", "too many items in one event") }
            for item in list {
                try key("key", item.key)
                if let gtin = item.gtin { try text("gtin", gtin, 14) }
                if let lot = item.lot { try key("lot", lot) }
                if let expiry = item.expiry { try text("expiry", expiry, 10) }
                if let gtin = item.gtin, !SupplyContract.isGS1Key(gtin, length: 14) { throw LedgerError("bad_payload", "bad GTIN \(gtin)") }
            }
        }
        for lot in lots {
            try text("gtin", lot.gtin, 14)
            try key("lot", lot.lot)
        }
        try text("bizStep", bizStep, 64)
        if let disposition { try text("disposition", disposition, 64) }
        if let parent { try key("parent", parent) }
        if let destination {
            try text("to", destination, 256)
            _ = try PublicKey(did: destination)
        }
    }

    static let fields: Set<String> = ["hash", "type", "action", "bizStep", "disposition", "time", "items", "parent", "outputs", "to", "lots"]

    public init(json: JSONValue) throws(LedgerError) {
        let p = try Payload(json, allowed: Self.fields)
        let hash = try p.string("hash", maxLength: 64)
        guard hash.utf8.count == 64, Hex.isHex(hash) else { throw LedgerError("bad_payload", "event hash must be 64 hex digits") }
        guard let type = EventType(rawValue: try p.string("type")) else { throw LedgerError("bad_payload", "unknown event type") }
        let action = try p.optionalString("action").map { (a: String) throws(LedgerError) -> Action in
            guard let action = Action(rawValue: a) else { throw LedgerError("bad_payload", "action is ADD, OBSERVE or DELETE") }
            return action
        }
        func items(_ field: String) throws(LedgerError) -> [Item] {
            guard let list = p.fields[field]?.arrayValue else { return [] }
            guard list.count <= 100_000 else { throw LedgerError("bad_payload", "too many items in one event") }
            var out: [Item] = []
            out.reserveCapacity(list.count)
            for entry in list {
                let q = try Payload(entry, allowed: ["key", "gtin", "lot", "expiry"])
                let item = Item(
                    key: try SupplyContract.itemKey(q, "key"), gtin: try q.optionalString("gtin", maxLength: 14),
                    lot: try q.fields["lot"] == nil ? nil : SupplyContract.itemKey(q, "lot"), expiry: try q.optionalString("expiry", maxLength: 10))
                if let gtin = item.gtin, !SupplyContract.isGS1Key(gtin, length: 14) { throw LedgerError("bad_payload", "bad GTIN \(gtin)") }
                out.append(item)
            }
            return out
        }
        var lots: [(gtin: String, lot: String)] = []
        for entry in p.fields["lots"]?.arrayValue ?? [] {
            let q = try Payload(entry, allowed: ["gtin", "lot"])
            lots.append((try q.string("gtin", maxLength: 14), try SupplyContract.itemKey(q, "lot")))
        }
        self.init(
            hash: hash, type: type, action: action, bizStep: try p.string("bizStep", maxLength: 64),
            disposition: try p.optionalString("disposition", maxLength: 64), timeMillis: try p.int("time"), items: try items("items"),
            parent: try p.fields["parent"] == nil ? nil : SupplyContract.itemKey(p, "parent"), outputs: try items("outputs"),
            destination: try p.optionalDID("to"), lots: lots)
    }
}
