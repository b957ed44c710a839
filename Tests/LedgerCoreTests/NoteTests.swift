import LedgerCore
import Testing

@Suite struct NoteTests {
    /// Why each mangled note of the shared vectors is refused, by `desc`, as the code `SignedNote` gives.
    static let rejectionReasons: [String: String] = [
        "one changed letter in the text": "bad_signature",
        "checkpoint with size changed to 8": "bad_signature",
        "signature line with an ASCII hyphen instead of the em dash": "bad_note",
        "no blank line before the signature": "bad_note",
    ]

    @Test func referenceVectors() throws {
        let v = try Vectors.json("note/signed-note.json")
        let verifier = try NoteVerifier(vkey: v["vkey"]!.stringValue!)
        #expect(verifier.vkey == v["vkey"]!.stringValue!)
        let signer = try NoteSigner(skey: v["skey"]!.stringValue!)
        #expect(signer.verifier == verifier)
        let cases = v["cases"]!.arrayValue!
        #expect(cases.count >= 6)
        var refused: Set<String> = []
        for c in cases {
            let note = c["note"]!.stringValue!
            let desc = c["desc"]!.stringValue!
            guard c["valid"]!.boolValue! else {
                refused.insert(desc)
                guard let expected = Self.rejectionReasons[desc] else {
                    Issue.record("\(desc): no expected code for this rejection")
                    continue
                }
                #expect(throws: LedgerError.code(expected), "\(desc)") { try SignedNote(note).verify(verifier) }
                continue
            }
            let parsed = try SignedNote(note)
            try parsed.verify(verifier)
            if let text = c["text"]?.stringValue { #expect(parsed.text == text, "\(desc)") }
            if let size = c["size"]?.intValue {
                let checkpoint = try Checkpoint.verify(note: note, verifier: verifier, origin: c["origin"]!.stringValue!)
                #expect(checkpoint.size == UInt64(size))
                #expect(checkpoint.rootHash.base64 == c["rootBase64"]!.stringValue!)
            }
            if let text = c["text"]?.stringValue {
                // Ed25519 is deterministic: signing the same text gives the reference note.
                #expect(try signer.sign(text: text) == note, "\(desc)")
            }
        }
        #expect(refused == Set(Self.rejectionReasons.keys), "every reason in the table has its vector")
    }

    @Test func checkpointOfSevenLeaves() throws {
        var log = MerkleLog()
        for i in 0..<7 { log.append(leafHash: MerkleHash.leaf(Array("leaf-\(i)".utf8))) }
        #expect(log.root.base64 == "CwB/uRXrmyoUb1SxyG7FO2ZPjkVbdmCwtu4T7cDZIcA=")
    }

    @Test func signAndVerifyCheckpoint() throws {
        let signer = try NoteSigner(name: "careledger/test", key: SigningKey(seed: [UInt8](repeating: 7, count: 32)))
        let checkpoint = Checkpoint(origin: "careledger/test", size: 3, rootHash: MerkleHash.leaf([9]))
        let note = try signer.sign(text: checkpoint.text)
        let verifier = try NoteVerifier(vkey: signer.verifier.vkey)
        #expect(try Checkpoint.verify(note: note, verifier: verifier) == checkpoint)
        let other = try NoteSigner(name: "careledger/test", key: SigningKey(seed: [UInt8](repeating: 8, count: 32)))
        // Same name, another key: its key id is not among the note's signatures.
        #expect(throws: LedgerError.code("unknown_key")) { try Checkpoint.verify(note: note, verifier: other.verifier) }
        #expect(throws: LedgerError.code("bad_checkpoint")) { try Checkpoint(text: "o\n007\n\(checkpoint.rootHash.base64)\n") }
        #expect(throws: LedgerError.code("bad_vkey")) { try NoteVerifier(vkey: "name+00000000+AAAA") }
    }
}
