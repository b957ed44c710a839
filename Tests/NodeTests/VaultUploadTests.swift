import Composition
import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import NIOCore
import Node
import Prometheus
import Records
import Standards
import Synchronization
import Testing

@testable import Server

/// Nobody fills a node's disk through the vault: only registered principals upload, within a size
/// limit of the vault's own (not the request body limit), each holding a bounded quota of uploads
/// no transaction refers to yet; such uploads are destroyed after the grace period, also when the
/// node restarted meanwhile, and counted in the metrics.
@Suite struct VaultUploadTests {
    /// A vault blob of `size` bytes: 32 bytes of salt then random "ciphertext".
    static func blob(_ size: Int) -> (Hash, [UInt8]) {
        let bytes = (0..<size).map { _ in UInt8.random(in: 0...255) }
        return (Hash.sha256(bytes), bytes)
    }

    static func put(_ client: any TestClientProtocol, _ rc: RecordsClient, _ blob: (Hash, [UInt8]), as party: Party) async throws -> TestResponse {
        try await client.execute(
            uri: "/v1/vault/\(blob.0.hex)", method: .put,
            headers: [.authorization: "Bearer \(try await rc.token(party))", .contentType: "application/octet-stream"], body: ByteBuffer(bytes: blob.1))
    }

    @Test func uploadsAreBoundedAndUnclaimedOnesExpire() async throws {
        let hospital = Party(), alice = Party(), bob = Party(), stranger = Party()
        let clock = ManualClock(startingAt: LedgerNode.systemClock() + 1000)
        let network = try TestNetwork(contracts: .careLedger, capabilities: HostedCapabilities.careLedger, clock: clock.read) { server in
            server.maxBodyBytes = 4096
            server.vault.maxBlobBytes = 64 * 1024
            server.vault.quotaBytes = 3 * 20_000
        }
        try await network.run(live: true) { client in
            var rc = RecordsClient(client: client)
            _ = try await rc.register(network.operatorParty, hospital, "organisation", name: "H")
            try await rc.registerAll([(alice, alice, "patient", nil), (bob, bob, "patient", nil)])

            // A key nobody registered gets a token, but stores nothing.
            let big = Self.blob(60_000)
            let anonymous = try await Self.put(client, rc, big, as: stranger)
            #expect(anonymous.status == .forbidden)
            #expect(try rc.json(anonymous)["error"]?["code"] == .string("not_registered"))
            #expect(!network.vault.contains(big.0))
            // A record's blobs are claimed by its transaction; they are noted until a quota check or a sweep looks.
            let condition: JSONValue = .object(["resourceType": .string("Condition"), "id": .string("c1"), "code": .object(["text": .string("Asthma")])])
            #expect(try await rc.put(alice, patient: alice, recordID: "c1", version: 1, resource: condition, custodian: hospital)["status"] == .string("committed"))
            let recordBlobs = Set(try #require(try network.api.records.record("c1")).versions.flatMap(\.blobs))
            #expect(recordBlobs.count == 2 && recordBlobs.allSatisfy { network.api.uploads.unclaimed[try! Hash(hex: $0)] != nil })

            // The vault's own limit, not the request body limit (4096 here), bounds a blob.
            #expect(try await Self.put(client, rc, big, as: alice).status == .created, "60,000 bytes, the record's claimed blobs counted out")
            // The record's claimed blobs were counted out when the quota was checked.
            #expect(recordBlobs.allSatisfy { network.api.uploads.unclaimed[try! Hash(hex: $0)] == nil })
            let tooBig = Self.blob(64 * 1024 + 1)
            let refused = try await Self.put(client, rc, tooBig, as: alice)
            #expect(refused.status == .contentTooLarge && !network.vault.contains(tooBig.0))

            // Alice's quota of unclaimed bytes (60,000 here) is full: another upload is refused.
            let small = (0..<3).map { _ in Self.blob(20_000) }
            let first = try await Self.put(client, rc, small[0], as: alice)
            #expect(first.status == .tooManyRequests, "60,000 + 20,000 > 60,000")
            #expect(try rc.json(first)["error"]?["code"] == .string("vault_quota"))
            let retry = try #require(first.headers[.retryAfter].flatMap { Int($0) })
            #expect((3590...3601).contains(retry), "until the big blob's grace period ends: \(retry)")
            #expect(!network.vault.contains(small[0].0))
            // Bob is not held back by Alice.
            for b in small { #expect(try await Self.put(client, rc, b, as: bob).status == .created) }
            #expect(try await Self.put(client, rc, Self.blob(100), as: bob).status == .tooManyRequests)
            #expect(network.api.uploads.held(by: bob.did) == 60_000)

            // After the grace period, a sweep destroys every unclaimed upload and keeps the record's —
            // once the node has applied the chain up to the end of the grace period: a node that is
            // behind (here: no block since) destroys nothing a block it lacks could claim.
            clock.advance(by: 3_600_000)
            #expect(network.api.sweepUploads().removed == 0, "no block since the uploads")
            _ = try await rc.register(Party(), Party(), "patient")
            #expect(network.api.uploads.sweep(now: network.node.now - 1).removed == 0, "a millisecond early")
            #expect(network.api.sweepUploads().removed == 4)
            #expect(!network.vault.contains(big.0) && small.allSatisfy { !network.vault.contains($0.0) })
            #expect(recordBlobs.allSatisfy { network.vault.contains(try! Hash(hex: $0)) })
            #expect(try await rc.get("/v1/records/c1", as: alice).status == .ok)
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            #expect(metrics.contains("careledger_vault_unclaimed_removed_total 4"), "\(metrics.split(separator: "\n").filter { $0.contains("vault") })")
            #expect(metrics.contains("careledger_vault_unclaimed_removed_bytes_total 120000"))
            #expect(metrics.contains("careledger_vault_unclaimed_bytes 0"))
            // Her quota is free again.
            #expect(try await Self.put(client, rc, small[0], as: alice).status == .created)
        }
    }

    /// Notes of unclaimed uploads are files: a node started again still removes what it had been given.
    @Test func unclaimedUploadsOutliveARestart() throws {
        let chain = try TempChain()
        let vault = try Vault(path: chain.directory.vault)
        var limits = VaultUploads.Limits()
        limits.graceMillis = 1000
        let claimedHashes = Mutex(Set<Hash>())
        func uploads() throws -> VaultUploads {
            try VaultUploads(vault: vault, limits: limits, registry: PrometheusCollectorRegistry()) { hash, _ in claimedHashes.withLock { $0.contains(hash) } }
        }
        let (kept, keptBytes) = Self.blob(500), (dropped, droppedBytes) = Self.blob(700)
        let before = try uploads()
        #expect(try before.upload(keptBytes, saltedHash: kept, uploader: "did:key:alice", now: 10_000) == nil)
        #expect(try before.upload(droppedBytes, saltedHash: dropped, uploader: "did:key:alice", now: 10_000) == nil)
        // A blob whose salted hash does not match, or already held, is not noted.
        #expect(throws: LedgerError.code("hash_mismatch")) { _ = try before.upload(droppedBytes, saltedHash: kept, uploader: "did:key:alice", now: 10_000) }
        #expect(try before.upload(droppedBytes, saltedHash: dropped, uploader: "did:key:bob", now: 10_000) == nil)
        #expect(before.held(by: "did:key:bob") == 0)
        claimedHashes.withLock { _ = $0.insert(kept) }

        let after = try uploads()
        #expect(after.unclaimed == [kept: .init(uploader: "did:key:alice", bytes: 500, atMillis: 10_000), dropped: .init(uploader: "did:key:alice", bytes: 700, atMillis: 10_000)])
        #expect(after.sweep(now: 10_999) == (claimed: 1, removed: 0))
        #expect(after.sweep(now: 11_000) == (claimed: 0, removed: 1))
        #expect(vault.contains(kept) && !vault.contains(dropped))
        #expect(try uploads().unclaimed.isEmpty)
    }
}

extension LedgerAPI {
    /// The records service of the node's records capability (whose records claim their uploads).
    var records: RecordsService { capability(RecordsCapability.self)!.records }
}
