import Crypto
import Foundation
import LedgerCore

/// HTTP Message Signatures (RFC 9421) with Ed25519 (`alg="ed25519"`, §3.3.6), for requests:
/// the derived components `@method`, `@target-uri`, `@authority`, `@scheme`, `@path`, `@query`
/// and header fields; the `Signature-Input` / `Signature` dictionaries in the subset of RFC 8941
/// structured fields they use (inner list of strings, integer and string parameters, byte sequences).
public enum HTTPMessageSignature {
    /// What of a request the signature base reads.
    public struct Request: Sendable {
        public let method: String
        public let scheme: String
        public let authority: String
        public let path: String
        /// The query including its leading `?`, or empty.
        public let query: String
        /// Header fields by lower-cased name, each value as received.
        public let headers: [String: [String]]

        public init(method: String, scheme: String, authority: String, path: String, query: String, headers: [String: [String]]) {
            self.method = method
            self.scheme = scheme
            self.authority = authority.lowercased()
            self.path = path
            self.query = query
            self.headers = headers
        }
    }

    /// One parsed `Signature-Input` member.
    public struct Input: Sendable {
        public let label: String
        public let components: [String]
        public let created: Int64?
        public let expires: Int64?
        public let keyID: String?
        public let algorithm: String?
        /// The serialised inner list and parameters, as they go in `@signature-params`.
        public let serialisedParameters: String
    }

    static func fail(_ why: String) -> LedgerError { LedgerError("unauthenticated", "HTTP message signature: \(why)") }

