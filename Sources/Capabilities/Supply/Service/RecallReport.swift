import ContractKit
import Foundation
import LedgerCore
import Node
import Standards
import Store
import SupplyContract
import Synchronization

/// The recall report: where every pack of a lot is now.
extension SupplyService {
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
