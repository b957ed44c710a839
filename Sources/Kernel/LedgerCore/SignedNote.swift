import Foundation

/// A C2SP signed-note verifier key, `<name>+<8 hex key id>+<base64(0x01 || Ed25519 public key)>`.
/// The key id is the first 4 bytes of SHA-256(name || "\n" || 0x01 || public key).
public struct NoteVerifier: Sendable, Hashable {
    public let name: String
    public let keyID: [UInt8]
    public let publicKey: PublicKey

    public init(name: String, publicKey: PublicKey) throws(LedgerError) {
        try NoteVerifier.checkName(name)
        self.name = name
        self.publicKey = publicKey
        keyID = NoteVerifier.keyID(name: name, publicKey: publicKey)
    }

    public init(vkey: String) throws(LedgerError) {
        let parts = vkey.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let id = Hex.decode(String(parts[1])), id.count == 4, parts[1].count == 8,
            let raw = try? Base64.decode(String(parts[2])), raw.count == 33, raw.first == 0x01
        else { throw LedgerError("bad_vkey", "not a signed-note Ed25519 verifier key: \(vkey.prefix(120))") }
        try self.init(name: String(parts[0]), publicKey: try PublicKey(rawRepresentation: Array(raw.dropFirst())))
        guard keyID == id else { throw LedgerError("bad_vkey", "key id does not match the name and key") }
    }

    public var vkey: String { "\(name)+\(Hex.encode(keyID))+\(Base64.encode([0x01] + publicKey.rawRepresentation))" }

    static func keyID(name: String, publicKey: PublicKey) -> [UInt8] {
        Array(Hash.sha256(parts: [Array(name.utf8), [0x0a, 0x01], publicKey.rawRepresentation]).bytes.prefix(4))
    }

    static func checkName(_ name: String) throws(LedgerError) {
        guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0 != "+" && !($0.properties.isWhitespace) })
        else { throw LedgerError("bad_key_name", "a note key name is non-empty, without spaces or '+'") }
    }
}

/// A C2SP signed-note signer (Ed25519).
public struct NoteSigner: Sendable {
    public let verifier: NoteVerifier
    private let key: SigningKey

    public init(name: String, key: SigningKey) throws(LedgerError) {
        self.key = key
        verifier = try NoteVerifier(name: name, publicKey: key.publicKey)
    }

    /// Parses `PRIVATE+KEY+<name>+<key id>+<base64(0x01 || seed)>`.
    public init(skey: String) throws(LedgerError) {
        let parts = skey.split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY",
            let raw = try? Base64.decode(String(parts[4])), raw.count == 33, raw.first == 0x01
        else { throw LedgerError("bad_skey", "not a signed-note Ed25519 private key") }
        try self.init(name: String(parts[2]), key: try SigningKey(seed: Array(raw.dropFirst())))
        guard Hex.encode(verifier.keyID) == parts[3] else { throw LedgerError("bad_skey", "key id does not match") }
    }

    /// Signs `text` (which must end in a newline) and returns the whole note.
    public func sign(text: String) throws(LedgerError) -> String {
        try SignedNote.checkText(text)
        let signature = key.signature(for: Array(text.utf8))
        return text + "\n\u{2014} \(verifier.name) \(Base64.encode(verifier.keyID + signature))\n"
    }
}

/// A note per C2SP signed-note: UTF-8 text ending in a newline, a blank line, then signature lines
/// `— <name> <base64(key id || signature)>`.
public struct SignedNote: Sendable {
    public let text: String
    public let signatures: [(name: String, keyID: [UInt8], signature: [UInt8])]

