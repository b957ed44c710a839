import Foundation
import LedgerCore
import Testing

/// The chain's formats held to fixed bytes (`Vectors/chain-formats.json`, made by an independent
/// implementation of the documented formats: `Vectors/README.md`). Each format both ways: encoding
/// the value gives exactly the bytes and hash; decoding the bytes gives the value. A change to any
/// of these bytes forks every running chain.
@Suite struct ChainFormatTests {
    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Vectors/chain-formats.json")

    let vectors: JSONValue
    let keys: [String: SigningKey]

    init() throws {
        vectors = try JSONValue.parse(Array(try Data(contentsOf: Self.file)))
        var keys: [String: SigningKey] = [:]
        for k in vectors["keys"]?.arrayValue ?? [] {
            let key = try SigningKey(seed: try bytes(k["seed"]))
            #expect(Hex.encode(key.publicKey.rawRepresentation) == k["publicKey"]?.stringValue)
            #expect(key.publicKey.did == k["did"]?.stringValue)
            keys[k["name"]?.stringValue ?? ""] = key
        }
        self.keys = keys
    }

    func list(_ name: String) throws -> [JSONValue] {
        let items = try #require(vectors[name]?.arrayValue, "\(name) in the vectors")
        try #require(!items.isEmpty)
        return items
    }

    func named(_ list: String, _ name: String?) throws -> JSONValue {
        try #require(try self.list(list).first { $0["name"]?.stringValue == name }, "\(list) \(name ?? "-")")
    }

