import Foundation
import GRDB
import GRDBSQLite
import LedgerCore
import Synchronization

/// A block as stored: header, the proposer's signature over the header encoding, and the signed
/// checkpoint note for the log after the block.
public struct StoredBlock: Sendable, Hashable {
    public let header: BlockHeader
    public let signature: [UInt8]
    public let checkpoint: String

    public init(header: BlockHeader, signature: [UInt8], checkpoint: String) {
        self.header = header
        self.signature = signature
        self.checkpoint = checkpoint
    }
}

/// A committed transaction with its outcome.
public struct StoredTransaction: Sendable {
    public let transaction: Transaction
    public let height: UInt64
    public let leafIndex: UInt64
    public let status: String
    public let result: [UInt8]?
    public let errorCode: String?
    public let errorMessage: String?
}

/// One row of a block commit: a transaction and its outcome.
public struct TransactionOutcome: Sendable {
    public let transaction: Transaction
    public let leafIndex: UInt64
    public let status: String
    public let result: [UInt8]?
    public let errorCode: String?
    public let errorMessage: String?

    public init(transaction: Transaction, leafIndex: UInt64, status: String, result: [UInt8]?, errorCode: String?, errorMessage: String?) {
        self.transaction = transaction
        self.leafIndex = leafIndex
        self.status = status
        self.result = result
        self.errorCode = errorCode
        self.errorMessage = errorMessage
    }
}

/// The node's durable store: SQLite in WAL mode with `synchronous=FULL`, so a commit is on disk
/// when `commit` returns. A block, its transactions (the log leaves, in leaf order), their
/// receipts and its state changes are written in one SQLite transaction.
public final class BlockStore: Sendable {
    public let path: String
    private let pool: DatabasePool
    /// Built on first use (at once for a writable store), then kept up to date by every commit.
    private let indexes = Mutex<StoreIndexes?>(nil)

