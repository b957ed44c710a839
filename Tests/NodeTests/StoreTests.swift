import Foundation
import GRDB
import LedgerCore
import Testing

@testable import Store

/// The store appends state rows and transactions; their lookups come from in-memory indexes.
@Suite struct StoreTests {
    /// UTF-8 byte order, as SQLite's BINARY collation compares TEXT.
    static func sortedBytewise(_ keys: some Sequence<String>) -> [String] { keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) } }

    @Test func sortedKeysMatchASortedArray() {
        var rng = SplitMix64(seed: 7)
        var keys = SortedKeys()
        var naive = Set<String>()
        // Few distinct prefixes and non-ASCII characters, so that prefix ranges and byte order both matter.
        let alphabet = ["a", "b", "ab", "é", "z", "/", "\u{10FFFF}", "日"]
        func randomKey() -> String { (0..<Int(rng.next() % 4 + 1)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined() }
        for step in 0..<20_000 {
            let key = randomKey()
            if rng.next() % 3 == 0 {
                #expect(keys.remove(key) == (naive.remove(key) != nil))
            } else {
                #expect(keys.insert(key) == naive.insert(key).inserted)
            }
            if step % 997 == 0 || step == 19_999 {
                let sorted = Self.sortedBytewise(naive)
                #expect(keys.all == sorted)
                #expect(keys.count == naive.count)
                for prefix in ["", "a", "ab", "é", "日", "\u{10FFFF}", "q"] {
                    let matching = sorted.filter { $0.utf8.starts(with: prefix.utf8) }
                    let limit = Int(rng.next() % 6) + 1
                    #expect(keys.keys(prefix: prefix, limit: 1_000_000, descending: false) == matching)
                    #expect(keys.keys(prefix: prefix, limit: limit, descending: false) == Array(matching.prefix(limit)))
                    #expect(keys.keys(prefix: prefix, limit: limit, descending: true) == Array(matching.reversed().prefix(limit)))
                }
                let probe = randomKey()
                #expect(keys.contains(probe) == naive.contains(probe))
            }
        }
        #expect(naive.count > SortedKeys.chunkCapacity, "the test crossed chunk splits")
    }

    /// Blocks of random writes (new keys, overwrites, deletions): values, key ranges and transactions by id
    /// answer as a plain dictionary would, before and after the store is reopened.
    @Test func appendedRowsAreFoundBeforeAndAfterReopening() throws {
        let path = NSTemporaryDirectory() + "careledger-store-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        var rng = SplitMix64(seed: 11)
        let signer = SigningKey()
        var expected: [String: [UInt8]] = [:]
        var committed: [(Hash, UInt64)] = []
        var leaf: UInt64 = 0
        var store: BlockStore? = try BlockStore(path: path)
        for height in UInt64(1)...40 {
            var writes: [String: [UInt8]?] = [:]
            for _ in 0..<25 {
                let key = "k/\(rng.next() % 60)"
                writes[key] = rng.next() % 4 == 0 ? .some(nil) : .some(Array("v\(rng.next())".utf8))
            }
            let txs = try (0..<3).map { _ -> Transaction in
                defer { leaf += 1 }
                return try Transaction(
                    chainID: "store-test", signer: signer, nonce: leaf, contract: "notary", action: "record", payload: .object(["n": .int(Int64(leaf))]))
            }
            let outcomes = txs.enumerated().map { i, tx in
                TransactionOutcome(transaction: tx, leafIndex: leaf - 3 + UInt64(i), status: "committed", result: nil, errorCode: nil, errorMessage: nil)
            }
            let header = BlockHeader(
                chainID: "store-test", height: height, previousHash: Hash.zero, timeMillis: height, logSize: leaf, logRoot: Hash.zero,
                stateRoot: Hash.zero, transactionCount: 3, transactionsHash: Hash.zero, proposer: signer.publicKey)
            let sorted = writes.keys.sorted().map { (key: $0, value: writes[$0]!) }
            try store!.commitNow(block: StoredBlock(header: header, signature: [], checkpoint: ""), transactions: outcomes, writes: sorted, events: [])
            for w in sorted { expected[w.key] = w.value }
            committed += outcomes.map { ($0.transaction.id, $0.leafIndex) }
        }
        for round in 0..<2 {
            let s = try #require(store)
            for i in 0..<60 { #expect(try s.stateValue(forKey: "k/\(i)") == expected["k/\(i)"], "round \(round), key k/\(i)") }
            let keys = Self.sortedBytewise(expected.keys)
            #expect(try s.stateKeys(prefix: "k/", limit: 1000) == keys)
            #expect(try s.stateKeys(prefix: "k/", limit: 4, descending: true) == Array(keys.reversed().prefix(4)))
            #expect(try s.stateKeys(prefix: "k/1", limit: 1000) == keys.filter { $0.hasPrefix("k/1") })
            var rows: [String: [UInt8]] = [:]
            try s.forEachState { key, value in rows[key] = value }
            #expect(rows == expected)
            for (id, leafIndex) in committed { #expect(try s.transaction(id: id)?.leafIndex == leafIndex) }
            #expect(try s.transaction(id: Hash.sha256(Array("never committed".utf8))) == nil)
            try s.close()
            store = try BlockStore(path: path)
        }
    }

    /// A database written by the schema before v4 (state keyed by its key, transactions by a unique id
    /// index) keeps every row through the migration.
    @Test func migrationFromKeyIndexedTablesKeepsEveryRow() throws {
        let path = NSTemporaryDirectory() + "careledger-store-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let signer = SigningKey()
        let tx = try Transaction(chainID: "old", signer: signer, nonce: 1, contract: "notary", action: "record", payload: .object([:]))
        do {
            let old = try DatabaseQueue(path: path)
            try old.write { db in
                try db.execute(
                    sql: """
                        CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                        INSERT INTO grdb_migrations VALUES ('v1'), ('v2-consensus'), ('v3-snapshots');
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
                        CREATE TABLE certificates (height INTEGER PRIMARY KEY, body BLOB NOT NULL);
                        CREATE TABLE evidence (
                            id INTEGER PRIMARY KEY AUTOINCREMENT, height INTEGER NOT NULL, validator TEXT NOT NULL, kind TEXT NOT NULL,
                            detail TEXT NOT NULL, first BLOB, second BLOB, time INTEGER NOT NULL,
                            UNIQUE (height, validator, kind));
                        CREATE TABLE snapshot_leaves (leaf_index INTEGER PRIMARY KEY, hash BLOB NOT NULL);
                        CREATE TABLE snapshot_nonces (author BLOB NOT NULL, nonce INTEGER NOT NULL, PRIMARY KEY (author, nonce)) WITHOUT ROWID;
                        INSERT INTO state VALUES ('b/2', X'02', 1), ('a/1', X'01', 1), ('b/1', X'03', 1);
                        """)
                try db.execute(
                    sql: "INSERT INTO transactions VALUES (0, ?, 1, ?, 1, ?, 'committed', NULL, NULL, NULL)",
                    arguments: [Data(tx.id.bytes), Data(signer.publicKey.rawRepresentation), Data(tx.encoded)])
            }
            try old.close()
        }
        let store = try BlockStore(path: path)
        #expect(try store.stateValue(forKey: "b/1") == [3])
        #expect(try store.stateKeys(prefix: "b/", limit: 10) == ["b/1", "b/2"])
        #expect(try store.transaction(id: tx.id)?.transaction.id == tx.id)
        // The rows now have their own sequence: a new value of an old key replaces its row.
        let header = BlockHeader(
            chainID: "old", height: 2, previousHash: Hash.zero, timeMillis: 2, logSize: 1, logRoot: Hash.zero, stateRoot: Hash.zero,
            transactionCount: 0, transactionsHash: Hash.zero, proposer: signer.publicKey)
        try store.commitNow(block: StoredBlock(header: header, signature: [], checkpoint: ""), transactions: [], writes: [("a/1", [9]), ("b/2", nil)], events: [])
        var rows: [String: [UInt8]] = [:]
        try store.forEachState { key, value in rows[key] = value }
        #expect(rows == ["a/1": [9], "b/1": [3]])
    }
}

/// A commit is on disk when it returns: WAL journal, full sync.
@Suite struct StoreDurabilityTests {
    @Test func theStoreRunsInWALModeWithFullSync() throws {
        let path = NSTemporaryDirectory() + "careledger-durability-\(UUID().uuidString).sqlite"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try BlockStore(path: path)
        let (journal, synchronous) = try store.pragmas()
        #expect(journal == "wal")
        #expect(synchronous == 2, "synchronous = FULL")
        try store.close()
    }
}

/// A reader keeping a cursor over events reads only the rows past it, and learns how far it has looked.
@Suite struct EventScanTests {
    @Test func aScanSaysThroughWhichBlockItLooked() throws {
        let path = NSTemporaryDirectory() + "careledger-scan-\(UUID().uuidString).sqlite"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try BlockStore(path: path)
        let signer = SigningKey()
        func commit(_ height: UInt64, _ events: [JSONValue]) throws {
            let header = BlockHeader(
                chainID: "scan", height: height, previousHash: Hash.zero, timeMillis: height, logSize: 0, logRoot: Hash.zero, stateRoot: Hash.zero,
                transactionCount: 0, transactionsHash: Hash.zero, proposer: signer.publicKey)
            try store.commitNow(block: StoredBlock(header: header, signature: [], checkpoint: ""), transactions: [], writes: [], events: events)
        }
        #expect(try store.scanEvents(containing: "recall", after: nil).through == nil)
        try commit(0, [.object(["type": .string("other")])])
        try commit(1, [.object(["type": .string("recall"), "n": .int(1)]), .object(["type": .string("other")])])
        try commit(2, [])
        try commit(3, [.object(["type": .string("other")])])
        let first = try store.scanEvents(containing: #""type":"recall""#, after: nil)
        #expect(first.events.map(\.height) == [1])
        #expect(first.through == 3, "blocks without a match still count as looked at")
        // From the cursor on: nothing new, then only the new block's match.
        #expect(try store.scanEvents(containing: #""type":"recall""#, after: 3).events.isEmpty)
        try commit(4, [.object(["type": .string("recall"), "n": .int(4)])])
        let next = try store.scanEvents(containing: #""type":"recall""#, after: 3)
        #expect(next.events.map { $0.body["n"] } == [.int(4)])
        #expect(next.through == 4)
        try store.close()
    }
}
