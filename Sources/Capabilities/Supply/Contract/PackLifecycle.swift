import ContractKit
import LedgerCore
import Standards

/// The serial-level state machine, applied event by event (CBV 2.0 business steps):
/// commissioning (by the product's MAH or a named manufacturer) → packing into containers →
/// shipping (custody in transit to the receiver) → receiving (by that receiver only) → dispensing or
/// another decommissioning (destroying, stolen, …). Operations on a container apply to its contents;
/// an item inside a container cannot move on its own until it is unpacked.
struct PackLifecycle {
    var context: ExecutionContext
    var author: String { context.author }
    /// Product and lot records read during this transaction (a document commissions hundreds of
    /// packs of one product and lot); lots are forgotten when an event recalls one.
    private var products: [String: JSONValue] = [:]
    private var lots: [String: JSONValue] = [:]
    /// The packs this transaction commissioned, by lot, in order: one state entry per lot and
    /// transaction (`SupplyState.lotItems`) rather than one per pack.
    private var commissioned: [(lot: String, items: [String])] = []
    /// Supply-chain parties read during this transaction (its events do not change them): the
    /// author, and the receivers its shipments name again and again.
    private var parties: [String: (roles: Set<SupplyRole>, prefixes: [String])?] = [:]

    init(context: ExecutionContext) { self.context = context }

    mutating func apply(_ payload: JSONValue) throws(LedgerError) -> JSONValue {
        let list = payload["events"]!.arrayValue!
        guard try party(author) != nil else {
            throw LedgerError("forbidden", "\(author) is not a supply-chain party")
        }
        var duplicates: [JSONValue] = []
        var applied = 0
        // Events the node derived itself come typed with the transaction (its payload was built from
        // them, and admission decoded the payload once already); others are decoded here.
        let typed = (context.transaction.decoded as? [SupplyEvent]).flatMap { $0.count == list.count ? $0 : nil }
        for (index, json) in list.enumerated() {
            let event: SupplyEvent
            if let typed { event = typed[index] } else { event = try SupplyEvent(json: json) }
            let recordedOnItems = Self.recordedOnItems(event)
            let eventKey = SupplyState.event(event.hash)
            if try context.value(forKey: eventKey) != nil {
                duplicates.append(.string(event.hash))
                continue
            }
            if recordedOnItems, let first = try find(event.items[0].key), first.event == event.hash {
                duplicates.append(.string(event.hash))
                continue
            }
            do throws(LedgerError) {
                try apply(event)
            } catch {
                throw LedgerError(error.code, "event \(index) (\(event.bizStep)): \(error.message)")
            }
            if !recordedOnItems { context.set(eventKey, .object(["height": .int(Int64(context.height)), "by": .string(author)])) }
            applied += 1
        }
        let transaction = context.transaction.id.hex
        for (lot, items) in commissioned {
            context.set(SupplyState.lotItems(lot, transaction: transaction), .object(["items": .array(items.map { .string($0) })]))
        }
        return .object(["applied": .int(Int64(applied)), "duplicates": .array(duplicates)])
    }

    /// A commissioning ObjectEvent with items is recorded in its items' records (`SupplyItem.event`)
    /// rather than in a `supply/event/` entry: it creates every one of them, so the first item's
    /// record tells whether the event was applied (and an item made by another event refuses it).
    static func recordedOnItems(_ e: SupplyEvent) -> Bool {
        e.type == .object && e.bizStep == "commissioning" && e.disposition != "recalled" && !e.items.isEmpty
    }

