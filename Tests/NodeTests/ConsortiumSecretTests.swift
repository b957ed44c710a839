import ContractKit
import Foundation
import HTTPTypes
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Node
import Server
import SupplyContract
import Testing

/// One consortium secret per chain, a key derived per use, and clear errors for data it cannot read.
@Suite struct ConsortiumSecretTests {
    @Test func eachUseHasItsOwnKey() throws {
        let secret = try ConsortiumSecret(bytes: Array(0..<32))
        let keys = [ConsortiumSecret.membershipLabel, ConsortiumSecret.stateSaltLabel, SupplyKeys.blindingLabel].map { secret.key(label: $0) }
        #expect(Set(keys).count == 3 && keys.allSatisfy { $0.count == 32 && $0 != secret.bytes })
        #expect(secret.key(label: ConsortiumSecret.membershipLabel) == keys[0], "deterministic")
        #expect(throws: LedgerError.code("bad_secret")) { try ConsortiumSecret(bytes: Array(0..<31)) }
    }

    @Test func dataItCannotReadIsRefusedAtStart() throws {
        let chain = try TempChain()
        let directory = chain.directory
        let written = try directory.consortiumSecret(create: false)
        #expect(try LedgerNode(directory: directory, contracts: .kernel).secret == written)

        try FileManager.default.removeItem(atPath: directory.secret)
        #expect(throws: LedgerError.code("no_secret")) { try directory.consortiumSecret(create: false) }
        // A directory of 0.3.0 or earlier (before the secret was derived per use) is refused, naming the version.
        #expect(FileManager.default.createFile(atPath: directory.path + "/supply.secret", contents: Data(written.bytes)))
        let refusal = #expect(throws: LedgerError.self) { try LedgerNode(directory: directory, contracts: .kernel) }
        #expect(refusal?.code == "old_data")
        #expect(refusal?.message.contains("0.3.0 or earlier") == true)
        try FileManager.default.removeItem(atPath: directory.path + "/supply.secret")
        #expect(FileManager.default.createFile(atPath: directory.secret, contents: Data(written.bytes.prefix(31))))
        #expect(throws: LedgerError.code("corrupt_store")) { try LedgerNode(directory: directory, contracts: .kernel) }
    }

    /// A node's signed requests to a peer (block sync, snapshots, vault blobs) carry a fresh nonce: a
    /// node accepts a signature once, and a node polling the same URL twice in one second (a follower
    /// waiting for the next block, a retry) must not be refused as a replay.
    @Test func aNodesRequestsForOneURLInOneSecondAreEachAccepted() async throws {
        let network = try TestNetwork(contracts: .kernel, capabilities: { _ in [] })
        let credentials = try PeerCredentials(directory: network.chain.directory)
        try await network.run { client in
            let now = Int64(Date().timeIntervalSince1970)
            var signatures: Set<String> = []
            for _ in 0..<3 {
                let headers = try credentials.headers(url: "http://localhost/v1/sync/blocks?from=1&limit=1", now: now)
                var fields = HTTPFields()
                for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
                signatures.insert(fields[HTTPField.Name("Signature")!] ?? "")
                let answer = try await client.execute(uri: "/v1/sync/blocks?from=1&limit=1", method: .get, headers: fields)
                #expect(answer.status == .ok, "\(String(buffer: answer.body))")
            }
            #expect(signatures.count == 3, "each request signed with its own nonce")
        }
    }
}
