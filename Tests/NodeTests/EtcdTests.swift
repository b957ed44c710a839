@testable import EtcdOrdering
import Foundation
import LedgerCore
import LedgerTesting
@testable import Node
import Synchronization
import Testing

/// The etcd client and the ordering building blocks against a real etcd.
@Suite(.serialized) struct EtcdTests {
    @Test func clientBasics() async throws {
        let etcd = try await EtcdProcess()
        let c = etcd.client
        let revision = try await c.put("/t/a", Array("1".utf8))
        #expect(revision > 0)
        #expect(try await c.get("/t/a")?.value == Array("1".utf8))
        #expect(try await c.get("/t/missing") == nil)
        // Create-if-absent: the first wins, later ones leave the value alone.
        #expect(try await c.createIfAbsent("/t/b", Array("first".utf8)))
        #expect(try await !c.createIfAbsent("/t/b", Array("second".utf8)))
        #expect(try await c.get("/t/b")?.value == Array("first".utf8))
        // Prefix ranges do not spill into neighbouring prefixes.
        try await c.put("/t/c", [0xFF, 0x00])
        try await c.put("/u/a", [1])
        #expect(try await c.range(prefix: "/t/").kvs.map(\.key) == ["/t/a", "/t/b", "/t/c"])
        #expect(try await c.range(prefix: "/t/").kvs.last?.value == [0xFF, 0x00])
        // Delete-if-value, and keys tied to a revoked lease disappear.
        #expect(try await !c.deleteIfValue("/t/b", Array("second".utf8)))
        #expect(try await c.deleteIfValue("/t/b", Array("first".utf8)))
        let lease = try await c.grantLease(ttlSeconds: 30)
        try await c.put("/t/leased", [1], lease: lease)
        #expect(try await c.keepAlive(lease: lease) > 0)
        try await c.revoke(lease: lease)
        #expect(try await c.get("/t/leased") == nil)
        #expect(try await c.keepAlive(lease: lease) == 0)
        // A member that does not exist: a clear error, and the client falls over to the next endpoint.
        let fallback = EtcdClient(endpoints: ["http://127.0.0.1:1", etcd.url], timeout: .seconds(2))
        #expect(try await fallback.get("/t/a")?.value == Array("1".utf8))
        await #expect(throws: LedgerError.code("etcd_unavailable")) { try await EtcdClient(endpoints: ["http://127.0.0.1:1"], timeout: .seconds(2)).get("/t/a") }
    }

