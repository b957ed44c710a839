import Composition
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Node
import Standards
import Testing

@testable import Server

/// Sign-in under attack: no flood of challenges locks anyone out, a challenge buys one token, a token
/// has one spelling, and each client's sign-in requests are limited (429 with `Retry-After`).
@Suite struct AuthAbuseTests {
    func signIn(_ auth: AuthService, _ key: SigningKey, challenge: String) throws -> String {
        try auth.token(did: key.publicKey.did, challenge: challenge, signature: key.signature(for: AuthService.message(chainID: "c", challenge: challenge))).0
    }

    @Test func challengesKeepNoStateAndBuyOneTokenEach() throws {
        let auth = AuthService(chainID: "c")
        let key = SigningKey()
        let early = auth.challenge().0
        // A flood of challenges (more than the node ever kept) leaves every later and earlier one usable.
        for _ in 0..<100_001 { _ = auth.challenge() }
        let late = auth.challenge().0
        let token = try signIn(auth, key, challenge: late)
        #expect(try auth.verify(bearer: token) == key.publicKey.did)
        #expect(try signIn(auth, SigningKey(), challenge: early).hasPrefix("did:key:"))
        // Once used, a challenge is spent; a changed byte, another node's challenge or garbage is unknown.
        #expect(throws: LedgerError.code("unauthenticated")) { try signIn(auth, key, challenge: late) }
        var bytes = try Base64.decode(auth.challenge().0)
        bytes[9] ^= 1
        #expect(throws: LedgerError.code("unauthenticated")) { try signIn(auth, key, challenge: Base64.encode(bytes)) }
        #expect(throws: LedgerError.code("unauthenticated")) { try signIn(auth, key, challenge: AuthService(chainID: "c").challenge().0) }
        #expect(throws: LedgerError.code("unauthenticated")) { try signIn(auth, key, challenge: "AAAA") }
        // A token has one spelling: its expiry with no sign and no leading zero.
        let parts = token.split(separator: ".")
        #expect(parts.count == 3)
        for other in ["\(parts[0]).+\(parts[1]).\(parts[2])", "\(parts[0]).0\(parts[1]).\(parts[2])", "\(parts[0]). \(parts[1]).\(parts[2])"] {
            #expect(throws: LedgerError.code("unauthenticated"), "\(other)") { try auth.verify(bearer: other) }
        }
    }

    @Test func rateLimiterRefillsAndForgets() {
        let now = ManualSeconds()
        let limiter = RateLimiter(perSecond: 2, burst: 3, maxClients: 2, clock: now.read)
        #expect((0..<3).map { _ in limiter.take("a") } == [nil, nil, nil])
        #expect(limiter.take("a") == 1)
        #expect(limiter.take("b") == nil, "another client has its own bucket")
        now.advance(0.5)
        #expect(limiter.take("a") == nil)
        #expect(limiter.take("a") == 1)
        now.advance(10)
        #expect(limiter.take("c") == nil, "a third client makes room by forgetting a refilled one")
        #expect((0..<3).map { _ in limiter.take("a") } == [nil, nil, nil])
    }

    /// Over the network: a client flooding the sign-in routes is answered 429 with `Retry-After` once
    /// its burst is spent, while another client (another address) signs in as usual.
    @Test func aFloodingClientIsLimitedAndOthersSignIn() async throws {
        // 100 at once, then one every 100 s: the outcome does not depend on how fast the machine is.
        let network = try TestNetwork(contracts: .careLedger, capabilities: HostedCapabilities.careLedger, configure: { server in
            server.authBurst = 100
            server.authRequestsPerSecond = 0.01
        })
        try await network.run(live: true) { client in
            let port = try #require(client.port)
            let attacker = try RawHTTPClient(from: "127.0.0.2", to: port)
            var statuses: [Int: Int] = [:]
            var retryAfter: String?
            for _ in 0..<300 {
                let answer = try await attacker.request("POST", "/v1/auth/challenge")
                statuses[answer.status, default: 0] += 1
                if answer.status == 429 { retryAfter = answer.headers["retry-after"] }
            }
            #expect(statuses[200] == 100 && statuses[429] == 200, "the burst, then refusals: \(statuses)")
            #expect(retryAfter.flatMap { Int($0) }.map { $0 >= 1 } == true)
            // Another client signs in at once.
            let key = SigningKey()
            let rc = RecordsClient(client: client)
            let challenge = try rc.json(try await client.execute(uri: "/v1/auth/challenge", method: .post))["challenge"]?.stringValue ?? ""
            let body: JSONValue = .object([
                "did": .string(key.publicKey.did), "challenge": .string(challenge),
                "signature": .string(Base64.encode(key.signature(for: AuthService.message(chainID: network.node.genesis.chainID, challenge: challenge)))),
            ])
            let token = try await client.execute(
                uri: "/v1/auth/token", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(bytes: body.canonicalBytes))
            #expect(token.status == .ok)
        }
    }
}

