import Crypto
import RecoveryContract
import LedgerCore
import Standards

/// The patient's and guardians' side of key recovery (run on their devices, never on a node):
/// sealing the kit and splitting its secret, a guardian re-wrapping her share for the new device,
/// and the new device rebuilding the keys from k shares.
public enum RecoveryKit {
    static func kitContext(_ patient: String) -> String { "recovery-kit/\(patient)" }

    /// What `setup` produces: the vault blob (salt ‖ ciphertext) under `kitHash`, and the `recovery.setup` payload.
    public struct Setup: Sendable {
        public let blob: [UInt8]
        public let kitHash: Hash
        public let payload: JSONValue
    }

    /// Seals the patient's private keys under a fresh secret and splits the secret `threshold` of
    /// `guardians.count`, each share wrapped with HPKE for its guardian (did → X25519 public key).
    public static func setup(signing: SigningKey, encryption: EncryptionKey, guardians: [(did: String, encryptionKey: [UInt8])], threshold: Int)
        throws(LedgerError) -> Setup
    {
        let patient = signing.publicKey.did
        let secret = RandomBytes.make(32)
        let plain = JSONValue.object([
            "privateKey": .string(Base64.encode(signing.seed)), "encryptionPrivateKey": .string(Base64.encode(encryption.rawRepresentation)),
        ]).canonicalBytes
        let ciphertext = try ContentCipher.seal(plain, key: SymmetricKey(data: secret), context: kitContext(patient))
        let salt = RandomBytes.make(32)
        let kitHash = ContentCipher.saltedHash(salt: salt, ciphertext: ciphertext)
        let shares = try Shamir.split(secret, threshold: threshold, count: guardians.count)
        var wrapped: [String: JSONValue] = [:]
        for (g, share) in zip(guardians, shares) {
            let w = try KeyWrap.wrap(SymmetricKey(data: share.y), for: g.encryptionKey, context: RecoveryContract.context(patient: patient, x: Int64(share.x)))
            var o = w.json.objectValue!
            o["x"] = .int(Int64(share.x))
            wrapped[g.did] = .object(o)
        }
        return Setup(
            blob: salt + ciphertext, kitHash: kitHash,
            payload: .object(["threshold": .int(Int64(threshold)), "kit": .string(kitHash.hex), "shares": .object(wrapped)]))
    }

    /// A guardian's `recovery.approve` payload: her share, unwrapped with her key and re-wrapped for the
    /// request's encryption key. `setup` is the patient's `recovery/<did>` state, `request` her open request.
    public static func approval(patient: String, setup: JSONValue, request: JSONValue, guardian: String, key: EncryptionKey) throws(LedgerError) -> JSONValue {
        guard let mine = setup["shares"]?[guardian], let x = mine["x"]?.intValue else {
            throw LedgerError("not_a_guardian", "\(guardian) holds no share of \(patient)'s recovery")
        }
        guard let target = request["encryptionKey"]?.stringValue, let id = request["id"]?.stringValue, let requester = request["requester"]?.stringValue else {
            throw LedgerError("no_request", "no open recovery request")
        }
        let context = RecoveryContract.context(patient: patient, x: x)
        let share = try KeyWrap.unwrap(try WrappedKey(json: mine), with: key, context: context)
        var o = try KeyWrap.wrap(share, for: try Base64.decode(target), context: context).json.objectValue!
        o["patient"] = .string(patient)
        o["request"] = .string(id)
        o["requester"] = .string(requester)
        o["x"] = .int(x)
        return .object(o)
    }

    /// On the new device: combines the approved shares and opens the kit (its ciphertext from the vault).
    public static func recover(patient: String, request: JSONValue, newKey: EncryptionKey, kitCiphertext: [UInt8]) throws(LedgerError) -> (
        signing: SigningKey, encryption: EncryptionKey
    ) {
        guard request["status"]?.stringValue == "ready", let approvals = request["approvals"]?.objectValue else {
            throw LedgerError("not_ready", "the recovery request does not have enough approvals yet")
        }
        var shares: [Shamir.Share] = []
        for (_, a) in approvals {
            guard let x = a["x"]?.intValue, (1...255).contains(x) else { throw LedgerError("bad_share", "an approval has no share number") }
            let key = try KeyWrap.unwrap(try WrappedKey(json: a), with: newKey, context: RecoveryContract.context(patient: patient, x: x))
            shares.append(Shamir.Share(x: UInt8(x), y: key.withUnsafeBytes { Array($0) }))
        }
        let secret = try Shamir.combine(shares)
        let plain = try ContentCipher.open(kitCiphertext, key: SymmetricKey(data: secret), context: kitContext(patient))
        let keys = try JSONValue.parse(plain)
        guard let seed = keys["privateKey"]?.stringValue, let enc = keys["encryptionPrivateKey"]?.stringValue else {
            throw LedgerError("bad_kit", "the kit does not hold the keys")
        }
        let signing = try SigningKey(seed: try Base64.decode(seed))
        guard signing.publicKey.did == patient else { throw LedgerError("bad_kit", "the kit holds another principal's key") }
        return (signing, try EncryptionKey(rawRepresentation: try Base64.decode(enc)))
    }
}
