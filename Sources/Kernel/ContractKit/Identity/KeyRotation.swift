import LedgerCore

/// Which principal a signing key signs for.
///
/// A principal's identity is her did (the did:key of the key she registered with): records, consents,
/// guardians and delegations name it for good. Her *current* signing and encryption keys are on her
/// identity entry (`identity/<did>`: `signingKey`, absent until her first rotation, and `encryptionKey`),
/// with the whole history in `keyHistory` (each key with the heights `from` and `until` it was current).
/// A key that has ever been replaced or frozen has an entry `identity/signer/<key did>`:
/// `{"principal", "status": "current" | "retired" | "frozen", "from"?, "until"?}`. A key without one
/// signs for its own did, so a chain whose principals never rotate reads one absent key per transaction.
public enum Signers {
    public static let prefix = "identity/signer/"
    public static func key(_ keyDID: String) -> String { prefix + keyDID }

    /// The principal `keyDID` signs for now, or why it may not sign (`key_retired`, `key_frozen`).
    public static func principal(signedBy keyDID: String, read: (String) throws(LedgerError) -> [UInt8]?) throws(LedgerError) -> String {
        guard let bytes = try read(key(keyDID)) else { return keyDID }
        let entry = try JSONValue.parse(bytes)
        guard let principal = entry["principal"]?.stringValue else { throw LedgerError("corrupt_state", "bad signer entry for \(keyDID)") }
        switch entry["status"]?.stringValue {
        case "current":
            return principal
        case "frozen":
            throw LedgerError(
                "key_frozen",
                "the key of \(principal) is frozen (suspected theft, on two organisations' word): it signs nothing until a rotation or the freeze is lifted")
        default:
            throw LedgerError(
                "key_retired", "this key no longer signs for \(principal): it was replaced at height \(entry["until"]?.intValue ?? 0); sign with the current key")
        }
    }
}

/// Key rotation, and the freeze two organisations put on a key they suspect stolen.
extension IdentityContract {
    /// What the new signing key signs to prove it is held by whoever rotates to it (and that it is
    /// meant for this principal and these keys): `careledger-rotate\n<chain id>\n<did>\n<new key did>\n<encryption key, base64>\n`.
    public static func rotationMessage(chainID: String, did: String, signingKey: String, encryptionKey: String) -> [UInt8] {
        Array("careledger-rotate\n\(chainID)\n\(did)\n\(signingKey)\n\(encryptionKey)\n".utf8)
    }

    /// A proposal of a two-organisation act on `did` (`freeze`, `unfreeze`, `rotate`), waiting for the second organisation.
    static func proposalKey(_ act: String, _ did: String) -> String { "identity/\(act)-proposal/\(did)" }

    static let rotateFields: Set<String> = ["subject", "signingKey", "encryptionKey", "proof", "reason"]

    func validateKeyAction(_ action: String, _ payload: JSONValue) throws(LedgerError) {
        switch action {
        case "rotate":
            let p = try Payload(payload, allowed: Self.rotateFields)
            _ = try p.optionalDID("subject")
            _ = try p.did("signingKey")
            guard try Base64.decode(try p.string("encryptionKey"), field: "encryptionKey").count == 32 else {
                throw LedgerError("bad_payload", "encryptionKey must be a base64 32-byte X25519 public key")
            }
            guard try Base64.decode(try p.string("proof"), field: "proof").count == 64 else {
                throw LedgerError("bad_payload", "proof is the new signing key's base64 Ed25519 signature of the rotation message")
            }
            _ = try p.optionalString("reason", maxLength: 512)
        default:
            let p = try Payload(payload, allowed: ["subject", "reason"])
            _ = try p.did("subject")
            _ = try p.optionalString("reason", maxLength: 512)
        }
    }

