import Foundation
import LedgerCore
import Synchronization
import Testing

/// `careledger cluster up` as a user runs it: 3 etcd members and 4 validator node processes; faults
/// injected with kill -9 under load.
@Suite(.timeLimit(.minutes(8))) struct ClusterCLITests {
    /// The running `cluster up` process, stopped with SIGINT (as Ctrl-C) at the end.
    final class ClusterProcess: CLIProcess, @unchecked Sendable {
        let data: String

        init(data: String, nodes: Int = 4, binary: String = CLI.binary) throws {
            self.data = data
            super.init()
            _ = try start(["cluster", "up", "--nodes", String(nodes), "--data", data], binary: binary) { $0.contains("Stop with Ctrl-C.") ? true : nil }
        }

        var layout: JSONValue { (try? JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: data + "/cluster.json"))))) ?? .null }

        /// Ctrl-C.
        func interrupt() { stop(signal: SIGINT) }

        deinit {
            if process.isRunning {
                // Never leave processes behind, even when the test failed half-way.
                for n in layout["nodes"]?.arrayValue ?? [] { if let pid = n["pid"]?.intValue { kill(Int32(pid), SIGKILL) } }
                interrupt()
            }
        }
    }

    static func submit(_ url: String, _ txs: [Transaction]) async throws -> JSONValue {
        let body = JSONValue.object(["transactions": .array(txs.map { .object(["raw": .string(Base64.encode($0.encoded))]) })]).canonicalBytes
        let answer = try await HTTP.request("POST", url + "/v1/transactions?wait=final", body: body, timeout: 60)
        guard answer.status == 200 else { throw LedgerError("submit_failed", "\(answer.status): \(answer.text.prefix(200))") }
        return answer.json
    }

    static func height(_ url: String) async throws -> Int64 {
        try await HTTP.request("GET", url + "/v1/consensus", timeout: 5).json["height"]?.intValue ?? 0
    }

    /// Load around a fault: counts submitted and answered batches, and kills a process only once it
    /// has been seen busy with load that is still unanswered.
    final class Load: Sendable {
        private struct State {
            var started = 0, answered = 0, killed = false, answeredAfterKill = 0
        }
        private let state = Mutex(State())

        func started() { state.withLock { $0.started += 1 } }
        func answered() { state.withLock { s in s.answered += 1; if s.killed { s.answeredAfterKill += 1 } } }
        var killed: Bool { state.withLock { $0.killed } }
        var answeredAfterKill: Int { state.withLock { $0.answeredAfterKill } }

        /// Submits batch after batch until the kill, then once more (as long as `batches` last): each
        /// batch submitted with its answer, nil where the submission failed (an answer lost in a fault).
        func feed(to url: String, batches: [[Transaction]], submit: @Sendable (String, [Transaction]) async throws -> JSONValue) async -> [([Transaction], JSONValue?)] {
            var answers: [([Transaction], JSONValue?)] = []
            var afterKill = 0
            for txs in batches where afterKill < 1 {
                let wasKilled = killed
                started()
                answers.append((txs, try? await submit(url, txs)))
                answered()
                if wasKilled { afterKill += 1 }
            }
            return answers
        }

        /// Polls `busy` (the target's work grew) every 10 ms, up to 60 s; once it holds while a
        /// submitted batch is unanswered, kills `pid` with SIGKILL. Whether that was seen.
        func killWhenBusy(pid: Int64, busy: @Sendable () async -> Bool) async throws -> Bool {
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                let outstanding = state.withLock { $0.started > $0.answered }
                if outstanding, await busy(), state.withLock({ $0.started > $0.answered }) {
                    kill(Int32(pid), SIGKILL)
                    state.withLock { $0.killed = true }
                    return true
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            kill(Int32(pid), SIGKILL)
            state.withLock { $0.killed = true }
            return false
        }
    }

    @Test func clusterSurvivesKilledNodeAndEtcdLeader() async throws {
        let data = temporaryPath("cluster")
        defer { try? FileManager.default.removeItem(atPath: data) }
        func trace(_ what: String) { FileHandle.standardError.write(Data("[\(Date())] cluster test: \(what)\n".utf8)) }
        let cluster = try ClusterProcess(data: data)
        trace("cluster up")
        let layout = cluster.layout
        let apis = try #require(layout["nodes"]?.arrayValue).compactMap { $0["api"]?.stringValue }
        let pids = try #require(layout["nodes"]?.arrayValue).compactMap { $0["pid"]?.intValue }
        let etcd = try #require(layout["etcd"]?.arrayValue).compactMap(\.stringValue)
        #expect(apis.count == 4 && pids.count == 4 && etcd.count == 3)
        let chain = try #require(layout["chainId"]?.stringValue)
        let author = SigningKey()
        let nonce = Mutex<UInt64>(0)
        func batch(_ n: Int) throws -> [Transaction] {
            try (0..<n).map { _ in
                let i = nonce.withLock { v -> UInt64 in
                    v += 1
                    return v
                }
                return try Transaction(
                    chainID: chain, signer: author, nonce: i, contract: "notary", action: "record",
                    payload: .object(["hash": .string(Hash.sha256(Array("cluster doc \(i)".utf8)).hex), "label": .string("doc \(i)")]))
            }
        }
        var acknowledged: [String: (height: Int64, leaf: Int64)] = [:]
        func take(_ answer: JSONValue) {
            for r in answer["results"]?.arrayValue ?? [] {
                #expect(r["final"]?.boolValue == true, "acknowledged with wait=final but not final")
                if let id = r["id"]?.stringValue, let h = r["height"]?.intValue, let leaf = r["leafIndex"]?.intValue { acknowledged[id] = (h, leaf) }
            }
        }

        // The node that leads ordering (cuts and proposes blocks) is the one killed: failover then needs
        // its etcd lease to expire, with no resignation.
        func status() throws -> JSONValue {
            let answer = try CLI.run(["cluster", "status", "--data", data, "--json"])
            #expect(answer.status == 0)
            return try JSONValue.parse(Array(answer.stdout.utf8))
        }
        var victim = -1
        let leaderDeadline = Date().addingTimeInterval(30)
        while victim < 0, Date() < leaderDeadline {
            let before = try status()
            let names = (before["nodes"]?.arrayValue ?? []).map { $0["name"]?.stringValue }
            if let leader = before["orderingLeader"]?.stringValue, let i = names.firstIndex(of: leader) { victim = i } else { try await Task.sleep(for: .milliseconds(200)) }
        }
        try #require(victim >= 0, "no ordering leader")
        let survivors = (0..<4).filter { $0 != victim }
        trace("ordering leader is node \(victim + 1)")

        // Load on the three others: each of three feeders submits batch after batch (wait=final) until
        // the kill, then once more. The leader is killed with SIGKILL once it has been seen ordering the
        // load (its height grew) while submitted batches are still unanswered.
        let leaderLoad = Load()
        let leader = victim
        let heightBefore = try await Self.height(apis[leader])
        let pools = try (0..<3).map { _ in try (0..<25).map { _ in try batch(40) } }
        let answers = try await withThrowingTaskGroup(of: [([Transaction], JSONValue?)].self) { group in
            for f in 0..<3 {
                group.addTask { await leaderLoad.feed(to: apis[survivors[f]], batches: pools[f], submit: Self.submit) }
            }
            let seen = try await leaderLoad.killWhenBusy(pid: pids[leader]) { (try? await Self.height(apis[leader])).map { $0 > heightBefore } ?? false }
            #expect(seen, "the leader was killed without being seen ordering in-flight load")
            var all: [([Transaction], JSONValue?)] = []
            for try await answers in group { all += answers }
            return all
        }
        #expect(answers.allSatisfy { $0.1?["results"]?.arrayValue?.count == $0.0.count }, "every batch sent to a surviving node is answered, each transaction")
        for (_, answer) in answers { if let answer { take(answer) } }
        trace("load with the ordering leader killed: final")
        #expect(leaderLoad.answeredAfterKill > 0, "load went on after the kill")

        // Status sees the killed node down, the others final, and another ordering leader (once the killed
        // leader's etcd lease has expired and a survivor holds the election: polled, up to 30 s).
        var view = try status()
        let electionDeadline = Date().addingTimeInterval(30)
        while Date() < electionDeadline,
            view["orderingLeader"]?.stringValue == nil || view["orderingLeader"]?.stringValue == view["nodes"]?[victim]?["name"]?.stringValue
        {
            try await Task.sleep(for: .milliseconds(500))
            view = try status()
        }
        let nodes = try #require(view["nodes"]?.arrayValue)
        #expect(nodes.map { $0["up"]?.boolValue } == (0..<4).map { $0 != victim })
        #expect(view["orderingLeader"]?.stringValue?.hasPrefix("org-") == true)
        #expect(view["orderingLeader"]?.stringValue != nodes[victim]["name"]?.stringValue, "a new ordering leader was elected")
        let finalBefore = nodes[survivors[0]]["finalHeight"]?.intValue ?? 0
        trace("status read")
        #expect(finalBefore >= 1)

        // The killed node restarts on its data and catches up from etcd, verifying every block.
        let restarted = try NodeProcess(data: data + "/node-\(victim)", command: "node", extra: ["--etcd", etcd.joined(separator: ",")])
        defer { restarted.stop() }
        let deadline = Date().addingTimeInterval(60)
        var caughtUp = false
        while Date() < deadline {
            if let h = try? await HTTP.request("GET", restarted.url + "/v1/consensus").json["finalHeight"]?.intValue, h >= finalBefore {
                caughtUp = true
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(caughtUp, "node \(victim + 1) did not catch up to final height \(finalBefore)")
        trace("node \(victim + 1) restarted and caught up")

        // Kill the etcd leader with SIGKILL once transactions have been seen in flight (submitted,
        // unanswered, while the chain grows): ordering resumes after the election; every answer
        // acknowledged as final counts, nothing is lost or applied twice.
        let etcdLeader = try #require(view["etcdLeader"]?.stringValue)
        let leaderIndex = try #require(etcd.firstIndex(of: etcdLeader))
        let etcdPid = try #require(layout["etcdPids"]?.arrayValue?[leaderIndex].intValue)
        let etcdLoad = Load()
        let heightBeforeEtcdKill = try await Self.height(apis[survivors[0]])
        let etcdPools = try (0..<3).map { _ in try (0..<25).map { _ in try batch(20) } }
        let outcomes = await withTaskGroup(of: [([Transaction], JSONValue?)].self) { group in
            for f in 0..<3 {
                group.addTask { await etcdLoad.feed(to: apis[survivors[f]], batches: etcdPools[f], submit: Self.submit) }
            }
            let seen = (try? await etcdLoad.killWhenBusy(pid: etcdPid) {
                (try? await Self.height(apis[survivors[0]])).map { $0 > heightBeforeEtcdKill } ?? false
            }) ?? false
            #expect(seen, "the etcd leader was killed without transactions seen in flight")
            var all: [([Transaction], JSONValue?)] = []
            for await outcome in group { all += outcome }
            return all
        }
        let inFlight = outcomes.map(\.0)
        for (txs, answer) in outcomes {
            guard let answer else { continue }
            #expect(answer["results"]?.arrayValue?.count == txs.count, "an answered batch answers each of its transactions")
            take(answer)
        }
        // A batch whose answer was lost in the election is sent again: each transaction is then either
        // committed once (its first submission went through) or refused as a replay — never twice.
        var resent: [Transaction] = []
        for (f, (txs, answer)) in outcomes.enumerated() where answer == nil {
            resent += txs
            let again = try await HTTP.request(
                "POST", apis[survivors[f % 3]] + "/v1/transactions?wait=final",
                body: JSONValue.object(["transactions": .array(txs.map { .object(["raw": .string(Base64.encode($0.encoded))]) })]).canonicalBytes, timeout: 60)
            if again.status == 200 { take(again.json) }
        }
        for round in 0..<3 { take(try await Self.submit(apis[survivors[round]], try batch(20))) }
        trace("etcd leader killed with transactions in flight (\(resent.count) resent); load final")

        // Every transaction acknowledged as final is on every node, identical (same block, same leaf);
        // so is every transaction of the batches in flight at the etcd kill, acknowledged or refused
        // as a replay when sent again. Each node is polled until it is final up to the highest block.
        let everyNode = survivors.map { apis[$0] } + [restarted.url]
        let top = acknowledged.values.map(\.height).max()!
        var inFlightPlaces: [String: [String: Int64]] = [:]
        for api in everyNode {
            let finalDeadline = Date().addingTimeInterval(60)
            var final: Int64 = 0
            while Date() < finalDeadline {
                final = try await HTTP.request("GET", api + "/v1/consensus").json["finalHeight"]?.intValue ?? 0
                if final >= top { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(final >= top, "\(api) final at \(final), below \(top)")
            for (id, where_) in acknowledged {
                let tx = try await HTTP.request("GET", api + "/v1/transactions/\(id)").json
                #expect(tx["height"]?.intValue == where_.height && tx["leafIndex"]?.intValue == where_.leaf, "\(id) on \(api)")
            }
            for tx in inFlight.joined() {
                let answer = try await HTTP.request("GET", api + "/v1/transactions/\(tx.id.hex)")
                #expect(answer.status == 200 && answer.json["status"] == .string("committed"), "\(tx.id.hex) in flight at the etcd kill is not on \(api)")
                if let h = answer.json["height"]?.intValue { inFlightPlaces[tx.id.hex, default: [:]][api] = h }
            }
        }
        #expect(inFlightPlaces.count == inFlight.joined().count && inFlightPlaces.values.allSatisfy { Set($0.values).count == 1 && $0.count == everyNode.count })
        trace("every transaction checked on every node")
        // Ctrl-C stops the whole cluster.
        cluster.interrupt()
        #expect(cluster.process.terminationStatus == 0)
        for i in survivors { #expect(kill(Int32(pids[i]), 0) != 0, "node process \(pids[i]) still running") }
        restarted.stop()

        // `cluster up` again on the same directory restarts the same cluster, history kept.
        let finalTop = acknowledged.values.map(\.height).max()!
        let again = try ClusterProcess(data: data)
        trace("cluster restarted")
        take(try await Self.submit(apis[survivors[0]], try batch(5)))
        // The block is committed where it was submitted; the other nodes apply it from etcd a moment later.
        var after = JSONValue.null
        for _ in 0..<60 {
            after = try JSONValue.parse(Array(try CLI.run(["cluster", "status", "--data", data, "--json"]).stdout.utf8))
            let nodes = after["nodes"]?.arrayValue ?? []
            if !nodes.isEmpty && nodes.allSatisfy({ ($0["height"]?.intValue ?? 0) > finalTop }) { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        for node in after["nodes"]?.arrayValue ?? [] {
            #expect(node["up"]?.boolValue == true)
            #expect((node["height"]?.intValue ?? 0) > finalTop)
        }
        // `cluster up` killed with SIGKILL: its reaper stops the nodes and etcd members it started.
        let started = try #require(again.layout["nodes"]?.arrayValue).compactMap { $0["pid"]?.intValue }
            + (again.layout["etcdPids"]?.arrayValue ?? []).compactMap(\.intValue)
        #expect(started.count == 7)
        again.stop(signal: SIGKILL)
        func running(_ pid: Int64) -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
            return stat[stat.index(after: close)...].dropFirst().first != "Z"
        }
        let reapDeadline = Date().addingTimeInterval(30)
        while started.contains(where: running), Date() < reapDeadline { try await Task.sleep(for: .milliseconds(200)) }
        #expect(!started.contains(where: running), "processes left behind by a killed cluster up: \(started.filter(running))")
        trace("cluster up killed; its processes stopped")
    }

    /// Every process `cluster up` started: its nodes and etcd members (from cluster.json).
    static func started(_ cluster: ClusterProcess) -> [Int32] {
        let layout = cluster.layout
        return ((layout["nodes"]?.arrayValue ?? []).compactMap { $0["pid"]?.intValue } + (layout["etcdPids"]?.arrayValue ?? []).compactMap(\.intValue))
            .map { Int32($0) }
    }

    static func alive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }

    /// Waits for `cluster up` and what it started to end, at most `limit` seconds; answers how long it took.
    static func waitGone(_ cluster: ClusterProcess, _ pids: [Int32], limit: Double) -> Double {
        let start = Date()
        while (cluster.process.isRunning || pids.contains(where: alive)) && Date().timeIntervalSince(start) < limit { usleep(20_000) }
        return Date().timeIntervalSince(start)
    }

    /// Ctrl-C or SIGTERM stops `cluster up` and every node and etcd member it started within 10 s, and
    /// the nodes log nothing above info on the way.
    @Test(arguments: CLI.builds, [SIGINT, SIGTERM]) func clusterUpStopsOnASignal(binary: String, signal: Int32) async throws {
        let data = temporaryPath("cluster-signal")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let cluster = try ClusterProcess(data: data, nodes: 2, binary: binary)
        let pids = Self.started(cluster)
        #expect(pids.count == 5 && pids.allSatisfy(Self.alive))
        kill(cluster.process.processIdentifier, signal)
        let seconds = Self.waitGone(cluster, pids, limit: 20)
        #expect(seconds < 10, "stopped in \(seconds) s")
        #expect(!cluster.process.isRunning && cluster.process.terminationStatus == 0)
        #expect(!pids.contains(where: Self.alive), "left running: \(pids.filter(Self.alive))")
        for i in 0..<2 {
            let log = (try? String(contentsOfFile: "\(data)/node-\(i).log", encoding: .utf8)) ?? ""
            let loud = loudLines(log)
            #expect(loud.isEmpty, "node-\(i).log: \(loud)")
        }
    }

    /// A second signal while the cluster stops kills what is still running and ends `cluster up` at once.
    @Test(arguments: CLI.builds) func aSecondSignalEndsClusterUpAtOnce(binary: String) async throws {
        let data = temporaryPath("cluster-twice")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let cluster = try ClusterProcess(data: data, nodes: 2, binary: binary)
        let pids = Self.started(cluster)
        kill(cluster.process.processIdentifier, SIGTERM)
        // The stop is under way once it says so (signals sent back to back would reach it as one).
        // (If it never does, it is killed after 15 s, which ends the read and fails the test below.)
        let heard = Mutex(false)
        let pid = cluster.process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 15) { if !heard.withLock({ $0 }) { kill(pid, SIGKILL) } }
        var printed = ""
        while !printed.contains("stopping the cluster") {
            let chunk = cluster.output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            printed += String(decoding: chunk, as: UTF8.self)
        }
        heard.withLock { $0 = printed.contains("stopping the cluster") }
        #expect(heard.withLock { $0 }, "cluster up did not start stopping on SIGTERM")
        kill(cluster.process.processIdentifier, SIGTERM)
        let seconds = Self.waitGone(cluster, pids, limit: 20)
        #expect(seconds < 5, "ended in \(seconds) s")
        #expect(cluster.process.terminationReason == .exit && cluster.process.terminationStatus == 128 + SIGTERM)
        #expect(!pids.contains(where: Self.alive), "left running: \(pids.filter(Self.alive))")
    }
}
