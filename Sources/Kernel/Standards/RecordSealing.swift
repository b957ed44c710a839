import Crypto
import LedgerCore

/// The wrapped content keys of a record version (or of a later share), kept off the chain: a vault
/// blob of a 32-byte salt then the canonical JSON `{did: wrapped key}`, named by its salted hash.
/// The chain holds only that hash and the recipients' dids, so that an erasure, which destroys the
/// blob on every node, leaves no wrapped key anywhere (the log is append-only; the vault is not).
public struct KeyEnvelope: Sendable {
    public let blob: [UInt8]
    public let hash: Hash
    public let keys: [String: WrappedKey]

    public init(keys: [String: WrappedKey]) { self.init(salt: RandomBytes.make(32), keys: keys) }

    /// An envelope with a given 32-byte salt (fresh random bytes in every real envelope).
    public init(salt: [UInt8], keys: [String: WrappedKey]) {
        precondition(salt.count == 32, "a key envelope's salt is 32 bytes")
        self.keys = keys
        blob = salt + JSONValue.object(keys.mapValues(\.json)).canonicalBytes
        hash = Hash.sha256(blob)
    }

    /// The keys of an envelope's content (the JSON after the salt).
    public static func keys(content: [UInt8]) throws(LedgerError) -> [String: WrappedKey] {
        guard let object = try? JSONValue.parse(content).objectValue else {
            throw LedgerError("bad_envelope", "a key envelope is a 32-byte salt then a JSON object of wrapped keys")
        }
        var keys: [String: WrappedKey] = [:]
        for (did, w) in object { keys[did] = try WrappedKey(json: w) }
        return keys
    }
}

/// Client-side sealing of a record version: the FHIR JSON is encrypted under a fresh AES-256-GCM
/// key, the key wrapped with HPKE for each recipient into a key envelope, and both vault blobs
/// (salt || ciphertext, the envelope) named by their salted hashes. Only the `records.put` payload
/// (hashes and recipients' dids) goes on chain.
public struct SealedVersion: Sendable {
    /// The context a record version's content key is bound to (authenticated by the content cipher
    /// and the key wrap): `<record id>/<version>`.
    public static func context(id: String, version: Int64) -> String { "\(id)/\(version)" }

    public let blob: [UInt8]
    public let saltedHash: Hash
    public let envelope: KeyEnvelope
    public var wrappedKeys: [String: WrappedKey] { envelope.keys }
    public let contentKey: SymmetricKey

    /// Seals `resource` for `recipients` (did → raw X25519 public key).
    /// With a `session`, keys for a reader share one HPKE encapsulation across the session's versions.
    public init(resource: [UInt8], recordID: String, version: Int64, recipients: [String: [UInt8]], session: KeyWrapSession? = nil) throws(LedgerError) {
        let context = Self.context(id: recordID, version: version)
        let key = ContentCipher.newKey()
        let ciphertext = try ContentCipher.seal(resource, key: key, context: context)
        let salt = RandomBytes.make(32)
        blob = salt + ciphertext
        saltedHash = ContentCipher.saltedHash(salt: salt, ciphertext: ciphertext)
        var wrapped: [String: WrappedKey] = [:]
        for (did, publicKey) in recipients {
            if let session {
                wrapped[did] = try session.wrap(key, for: publicKey, context: context)
            } else {
                wrapped[did] = try KeyWrap.wrap(key, for: publicKey, context: context)
            }
        }
        envelope = KeyEnvelope(keys: wrapped)
        contentKey = key
    }

    /// The vault blobs to upload before the transaction: the ciphertext's and the key envelope's.
    public var uploads: [(hash: Hash, blob: [UInt8])] { [(saltedHash, blob), (envelope.hash, envelope.blob)] }

    /// The `records.put` payload.
    public func putPayload(
        recordID: String, patient: String, resourceType: String, version: Int64, custodian: String, parties: [String: String] = [:],
        onBehalfOf: String? = nil
    ) -> JSONValue {
        var o: [String: JSONValue] = [
            "recordId": .string(recordID), "patient": .string(patient), "resourceType": .string(resourceType), "version": .int(version),
            "saltedHash": .string(saltedHash.hex), "custodian": .string(custodian),
            "recipients": .array(wrappedKeys.keys.sorted().map { .string($0) }), "keys": .string(envelope.hash.hex),
        ]
        if !parties.isEmpty { o["parties"] = .object(parties.mapValues { .string($0) }) }
        if let onBehalfOf { o["onBehalfOf"] = .string(onBehalfOf) }
        return .object(o)
    }

    /// Opens a read answer (`RecordRead.json`) with the reader's encryption key.
    public static func open(read: JSONValue, with key: EncryptionKey, unwrapper: KeyUnwrapper? = nil) throws(LedgerError) -> [UInt8] {
        guard let ct = read["ciphertext"]?.stringValue, let wrappedJSON = read["wrappedKey"], let context = read["context"]?.stringValue else {
            throw LedgerError("bad_read", "a record read has ciphertext, wrappedKey and context")
        }
        let wrapped = try WrappedKey(json: wrappedJSON)
        let contentKey: SymmetricKey
        if let unwrapper {
            contentKey = try unwrapper.unwrap(wrapped, context: context)
        } else {
            contentKey = try KeyWrap.unwrap(wrapped, with: key, context: context)
        }
        return try ContentCipher.open(try Base64.decode(ct, field: "ciphertext"), key: contentKey, context: context)
    }

    /// Opens every read of a timeline answer, on every core (each core with its own unwrapper
    /// cache); the plaintexts, or the first error.
    public static func openAll(reads: [JSONValue], with key: EncryptionKey) async throws(LedgerError) -> [[UInt8]] {
        let parts = await Parallel.mapChunks(reads) { slice -> Result<[[UInt8]], LedgerError> in
            let unwrapper = KeyUnwrapper(key: key)
            do throws(LedgerError) {
                return .success(try slice.map { read throws(LedgerError) in try open(read: read, with: key, unwrapper: unwrapper) })
            } catch {
                return .failure(error)
            }
        }
        var out: [[UInt8]] = []
        out.reserveCapacity(reads.count)
        for part in parts { out.append(contentsOf: try part.get()) }
        return out
    }

    /// Re-wraps a version's content key (opened from the patient's own wrapped key) for new readers.
    public static func rewrap(_ wrapped: WrappedKey, with key: EncryptionKey, context: String, for recipients: [String: [UInt8]]) throws(LedgerError) -> [String: WrappedKey] {
        let contentKey = try KeyWrap.unwrap(wrapped, with: key, context: context)
        var out: [String: WrappedKey] = [:]
        for (did, publicKey) in recipients { out[did] = try KeyWrap.wrap(contentKey, for: publicKey, context: context) }
        return out
    }
}
