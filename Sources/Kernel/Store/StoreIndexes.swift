import Foundation
import GRDB
import LedgerCore

/// What the store keeps in memory so that a commit only appends rows: each state key's row and
/// the keys in order (the `state` table has no key index), and each transaction's leaf by id (the
/// `transactions` table has no id index). Built from the database when a store opens; a commit
/// plans its rows from it and brings it up to date once SQLite has committed.
struct StoreIndexes: Sendable {
    /// Row (`seq`) of each state key.
    private(set) var stateRows: [String: Int64] = [:]
    private(set) var stateKeys = SortedKeys()
    private var nextStateRow: Int64 = 1
    /// Leaf index by the first 8 bytes of a transaction id; ids sharing those bytes go to `sharedPrefixes`.
    private var leaves: [UInt64: UInt64] = [:]
    private var sharedPrefixes: [UInt64: [UInt64]] = [:]

    init() {}

    init(_ db: Database) throws {
        let rows = try Row.fetchCursor(db, sql: "SELECT seq, key FROM state")
        while let row = try rows.next() {
            let seq: Int64 = row[0], key: String = row[1]
            // Two rows of one key can only come from editing the file; the audit names it.
            if let other = stateRows[key] { stateRows[key] = max(other, seq) } else { stateRows[key] = seq }
            stateKeys.insert(key)
            nextStateRow = max(nextStateRow, seq + 1)
        }
        let ids = try Row.fetchCursor(db, sql: "SELECT leaf_index, id FROM transactions")
        while let row = try ids.next() {
            let leaf = UInt64(row[0] as Int64), id: Data = row[1]
            addLeaf(id.prefix(8).withUnsafeBytes { $0.count == 8 ? $0.loadUnaligned(as: UInt64.self) : 0 }, leaf)
        }
    }

    /// For each write, the row it replaces (or deletes) and the row of its new value.
    struct Plan: Sendable {
        var rows: [(old: Int64?, new: Int64?)] = []
        var keys: [String] = []
        var next: Int64 = 0
    }

    /// Rows for `writes` after the rows committed so far (a key written twice: the second write replaces the first's row).
    func plan(_ writes: [(key: String, value: [UInt8]?)]) -> Plan {
        var plan = Plan()
        plan.next = nextStateRow
        plan.rows.reserveCapacity(writes.count)
        plan.keys.reserveCapacity(writes.count)
        var planned: [String: Int64?] = [:]
        planned.reserveCapacity(writes.count)
        for w in writes {
            var new: Int64?
            if w.value != nil {
                new = plan.next
                plan.next += 1
            }
            let old = planned.updateValue(new, forKey: w.key) ?? stateRows[w.key]
            plan.rows.append((old, new))
            plan.keys.append(w.key)
        }
        return plan
    }

    /// Records a committed plan and the leaves of committed transactions.
    mutating func apply(_ plan: Plan, transactions: [TransactionOutcome]) {
        for (key, row) in zip(plan.keys, plan.rows) {
            if let new = row.new {
                if stateRows.updateValue(new, forKey: key) == nil { stateKeys.insert(key) }
            } else if stateRows.removeValue(forKey: key) != nil {
                stateKeys.remove(key)
            }
        }
        nextStateRow = max(nextStateRow, plan.next)
        for t in transactions { addLeaf(t.transaction.id.prefix64, t.leafIndex) }
    }

    private mutating func addLeaf(_ prefix: UInt64, _ leaf: UInt64) {
        if let first = leaves.updateValue(leaf, forKey: prefix), first != leaf {
            leaves[prefix] = first
            sharedPrefixes[prefix, default: []].append(leaf)
        }
    }

    /// The leaves whose transaction id may be `id` (those whose id starts with the same 8 bytes).
    func leaves(_ id: Hash) -> [UInt64] {
        let prefix = id.prefix64
        guard let first = leaves[prefix] else { return [] }
        return [first] + (sharedPrefixes[prefix] ?? [])
    }
}
