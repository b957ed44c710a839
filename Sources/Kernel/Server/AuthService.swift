import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import Node
import Standards
import Synchronization

/// Keys remembered until a time: expired ones are swept when the table has doubled since the last
/// sweep, so that a sweep costs O(1) per insertion on average.
struct Expiring<Key: Hashable & Sendable, Time: Comparable & Sendable>: Sendable {
    private var until: [Key: Time] = [:]
    private var sweepAt = 4096

    /// Inserts `key` until `time`; false when it is there already and not expired.
    mutating func insert(_ key: Key, until time: Time, now: Time) -> Bool {
        if until.count >= sweepAt {
            until = until.filter { $0.value > now }
            sweepAt = max(4096, 2 * until.count)
        }
        if let existing = until[key], existing > now { return false }
        until[key] = time
        return true
    }
}

/// Proof of who is asking: a principal signs a fresh server challenge with her Ed25519 key and
/// gets a short-lived bearer token (HMAC-SHA256 under a per-process secret). Private keys never
/// reach the node.
///
/// A challenge is stateless: base64 of its expiry (8 bytes, big-endian ms), 16 random bytes and a
/// 16-byte HMAC of both under the node's secret, so handing out challenges keeps nothing and no
/// flood of them can crowd out anyone's login. A challenge is remembered only once it is used, until
/// it expires, so that it buys one token.
///
/// The signed message is `careledger-auth\n<chain id>\n<challenge>\n`.
///
/// A token is issued to a signing key; every request resolves the key to the principal it signs for
/// now (`Signers`), so a key retired by a rotation or frozen stops working at once, tokens and all.
public final class AuthService: Sendable {
    public static let tokenLifetimeMillis: UInt64 = 15 * 60 * 1000
    static let challengeLifetimeMillis: UInt64 = 2 * 60 * 1000
    let chainID: String
    /// The names (`host[:port]`) clients address this node by: a signed request's `@authority` must be one.
    let authorities: Set<String>
    private let secret = SymmetricKey(size: .bits256)
    /// Signatures of signed requests already accepted, until they could no longer be accepted (seconds).
    private let seenSignatures = Mutex<Expiring<[UInt8], Int64>>(Expiring())
    static let signatureMaxAge: Int64 = 300
    /// Challenges already exchanged for a token, with their expiry.
    private let usedChallenges = Mutex<Expiring<String, UInt64>>(Expiring())
    /// Tokens whose MAC was already checked (their expiry is still checked on every use).
    private let verifiedTokens = Mutex<[String: String]>([:])
    package static let signatureInput = HTTPField.Name("Signature-Input")!
    static let signature = HTTPField.Name("Signature")!

    /// The principal a signing key signs for now, or why it may not (`key_retired`, `key_frozen`).
    let principal: @Sendable (String) throws(LedgerError) -> String

    /// `authorities`: the names signed requests may address; empty accepts any (a node not on a network).
    /// `principal`: the principal a signing key's did signs for (by default, itself).
    public init(
        chainID: String, authorities: Set<String> = [], principal: @escaping @Sendable (String) throws(LedgerError) -> String = { $0 }
    ) {
        self.chainID = chainID
        self.authorities = authorities
        self.principal = principal
    }

    public static func message(chainID: String, challenge: String) -> [UInt8] {
        Array("careledger-auth\n\(chainID)\n\(challenge)\n".utf8)
    }

    public func challenge() -> (String, UInt64) {
        let expiry = LedgerNode.systemClock() + Self.challengeLifetimeMillis
        let body = withUnsafeBytes(of: expiry.bigEndian) { Array($0) } + RandomBytes.make(16)
        return (Base64.encode(body + challengeTag(body)), expiry)
    }

