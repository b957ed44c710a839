import Foundation
import GRDB
import LedgerCore

/// What one node keeps for itself, off the chain because it links patients to medicines: the packs
/// it dispensed to patients (lot → patient, prescriber, record) and the notices it owes them. SQLite,
/// `synchronous=FULL`, in the node's data directory; never replicated.
public final class LocalIndex: Sendable {
    private let queue: DatabaseQueue

    public init(path: String) throws {
        var config = Configuration()
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        queue = try DatabaseQueue(path: path, configuration: config)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE dispensed (lot_key TEXT NOT NULL, patient TEXT NOT NULL, prescriber TEXT, record_id TEXT NOT NULL,
                        gtin TEXT NOT NULL, height INTEGER NOT NULL);
                    CREATE INDEX dispensed_lot ON dispensed (lot_key);
                    CREATE TABLE notices (id INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL, body BLOB NOT NULL);
                    CREATE INDEX notices_recipient ON notices (recipient);
                    """)
        }
        migrator.registerMigration("v2") { db in
            try db.execute(sql: "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        }
        try migrator.migrate(queue)
    }

    /// A saved position (e.g. the last height whose recalls were handled).
    public func cursor(_ name: String) throws -> UInt64? {
        try queue.read { db in try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [name]).map { UInt64($0) } }
    }

    public func setCursor(_ name: String, _ value: UInt64) throws {
        try queue.write { db in try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [name, Int64(value)]) }
    }

    public struct Dispensed: Sendable, Hashable {
        public let lotKey: String
        public let patient: String
        public let prescriber: String?
        public let recordID: String
        public let gtin: String
        public let height: UInt64

        public init(lotKey: String, patient: String, prescriber: String?, recordID: String, gtin: String, height: UInt64) {
            self.lotKey = lotKey
            self.patient = patient
            self.prescriber = prescriber
            self.recordID = recordID
            self.gtin = gtin
            self.height = height
        }
    }

    public func recordDispensed(_ d: Dispensed) throws {
        try queue.write { db in
            try db.execute(
                sql: "INSERT INTO dispensed (lot_key, patient, prescriber, record_id, gtin, height) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [d.lotKey, d.patient, d.prescriber, d.recordID, d.gtin, Int64(d.height)])
        }
    }

    public func dispensed(lotKey: String) throws -> [Dispensed] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM dispensed WHERE lot_key = ? ORDER BY height", arguments: [lotKey]).map { row in
                Dispensed(
                    lotKey: row["lot_key"], patient: row["patient"], prescriber: row["prescriber"], recordID: row["record_id"], gtin: row["gtin"],
                    height: UInt64(row["height"] as Int64))
            }
        }
    }

    /// Stores a notice for each recipient (in one transaction); answers nothing until it is on disk.
    public func addNotice(_ body: JSONValue, recipients: [String]) throws {
        try queue.write { db in
            for r in recipients {
                try db.execute(sql: "INSERT INTO notices (recipient, body) VALUES (?, ?)", arguments: [r, Data(body.canonicalBytes)])
            }
        }
    }

    public func notices(for recipient: String) throws -> [JSONValue] {
        try queue.read { db in
            try Data.fetchAll(db, sql: "SELECT body FROM notices WHERE recipient = ? ORDER BY id", arguments: [recipient]).map { try JSONValue.parse(Array($0)) }
        }
    }
}
