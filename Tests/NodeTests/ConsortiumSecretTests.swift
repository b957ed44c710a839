import ContractKit
import Foundation
import LedgerCore
import LedgerTesting
import Node
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
        // A directory of a release before the secret was derived per use names the release.
        #expect(FileManager.default.createFile(atPath: directory.path + "/supply.secret", contents: Data(written.bytes)))
        #expect(throws: LedgerError.code("old_data")) { try LedgerNode(directory: directory, contracts: .kernel) }
        try FileManager.default.removeItem(atPath: directory.path + "/supply.secret")
        #expect(FileManager.default.createFile(atPath: directory.secret, contents: Data(written.bytes.prefix(31))))
        #expect(throws: LedgerError.code("corrupt_store")) { try LedgerNode(directory: directory, contracts: .kernel) }
    }
}
