import AsyncHTTPClient
import Foundation
import LedgerCore
import Standards
import Store

/// How a consortium node proves, to another member's API, that it may read the whole ledger
/// (blocks with their transactions, snapshots): it signs the request (RFC 9421, Ed25519, with its
/// node key) and sends `CareLedger-Member: <proof>`, a MAC of its did under a key derived from
/// the consortium secret every member node holds (`consortium.secret`, shared with genesis when an
/// organisation joins). A node key the chain names (an operator, a validator) needs no proof.
public struct MemberAccess: Sendable {
    public static let header = "CareLedger-Member"
    private let mac: PreparedHMAC

    public init(secret: ConsortiumSecret) {
        mac = PreparedHMAC(key: secret.key(label: ConsortiumSecret.membershipLabel))
    }

    /// The member's proof for `did`.
    public func proof(did: String) -> String { Hex.encode(mac.code(Array(did.utf8))) }

    /// Whether `proof` is the proof for `did` (constant time).
    public func verify(did: String, proof: String) -> Bool {
        let expected = Array(self.proof(did: did).utf8)
        let given = Array(proof.utf8)
        return expected.count == given.count && zip(expected, given).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// A node's credentials for reading a peer's ledger API: its key and its member proof.
public struct PeerCredentials: Sendable {
    public let key: SigningKey
    public let access: MemberAccess

    public init(key: SigningKey, access: MemberAccess) {
        self.key = key
        self.access = access
    }

    /// The credentials of the node whose data is in `directory` (its node key and the consortium secret).
    public init(directory: DataDirectory) throws {
        self.init(key: try KeyFile.load(directory.nodeKey), access: MemberAccess(secret: try directory.consortiumSecret()))
    }

    /// The request headers that authenticate a GET of `url`: the member proof and an RFC 9421
    /// signature over the method, authority, path, query and the proof, with a fresh nonce (a node
    /// accepts a signature once: two requests for the same URL in one second must differ).
    public func headers(method: String = "GET", url: String, now: Int64 = Int64(Date().timeIntervalSince1970)) throws -> [(String, String)] {
        guard let u = URL(string: url), let host = u.host else { throw LedgerError("bad_url", "\(url) is not an absolute URL") }
        let authority = host + (u.port.map { ":\($0)" } ?? "")
        let proof = access.proof(did: key.publicKey.did)
        let request = HTTPMessageSignature.Request(
            method: method, scheme: u.scheme ?? "http", authority: authority, path: u.path.isEmpty ? "/" : u.path,
            query: u.query.map { "?\($0)" } ?? "", headers: [MemberAccess.header.lowercased(): [proof]])
        let (input, signature) = try HTTPMessageSignature.sign(
            request: request, key: key, components: ["@method", "@authority", "@path", "@query", MemberAccess.header.lowercased()], created: now,
            nonce: Hex.encode(RandomBytes.make(12)))
        return [(MemberAccess.header, proof), ("Signature-Input", input), ("Signature", signature)]
    }
}