extension AuthAbuseTests {
    /// An RFC 9421 signed request is accepted once, and only when it names this node: the same signed
    /// FHIR create sent twice creates one resource; a request signed for another node is refused even
    /// when its Host header names that node.
    @Test func signedRequestsDoNotReplayOrTravel() async throws {
        let hospital = Party(), doctor = Party(), patient = Party()
        let network = try TestNetwork(
            contracts: .careLedger, capabilities: HostedCapabilities.careLedger,
            acting: ActingOrganisation(signing: hospital.key, encryption: hospital.encryption))
        try await network.run(live: true) { client in
            var rc = RecordsClient(client: client)
            _ = try await rc.register(network.operatorParty, hospital, "organisation", name: "H")
            try await rc.registerAll([(hospital, doctor, "practitioner", nil), (patient, patient, "patient", nil)])
            _ = try await rc.submit(patient, "consent", "grant", .object([
                "grantee": .string(doctor.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
            ]))
            let port = try #require(client.port)
            let connection = try RawHTTPClient(from: "127.0.0.1", to: port)
            let body = JSONValue.object([
                "resourceType": .string("Observation"), "status": .string("final"), "code": .object(["text": .string("Heart rate")]),
                "subject": .object(["reference": .string("Patient/" + patient.did.dropFirst("did:key:".count))]),
                "valueQuantity": .object(["value": .int(72), "unit": .string("/min")]),
            ]).canonicalBytes
            // One signing time for every request here: the same request signed twice is the same bytes.
            let created = Int64(Date().timeIntervalSince1970)
            func signedPost(authority: String, nonce: String? = nil, label: String = "sig1") async throws -> Int {
                let digest = ContentDigest.field(for: body)
                let fields = ["content-digest": [digest], "content-type": ["application/fhir+json"]]
                let message = HTTPMessageSignature.Request(method: "POST", scheme: "http", authority: authority, path: "/fhir/Observation", query: "", headers: fields)
                var (input, signature) = try HTTPMessageSignature.sign(
                    request: message, key: doctor.key, components: ["@method", "@authority", "@path", "content-digest"], created: created)
                if let nonce {
                    input = input.replacingOccurrences(of: ";keyid=", with: ";nonce=\"\(nonce)\";keyid=")
                    let parsed = try HTTPMessageSignature.parseInputs(input)
                    signature = "sig1=:\(Base64.encode(doctor.key.signature(for: Array(try HTTPMessageSignature.signatureBase(parsed[0], request: message).utf8)))):"
                }
                if label != "sig1" {
                    input = input.replacingOccurrences(of: "sig1=", with: "\(label)=")
                    signature = signature.replacingOccurrences(of: "sig1=", with: "\(label)= ")
                }
                return try await connection.request(
                    "POST", "/fhir/Observation",
                    headers: [("Host", authority), ("Content-Type", "application/fhir+json"), ("Content-Digest", digest), ("Signature-Input", input), ("Signature", signature)],
                    body: body
                ).status
            }
            func observations() async throws -> Int64? {
                try rc.json(try await rc.fhir(.get, "/fhir/Observation?patient=Patient/\(patient.did.dropFirst("did:key:".count))", as: doctor))["total"]?.intValue
            }
            let here = "127.0.0.1:\(port)"
            #expect(try await signedPost(authority: here) == 201)
            #expect(try await signedPost(authority: here) == 401, "the same signed request again")
            #expect(try await signedPost(authority: here, label: "again") == 401, "the same signature under another label and spacing")
            #expect(try await observations() == 1)
            #expect(try await signedPost(authority: here, nonce: "a-second-one") == 201, "a nonce makes it another request")
            #expect(try await signedPost(authority: "hospital-b.example:\(port)") == 401, "signed for another node")
            #expect(try await signedPost(authority: "hospital-b.example") == 401)
            #expect(try await observations() == 2)
        }
    }
}
