import ContractKit
import LedgerCore
import Standards

/// The blinding of serial-level identifiers: the chain never holds a GTIN+serial, SSCC or lot in the
/// clear, only HMAC-SHA256 of it under a key derived from the consortium secret (`blindingLabel`),
/// so nobody holding a copy of the chain can enumerate serials; a node that holds the secret
/// computes the key of a scanned pack.
public struct SupplyKeys: Sendable {
    /// HMAC-SHA256 keyed once with the blinding key.
    private let prepared: PreparedHMAC

    /// The label of the serial-blinding key derived from the consortium secret.
    public static let blindingLabel = "careledger serial blinding v1"

    public init(secret: ConsortiumSecret) { prepared = PreparedHMAC(key: secret.key(label: Self.blindingLabel)) }

    func key(_ parts: String...) -> String {
        Hex.encode(prepared.code(Array(parts.joined(separator: "\u{1D}").utf8)))
    }

    /// A serialised pack: GTIN (14 digits) + serial (AI 21).
    public func pack(gtin: String, serial: String) -> String { key("01", gtin, "21", serial) }
    /// A logistic unit (SSCC, AI 00).
    public func container(sscc: String) -> String { key("00", sscc) }
    /// An EPCIS event, by its CBV 2.0 hash (hex): the chain's de-duplication key.
    public func event(_ hashHex: String) -> String { key("event", hashHex) }

    /// An EPCIS document, by its canonical bytes: its id in the vault's sealed copy.
    public func document(_ canonicalBytes: [UInt8]) -> String {
        Hex.encode(prepared.code(Array("document\u{1D}".utf8), canonicalBytes))
    }

    /// A batch of a product (AI 01 + AI 10).
    public func lot(gtin: String, lot: String) -> String { key("01", gtin, "10", lot) }
}

/// Roles of an organisation in the supply chain (checked by the contract).
public enum SupplyRole: String, Sendable, CaseIterable {
    case manufacturer, mah, wholesaler, logistics, pharmacy, hospital, regulator

    /// Roles that hold stock and dispense or sell it.
    public static let holders: Set<SupplyRole> = [.wholesaler, .logistics, .pharmacy, .hospital]
    /// Roles that dispense to patients (EU FMD: pharmacies and hospitals decommission at the point of supply).
    public static let dispensers: Set<SupplyRole> = [.pharmacy, .hospital]
}

/// The state of a serialised pack (EU FMD pack states; `active` is saleable).
public enum PackStatus: String, Sendable, CaseIterable {
    case active, dispensed, destroyed, stolen, sample, freeSample = "free_sample", exported, checkedOut = "checked_out", locked
    case decommissioned

    /// States that may be undone by the same party within the reactivation window (Regulation (EU)
    /// 2016/161 Art. 13); stolen and destroyed never, locked by unlocking.
    public var reversible: Bool { [.dispensed, .sample, .freeSample, .exported, .checkedOut, .decommissioned].contains(self) }
}

/// A serialised item on the chain: a pack (GTIN + serial) or a container (SSCC) holding items.
public struct SupplyItem: Sendable, Hashable {
    public enum Kind: String, Sendable { case pack, container }
    public enum Custody: String, Sendable { case held, inTransit = "in_transit" }

    public var kind: Kind
    public var gtin: String?
    public var lot: String?
    public var expiry: String?
    public var status: PackStatus
    public var owner: String
    public var custody: Custody
    /// The receiver of a shipment in transit.
    public var destination: String?
    /// The container this item is packed in (custody then follows the container).
    public var parent: String?
    public var children: [String]
    public var commissionedAt: UInt64
    /// Who changed the status last, and when (block time, ms): for the reactivation rule.
    public var statusBy: String?
    public var statusTime: UInt64?
    /// The hash key of the commissioning event that created the item (`SupplyEvent.hash`): that
    /// event's de-duplication record (such an event has no `supply/event/` entry of its own).
    /// Absent on items commissioned otherwise, or before this field existed.
    public var event: String?

    public static func stateKey(_ key: String) -> String { "supply/item/\(key)" }

