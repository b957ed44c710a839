import Foundation
import LedgerCore
import Standards

/// A principal's key file: JSON `{"type":"Ed25519","did":…,"publicKey":base64,"privateKey":base64 seed,
/// "encryptionPublicKey":base64,"encryptionPrivateKey":base64, "principal"?: did}` (Ed25519 for signing, X25519
/// for HPKE), written with permissions 0600 (created so, never widened). `principal`: the identity the keys
/// sign for after a rotation (absent while they are the keys the principal registered with: her did is `did`).
public enum KeyFile {
    public static func save(
        _ key: SigningKey, encryption: EncryptionKey = EncryptionKey(), principal: String? = nil, to path: String, overwrite: Bool = false
    ) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: path) && !overwrite {
            throw LedgerError("file_exists", "\(path) exists; refusing to overwrite a key")
        }
        var fields: [String: JSONValue] = [
            "type": .string("Ed25519"),
            "did": .string(key.publicKey.did),
            "publicKey": .string(Base64.encode(key.publicKey.rawRepresentation)),
            "privateKey": .string(Base64.encode(key.seed)),
            "encryptionPublicKey": .string(Base64.encode(encryption.publicKey)),
            "encryptionPrivateKey": .string(Base64.encode(encryption.rawRepresentation)),
        ]
        if let principal, principal != key.publicKey.did { fields["principal"] = .string(principal) }
        let body = JSONValue.object(fields)
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let tmp = path + ".tmp"
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw LedgerError("io_error", "cannot create \(tmp): \(String(cString: strerror(errno)))") }
        let bytes = body.canonicalBytes + [0x0a]
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
        guard written == bytes.count else { throw LedgerError("io_error", "short write to \(tmp)") }
        guard rename(tmp, path) == 0 else { throw LedgerError("io_error", "cannot rename \(tmp)") }
    }

    /// The principal a key file's keys sign for: its `principal`, else the signing key's own did.
    public static func principal(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw LedgerError("no_key_file", "cannot read key file \(path)") }
        let json = try JSONValue.parse(Array(data))
        if let principal = json["principal"]?.stringValue { return principal }
        return try load(path).publicKey.did
    }

    /// The X25519 encryption key of a key file.
    public static func loadEncryption(_ path: String) throws -> EncryptionKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LedgerError("no_key_file", "cannot read key file \(path)")
        }
        guard let raw = try JSONValue.parse(Array(data))["encryptionPrivateKey"]?.stringValue else {
            throw LedgerError("bad_key_file", "\(path) has no encryptionPrivateKey")
        }
        return try EncryptionKey(rawRepresentation: try Base64.decode(raw, field: "encryptionPrivateKey"))
    }

    public static func load(_ path: String) throws -> SigningKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LedgerError("no_key_file", "cannot read key file \(path)")
        }
        let json = try JSONValue.parse(Array(data))
        guard let seed = json["privateKey"]?.stringValue else { throw LedgerError("bad_key_file", "\(path) has no privateKey") }
        let key = try SigningKey(seed: try Base64.decode(seed, field: "privateKey"))
        if let did = json["did"]?.stringValue, did != key.publicKey.did {
            throw LedgerError("bad_key_file", "\(path): did does not match the private key")
        }
        return key
    }
}