    func challengeTag(_ body: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array("careledger-challenge\n".utf8) + body, using: secret).prefix(16))
    }

    /// A token for the key `key` (default: `did`'s own key), which must sign for `did` now; returns the
    /// token, its expiry and the principal's did.
    public func token(did: String, key: String? = nil, challenge: String, signature: [UInt8]) throws(LedgerError) -> (String, UInt64, String) {
        let now = LedgerNode.systemClock()
        guard let bytes = try? Base64.decode(challenge), bytes.count == 40, Self.equal(challengeTag(Array(bytes[..<24])), Array(bytes[24...])) else {
            throw LedgerError("unauthenticated", "unknown or expired challenge")
        }
        let expiry = bytes[..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard expiry > now else { throw LedgerError("unauthenticated", "unknown or expired challenge") }
        let keyDID = key ?? did
        guard try PublicKey(did: keyDID).isValidSignature(signature, for: Self.message(chainID: chainID, challenge: challenge)) else {
            throw LedgerError("unauthenticated", "the challenge signature does not verify")
        }
        let signsFor = try principal(keyDID)
        guard key == nil || signsFor == did else { throw LedgerError("unauthenticated", "\(keyDID) does not sign for \(did)") }
        let fresh = usedChallenges.withLock { $0.insert(challenge, until: expiry, now: now) }
        guard fresh else { throw LedgerError("unauthenticated", "this challenge was already used") }
        let until = now + Self.tokenLifetimeMillis
        return ("\(keyDID).\(until).\(mac(did: keyDID, until: until))", until, signsFor)
    }

    /// Whether `authority` (`host` or `host:port`) is one of `names` (where `host:*` stands for any port).
    static func names(_ authority: String, in names: Set<String>) -> Bool {
        if names.contains(authority) { return true }
        guard let colon = authority.lastIndex(of: ":"), !authority[authority.index(after: colon)...].contains("]") else { return false }
        return names.contains(authority[..<colon] + ":*")
    }

    /// Constant-time comparison of two byte strings.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.count == b.count && zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
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
            let authority = request.head.authority ?? ""
            guard authorities.isEmpty || Self.names(authority.lowercased(), in: authorities) else {
                throw LedgerError("unauthenticated", "the request is signed for \(authority), which is not this node")
            }
            let message = HTTPMessageSignature.Request(
                method: request.method.rawValue, scheme: request.headers[HTTPField.Name("X-Forwarded-Proto")!] ?? "http",
                authority: authority, path: request.uri.path, query: query, headers: headers)
            let now = Int64(LedgerNode.systemClock() / 1000)
            // What is remembered is the signature's bytes, not the field's text (whose label and spacing
            // can change without touching the signature).
            let (did, signed) = try HTTPMessageSignature.verifiedSignature(
                signatureInput: input, signature: signature, request: message, now: now, maxAge: Self.signatureMaxAge, requireQuery: true,
                requireDigest: [.post, .put, .patch].contains(request.method))
            // A signature is accepted once: remembered for as long as its `created` could be accepted.
            let fresh = seenSignatures.withLock { $0.insert(signed, until: now + 2 * Self.signatureMaxAge, now: now) }
            guard fresh else {
                throw LedgerError(
                    "unauthenticated", "this signed request was already received: sign each request once (a nonce parameter tells apart two signed in one second)")
            }
            return try principal(did)
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw LedgerError("unauthenticated", "send Authorization: Bearer <token> (POST /v1/auth/challenge, then /v1/auth/token)")
        }
        return try principal(try verify(bearer: String(header.dropFirst(7))))
    }

    /// The did of the key a bearer token was issued to, if it is this node's, intact and unexpired.
    func verify(bearer token: String) throws(LedgerError) -> String {
        // did.until.mac, split at the two dots in the UTF-8 bytes (a split by Character breaks graphemes
        // for nothing: this runs on every request).
        let bytes = token.utf8
        // The expiry in its one canonical spelling: decimal digits, no sign, no leading zero.
        guard let firstDot = bytes.firstIndex(of: 46), let secondDot = bytes[bytes.index(after: firstDot)...].firstIndex(of: 46),
            !bytes[bytes.index(after: secondDot)...].contains(46)
        else { throw LedgerError("unauthenticated", "malformed token") }
        let digits = bytes[bytes.index(after: firstDot)..<secondDot]
        guard let first = digits.first, first != 48 || digits.count == 1, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }), let until = UInt64(Substring(digits))
        else { throw LedgerError("unauthenticated", "malformed token") }
        let did = String(Substring(bytes[..<firstDot]))
        guard until > LedgerNode.systemClock() else { throw LedgerError("unauthenticated", "token expired") }
        if verifiedTokens.withLock({ $0[token] }) == did { return did }
        guard Self.equal(Array(mac(did: did, until: until).utf8), Array(bytes[bytes.index(after: secondDot)...])) else {
            throw LedgerError("unauthenticated", "bad token")
        }
        verifiedTokens.withLock { cache in
            if cache.count >= 100_000 { cache.removeAll(keepingCapacity: true) }
            cache[token] = did
        }
        return did
    }
}