    /// A member that accepts the connection and then never answers (a half-open peer, a stalled
    /// process): every call still ends at the client's deadline with `etcd_unavailable`, and a
    /// cancelled caller is let go at once, whatever the call was waiting on.
    @Test(.timeLimit(.minutes(1))) func aSilentMemberCannotHoldACallPastItsDeadline() async throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        #expect(bound && listen(listener, 16) == 0)
        // The kernel completes the TCP handshake for the backlog; nobody ever reads or writes.
        let silent = EtcdClient(endpoints: ["http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))"], timeout: .milliseconds(300))
        for _ in 0..<3 {
            await #expect(throws: LedgerError.code("etcd_unavailable")) { try await silent.get("/t/a") }
        }
        let patient = EtcdClient(endpoints: silent.endpoints, timeout: .seconds(3600))
        let call = Task { try await patient.put("/t/a", [1]) }
        try await Task.sleep(for: .milliseconds(100))
        call.cancel()
        await #expect(throws: (any Error).self) { try await call.value }
    }

    /// The deadline holds even over work that ignores cancellation: the caller is answered at the
    /// deadline while that work is still running (here it ends by itself 20 s later).
    @Test(.timeLimit(.minutes(1))) func aDeadlineDoesNotWaitForWorkThatIgnoresCancellation() async throws {
        let ended = Atomic<Bool>(false)
        await #expect(throws: LedgerError.code("etcd_unavailable")) {
            try await EtcdClient.withDeadline(.milliseconds(200)) {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    Thread.detachNewThread {
                        Thread.sleep(forTimeInterval: 20)
                        c.resume()
                    }
                }
                ended.store(true, ordering: .relaxed)
                return 1
            }
        }
        let endedFirst = ended.load(ordering: .relaxed)
        #expect(!endedFirst, "answered before the stuck work ended")
        #expect(try await EtcdClient.withDeadline(.seconds(10)) { 7 } == 7)
    }

    /// The hand-written protobuf: what the writer writes, the reader reads back, field by field —
    /// varints up to 64 bits (negative int64 is ten bytes), lengths over one byte, nested messages —
    /// and truncated input is refused.
    @Test func protobufRoundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let ints: [Int64] = [0, 1, 127, 128, 300, Int64.max, Int64.min, -1, Int64.random(in: .min ... .max, using: &generator)]
            let blob = (0..<Int.random(in: 0..<400, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let inner = Protobuf { $0.bytes(1, blob) }
            let message = Protobuf { m in
                for (i, v) in ints.enumerated() { m.int(i + 1, v, always: true) }
                m.bytes(20, blob)
                m.message(21, inner)
                m.string(22, "clé")
                m.bool(23, true)
            }
            let fields = try Protobuf.fields(message.bytes[...])
            #expect(fields.map(\.field) == Array(1...ints.count) + [20, 21, 22, 23])
            for (i, v) in ints.enumerated() { #expect(fields[i].value.int == v) }
            #expect(Array(fields[ints.count].value.data) == blob)
            #expect(Array(try Protobuf.fields(fields[ints.count + 1].value.data).first?.value.data ?? []) == blob)
            #expect(String(decoding: fields[ints.count + 2].value.data, as: UTF8.self) == "clé")
            #expect(fields[ints.count + 3].value.int == 1)
            // Any proper prefix that cuts a field is refused (the last field is a one-byte bool).
            let cut = message.bytes.count - Int.random(in: 1...min(12, message.bytes.count), using: &generator)
            if cut > 0, cut < message.bytes.count - 2 {
                let prefixFields = try? Protobuf.fields(message.bytes[..<cut])
                #expect(prefixFields == nil || prefixFields!.count < fields.count)
            }
        }
        // Zero is left out unless asked for (proto3 defaults); a oneof member keeps it.
        #expect(Protobuf { $0.int(5, 0) }.bytes.isEmpty)
        #expect(Protobuf { $0.int(5, 0, always: true) }.bytes == [40, 0])
    }

    /// Values of a few MiB (a block's proposal) go through puts, range reads and watches intact (the
    /// gRPC client's flow-control windows), and a paged range continues after the last key read.
    @Test func largeValuesWatchesAndPaging() async throws {
        let etcd = try await EtcdProcess()
        let c = etcd.client
        let big = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        let start = try await c.put("/w/start", [0])
        let watch = c.watch(prefix: "/w/", fromRevision: start + 1)
        try await c.put("/w/big", big)
        try await c.put("/w/small", [7])
        #expect(try await c.get("/w/big")?.value == big)
        var seen: [EtcdClient.WatchEvent] = []
        for try await events in watch {
            seen += events
            if seen.count >= 2 { break }
        }
        #expect(seen.map(\.kv.key) == ["/w/big", "/w/small"])
        #expect(seen.first?.kv.value == big)
        #expect(seen.first?.kind == .put)
        // Paging: 20 keys read 8 at a time from after the last key of each page.
        for i in 0..<20 { try await c.put("/p/" + String(format: "%03d", i), [UInt8(i)]) }
        var keys: [String] = []
        var page = try await c.range(prefix: "/p/", limit: 8).kvs
        while !page.isEmpty {
            keys += page.map(\.key)
            guard page.count == 8, let last = page.last else { break }
            page = try await c.range(from: last.key + "\u{0}", withinPrefix: "/p/", limit: 8).kvs
        }
        #expect(keys == (0..<20).map { "/p/" + String(format: "%03d", $0) })
        // The member's status names a leader (itself, in a one-member cluster).
        let status = try await c.status()
        #expect(!status.member.isEmpty && status.member == status.leader)
        #expect(status.revision > start)
    }

    /// Two proposers race for every height: exactly one entry is decided per height, both learn
    /// whether they won, and a watcher sees every decision once, in height order.
    @Test func oneDecisionPerHeight() async throws {
        let etcd = try await EtcdProcess()
        let log = EtcdBlockLog(client: etcd.client, chainID: "race")
        let start = try await etcd.client.status().revision
        let heights: UInt64 = 40
        let watcher = Task {
            var seen: [(UInt64, [UInt8])] = []
            for try await batch in log.watch(fromRevision: start + 1) {
                seen.append(contentsOf: batch.map { ($0.height, $0.entry) })
                if seen.count >= Int(heights) { break }
            }
            return seen
        }
        let wins = try await withThrowingTaskGroup(of: [UInt64: String].self) { group in
            for proposer in ["A", "B"] {
                group.addTask {
                    var won: [UInt64: String] = [:]
                    for h in 1...heights where try await log.propose(height: h, entry: Array("\(proposer)\(h)".utf8)) { won[h] = proposer }
                    return won
                }
            }
            var all: [[UInt64: String]] = []
            for try await w in group { all.append(w) }
            return all
        }
        // No height won twice, every height won once.
        #expect(Set(wins[0].keys).isDisjoint(with: Set(wins[1].keys)))
        #expect(wins[0].count + wins[1].count == Int(heights))
        let decided = try await log.entries(from: 1)
        #expect(decided.entries.map(\.height) == Array(1...heights))
        for (h, entry) in decided.entries {
            let winner = wins[0][h] ?? wins[1][h]!
            #expect(entry == Array("\(winner)\(h)".utf8))
        }
        let seen = try await withDeadline(seconds: 30) { try? await watcher.value }
        #expect(seen?.map(\.0) == Array(1...heights))
        #expect(try await log.entries(from: 30, limit: 5).entries.map(\.height) == [30, 31, 32, 33, 34])
    }

    @Test func leaderElectionAndFailover() async throws {
        let etcd = try await EtcdProcess()
        let election = EtcdElection(client: etcd.client, chainID: "elect", ttlSeconds: 2)
        let a = try #require(try await election.tryLead(as: "node-a"))
        #expect(try await election.tryLead(as: "node-b") == nil)
        #expect(try await election.leader() == "node-a")
        #expect(try await election.renew(lease: a))
        // A resigns: B wins the next round.
        try await election.resign(lease: a)
        #expect(try await election.leader() == nil)
        let b = try #require(try await election.tryLead(as: "node-b"))
        #expect(try await election.leader() == "node-b")
        // B stops renewing (a crash): its lease expires and the role is free again (bounded wait on etcd's clock).
        let deadline = ContinuousClock.now + .seconds(15)
        while try await election.leader() != nil {
            #expect(ContinuousClock.now < deadline, "the lease did not expire")
            if ContinuousClock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(try await !election.renew(lease: b))
        #expect(try await election.tryLead(as: "node-c") != nil)
    }

    /// Compaction keeps what etcd holds from growing: old entries go, the history before the current
    /// revision is dropped, and a watch from a compacted revision fails with `etcd_compacted`.
    @Test func compaction() async throws {
        let etcd = try await EtcdProcess()
        let log = EtcdBlockLog(client: etcd.client, chainID: "compact")
        let before = try await etcd.client.status().revision
        for h in UInt64(1)...10 { #expect(try await log.propose(height: h, entry: [UInt8(h)])) }
        try await log.compact(keepingFrom: 6)
        #expect(try await log.entries(from: 0).entries.map(\.height) == [6, 7, 8, 9, 10])
        var failure: LedgerError?
        do {
            for try await _ in log.watch(fromRevision: before) {}
        } catch let error as LedgerError {
            failure = error
        }
        #expect(failure?.code == "etcd_compacted")
        // A compacted height can never be decided again; new heights still go through.
        #expect(try await !log.propose(height: 3, entry: [99]))
        #expect(try await log.entries(from: 0).entries.map(\.height) == [6, 7, 8, 9, 10])
        #expect(try await log.propose(height: 11, entry: [11]))
    }
}
