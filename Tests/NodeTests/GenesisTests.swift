import ContractKit
import Foundation
import LedgerCore
import Node
import Store
import Testing

/// Genesis is a file every founding member signs: the node starts only once all have, and a change
/// after signing breaks their signatures.
@Suite struct GenesisTests {
    @Test func everyFoundingMemberSigns() throws {
        let a = SigningKey(), b = SigningKey(), outsider = SigningKey()
        let dir = DataDirectory(NSTemporaryDirectory() + "careledger-genesis-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        let genesis = try Consortium.create(in: dir, chainID: "founders", principals: [], members: [a.publicKey.did, b.publicKey.did])
        #expect(try genesis.unsignedMembers() == [a.publicKey.did, b.publicKey.did])
        #expect(throws: LedgerError.code("genesis_unsigned")) { try LedgerNode(directory: dir, contracts: .kernel) }
        #expect(throws: LedgerError.code("not_a_member")) { try genesis.signed(by: outsider) }

        let half = try genesis.signed(by: a)
        try half.save(to: dir.genesis)
        #expect(try Genesis.load(dir.genesis).unsignedMembers() == [b.publicKey.did])
        #expect(throws: LedgerError.code("genesis_unsigned")) { try LedgerNode(directory: dir, contracts: .kernel) }

        // A change after signing (here, the time) invalidates the signatures.
        let full = try half.signed(by: b)
        let tampered = Genesis(
            chainID: full.chainID, proposer: full.proposer, timeMillis: full.timeMillis + 1, origin: full.origin, members: full.members,
            signatures: full.signatures)
        #expect(throws: LedgerError.code("bad_genesis")) { try tampered.requireSigned() }
        // A signature by someone who is not a member is refused too.
        var extra = full.signatures
        extra[outsider.publicKey.did] = Base64.encode(outsider.signature(for: full.signingBytes))
        let withOutsider = Genesis(
            chainID: full.chainID, proposer: full.proposer, timeMillis: full.timeMillis, origin: full.origin, members: full.members, signatures: extra)
        #expect(throws: LedgerError.code("bad_genesis")) { try withOutsider.requireSigned() }

        try full.save(to: dir.genesis)
        let node = try LedgerNode(directory: dir, contracts: .kernel)
        #expect(node.height == 0)
        #expect(try Genesis.load(dir.genesis) == full)
    }
}