    /// Parses a `Signature-Input` field value into its members.
    public static func parseInputs(_ field: String) throws(LedgerError) -> [Input] {
        var inputs: [Input] = []
        for member in splitTopLevel(field) {
            guard let eq = member.firstIndex(of: "=") else { throw fail("malformed Signature-Input member") }
            let label = member[..<eq].trimmingCharacters(in: .whitespaces)
            let value = member[member.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            guard value.hasPrefix("("), let close = value.firstIndex(of: ")") else { throw fail("Signature-Input needs an inner list") }
            let listText = value[value.index(after: value.startIndex)..<close]
            var components: [String] = []
            for item in listText.split(separator: " ", omittingEmptySubsequences: true) {
                guard item.hasPrefix("\""), item.hasSuffix("\""), item.count >= 2 else { throw fail("component identifiers are strings") }
                guard !item.contains(";") else { throw fail("component parameters are not supported") }
                components.append(String(item.dropFirst().dropLast()))
            }
            var created: Int64?, expires: Int64?, keyID: String?, algorithm: String?
            for parameter in value[value.index(after: close)...].split(separator: ";", omittingEmptySubsequences: true) {
                let kv = parameter.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { throw fail("malformed parameter \(parameter)") }
                let text = kv[1].hasPrefix("\"") && kv[1].hasSuffix("\"") && kv[1].count >= 2 ? String(kv[1].dropFirst().dropLast()) : nil
                switch kv[0] {
                case "created": created = Int64(kv[1])
                case "expires": expires = Int64(kv[1])
                case "keyid": keyID = text
                case "alg": algorithm = text
                default: break
                }
            }
            inputs.append(Input(label: label, components: components, created: created, expires: expires, keyID: keyID, algorithm: algorithm, serialisedParameters: value))
        }
        return inputs
    }

    /// Parses a `Signature` field value: label → signature bytes.
    public static func parseSignatures(_ field: String) throws(LedgerError) -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for member in splitTopLevel(field) {
            guard let eq = member.firstIndex(of: "=") else { throw fail("malformed Signature member") }
            let label = member[..<eq].trimmingCharacters(in: .whitespaces)
            let value = member[member.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            guard value.hasPrefix(":"), value.hasSuffix(":"), value.count >= 2, let bytes = try? Base64.decode(String(value.dropFirst().dropLast())) else {
                throw fail("a signature is a byte sequence :base64:")
            }
            out[label] = Array(bytes)
        }
        return out
    }

    /// Splits a dictionary at top-level commas (not inside quotes or parentheses).
    static func splitTopLevel(_ text: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var depth = 0
        var quoted = false
        for ch in text {
            if ch == "\"" { quoted.toggle() }
            if !quoted && ch == "(" { depth += 1 }
            if !quoted && ch == ")" { depth -= 1 }
            if ch == "," && !quoted && depth == 0 {
                parts.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            } else {
                current.append(ch)
            }
        }
        if !current.trimmingCharacters(in: .whitespaces).isEmpty { parts.append(current.trimmingCharacters(in: .whitespaces)) }
        return parts
    }

    /// The signature base (RFC 9421 §2.5).
    public static func signatureBase(_ input: Input, request: Request) throws(LedgerError) -> String {
        var lines: [String] = []
        for component in input.components {
            let value: String
            switch component {
            case "@method": value = request.method.uppercased()
            case "@target-uri": value = "\(request.scheme)://\(request.authority)\(request.path)\(request.query)"
            case "@authority": value = request.authority
            case "@scheme": value = request.scheme.lowercased()
            case "@path": value = request.path
            case "@query": value = request.query.isEmpty ? "?" : request.query
            case "@request-target": value = request.path + request.query
            default:
                guard !component.hasPrefix("@") else { throw fail("unsupported derived component \(component)") }
                guard let values = request.headers[component.lowercased()], !values.isEmpty else {
                    throw fail("covered field \(component) is not in the request")
                }
                value = values.map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")
            }
            lines.append("\"\(component)\": \(value)")
        }
        lines.append("\"@signature-params\": \(input.serialisedParameters)")
        return lines.joined(separator: "\n")
    }

    /// Verifies the request's Ed25519 signature whose `keyid` is a `did:key`, and returns that did.
    /// Policy: it must cover `@method`, `@authority` and `@path` (or `@target-uri`), carry `created`
    /// within `maxAge` seconds of `now`, and not be expired.
    /// Verifies a request's signature; with `requireQuery`, a request that has a query must have it
    /// covered (`@query` or `@target-uri`), so that its parameters cannot be changed in transit; with
    /// `requireDigest` (a request with a body), `content-digest` must be covered, and the server checks
    /// the digest against the body, so the body cannot be changed either.
    public static func verify(
        signatureInput: String, signature: String, request: Request, now: Int64, maxAge: Int64 = 300, requireQuery: Bool = false,
        requireDigest: Bool = false
    ) throws(LedgerError) -> String {
        try verifiedSignature(
            signatureInput: signatureInput, signature: signature, request: request, now: now, maxAge: maxAge, requireQuery: requireQuery,
            requireDigest: requireDigest
        ).did
    }

    /// `verify`, also answering the bytes of the signature that verified (what a replay would repeat,
    /// whatever its label or the field's spacing).
    public static func verifiedSignature(
        signatureInput: String, signature: String, request: Request, now: Int64, maxAge: Int64 = 300, requireQuery: Bool = false,
        requireDigest: Bool = false
    ) throws(LedgerError) -> (did: String, signature: [UInt8]) {
        let inputs = try parseInputs(signatureInput)
        let signatures = try parseSignatures(signature)
        guard let input = inputs.first(where: { signatures[$0.label] != nil }) else { throw fail("no signature matches a Signature-Input label") }
        guard let keyID = input.keyID, keyID.hasPrefix("did:key:") else { throw fail("keyid must be the signer's did:key") }
        if let alg = input.algorithm, alg != "ed25519" { throw fail("only alg=\"ed25519\" is accepted") }
        let covered = Set(input.components)
        guard covered.contains("@method"), covered.contains("@authority") || covered.contains("@target-uri"),
            covered.contains("@path") || covered.contains("@target-uri")
        else { throw fail("the signature must cover @method, @authority and @path") }
        if requireQuery, request.query.count > 1, !covered.contains("@query"), !covered.contains("@target-uri") {
            throw fail("the request has a query: the signature must cover @query")
        }
        if requireDigest, !covered.contains("content-digest") {
            throw fail("the request has a body: the signature must cover content-digest (RFC 9530)")
        }
        guard let created = input.created, abs(now - created) <= maxAge else { throw fail("created is missing or too far from now") }
        if let expires = input.expires, expires < now { throw fail("the signature has expired") }
        let key = try PublicKey(did: keyID)
        let base = try signatureBase(input, request: request)
        let bytes = signatures[input.label]!
        guard key.isValidSignature(bytes, for: Array(base.utf8)) else { throw fail("the signature does not verify") }
        return (keyID, bytes)
    }

    /// Signs a request (client side): returns the `Signature-Input` and `Signature` field values.
    public static func sign(
        request: Request, key: SigningKey, components: [String] = ["@method", "@authority", "@path", "@query"], created: Int64, nonce: String? = nil,
        label: String = "sig1"
    ) throws(LedgerError) -> (input: String, signature: String) {
        let list = "(" + components.map { "\"\($0)\"" }.joined(separator: " ") + ")"
        let parameters = "\(list);created=\(created)" + (nonce.map { ";nonce=\"\($0)\"" } ?? "") + ";keyid=\"\(key.publicKey.did)\";alg=\"ed25519\""
        let input = Input(label: label, components: components, created: created, expires: nil, keyID: key.publicKey.did, algorithm: "ed25519", serialisedParameters: parameters)
        let base = try signatureBase(input, request: request)
        return ("\(label)=\(parameters)", "\(label)=:\(Base64.encode(key.signature(for: Array(base.utf8)))):")
    }
}

/// RFC 9530 `Content-Digest`: `sha-256=:<base64>:` and/or `sha-512=:<base64>:` (a dictionary of byte sequences).
public enum ContentDigest {
    /// The field value for `body` (SHA-256).
    public static func field(for body: [UInt8]) -> String { "sha-256=:\(Base64.encode(Hash.sha256(body).bytes)):" }

    /// Checks every known algorithm in the field against `body`; at least one must be present.
    public static func check(_ field: String, body: [UInt8]) throws(LedgerError) {
        var checked = 0
        for member in field.split(separator: ",") {
            let parts = member.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[1].count >= 2, parts[1].hasPrefix(":"), parts[1].hasSuffix(":") else {
                throw LedgerError("bad_digest", "Content-Digest is a list of algorithm=:base64: members (RFC 9530)")
            }
            let given = try Base64.decode(String(parts[1].dropFirst().dropLast()), field: "Content-Digest")
            let expected: [UInt8]
            switch parts[0].lowercased() {
            case "sha-256": expected = Hash.sha256(body).bytes
            case "sha-512": expected = Array(SHA512.hash(data: body))
            default: continue
            }
            guard given == expected else { throw LedgerError("digest_mismatch", "the body does not match its Content-Digest (\(parts[0]))") }
            checked += 1
        }
        guard checked > 0 else { throw LedgerError("bad_digest", "Content-Digest carries neither sha-256 nor sha-512") }
    }
}