    /// `rotate` by the principal herself (signed with her current key), or by an organisation for a
    /// frozen patient it has seen in person (`subject`; a second organisation confirming the same keys);
    /// `freeze` and `unfreeze` by two organisations.
    func executeKeyAction(_ action: String, _ payload: JSONValue, _ context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        let p = try Payload(payload, allowed: Self.rotateFields)
        let subject = try p.optionalDID("subject") ?? context.author
        guard var principal = try Principal.load(subject, from: context) else {
            throw LedgerError("unknown_principal", "\(subject) is not registered")
        }
        let reason = try p.optionalString("reason", maxLength: 512)
        if action == "rotate" {
            let signingKey = try p.did("signingKey"), encryptionKey = try p.string("encryptionKey")
            let proof = try Base64.decode(try p.string("proof"))
            let message = Self.rotationMessage(chainID: context.transaction.chainID, did: subject, signingKey: signingKey, encryptionKey: encryptionKey)
            guard try PublicKey(did: signingKey).isValidSignature(proof, for: message) else {
                throw LedgerError("bad_proof", "proof is not the new key's signature of the rotation message")
            }
            if subject == context.author {
                guard principal.frozen == nil else {
                    throw LedgerError("key_frozen", "a frozen key cannot rotate itself: guardian recovery or two organisations in person rotate it")
                }
                return try Self.rotate(subject, signingKey: signingKey, encryptionKey: try Base64.decode(encryptionKey), reason: reason ?? "rotated", by: [subject], context: &context)
            }
            guard principal.frozen != nil else {
                throw LedgerError("not_frozen", "organisations rotate a patient's keys only while they are frozen; she rotates them herself")
            }
            let terms: JSONValue = .object(["signingKey": .string(signingKey), "encryptionKey": .string(encryptionKey)])
            guard let by = try Self.twoOrganisations("rotate", subject: subject, terms: terms, reason: reason, &context) else {
                return .object(["subject": .string(subject), "status": .string("proposed")])
            }
            return try Self.rotate(subject, signingKey: signingKey, encryptionKey: try Base64.decode(encryptionKey), reason: reason ?? "in-person", by: by, context: &context)
        }
        guard principal.role == .patient else { throw LedgerError("bad_subject", "a patient's key is frozen, not a \(principal.role.rawValue)'s") }
        let freezing = action == "freeze"
        guard (principal.frozen != nil) != freezing else {
            throw LedgerError(freezing ? "already_frozen" : "not_frozen", "the key of \(subject) is \(freezing ? "already" : "not") frozen")
        }
        guard let by = try Self.twoOrganisations(action, subject: subject, terms: .null, reason: reason, &context) else {
            return .object(["subject": .string(subject), "status": .string("proposed")])
        }
        let current = principal.signingKey
        principal.frozen = freezing ? .object(["by": .array(by.map { .string($0) }), "height": .int(Int64(context.height)), "reason": reason.map { .string($0) } ?? .null]) : nil
        var record = try Self.record(subject, principal, &context)
        Self.appendKeyEvent(&record, freezing ? "frozen" : "unfrozen", by: by, reason: reason, context)
        context.setIdentity(Principal.key(subject), .object(record))
        context.setIdentity(Signers.key(current), .object(["principal": .string(subject), "status": .string(freezing ? "frozen" : "current")]))
        context.emit(.object([
            "type": .string(freezing ? "identity.frozen" : "identity.unfrozen"), "did": .string(subject), "patient": .string(subject),
            "by": .array(by.map { .string($0) }),
        ]))
        return .object(["subject": .string(subject), "status": .string(freezing ? "frozen" : "unfrozen"), "by": .array(by.map { .string($0) })])
    }

    /// The two organisations of an act on `subject`: the author must be a registered organisation;
    /// the first one's proposal is kept (nil returned), the second, another organisation agreeing to
    /// the same `terms`, makes it (both returned, the proposer first).
    static func twoOrganisations(_ act: String, subject: String, terms: JSONValue, reason: String?, _ context: inout ExecutionContext) throws(LedgerError) -> [String]? {
        guard try Principal.load(context.author, from: context)?.role == .organisation else {
            throw LedgerError("forbidden", "an organisation that verified the patient in person does this, with a second organisation's co-signature")
        }
        let key = proposalKey(act, subject)
        if let proposal = try context.json(forKey: key), let first = proposal["by"]?.stringValue, first != context.author,
            proposal["terms"] ?? .null == terms
        {
            context.setIdentity(key, nil)
            return [first, context.author]
        }
        context.setIdentity(key, .object([
            "by": .string(context.author), "terms": terms, "reason": reason.map { .string($0) } ?? .null, "height": .int(Int64(context.height)),
        ]))
        context.emit(.object(["type": .string("identity.\(act)-proposed"), "did": .string(subject), "patient": .string(subject), "by": .string(context.author)]))
        return nil
    }