    mutating func apply(_ e: SupplyEvent) throws(LedgerError) {
        if e.disposition == "recalled" {
            // A recall is of a lot (batch): an event over an LGTIN quantity. Naming single packs would
            // recall nothing the verification knows of, so it is refused rather than silently accepted.
            guard !e.lots.isEmpty else {
                throw LedgerError("bad_event", "a recall names the lot: an ObjectEvent with disposition recalled over an LGTIN quantityList (or POST /v1/supply/recalls)")
            }
            lots = [:]
            for lot in e.lots { _ = try SupplyContract.recallLot(gtin: lot.gtin, lot: lot.lot, reason: "EPCIS recall event", &context) }
            return
        }
        switch (e.type, e.bizStep) {
        case (.object, "commissioning"):
            guard e.action == .add else { throw LedgerError("bad_event", "commissioning is an ObjectEvent with action ADD") }
            for item in e.items { try commission(item, event: e.hash) }
        case (.transformation, _):
            for input in e.items { try setStatus(input.key, .decommissioned, recursive: false) }
            for output in e.outputs { try commission(output, event: nil) }
        case (.aggregation, _) where e.action == .add:
            try pack(e)
        case (.aggregation, _) where e.action == .delete:
            try unpack(e)
        case (.object, "shipping"):
            guard let to = e.destination else { throw LedgerError("bad_event", "a shipping event names the receiving party (destinationList owning_party)") }
            guard try party(to) != nil else { throw LedgerError("unknown_party", "the receiver \(to) is not a supply-chain party") }
            for item in e.items { try ship(item.key, to: to) }
        case (.object, "returning"):
            // Goods sent back (e.g. to the wholesaler): custody moves like a shipment, to the named party,
            // who receives them with a receiving event.
            guard let to = e.destination else { throw LedgerError("bad_event", "a returning event names the party the items go back to (destinationList owning_party)") }
            guard try party(to) != nil else { throw LedgerError("unknown_party", "the receiver \(to) is not a supply-chain party") }
            for item in e.items { try ship(item.key, to: to) }
        case (.object, "receiving"):
            for item in e.items { try receive(item.key) }
        case (.object, "void_shipping"):
            for item in e.items { try voidShipping(item.key) }
        case (.object, "dispensing"), (.object, "retail_selling"):
            guard let roles = try party(author)?.roles, !roles.isDisjoint(with: SupplyRole.dispensers) else {
                throw LedgerError("forbidden", "only a pharmacy or a hospital dispenses to patients")
            }
            for item in e.items { try setStatus(item.key, .dispensed, recursive: false) }
        case (.object, "sampling"):
            for item in e.items { try setStatus(item.key, .sample, recursive: true) }
        case (.object, "destroying"):
            for item in e.items { try setStatus(item.key, .destroyed, recursive: true) }
        case (.object, "decommissioning"):
            let status: PackStatus =
                switch e.disposition {
                case "stolen": .stolen
                case "destroyed", "disposed": .destroyed
                case "dispensed": .dispensed
                default: .decommissioned
                }
            for item in e.items { try setStatus(item.key, status, recursive: true) }
        case (.object, _) where e.disposition == "stolen":
            for item in e.items { try setStatus(item.key, .stolen, recursive: true) }
        default:
            // Observations (inspecting, storing, holding…): the items must exist; nothing changes.
            for item in e.items { _ = try load(item.key) }
        }
    }

    mutating func party(_ did: String) throws(LedgerError) -> (roles: Set<SupplyRole>, prefixes: [String])? {
        if let known = parties[did] { return known }
        let record = try SupplyContract.party(did, in: context)
        parties[did] = .some(record)
        return record
    }

    // MARK: Items

    func load(_ key: String) throws(LedgerError) -> SupplyItem {
        guard let bytes = try context.value(forKey: SupplyItem.stateKey(key)) else {
            throw LedgerError("unknown_item", "item \(key.prefix(12))… was never commissioned")
        }
        return try SupplyItem(stored: bytes)
    }

    mutating func save(_ key: String, _ item: SupplyItem) {
        assert(item.canonicalBytes == item.json.canonicalBytes, "an item's bytes must be its canonical JSON")
        context.set(SupplyItem.stateKey(key), canonicalJSON: item.canonicalBytes)
    }

    /// The outermost container of an item (custody follows it), or the item itself when loose.
    func holder(_ item: SupplyItem) throws(LedgerError) -> SupplyItem {
        try item.containers(load: find).last?.item ?? item
    }

    func find(_ key: String) throws(LedgerError) -> SupplyItem? {
        try context.value(forKey: SupplyItem.stateKey(key)).map { (bytes: [UInt8]) throws(LedgerError) in try SupplyItem(stored: bytes) }
    }

    /// The author must hold the item (through its outermost container), not in transit.
    /// `loaded`: the item's record when the caller has read it already.
    func requireHeld(_ key: String, loaded: SupplyItem? = nil) throws(LedgerError) {
        let item: SupplyItem
        if let loaded { item = loaded } else { item = try load(key) }
        let holder = try holder(item)
        guard holder.owner == author, holder.custody == .held else {
            throw LedgerError(
                "custody_violation", "item \(key.prefix(12))… is \(holder.custody == .inTransit ? "in transit" : "held") by another party")
        }
    }

    /// `event`: the commissioning event's hash key when the item records it (`recordedOnItems`).
    mutating func commission(_ item: SupplyEvent.Item, event: String?) throws(LedgerError) {
        guard try context.value(forKey: SupplyItem.stateKey(item.key)) == nil else {
            throw LedgerError("already_commissioned", "item \(item.key.prefix(12))… is already commissioned")
        }
        guard let gtin = item.gtin else {
            var container = SupplyItem(kind: .container, gtin: nil, lot: nil, expiry: nil, owner: author, commissionedAt: context.height)
            container.event = event
            save(item.key, container)
            return
        }
        let product: JSONValue
        if let known = products[gtin] {
            product = known
        } else {
            guard let record = try context.json(forKey: SupplyState.product(gtin)) else {
                throw LedgerError("unknown_product", "GTIN \(gtin) is not a registered product")
            }
            products[gtin] = record
            product = record
        }
        let manufacturers = product["manufacturers"]?.arrayValue?.compactMap(\.stringValue) ?? []
        guard product["mah"]?.stringValue == author || manufacturers.contains(author) else {
            throw LedgerError("forbidden", "packs of \(gtin) are commissioned by its MAH or a named manufacturer")
        }
        guard let lot = item.lot, let expiry = item.expiry else {
            throw LedgerError("bad_event", "commissioning a pack needs its lot and expiry date (ilmd)")
        }
        var known = lots[lot]
        if known == nil { known = try context.json(forKey: SupplyState.lot(lot)) }
        if let record = known {
            lots[lot] = record
            guard record["gtin"]?.stringValue == gtin else { throw LedgerError("conflict", "lot key belongs to another product") }
            if record["recalled"]?.boolValue == true { throw LedgerError("recalled", "the lot is recalled") }
        } else {
            let record: JSONValue = .object(["gtin": .string(gtin), "recalled": .bool(false), "mah": product["mah"]!])
            context.set(SupplyState.lot(lot), record)
            lots[lot] = record
        }
        if let i = commissioned.firstIndex(where: { $0.lot == lot }) {
            commissioned[i].items.append(item.key)
        } else {
            commissioned.append((lot, [item.key]))
        }
        var pack = SupplyItem(kind: .pack, gtin: gtin, lot: lot, expiry: expiry, owner: author, commissionedAt: context.height)
        pack.event = event
        save(item.key, pack)
    }

