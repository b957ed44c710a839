import ArgumentParser
import CLIKit
import Foundation
import LedgerCore

struct ProofCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "proof", abstract: "Work with log proofs offline.", subcommands: [Verify.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an inclusion or consistency proof (as served by /v1/proofs/…) against signed checkpoints and a vkey.")
        @Option(help: "Verifier key (C2SP vkey), or @FILE to read it.") var vkey: String
        @Option(help: "Checkpoint note file (the later tree).") var checkpoint: String
        @Option(help: "Inclusion proof JSON file.") var inclusion: String?
        @Option(help: "Consistency proof JSON file.") var consistency: String?
        @Option(help: "Checkpoint note file of the earlier tree (with --consistency).") var oldCheckpoint: String?
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            guard (inclusion == nil) != (consistency == nil) else { throw ValidationError("give exactly one of --inclusion or --consistency") }
            if consistency != nil && oldCheckpoint == nil { throw ValidationError("--consistency needs --old-checkpoint") }
        }

        func run() throws {
            let vkeyText = vkey.hasPrefix("@") ? try readInputFile(String(vkey.dropFirst())) : vkey
            let verifier = try NoteVerifier(vkey: vkeyText.trimmingCharacters(in: .whitespacesAndNewlines))
            let cp = try verified(checkpoint, verifier)
            if let inclusion {
                let proof = try JSONValue.parse(try readInputFile(inclusion))
                guard let index = proof["leafIndex"]?.intValue, index >= 0, let size = proof["treeSize"]?.intValue, size >= 0,
                    let hashes = proof["hashes"]?.arrayValue
                else { throw LedgerError("bad_proof_file", "inclusion proof needs leafIndex, treeSize and hashes") }
                let leafHash: Hash
                if let raw = proof["raw"]?.stringValue {
                    leafHash = MerkleHash.leaf(try Base64.decode(raw, field: "raw"))
                } else {
                    leafHash = try Hash(base64: proof["leafHash"]?.stringValue ?? "")
                }
                guard UInt64(size) == cp.size else {
                    throw LedgerError("verification_failed", "proof is for tree size \(size), checkpoint is for \(cp.size)")
                }
                do {
                    try MerkleProof.verifyInclusion(
                        leafHash: leafHash.bytes, leafIndex: UInt64(index), treeSize: UInt64(size),
                        proof: try hashes.map { (h) throws(LedgerError) in try Base64.decode(h.stringValue ?? "", field: "hash") },
                        root: cp.rootHash.bytes)
                } catch {
                    throw LedgerError("verification_failed", error.message)
                }
                output(.object(["ok": .bool(true), "leafIndex": .int(index), "treeSize": .int(size), "leafHash": .string(leafHash.base64)]), json: json) {
                    "OK: leaf \(index) (\(leafHash.base64)) is in the tree of size \(size) signed by \(verifier.name)"
                }
            } else if let consistency, let oldCheckpoint {
                let proof = try JSONValue.parse(try readInputFile(consistency))
                guard let hashes = proof["hashes"]?.arrayValue else { throw LedgerError("bad_proof_file", "consistency proof needs hashes") }
                let old = try verified(oldCheckpoint, verifier)
                /// The proof's `from` or `to`, when present: a tree size (a non-negative integer).
                func size(_ name: String) throws(LedgerError) -> UInt64? {
                    guard let value = proof[name] else { return nil }
                    guard let size = value.intValue.flatMap({ UInt64(exactly: $0) }) else {
                        throw LedgerError("bad_proof_file", "consistency proof's \(name) must be a tree size (a non-negative integer)")
                    }
                    return size
                }
                if let from = try size("from"), from != old.size {
                    throw LedgerError("verification_failed", "proof starts at \(from), old checkpoint is \(old.size)")
                }
                if let to = try size("to"), to != cp.size {
                    throw LedgerError("verification_failed", "proof ends at \(to), checkpoint is \(cp.size)")
                }
                do {
                    try MerkleProof.verifyConsistency(
                        size1: old.size, size2: cp.size, root1: old.rootHash.bytes, root2: cp.rootHash.bytes,
                        proof: try hashes.map { (h) throws(LedgerError) in try Base64.decode(h.stringValue ?? "", field: "hash") })
                } catch {
                    throw LedgerError("verification_failed", error.message)
                }
                output(.object(["ok": .bool(true), "from": .int(Int64(old.size)), "to": .int(Int64(cp.size))]), json: json) {
                    "OK: the tree of size \(cp.size) extends the tree of size \(old.size)"
                }
            }
        }

        func verified(_ path: String, _ verifier: NoteVerifier) throws -> Checkpoint {
            let note = try readInputFile(path)
            do {
                return try Checkpoint.verify(note: note, verifier: verifier)
            } catch {
                throw LedgerError("verification_failed", "checkpoint \(path): \(error.message)")
            }
        }
    }
}
