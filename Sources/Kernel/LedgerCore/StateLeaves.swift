/// How the state's entries become leaves of the state tree.
///
/// A public entry's leaf is (SHA-256(key), SHA-256(value)): anyone checks its proof offline against a
/// block's state root. A private entry (its key under one of `privatePrefixes`: a patient's records,
/// consent, audit trail and recovery) is salted with a per-key salt that only the consortium's nodes
/// can compute,
///
///     salt = HMAC-SHA256(K, key),  K = HKDF-SHA256(consortium secret, info "careledger state salt v1")
///     leaf = (SHA-256(salt || key), SHA-256(salt || value))
///
/// so that neither where a private key's leaf sits nor what its value hash is can be computed from
/// guesses: a proof of a public key that ends at a neighbouring private leaf shows two hashes that
/// link to nothing. A node hands a private entry's salt to the readers it serves the entry to, and
/// they check its proof with it (`StateProof.verify(root:key:value:salt:)`).
public struct StateLeafHashing: Sendable {
    public let privatePrefixes: [String]
    private let mac: PreparedHMAC

    public init(secret: ConsortiumSecret, privatePrefixes: [String]) {
        self.privatePrefixes = privatePrefixes
        mac = PreparedHMAC(key: secret.key(label: ConsortiumSecret.stateSaltLabel))
    }

    public func isPrivate(_ key: String) -> Bool { privatePrefixes.contains { key.hasPrefix($0) } }

    /// The salt of a private entry's leaf; nil for a public entry.
    public func salt(_ key: String) -> [UInt8]? {
        guard isPrivate(key) else { return nil }
        return mac.code(Array(key.utf8))
    }

    /// The leaf of `key` holding `value` (nil value hash: the key is removed).
    public func leaf(_ key: String, _ value: [UInt8]?) -> (keyHash: Hash, valueHash: Hash?) {
        let salt = salt(key)
        return (Self.keyHash(key, salt: salt), value.map { Self.valueHash($0, salt: salt) })
    }

    public func keyHash(_ key: String) -> Hash { Self.keyHash(key, salt: salt(key)) }

    public static func keyHash(_ key: String, salt: [UInt8]?) -> Hash {
        guard let salt else { return Hash.sha256(utf8: key) }
        return Hash.sha256(salt + Array(key.utf8))
    }

    public static func valueHash(_ value: [UInt8], salt: [UInt8]?) -> Hash {
        guard let salt else { return Hash.sha256(value) }
        return Hash.sha256(salt + value)
    }
}

extension SparseMerkleTree {
    /// Applies a block's writes with `hashing`'s leaves.
    public mutating func set(batch: [(key: String, value: [UInt8]?)], hashing: StateLeafHashing) {
        update(batch: batch.map { hashing.leaf($0.key, $0.value) })
    }

    /// The proof of `key` with `hashing`'s leaves.
    public func proof(key: String, hashing: StateLeafHashing) -> StateProof { proof(keyHash: hashing.keyHash(key)) }
}

extension StateProof {
    /// Checks membership of (key, value) or, with `value` nil, absence of the key, for an entry
    /// whose leaf is salted with `salt` (nil: a public entry).
    public func verify(root: Hash, key: String, value: [UInt8]?, salt: [UInt8]?) throws(LedgerError) {
        guard StateLeafHashing.keyHash(key, salt: salt) == keyHash else { throw LedgerError("bad_proof", "proof is for another key") }
        try verify(root: root)
        guard provenValueHash == value.map({ StateLeafHashing.valueHash($0, salt: salt) }) else {
            throw LedgerError("bad_proof", value == nil ? "proof shows the key is present" : "proof does not show this value")
        }
    }
}