    mutating func pack(_ e: SupplyEvent) throws(LedgerError) {
        guard let parentKey = e.parent else { throw LedgerError("bad_event", "an aggregation names its parent") }
        var parent: SupplyItem
        if try context.value(forKey: SupplyItem.stateKey(parentKey)) == nil {
            parent = SupplyItem(kind: .container, gtin: nil, lot: nil, expiry: nil, owner: author, commissionedAt: context.height)
        } else {
            parent = try load(parentKey)
            try requireHeld(parentKey, loaded: parent)
            guard parent.kind == .container else { throw LedgerError("bad_event", "a pack cannot contain other items") }
        }
        // The parent and its containers: none of the children may be one of them (no container inside itself).
        let ancestors = Set([parentKey] + (try parent.containers(load: find)).map(\.key))
        for child in e.items {
            guard !ancestors.contains(child.key) else { throw LedgerError("bad_event", "an item cannot contain itself or a container it is in") }
            var item = try load(child.key)
            if item.parent == parentKey { continue }
            guard item.parent == nil else { throw LedgerError("custody_violation", "item \(child.key.prefix(12))… is already packed elsewhere") }
            try requireHeld(child.key, loaded: item)
            guard item.status == .active else { throw LedgerError("invalid_state", "a \(item.status.rawValue) pack cannot be packed") }
            item.parent = parentKey
            parent.children.append(child.key)
            save(child.key, item)
        }
        save(parentKey, parent)
    }

    mutating func unpack(_ e: SupplyEvent) throws(LedgerError) {
        guard let parentKey = e.parent else { throw LedgerError("bad_event", "a disaggregation names its parent") }
        var parent = try load(parentKey)
        try requireHeld(parentKey, loaded: parent)
        let holder = try holder(parent)
        let keys = e.items.isEmpty ? parent.children : e.items.map(\.key)
        for key in keys {
            var item = try load(key)
            guard item.parent == parentKey else { throw LedgerError("bad_event", "item \(key.prefix(12))… is not in that container") }
            item.parent = nil
            item.owner = holder.owner
            item.custody = .held
            item.destination = nil
            parent.children.removeAll { $0 == key }
            save(key, item)
        }
        save(parentKey, parent)
    }

    mutating func ship(_ key: String, to: String) throws(LedgerError) {
        var item = try load(key)
        guard item.parent == nil else { throw LedgerError("custody_violation", "item \(key.prefix(12))… is inside a container: ship the container") }
        try requireHeld(key, loaded: item)
        guard item.status == .active else { throw LedgerError("invalid_state", "a \(item.status.rawValue) pack cannot be shipped") }
        item.custody = .inTransit
        item.destination = to
        save(key, item)
    }

    mutating func receive(_ key: String) throws(LedgerError) {
        var item = try load(key)
        guard item.parent == nil, item.custody == .inTransit, item.destination == author else {
            throw LedgerError("custody_violation", "item \(key.prefix(12))… was not shipped to \(author)")
        }
        item.owner = author
        item.custody = .held
        item.destination = nil
        save(key, item)
    }

    mutating func voidShipping(_ key: String) throws(LedgerError) {
        var item = try load(key)
        guard item.owner == author, item.custody == .inTransit else { throw LedgerError("custody_violation", "no shipment of this item to void") }
        item.custody = .held
        item.destination = nil
        save(key, item)
    }

    mutating func setStatus(_ key: String, _ status: PackStatus, recursive: Bool) throws(LedgerError) {
        var item = try load(key)
        try requireHeld(key, loaded: item)
        if item.kind == .pack {
            guard item.status == .active else {
                throw LedgerError("already_decommissioned", "pack \(key.prefix(12))… is already \(item.status.rawValue)")
            }
            item.status = status
            item.statusBy = author
            item.statusTime = context.timeMillis
            save(key, item)
        } else {
            guard recursive else { throw LedgerError("bad_event", "\(status.rawValue) applies to packs, not to a container") }
            for child in item.children {
                let inner = try load(child)
                if inner.kind == .container || inner.status == .active { try setStatus(child, status, recursive: true) }
            }
        }
    }
}