    func key(_ v: JSONValue?) throws -> SigningKey { try #require(keys[v?.stringValue ?? ""]) }
    func uint(_ v: JSONValue?) throws -> UInt64 { UInt64(try #require(v?.intValue)) }
    func hash(_ v: JSONValue?) throws -> Hash { try Hash(try bytes(v)) }

    @Test func transactions() throws {
        for v in try list("transactions") {
            let name = v["name"]?.stringValue ?? ""
            let nonce = try #require(UInt64(v["nonceText"]?.stringValue ?? ""))
            let payload = try #require(v["payload"])
            let tx = try Transaction(
                chainID: try #require(v["chainId"]?.stringValue), signer: try key(v["signer"]), nonce: nonce,
                contract: try #require(v["contract"]?.stringValue), action: try #require(v["action"]?.stringValue), payload: payload)
            #expect(payload.canonicalString == v["payloadCanonical"]?.stringValue, "\(name): canonical payload")
            #expect(Hex.encode(tx.encoded) == v["encoded"]?.stringValue, "\(name): encoding")
            let expectedSignature = try bytes(v["signature"])
            #expect(tx.signature == expectedSignature, "\(name): signature")
            #expect(tx.id.hex == v["id"]?.stringValue, "\(name): id")
            #expect(tx.leafHash.hex == v["logLeaf"]?.stringValue, "\(name): log leaf")
            let decoded = try Transaction(encoded: try bytes(v["encoded"]))
            let author = try key(v["signer"]).publicKey, signature = try bytes(v["signature"])
            #expect(decoded.chainID == v["chainId"]?.stringValue && decoded.nonce == nonce && decoded.author == author)
            #expect(decoded.contract == v["contract"]?.stringValue && decoded.action == v["action"]?.stringValue && decoded.payload == payload)
            #expect(decoded.signature == signature && decoded.id.hex == v["id"]?.stringValue, "\(name): decoded")
            try decoded.verifySignature()
        }
    }

    func header(_ v: JSONValue) throws -> BlockHeader {
        BlockHeader(
            chainID: try #require(v["chainId"]?.stringValue), height: try uint(v["height"]), previousHash: try hash(v["previousHash"]),
            timeMillis: try uint(v["timeMillis"]), logSize: try uint(v["logSize"]), logRoot: try hash(v["logRoot"]),
            stateRoot: try hash(v["stateRoot"]), transactionCount: try uint(v["transactionCount"]), transactionsHash: try hash(v["transactionsHash"]),
            proposer: try key(v["proposer"]).publicKey)
    }

    @Test func blockHeaders() throws {
        for v in try list("blockHeaders") {
            let name = v["name"]?.stringValue ?? ""
            let h = try header(v)
            #expect(Hex.encode(h.encoded) == v["encoded"]?.stringValue, "\(name): encoding")
            #expect(h.hash.hex == v["hash"]?.stringValue, "\(name): hash")
            #expect(try BlockHeader(encoded: try bytes(v["encoded"])) == h, "\(name): decoded")
            if let ids = v["transactionIds"]?.arrayValue {
                let hashes = try ids.map { try hash(try named("transactions", $0.stringValue)["id"]) }
                #expect(BlockHeader.transactionsHash(hashes).hex == v["transactionsHash"]?.stringValue, "\(name): transactions hash")
            }
        }
    }

    @Test func blockProposals() throws {
        for v in try list("blocks") {
            let name = v["name"]?.stringValue ?? ""
            let headerVector = try named("blockHeaders", v["header"]?.stringValue)
            let h = try header(headerVector)
            let txs = try (v["transactions"]?.arrayValue ?? []).map { try bytes(try named("transactions", $0.stringValue)["encoded"]) }
            #expect(BlockHeader.transactionsHash(txs.map { Hash.sha256($0) }) == h.transactionsHash, "\(name): its header's transactions hash")
            let signature = try key(headerVector["proposer"]).signature(for: h.encoded)
            let expectedSignature = try bytes(v["signature"])
            #expect(signature == expectedSignature, "\(name): proposer's signature")
            let proposal = BlockProposal(header: h, signature: signature, transactions: txs)
            #expect(Hex.encode(proposal.encoded) == v["encoded"]?.stringValue, "\(name): encoding")
            let decoded = try BlockProposal(encoded: try bytes(v["encoded"]))
            #expect(decoded.header == h && decoded.signature == signature && decoded.transactions == txs && decoded.isSignatureValid, "\(name): decoded")
        }
    }

    func vote(_ v: JSONValue) throws -> BlockVote { try BlockVote(encoded: try bytes(v["encoded"])) }

    @Test func votes() throws {
        for v in try list("votes") {
            let name = v["name"]?.stringValue ?? ""
            let decoded = try vote(v)
            let height = try uint(v["height"]), blockHash = try hash(v["blockHash"]), stateRoot = try hash(v["stateRoot"])
            let validator = try key(v["validator"]).publicKey, signature = try bytes(v["signature"])
            let checkpointSignature = try bytes(v["checkpointSignature"])
            #expect(decoded.chainID == v["chainId"]?.stringValue && decoded.height == height, "\(name)")
            #expect(decoded.blockHash == blockHash && decoded.stateRoot == stateRoot, "\(name)")
            #expect(decoded.validator == validator && decoded.signature == signature, "\(name)")
            #expect(decoded.checkpointSignature == checkpointSignature && decoded.isSignatureValid, "\(name)")
            let signing = BlockVote.signingBytes(
                chainID: decoded.chainID, height: decoded.height, blockHash: decoded.blockHash, stateRoot: decoded.stateRoot)
            #expect(Hex.encode(signing) == v["signingBytes"]?.stringValue, "\(name): signing bytes")
            // Encoding gives the bytes back, a version-1 vote (no checkpoint signature) included.
            #expect(Hex.encode(decoded.encoded) == v["encoded"]?.stringValue, "\(name): encoding")
            guard v["version"]?.intValue == 2 else { continue }
            // A vote made here from its block header gives the same bytes (Ed25519 is deterministic).
            let block = try #require(
                try list("blockHeaders").first { $0["hash"]?.stringValue == v["blockHash"]?.stringValue }, "\(name): its block header")
            let origin = try #require(v["origin"]?.stringValue)
            let made = BlockVote(header: try header(block), signer: try key(v["validator"]), origin: origin)
            #expect(Hex.encode(made.encoded) == v["encoded"]?.stringValue, "\(name): made from its header")
            let checkpoint = Checkpoint(origin: origin, size: try uint(v["logSize"]), rootHash: try hash(v["logRoot"]))
            #expect(checkpoint.text == v["checkpointText"]?.stringValue, "\(name): checkpoint text")
        }
    }

    @Test func quorumCertificates() throws {
        for v in try list("certificates") {
            let name = v["name"]?.stringValue ?? ""
            let votes = try (v["votes"]?.arrayValue ?? []).map { try vote(try named("votes", $0.stringValue)) }
            let certificate = QuorumCertificate(votes: votes)
            #expect(Hex.encode(certificate.encoded) == v["encoded"]?.stringValue, "\(name): encoding")
            let sorted = try (v["sortedVotes"]?.arrayValue ?? []).map { try vote(try named("votes", $0.stringValue)) }
            let decoded = try QuorumCertificate(encoded: try bytes(v["encoded"]))
            #expect(decoded.votes == sorted && decoded == certificate, "\(name): decoded, votes in validator key order")
        }
        for v in try list("cosignedCheckpoints") {
            let certificate = try QuorumCertificate(encoded: try bytes(try named("certificates", v["certificate"]?.stringValue)["encoded"]))
            let h = try header(try named("blockHeaders", v["header"]?.stringValue))
            #expect(try certificate.cosignedCheckpoint(header: h, origin: try #require(v["origin"]?.stringValue)) == v["note"]?.stringValue)
        }
    }

    @Test func checkpointNotes() throws {
        for v in try list("checkpoints") {
            let name = v["name"]?.stringValue ?? ""
            let checkpoint = Checkpoint(origin: try #require(v["origin"]?.stringValue), size: try uint(v["size"]), rootHash: try hash(v["rootHash"]))
            #expect(checkpoint.text == v["text"]?.stringValue, "\(name): text")
            #expect(try Checkpoint(text: try #require(v["text"]?.stringValue)) == checkpoint, "\(name): parsed")
            let signer = try NoteSigner(name: try #require(v["keyName"]?.stringValue), key: try key(v["signer"]))
            #expect(Hex.encode(signer.verifier.keyID) == v["keyID"]?.stringValue && signer.verifier.vkey == v["vkey"]?.stringValue, "\(name): key")
            #expect(try signer.sign(text: checkpoint.text) == v["signedNote"]?.stringValue, "\(name): signed note")
            let verifier = try NoteVerifier(vkey: try #require(v["vkey"]?.stringValue))
            #expect(try Checkpoint.verify(note: try #require(v["signedNote"]?.stringValue), verifier: verifier) == checkpoint, "\(name): verified")
        }
    }

    @Test func stateTrees() throws {
        for v in try list("stateTrees") {
            let name = v["name"]?.stringValue ?? ""
            let entries = try (v["entries"]?.arrayValue ?? []).map { e in
                (key: try #require(e["key"]?.stringValue), value: Optional(Array(try #require(e["value"]?.stringValue).utf8)))
            }
            for leaf in v["leaves"]?.arrayValue ?? [] {
                let key = try #require(leaf["key"]?.stringValue)
                let value = try #require(entries.last { $0.key == key }?.value)
                #expect(Hash.sha256(utf8: key).hex == leaf["keyHash"]?.stringValue && Hash.sha256(value).hex == leaf["valueHash"]?.stringValue, "\(name): \(key)")
                let leafHash = Hash.sha256([0] + Hash.sha256(utf8: key).bytes + Hash.sha256(value).bytes)
                #expect(leafHash.hex == leaf["leafHash"]?.stringValue, "\(name): leaf of \(key)")
            }
            // In one batch, and one write at a time: the same root.
            var batch = SparseMerkleTree()
            batch.set(batch: entries)
            #expect(batch.root.hex == v["root"]?.stringValue, "\(name): root")
            var single = SparseMerkleTree()
            for e in entries { single.set(key: Array(e.key.utf8), value: e.value) }
            #expect(single.root.hex == v["root"]?.stringValue, "\(name): root, one write at a time")
            for e in entries {
                try batch.proof(key: Array(e.key.utf8)).verify(root: batch.root, key: Array(e.key.utf8), value: entries.last { $0.key == e.key }?.value)
            }
        }
    }
}

extension ChainFormatTests {
    /// Private entries' leaves salted with the consortium secret; public ones as in the plain tree.
    @Test func saltedStateTrees() throws {
        for v in try list("saltedStateTrees") {
            let name = v["name"]?.stringValue ?? ""
            let hashing = StateLeafHashing(
                secret: try ConsortiumSecret(bytes: try bytes(v["secret"])), privatePrefixes: (v["privatePrefixes"]?.arrayValue ?? []).compactMap(\.stringValue))
            let entries = try (v["entries"]?.arrayValue ?? []).map { e in
                (key: try #require(e["key"]?.stringValue), value: Optional(Array(try #require(e["value"]?.stringValue).utf8)))
            }
            var tree = SparseMerkleTree()
            tree.set(batch: entries, hashing: hashing)
            #expect(tree.root.hex == v["root"]?.stringValue, "\(name): root")
            for leaf in v["leaves"]?.arrayValue ?? [] {
                let key = try #require(leaf["key"]?.stringValue)
                let value = try #require(entries.last { $0.key == key }?.value)
                let salt = hashing.salt(key)
                #expect(Hex.encode(salt ?? []) == leaf["salt"]?.stringValue, "\(name): salt of \(key)")
                let (keyHash, valueHash) = hashing.leaf(key, value)
                #expect(keyHash.hex == leaf["keyHash"]?.stringValue && valueHash?.hex == leaf["valueHash"]?.stringValue, "\(name): \(key)")
                let proof = tree.proof(key: key, hashing: hashing)
                try proof.verify(root: tree.root, key: key, value: value, salt: salt)
                if salt != nil {
                    // Without its salt, a private entry's proof shows nothing: the plain key hash is not in the tree.
                    #expect(throws: LedgerError.code("bad_proof")) { try proof.verify(root: tree.root, key: key, value: value, salt: nil) }
                    #expect(tree.proof(key: Array(key.utf8)).provenValueHash == nil)
                }
            }
        }
    }
}

/// Hex bytes of a vector field (empty for an empty string).
func bytes(_ v: JSONValue?) throws -> [UInt8] {
    let text = try #require(v?.stringValue)
    return try #require(Hex.decode(text))
}
