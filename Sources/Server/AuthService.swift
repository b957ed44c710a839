import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import Node
import Standards
import Synchronization

/// Proof of who is asking: a principal signs a fresh server challenge with her Ed25519 key and
/// gets a short-lived bearer token (HMAC-SHA256 under a per-process secret). Private keys never
/// reach the node.
///
/// The signed message is `careledger-auth\n<chain id>\n<challenge>\n`.
public final class AuthService: Sendable {
    public static let tokenLifetimeMillis: UInt64 = 15 * 60 * 1000
    static let challengeLifetimeMillis: UInt64 = 2 * 60 * 1000
    let chainID: String
    private let secret = SymmetricKey(size: .bits256)
    private let challenges = Mutex<[String: UInt64]>([:])
    /// Tokens whose MAC was already checked (their expiry is still checked on every use).
    private let verifiedTokens = Mutex<[String: String]>([:])
    static let signatureInput = HTTPField.Name("Signature-Input")!
    static let signature = HTTPField.Name("Signature")!

    public init(chainID: String) { self.chainID = chainID }

    public static func message(chainID: String, challenge: String) -> [UInt8] {
        Array("careledger-auth\n\(chainID)\n\(challenge)\n".utf8)
    }

    public func challenge() -> (String, UInt64) {
        let now = LedgerNode.systemClock()
        let value = Base64.encode(RandomBytes.make(32))
        challenges.withLock { c in
            c = c.filter { $0.value > now }
            if c.count < 100_000 { c[value] = now + Self.challengeLifetimeMillis }
        }
        return (value, now + Self.challengeLifetimeMillis)
    }

    public func token(did: String, challenge: String, signature: [UInt8]) throws(LedgerError) -> (String, UInt64) {
        let now = LedgerNode.systemClock()
        let expiry = challenges.withLock { $0.removeValue(forKey: challenge) }
        guard let expiry, expiry > now else { throw LedgerError("unauthenticated", "unknown or expired challenge") }
        let key = try PublicKey(did: did)
        guard key.isValidSignature(signature, for: Self.message(chainID: chainID, challenge: challenge)) else {
            throw LedgerError("unauthenticated", "the challenge signature does not verify")
        }
        let until = now + Self.tokenLifetimeMillis
        return ("\(did).\(until).\(mac(did: did, until: until))", until)
    }

    func mac(did: String, until: UInt64) -> String {
        let tag = HMAC<SHA256>.authenticationCode(for: Array("\(did).\(until)".utf8), using: secret)
        return Hex.encode(Array(tag))
    }

    /// The did behind the request: an RFC 9421 HTTP message signature (`Signature-Input` and
    /// `Signature`, Ed25519, keyid = the signer's did:key), or `Authorization: Bearer <token>`.
    public func authenticate(_ request: Request) throws(LedgerError) -> String {
        if let input = request.headers[Self.signatureInput], let signature = request.headers[Self.signature] {
            var headers: [String: [String]] = [:]
            for field in request.headers { headers[field.name.canonicalName, default: []].append(field.value) }
            let query = request.uri.query.map { "?\($0)" } ?? ""
            let message = HTTPMessageSignature.Request(
                method: request.method.rawValue, scheme: request.headers[HTTPField.Name("X-Forwarded-Proto")!] ?? "http",
                authority: request.head.authority ?? "", path: request.uri.path, query: query, headers: headers)
            return try HTTPMessageSignature.verify(
                signatureInput: input, signature: signature, request: message, now: Int64(LedgerNode.systemClock() / 1000), requireQuery: true,
                requireDigest: [.post, .put, .patch].contains(request.method))
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw LedgerError("unauthenticated", "send Authorization: Bearer <token> (POST /v1/auth/challenge, then /v1/auth/token)")
        }
        // did.until.mac, split at the two dots in the UTF-8 bytes (a split by Character breaks graphemes
        // for nothing: this runs on every request).
        let token = String(header.dropFirst(7))
        let bytes = token.utf8
        guard let firstDot = bytes.firstIndex(of: 46), let secondDot = bytes[bytes.index(after: firstDot)...].firstIndex(of: 46),
            !bytes[bytes.index(after: secondDot)...].contains(46), let until = UInt64(Substring(bytes[bytes.index(after: firstDot)..<secondDot]))
        else { throw LedgerError("unauthenticated", "malformed token") }
        let did = String(Substring(bytes[..<firstDot]))
        guard until > LedgerNode.systemClock() else { throw LedgerError("unauthenticated", "token expired") }
        if verifiedTokens.withLock({ $0[token] }) == did { return did }
        let expected = Array(mac(did: did, until: until).utf8)
        let given = Array(bytes[bytes.index(after: secondDot)...])
        guard expected.count == given.count, zip(expected, given).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0 else {
            throw LedgerError("unauthenticated", "bad token")
        }
        verifiedTokens.withLock { cache in
            if cache.count >= 100_000 { cache.removeAll(keepingCapacity: true) }
            cache[token] = did
        }
        return did
    }
}