    /// The containers an item is in, innermost first (at most 16 levels; custody follows the outermost).
    public func containers(load: (String) throws(LedgerError) -> SupplyItem?) throws(LedgerError) -> [(key: String, item: SupplyItem)] {
        var out: [(key: String, item: SupplyItem)] = []
        var current = self
        while let parent = current.parent {
            guard out.count < 16 else { throw LedgerError("corrupt_state", "containers nested too deep") }
            guard let container = try load(parent) else { throw LedgerError("corrupt_state", "container \(parent.prefix(12))… is missing") }
            out.append((parent, container))
            current = container
        }
        return out
    }

    public init(kind: Kind, gtin: String?, lot: String?, expiry: String?, owner: String, commissionedAt: UInt64) {
        self.kind = kind
        self.gtin = gtin
        self.lot = lot
        self.expiry = expiry
        self.status = .active
        self.owner = owner
        self.custody = .held
        self.destination = nil
        self.parent = nil
        self.children = []
        self.commissionedAt = commissionedAt
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "kind": .string(kind.rawValue), "status": .string(status.rawValue), "owner": .string(owner), "custody": .string(custody.rawValue),
            "commissionedAt": .int(Int64(commissionedAt)),
        ]
        if let gtin { o["gtin"] = .string(gtin) }
        if let lot { o["lot"] = .string(lot) }
        if let expiry { o["expiry"] = .string(expiry) }
        if let destination { o["destination"] = .string(destination) }
        if let parent { o["parent"] = .string(parent) }
        if !children.isEmpty { o["children"] = .array(children.map { .string($0) }) }
        if let statusBy { o["statusBy"] = .string(statusBy) }
        if let statusTime { o["statusTime"] = .int(Int64(statusTime)) }
        if let event { o["event"] = .string(event) }
        return .object(o)
    }

    /// `json.canonicalBytes`, written directly (members in key order): what the lifecycle stores.
    public var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + 67 * children.count)
        var w = JSONObjectWriter()
        if !children.isEmpty {
            w.key("children", into: &out)
            out.append(UInt8(ascii: "["))
            for (i, child) in children.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(child, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        w.key("commissionedAt", into: &out)
        JSONValue.writeInteger(Int64(commissionedAt), into: &out)
        w.member("custody", custody.rawValue, into: &out)
        w.member("destination", destination, into: &out)
        w.member("event", event, into: &out)
        w.member("expiry", expiry, into: &out)
        w.member("gtin", gtin, into: &out)
        w.member("kind", kind.rawValue, into: &out)
        w.member("lot", lot, into: &out)
        w.member("owner", owner, into: &out)
        w.member("parent", parent, into: &out)
        w.member("status", status.rawValue, into: &out)
        w.member("statusBy", statusBy, into: &out)
        if let statusTime {
            w.key("statusTime", into: &out)
            JSONValue.writeInteger(Int64(statusTime), into: &out)
        }
        w.end(into: &out)
        return out
    }

    /// An item's stored bytes: read directly when they are of the flat shape `canonicalBytes`
    /// writes (`FlatJSONObject`), else parsed as JSON; the same item either way (tested).
    public init(stored bytes: [UInt8]) throws(LedgerError) {
        if let item = Self.flat(bytes) {
            self = item
        } else {
            try self.init(json: JSONValue.parse(bytes))
        }
    }

    static func flat(_ bytes: [UInt8]) -> SupplyItem? {
        var kind: Kind?, status: PackStatus?, owner: String?, custody: Custody?, at: Int64?
        var item = SupplyItem(kind: .pack, gtin: nil, lot: nil, expiry: nil, owner: "", commissionedAt: 0)
        let read = FlatJSONObject.read(bytes) { key, value in
            switch (key, value) {
            case ("kind", .string(let s)): kind = Kind(rawValue: s)
            case ("status", .string(let s)): status = PackStatus(rawValue: s)
            case ("owner", .string(let s)): owner = s
            case ("custody", .string(let s)): custody = Custody(rawValue: s)
            case ("commissionedAt", .int(let n)): at = n
            case ("gtin", .string(let s)): item.gtin = s
            case ("lot", .string(let s)): item.lot = s
            case ("expiry", .string(let s)): item.expiry = s
            case ("destination", .string(let s)): item.destination = s
            case ("parent", .string(let s)): item.parent = s
            case ("children", .strings(let list)): item.children = list
            case ("statusBy", .string(let s)): item.statusBy = s
            case ("statusTime", .int(let n)): item.statusTime = UInt64(n)
            case ("event", .string(let s)): item.event = s
            // Other members are ignored, as `init(json:)` ignores unknown ones and optional ones of
            // another type; a required one of another type stays nil and sends the bytes to it.
            default: break
            }
            return true
        }
        guard read, let kind, let status, let owner, let custody, let at else { return nil }
        item.kind = kind
        item.status = status
        item.owner = owner
        item.custody = custody
        item.commissionedAt = UInt64(at)
        return item
    }

    public init(json: JSONValue) throws(LedgerError) {
        guard let kind = json["kind"]?.stringValue.flatMap(Kind.init(rawValue:)),
            let status = json["status"]?.stringValue.flatMap(PackStatus.init(rawValue:)), let owner = json["owner"]?.stringValue,
            let custody = json["custody"]?.stringValue.flatMap(Custody.init(rawValue:)),
            let at = json["commissionedAt"]?.intValue.flatMap({ UInt64(exactly: $0) })
        else { throw LedgerError("corrupt_state", "bad supply item") }
        // A negative status time is a damaged record, not a trap.
        let statusTime = try json["statusTime"]?.intValue.map { (t: Int64) throws(LedgerError) -> UInt64 in
            guard let time = UInt64(exactly: t) else { throw LedgerError("corrupt_state", "bad supply item status time") }
            return time
        }
        self.kind = kind
        self.gtin = json["gtin"]?.stringValue
        self.lot = json["lot"]?.stringValue
        self.expiry = json["expiry"]?.stringValue
        self.status = status
        self.owner = owner
        self.custody = custody
        self.destination = json["destination"]?.stringValue
        self.parent = json["parent"]?.stringValue
        self.children = json["children"]?.arrayValue?.compactMap(\.stringValue) ?? []
        self.commissionedAt = at
        self.statusBy = json["statusBy"]?.stringValue
        self.statusTime = statusTime
        self.event = json["event"]?.stringValue
    }
}