    public init(path: String, readOnly: Bool = false) throws {
        self.path = path
        var config = Configuration()
        config.readonly = readOnly
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // 64 MiB of page cache per connection: the id and state indexes take random keys.
            try db.execute(sql: "PRAGMA cache_size = -65536")
        }
        config.busyMode = .timeout(10)
        if readOnly && !FileManager.default.fileExists(atPath: path) {
            throw LedgerError("no_data", "no ledger database at \(path)")
        }
        pool = try DatabasePool(path: path, configuration: config)
        if !readOnly {
            // GRDB switches a pool's writer to WAL mode *after* `prepareDatabase`, and sets
            // `synchronous = NORMAL` as it does (a commit then reaches the disk only at the next
            // checkpoint: safe against a crash of the process, not of the machine). Set FULL again on
            // the writer, the one connection that commits: every commit syncs the WAL.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try Self.migrator.migrate(pool)
            try withIndexes { _ in }
        }
    }

    private static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
                    CREATE TABLE blocks (
                        height INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, header BLOB NOT NULL,
                        signature BLOB NOT NULL, checkpoint TEXT NOT NULL);
                    CREATE TABLE transactions (
                        leaf_index INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, height INTEGER NOT NULL,
                        author BLOB NOT NULL, nonce INTEGER NOT NULL, raw BLOB NOT NULL, status TEXT NOT NULL,
                        result BLOB, error_code TEXT, error_message TEXT);
                    CREATE TABLE state (key TEXT PRIMARY KEY, value BLOB NOT NULL, height INTEGER NOT NULL);
                    CREATE TABLE events (height INTEGER NOT NULL, seq INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (height, seq));
                    """)
        }
        m.registerMigration("v2-consensus") { db in
            try db.execute(
                sql: """
                    CREATE TABLE certificates (height INTEGER PRIMARY KEY, body BLOB NOT NULL);
                    CREATE TABLE evidence (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, height INTEGER NOT NULL, validator TEXT NOT NULL, kind TEXT NOT NULL,
                        detail TEXT NOT NULL, first BLOB, second BLOB, time INTEGER NOT NULL,
                        UNIQUE (height, validator, kind));
                    """)
        }
        m.registerMigration("v3-snapshots") { db in
            try db.execute(
                sql: """
                    CREATE TABLE snapshot_leaves (leaf_index INTEGER PRIMARY KEY, hash BLOB NOT NULL);
                    CREATE TABLE snapshot_nonces (author BLOB NOT NULL, nonce INTEGER NOT NULL, PRIMARY KEY (author, nonce)) WITHOUT ROWID;
                    """)
        }
        // State rows and transactions are appended: the random-key B-trees (the state's key index and
        // the transaction id's unique index) made every new key dirty a page of its own in each commit
        // (about 8 KiB written per transaction). Their lookups are served from memory (`StoreIndexes`).
        m.registerMigration("v4-append-only") { db in
            try db.execute(
                sql: """
                    CREATE TABLE transactions_v4 (
                        leaf_index INTEGER PRIMARY KEY, id BLOB NOT NULL, height INTEGER NOT NULL,
                        author BLOB NOT NULL, nonce INTEGER NOT NULL, raw BLOB NOT NULL, status TEXT NOT NULL,
                        result BLOB, error_code TEXT, error_message TEXT);
                    INSERT INTO transactions_v4 SELECT leaf_index, id, height, author, nonce, raw, status, result, error_code, error_message FROM transactions;
                    DROP TABLE transactions;
                    ALTER TABLE transactions_v4 RENAME TO transactions;
                    CREATE TABLE state_v4 (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, value BLOB NOT NULL, height INTEGER NOT NULL);
                    INSERT INTO state_v4 (key, value, height) SELECT key, value, height FROM state ORDER BY key;
                    DROP TABLE state;
                    ALTER TABLE state_v4 RENAME TO state;
                    """)
        }
        return m
    }

    // MARK: in-memory indexes

    /// Runs `body` on the in-memory indexes, building them from the database first if needed.
    private func withIndexes<T>(_ body: (inout StoreIndexes) throws -> T) throws -> T {
        try indexes.withLock { indexes in
            if indexes == nil { indexes = try pool.read { db in try StoreIndexes(db) } }
            return try body(&indexes!)
        }
    }

    // MARK: snapshots

    /// Installs a verified snapshot into an empty store: block `block` (with its certificate) becomes the
    /// first block held, `state` the state, `leaves` the log's leaf hashes before it and `nonces` the
    /// (author, nonce) pairs already used; `meta` entries go with it. One SQLite transaction.
    public func installSnapshot(
        block: StoredBlock, certificate: [UInt8], state: [(String, [UInt8])], leaves: [[UInt8]], nonces: [([UInt8], UInt64)],
        meta: [(String, [UInt8])]
    ) throws {
        try pool.writeWithoutTransaction { db in try write(db, block: block, transactions: [], writes: state.map { (key: $0.0, value: Optional($0.1)) }) { db, insert in
            guard try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM blocks") == 0 else {
                throw LedgerError("already_initialised", "the store already holds blocks; a snapshot goes into an empty one")
            }
            try insert(db, [])
            try db.execute(sql: "INSERT INTO certificates (height, body) VALUES (?, ?)", arguments: [Int64(block.header.height), Data(certificate)])
            for (i, leaf) in leaves.enumerated() {
                try db.execute(sql: "INSERT INTO snapshot_leaves (leaf_index, hash) VALUES (?, ?)", arguments: [Int64(i), Data(leaf)])
            }
            for (author, nonce) in nonces {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO snapshot_nonces (author, nonce) VALUES (?, ?)", arguments: [Data(author), Int64(bitPattern: nonce)])
            }
            for (key, value) in meta { try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [key, Data(value)]) }
        } }
    }

    /// The log's leaf hashes from before the snapshot this store started from (none for a full history).
    public func forEachSnapshotLeaf(_ body: (_ hash: [UInt8]) throws -> Void) throws {
        try pool.read { db in
            let cursor = try Data.fetchCursor(db, sql: "SELECT hash FROM snapshot_leaves ORDER BY leaf_index")
            while let hash = try cursor.next() { try body(Array(hash)) }
        }
    }

    /// The (author, nonce) pairs used before the snapshot this store started from.
    public func forEachSnapshotNonce(_ body: (_ author: [UInt8], _ nonce: UInt64) throws -> Void) throws {
        try pool.read { db in
            let cursor = try Row.fetchCursor(db, sql: "SELECT author, nonce FROM snapshot_nonces")
            while let row = try cursor.next() {
                let author: Data = row[0]
                try body(Array(author), UInt64(bitPattern: row[1] as Int64))
            }
        }
    }

    /// The lowest height held (0 for a full history).
    public func firstHeight() throws -> UInt64? {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT MIN(height) FROM blocks").map { UInt64($0) } }
    }

    /// Meta entries whose key starts with `prefix`, in key order.
    public func meta(prefix: String) throws -> [(String, [UInt8])] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT key, value FROM meta WHERE key >= ? AND key < ? ORDER BY key", arguments: [prefix, prefix + "\u{FFFF}"]).map {
                ($0[0] as String, Array($0[1] as Data))
            }
        }
    }

    // MARK: finality and evidence

    /// Stores the quorum certificate of a committed block (kept once; a later one for the same height is ignored).
    public func saveCertificate(height: UInt64, _ body: [UInt8]) async throws {
        try await pool.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO certificates (height, body) VALUES (?, ?)", arguments: [Int64(height), Data(body)])
        }
    }

    public func certificate(height: UInt64) throws -> [UInt8]? {
        try pool.read { db in
            try Data.fetchOne(db, sql: "SELECT body FROM certificates WHERE height = ?", arguments: [Int64(height)]).map { Array($0) }
        }
    }

    /// The highest height with a certificate.
    public func latestCertifiedHeight() throws -> UInt64? {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(height) FROM certificates").map { UInt64($0) } }
    }

    /// One piece of misbehaviour evidence (two conflicting signed messages, or a refused proposal).
    public struct Evidence: Sendable {
        public let height: UInt64
        public let validator: String
        public let kind: String
        public let detail: String
        public let first: [UInt8]?
        public let second: [UInt8]?
        public let timeMillis: UInt64
        public init(height: UInt64, validator: String, kind: String, detail: String, first: [UInt8]?, second: [UInt8]?, timeMillis: UInt64) {
            self.height = height
            self.validator = validator
            self.kind = kind
            self.detail = detail
            self.first = first
            self.second = second
            self.timeMillis = timeMillis
        }
    }

    /// Keeps evidence; answers false when the same (height, validator, kind) was already kept.
    @discardableResult
    public func addEvidence(_ e: Evidence) throws -> Bool {
        try pool.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO evidence (height, validator, kind, detail, first, second, time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [Int64(e.height), e.validator, e.kind, e.detail, e.first.map { Data($0) }, e.second.map { Data($0) }, Int64(e.timeMillis)])
            return db.changesCount > 0
        }
    }

    public func evidence() throws -> [Evidence] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT height, validator, kind, detail, first, second, time FROM evidence ORDER BY id").map { row in
                Evidence(
                    height: UInt64(row[0] as Int64), validator: row[1], kind: row[2], detail: row[3], first: (row[4] as Data?).map { Array($0) },
                    second: (row[5] as Data?).map { Array($0) }, timeMillis: UInt64(row[6] as Int64))
            }
        }
    }

    // MARK: meta

    public func setMeta(_ key: String, _ value: [UInt8]) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [key, Data(value)])
        }
    }

    public func meta(_ key: String) throws -> [UInt8]? {
        try pool.read { db in
            try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]).map { Array($0) }
        }
    }

    // MARK: commit

    /// Writes a block and everything it carries atomically, then syncs.
    /// `certificate` (its quorum certificate, when already known) and `meta` entries commit with it.
    public func commit(
        block: StoredBlock, transactions: [TransactionOutcome], writes: [(key: String, value: [UInt8]?)], events: [JSONValue],
        certificate: [UInt8]? = nil, meta: [(String, [UInt8])] = []
    ) async throws {
        try await pool.writeWithoutTransaction { db in
            try self.write(db, block: block, transactions: transactions, writes: writes) { db, insert in
                try insert(db, events)
                if let certificate {
                    try db.execute(
                        sql: "INSERT OR IGNORE INTO certificates (height, body) VALUES (?, ?)", arguments: [Int64(block.header.height), Data(certificate)])
                }
                for (key, value) in meta {
                    try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [key, Data(value)])
                }
            }
        }
    }

    /// The blocking form of `commit`, for set-up code outside the async world.
    public func commitNow(
        block: StoredBlock, transactions: [TransactionOutcome], writes: [(key: String, value: [UInt8]?)], events: [JSONValue]
    ) throws {
        try pool.writeWithoutTransaction { db in
            try write(db, block: block, transactions: transactions, writes: writes) { db, insert in try insert(db, events) }
        }
    }

    /// Runs `body` in one SQLite transaction on the writer connection, with an `insert` that writes the
    /// block, its transactions and `writes` (and the events given to it). The in-memory indexes
    /// change with the commit, under their lock: a reader never sees a row the indexes do not
    /// name yet, nor an index entry whose row is gone (see `stateValue`).
    private func write(
        _ db: Database, block: StoredBlock, transactions: [TransactionOutcome], writes: [(key: String, value: [UInt8]?)],
        _ body: (Database, (Database, [JSONValue]) throws -> Void) throws -> Void
    ) throws {
        try db.execute(sql: "BEGIN IMMEDIATE TRANSACTION")
        do {
            // Writes are serialised on this connection: no other plan is made until this one is applied or dropped.
            let plan = try withIndexes { $0.plan(writes) }
            try body(db) { db, events in
                try Self.insert(db, block: block, transactions: transactions, writes: writes, rows: plan, events: events)
            }
            try withIndexes { indexes in
                try db.execute(sql: "COMMIT TRANSACTION")
                indexes.apply(plan, transactions: transactions)
            }
        } catch {
            if db.isInsideTransaction { try? db.execute(sql: "ROLLBACK TRANSACTION") }
            throw error
        }
    }

    private static func insert(
        _ db: Database, block: StoredBlock, transactions: [TransactionOutcome], writes: [(key: String, value: [UInt8]?)],
        rows: StoreIndexes.Plan, events: [JSONValue]
    ) throws {
            let h = Int64(block.header.height)
            try db.execute(
                sql: "INSERT INTO blocks (height, hash, header, signature, checkpoint) VALUES (?, ?, ?, ?, ?)",
                arguments: [h, Data(block.header.hash.bytes), Data(block.header.encoded), Data(block.signature), block.checkpoint])
            // The per-row inserts bind straight from the byte arrays (no Data copies, no boxed
            // arguments): they are most of the time a block's commit takes.
            let insertTx = try db.cachedStatement(
                sql: """
                    INSERT INTO transactions (leaf_index, id, height, author, nonce, raw, status, result, error_code, error_message)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            for t in transactions {
                let s = insertTx.sqliteStatement
                sqlite3_bind_int64(s, 1, Int64(t.leafIndex))
                try t.transaction.id.withBytes { try bindBlob(s, 2, $0) }
                sqlite3_bind_int64(s, 3, h)
                try t.transaction.author.rawRepresentation.withUnsafeBytes { try bindBlob(s, 4, $0) }
                sqlite3_bind_int64(s, 5, Int64(bitPattern: t.transaction.nonce))
                try t.transaction.encoded.withUnsafeBytes { try bindBlob(s, 6, $0) }
                try bindText(s, 7, t.status)
                if let result = t.result { try result.withUnsafeBytes { try bindBlob(s, 8, $0) } } else { sqlite3_bind_null(s, 8) }
                if let code = t.errorCode { try bindText(s, 9, code) } else { sqlite3_bind_null(s, 9) }
                if let message = t.errorMessage { try bindText(s, 10, message) } else { sqlite3_bind_null(s, 10) }
                try step(db, s)
            }
            // A key's new value is a new row at the end; its previous row, if any, goes.
            let append = try db.cachedStatement(sql: "INSERT INTO state (seq, key, value, height) VALUES (?, ?, ?, ?)")
            let delete = try db.cachedStatement(sql: "DELETE FROM state WHERE seq = ?")
            for (w, row) in zip(writes, rows.rows) {
                if let old = row.old {
                    let s = delete.sqliteStatement
                    sqlite3_bind_int64(s, 1, old)
                    try step(db, s)
                }
                if let value = w.value, let new = row.new {
                    let s = append.sqliteStatement
                    sqlite3_bind_int64(s, 1, new)
                    try bindText(s, 2, w.key)
                    try value.withUnsafeBytes { try bindBlob(s, 3, $0) }
                    sqlite3_bind_int64(s, 4, h)
                    try step(db, s)
                }
            }
            let insertEvent = try db.cachedStatement(sql: "INSERT INTO events (height, seq, body) VALUES (?, ?, ?)")
            for (i, e) in events.enumerated() {
                let s = insertEvent.sqliteStatement
                sqlite3_bind_int64(s, 1, h)
                sqlite3_bind_int64(s, 2, Int64(i))
                try e.canonicalBytes.withUnsafeBytes { try bindBlob(s, 3, $0) }
                try step(db, s)
            }
    }

    private static func bindBlob(_ s: SQLiteStatement, _ index: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        // SQLITE_TRANSIENT: SQLite copies the bytes before the call returns.
        let rc = sqlite3_bind_blob(
            s, index, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(bytes.count), unsafeBitCast(-1, to: sqlite3_destructor_type.self))
        guard rc == SQLITE_OK else { throw LedgerError("commit_failed", "SQLite bind failed (\(rc))") }
    }

    private static func bindText(_ s: SQLiteStatement, _ index: Int32, _ text: String) throws {
        let rc = sqlite3_bind_text(s, index, text, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
        guard rc == SQLITE_OK else { throw LedgerError("commit_failed", "SQLite bind failed (\(rc))") }
    }

    /// Runs an INSERT, then resets it and drops its bindings (no copy of a row outlives the row).
    private static func step(_ db: Database, _ s: SQLiteStatement) throws {
        let code = sqlite3_step(s)
        sqlite3_reset(s)
        sqlite3_clear_bindings(s)
        guard code == SQLITE_DONE else {
            throw LedgerError("commit_failed", "SQLite insert failed (\(code)): \(String(cString: sqlite3_errmsg(db.sqliteConnection)))")
        }
    }

    // MARK: reads

    public func latestHeight() throws -> UInt64? {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(height) FROM blocks").map { UInt64($0) } }
    }

    public func block(height: UInt64) throws -> StoredBlock? {
        try pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT header, signature, checkpoint FROM blocks WHERE height = ?", arguments: [Int64(height)])
            else { return nil }
            return try Self.block(row)
        }
    }

    public func blocks(from: UInt64, limit: Int) throws -> [StoredBlock] {
        try pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT header, signature, checkpoint FROM blocks WHERE height >= ? ORDER BY height LIMIT ?",
                arguments: [Int64(from), limit]
            ).map { row throws in try Self.block(row) }
        }
    }

    private static func block(_ row: Row) throws -> StoredBlock {
        let header: Data = row["header"]
        let signature: Data = row["signature"]
        return StoredBlock(header: try BlockHeader(encoded: Array(header)), signature: Array(signature), checkpoint: row["checkpoint"])
    }

    public func transaction(id: Hash) throws -> StoredTransaction? {
        let candidates = try withIndexes { $0.leaves(id) }
        return try pool.read { db in
            for leaf in candidates {
                if let row = try Row.fetchOne(db, sql: "SELECT * FROM transactions WHERE leaf_index = ?", arguments: [Int64(leaf)]),
                    (row["id"] as Data).elementsEqual(id.bytes)
                {
                    return try Self.storedTransaction(row)
                }
            }
            return nil
        }
    }

    /// The transactions of a block: the leaves its header says it appended (a block's leaves are contiguous).
    public func transactions(of block: StoredBlock) throws -> [StoredTransaction] {
        let end = block.header.logSize
        let start = end - min(end, block.header.transactionCount)
        return try pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM transactions WHERE leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index",
                arguments: [Int64(start), Int64(end)]
            ).map { row throws in try Self.storedTransaction(row) }
        }
    }

    private static func storedTransaction(_ row: Row) throws -> StoredTransaction {
        let raw: Data = row["raw"]
        let result: Data? = row["result"]
        return StoredTransaction(
            transaction: try Transaction(encoded: Array(raw)), height: UInt64(row["height"] as Int64),
            leafIndex: UInt64(row["leaf_index"] as Int64), status: row["status"], result: result.map { Array($0) },
            errorCode: row["error_code"], errorMessage: row["error_message"])
    }

    public func transactionCount() throws -> UInt64 {
        try pool.read { db in UInt64(try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM transactions") ?? 0) }
    }

    /// Visits every committed transaction in leaf order (for rebuilding the log and auditing).
    public func forEachTransaction(_ body: (_ leafIndex: UInt64, _ height: UInt64, _ raw: [UInt8]) throws -> Void) throws {
        try pool.read { db in
            let cursor = try Row.fetchCursor(db, sql: "SELECT leaf_index, height, raw FROM transactions ORDER BY leaf_index")
            while let row = try cursor.next() {
                let raw: Data = row["raw"]
                try body(UInt64(row["leaf_index"] as Int64), UInt64(row["height"] as Int64), Array(raw))
            }
        }
    }

    /// Visits every state entry in key order.
    public func forEachState(_ body: (_ key: String, _ value: [UInt8]) throws -> Void) throws {
        try pool.read { db in
            let cursor = try Row.fetchCursor(db, sql: "SELECT key, value FROM state ORDER BY key")
            var previous: String?
            while let row = try cursor.next() {
                let key: String = row["key"]
                guard key != previous else { throw LedgerError("corrupt_store", "state key \(key) has two rows") }
                previous = key
                let value: Data = row["value"]
                try body(key, Array(value))
            }
        }
    }

    public func stateValue(forKey key: String) throws -> [UInt8]? {
        // A commit may replace the row between the lookup and the read: look again then.
        for _ in 0..<8 {
            guard let seq = try withIndexes({ $0.stateRows[key] }) else { return nil }
            if let value = try pool.read({ db in try Data.fetchOne(db, sql: "SELECT value FROM state WHERE seq = ?", arguments: [seq]) }) {
                return Array(value)
            }
            if try withIndexes({ $0.stateRows[key] }) == seq { return nil }
        }
        throw LedgerError("state_unavailable", "state key \(key) kept changing while it was read")
    }

    /// Every committed event whose canonical JSON contains `fragment` (e.g. `"type":"record.erased"`), in commit order.
    public func events(containing fragment: String) throws -> [JSONValue] {
        try events(containing: fragment, after: nil).map(\.body)
    }

    /// The committed events above height `after` (all when nil) whose canonical JSON contains `fragment`, with their heights.
    public func events(containing fragment: String, after height: UInt64?) throws -> [(height: UInt64, body: JSONValue)] {
        try scanEvents(containing: fragment, after: height).events
    }

    /// As `events(containing:after:)`, with the height of the last block committed when they were read
    /// (same snapshot): every matching event up to `through` is in `events`, so a reader that keeps a
    /// cursor can move it there and read only newer rows next time.
    public func scanEvents(containing fragment: String, after height: UInt64?) throws -> (events: [(height: UInt64, body: JSONValue)], through: UInt64?) {
        try pool.read { db in
            let events = try Row.fetchAll(
                db, sql: "SELECT height, body FROM events WHERE height > ? AND instr(body, ?) > 0 ORDER BY height, seq",
                arguments: [height.map { Int64($0) } ?? -1, Data(fragment.utf8)]
            ).map { row throws in (UInt64(row["height"] as Int64), try JSONValue.parse(Array(row["body"] as Data))) }
            let through = try Int64.fetchOne(db, sql: "SELECT MAX(height) FROM blocks").map { UInt64($0) }
            return (events, through)
        }
    }

    /// The committed state keys that start with `prefix`, in key order (from the in-memory key order).
    public func stateKeys(prefix: String, limit: Int, descending: Bool = false) throws -> [String] {
        try withIndexes { $0.stateKeys.keys(prefix: prefix, limit: limit, descending: descending) }
    }

    /// The committed events after position (height, seq), in commit order, at most `limit` (to resume an event stream).
    public func events(afterHeight height: UInt64, seq: Int, limit: Int) throws -> [(height: UInt64, seq: Int, body: JSONValue)] {
        try pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT height, seq, body FROM events WHERE height > ? OR (height = ? AND seq > ?) ORDER BY height, seq LIMIT ?",
                arguments: [Int64(height), Int64(height), Int64(seq), limit]
            ).map { row throws in (UInt64(row["height"] as Int64), Int(row["seq"] as Int64), try JSONValue.parse(Array(row["body"] as Data))) }
        }
    }

    public func events(height: UInt64) throws -> [JSONValue] {
        try pool.read { db in
            try Data.fetchAll(db, sql: "SELECT body FROM events WHERE height = ? ORDER BY seq", arguments: [Int64(height)])
                .map { data throws in try JSONValue.parse(Array(data)) }
        }
    }

    /// Runs raw SQL (tests use it to tamper with a database).
    public func unsafeExecute(_ sql: String) throws {
        try pool.write { db in try db.execute(sql: sql) }
    }

    /// The connection's journal mode and `synchronous` level (2 = FULL), as a writer sees them.
    public func pragmas() throws -> (journalMode: String, synchronous: Int) {
        try pool.write { db in
            (try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "", try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1)
        }
    }

    public func close() throws { try pool.close() }
}

extension BlockStore: StateReader {
    public func value(forKey key: String) throws -> [UInt8]? { try stateValue(forKey: key) }
}