    public init(_ note: String) throws(LedgerError) {
        let bytes = Array(note.utf8)
        guard bytes.count <= 1 << 20 else { throw LedgerError("bad_note", "note too large") }
        guard note.hasSuffix("\n") else { throw LedgerError("bad_note", "note does not end with a newline") }
        // The signature block starts after the last blank line.
        guard let split = note.range(of: "\n\n", options: .backwards) else {
            throw LedgerError("bad_note", "no blank line before the signatures")
        }
        let text = String(note[note.startIndex..<note.index(after: split.lowerBound)])
        let block = note[split.upperBound...]
        try SignedNote.checkText(text)
        var signatures: [(String, [UInt8], [UInt8])] = []
        for line in block.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            guard line.hasPrefix("\u{2014} ") else { throw LedgerError("bad_note", "signature line does not start with an em dash") }
            let fields = line.dropFirst(2).split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 2, !fields[0].isEmpty, let raw = try? Base64.decode(String(fields[1])), raw.count >= 5 else {
                throw LedgerError("bad_note", "malformed signature line")
            }
            signatures.append((String(fields[0]), Array(raw.prefix(4)), Array(raw.dropFirst(4))))
        }
        guard !signatures.isEmpty else { throw LedgerError("bad_note", "note has no signature") }
        self.text = text
        self.signatures = signatures
    }

    static func checkText(_ text: String) throws(LedgerError) {
        guard text.hasSuffix("\n") else { throw LedgerError("bad_note", "note text must end with a newline") }
        for scalar in text.unicodeScalars where scalar.value < 0x20 && scalar != "\n" {
            throw LedgerError("bad_note", "note text has a control character")
        }
    }

    /// Verifies that at least `quorum` of `verifiers` (distinct keys) signed the note; answers how many did.
    @discardableResult
    public func verify(quorum: Int, of verifiers: [NoteVerifier]) throws(LedgerError) -> Int {
        var signed = 0
        for v in Set(verifiers) where (try? verify(v)) != nil { signed += 1 }
        guard signed >= quorum else {
            throw LedgerError("no_quorum", "\(signed) of \(verifiers.count) validators signed the note; \(quorum) are needed")
        }
        return signed
    }

    /// Verifies that `verifier` signed the note; signatures by unknown keys are ignored.
    public func verify(_ verifier: NoteVerifier) throws(LedgerError) {
        let message = Array(text.utf8)
        var sawKey = false
        for s in signatures where s.name == verifier.name && s.keyID == verifier.keyID {
            sawKey = true
            if verifier.publicKey.isValidSignature(s.signature, for: message) { return }
        }
        throw LedgerError(sawKey ? "bad_signature" : "unknown_key", sawKey ? "note signature does not verify" : "note is not signed by \(verifier.name)")
    }
}

/// A C2SP tlog-checkpoint: origin line, decimal tree size, base64 root hash, optional extension lines.
public struct Checkpoint: Sendable, Hashable {
    public let origin: String
    public let size: UInt64
    public let rootHash: Hash
    public let extensions: [String]

    public init(origin: String, size: UInt64, rootHash: Hash, extensions: [String] = []) {
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
        self.extensions = extensions
    }

    public var text: String {
        ([origin, String(size), rootHash.base64] + extensions).joined(separator: "\n") + "\n"
    }

    public init(text: String) throws(LedgerError) {
        guard text.hasSuffix("\n") else { throw LedgerError("bad_checkpoint", "checkpoint text must end with a newline") }
        let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 3, !lines[0].isEmpty else { throw LedgerError("bad_checkpoint", "checkpoint needs origin, size and root") }
        let sizeText = lines[1]
        guard !sizeText.isEmpty, sizeText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), sizeText == "0" || !sizeText.hasPrefix("0"),
            let size = UInt64(sizeText)
        else { throw LedgerError("bad_checkpoint", "tree size must be a decimal number") }
        guard let raw = try? Base64.decode(String(lines[2])), raw.count == 32 else {
            throw LedgerError("bad_checkpoint", "root hash must be base64 of 32 bytes")
        }
        guard lines.dropFirst(3).allSatisfy({ !$0.isEmpty }) else { throw LedgerError("bad_checkpoint", "empty extension line") }
        self.init(origin: lines[0], size: size, rootHash: try Hash(Array(raw)), extensions: Array(lines.dropFirst(3)))
    }

    /// Parses and verifies a signed checkpoint note.
    public static func verify(note: String, verifier: NoteVerifier, origin: String? = nil) throws(LedgerError) -> Checkpoint {
        let parsed = try SignedNote(note)
        try parsed.verify(verifier)
        let checkpoint = try Checkpoint(text: parsed.text)
        if let origin, checkpoint.origin != origin {
            throw LedgerError("bad_checkpoint", "origin \(checkpoint.origin) is not \(origin)")
        }
        return checkpoint
    }
}