/// Paths of the supply contract's state.
public enum SupplyState {
    public static func party(_ did: String) -> String { "supply/party/\(did)" }
    public static func location(_ gln: String) -> String { "supply/gln/\(gln)" }
    public static func product(_ gtin: String) -> String { "supply/product/\(gtin)" }
    public static func lot(_ lotKey: String) -> String { "supply/lot/\(lotKey)" }
    /// The packs of a lot: entries under this prefix, one per transaction that commissioned packs of
    /// the lot (`{"items": [item keys]}`, keyed by the transaction id). Chains written before that
    /// layout have one entry per pack instead, keyed by the item key with an empty object.
    public static func lotItemPrefix(_ lotKey: String) -> String { "supply/lotitem/\(lotKey)/" }
    public static func lotItems(_ lotKey: String, transaction: String) -> String { lotItemPrefix(lotKey) + "tx-" + transaction }
    /// An applied event's de-duplication record, except for a commissioning ObjectEvent with items:
    /// those items' records name the event (`SupplyItem.event`) and no entry is written (one state
    /// entry fewer per commissioning event). Chains written before have an entry for every event.
    public static func event(_ hash: String) -> String { "supply/event/\(hash)" }
    /// A sealed EPCIS document's metadata: salted hash, wrapped keys, author, the node holding it.
    public static func document(_ id: String) -> String { "supply/document/\(id)" }
    public static let regulators = "supply/regulators"
    public static func alert(_ id: String) -> String { "supply/alert/\(id)" }
    public static func alertOnce(_ once: String) -> String { "supply/alert-once/\(once)" }
    /// The latest verification scan of a pack by a supply-chain party that a node recorded (party, time):
    /// how two scans at two places are seen when they happen at two different nodes, or across a restart.
    public static func scan(_ key: String) -> String { "supply/scan/\(key)" }
    /// Index of the alerts addressed to a party, listed by prefix.
    public static func inboxPrefix(_ did: String) -> String { "supply/inbox/\(did)/" }
}

extension GS1Date {
    /// The calendar date (UTC) of a block time in milliseconds.
    public init(millis: UInt64) { self.init(daysSinceEpoch: Int(millis / 86_400_000)) }
}