    /// The identity entry of `principal` as stored, with its current fields.
    static func record(_ did: String, _ principal: Principal, _ context: inout ExecutionContext) throws(LedgerError) -> [String: JSONValue] {
        var record = try context.json(forKey: Principal.key(did))?.objectValue ?? [:]
        for (k, v) in principal.json.objectValue! { record[k] = v }
        record["frozen"] = principal.frozen
        return record
    }

    static func appendKeyEvent(_ record: inout [String: JSONValue], _ event: String, by: [String], reason: String?, _ context: ExecutionContext) {
        var e: [String: JSONValue] = [
            "event": .string(event), "by": .array(by.map { .string($0) }), "height": .int(Int64(context.height)), "time": .int(Int64(context.timeMillis)),
            "transaction": .string(context.transaction.id.hex),
        ]
        if let reason { e["reason"] = .string(reason) }
        record["keyEvents"] = .array((record["keyEvents"]?.arrayValue ?? []) + [.object(e)])
    }

    /// Makes `signingKey` and `encryptionKey` the current keys of `did` from this transaction on: the
    /// old signing key is retired (it signs nothing more for anyone), a freeze is lifted, and the
    /// identity, consents and everything else naming `did` stay as they are. The one way any contract
    /// changes a principal's keys (guardian recovery calls it too). `signingKey` must be a key no
    /// principal has used.
    public static func rotate(
        _ did: String, signingKey: String, encryptionKey: [UInt8], reason: String, by: [String], context: inout ExecutionContext
    ) throws(LedgerError) -> JSONValue {
        guard let principal = try Principal.load(did, from: context) else { throw LedgerError("unknown_principal", "\(did) is not registered") }
        guard encryptionKey.count == 32 else { throw LedgerError("bad_payload", "encryptionKey must be a 32-byte X25519 public key") }
        guard try context.value(forKey: Principal.key(signingKey)) == nil, try context.value(forKey: Signers.key(signingKey)) == nil else {
            throw LedgerError("key_in_use", "\(signingKey) is, or was, a principal's key: a rotation takes a new key")
        }
        let old = principal.signingKey, height = Int64(context.height)
        var record = try Self.record(did, principal, &context)
        var history = record["keyHistory"]?.arrayValue ?? [
            .object(["signingKey": .string(old), "encryptionKey": .string(Base64.encode(principal.encryptionKey)), "from": record["height"] ?? .int(0)])
        ]
        if var last = history.last?.objectValue {
            last["until"] = .int(height)
            history[history.count - 1] = .object(last)
        }
        history.append(.object([
            "signingKey": .string(signingKey), "encryptionKey": .string(Base64.encode(encryptionKey)), "from": .int(height), "reason": .string(reason),
        ]))
        record["encryptionKey"] = .string(Base64.encode(encryptionKey))
        record["signingKey"] = .string(signingKey)
        record["keysFrom"] = .int(height)
        record["keyHistory"] = .array(history)
        record["frozen"] = nil
        appendKeyEvent(&record, "rotated", by: by, reason: reason, context)
        for act in ["freeze", "unfreeze", "rotate"] where try context.value(forKey: proposalKey(act, did)) != nil { context.setIdentity(proposalKey(act, did), nil) }
        context.setIdentity(Principal.key(did), .object(record))
        context.setIdentity(Signers.key(old), .object(["principal": .string(did), "status": .string("retired"), "until": .int(height)]))
        context.setIdentity(Signers.key(signingKey), .object(["principal": .string(did), "status": .string("current"), "from": .int(height)]))
        context.emit(.object([
            "type": .string("identity.rotated"), "did": .string(did), "patient": principal.role == .patient ? .string(did) : .null, "role": record["role"] ?? .null,
            "signingKey": .string(signingKey), "encryptionKey": .string(Base64.encode(encryptionKey)), "reason": .string(reason),
            "by": .array(by.map { .string($0) }),
        ]))
        return .object(["did": .string(did), "signingKey": .string(signingKey), "encryptionKey": .string(Base64.encode(encryptionKey)), "from": .int(height)])
    }
}
