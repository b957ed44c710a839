import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LedgerCore
import Node
import Standards
import Synchronization
import Testing

@testable import Server

#if canImport(Glibc)
    import Glibc
#endif

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
        let network = try TestNetwork(configure: { server in
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
        let network = try TestNetwork(acting: ActingOrganisation(signing: hospital.key, encryption: hospital.encryption))
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

/// Seconds that stand still until the test moves them.
final class ManualSeconds: Sendable {
    private let value = Mutex<Double>(1_000_000)
    func advance(_ seconds: Double) { value.withLock { $0 += seconds } }
    var read: @Sendable () -> Double { { [self] in value.withLock { $0 } } }
}

/// A minimal HTTP/1.1 client over one keep-alive connection from a chosen loopback address (the
/// test's second client: URLSession cannot choose its source address). Its blocking socket calls
/// run on a Dispatch thread, never on the concurrency pool the server under test runs on.
final class RawHTTPClient: @unchecked Sendable {
    let fd: Int32
    var buffer: [UInt8] = []

    init(from source: String, to port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LedgerError("socket", "socket() failed") }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, source, &local.sin_addr)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr)
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let connected = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, connected == 0 else {
            close(fd)
            throw LedgerError("socket", "cannot connect from \(source)")
        }
    }

    deinit { close(fd) }

    typealias Answer = (status: Int, headers: [String: String], body: [UInt8])

    /// Sends a request and reads the whole answer (`Host: 127.0.0.1` unless `headers` name another).
    func request(_ method: String, _ path: String, headers extra: [(String, String)] = [], body: [UInt8] = []) async throws -> Answer {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Answer, any Error>) in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try self.blockingRequest(method, path, headers: extra, body: body) })
            }
        }
    }

    private func blockingRequest(_ method: String, _ path: String, headers extra: [(String, String)], body: [UInt8]) throws -> Answer {
        var text = "\(method) \(path) HTTP/1.1\r\n"
        if !extra.contains(where: { $0.0.lowercased() == "host" }) { text += "Host: 127.0.0.1\r\n" }
        for (name, value) in extra { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(body.count)\r\n\r\n"
        let bytes = Array(text.utf8) + body
        let sent = bytes.withUnsafeBufferPointer { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.count else { throw LedgerError("socket", "short write") }
        return try blockingAnswer()
    }

    /// Reads the status line and headers of the next answer (its body, e.g. an event stream, left unread).
    func readHead() async throws -> (status: Int, headers: [String: String]) {
        try await offPool {
            let end: [UInt8] = [13, 10, 13, 10]
            while self.buffer.firstRange(of: end) == nil { try self.fill() }
            let range = self.buffer.firstRange(of: end)!
            let head = String(decoding: self.buffer[..<range.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
            self.buffer.removeFirst(range.upperBound)
            var headers: [String: String] = [:]
            for line in head.dropFirst() {
                if let colon = line.firstIndex(of: ":") { headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
            }
            return (Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0, headers)
        }
    }

    /// Closes the connection from this side (a browser tab closed).
    func hangUp() { shutdown(fd, Int32(SHUT_RDWR)) }

    /// Reads the next whole answer.
    func readAnswer() async throws -> Answer {
        try await offPool { try self.blockingAnswer() }
    }

    private func blockingAnswer() throws -> Answer {
        let end: [UInt8] = [13, 10, 13, 10]
        while true {
            if let range = buffer.firstRange(of: end) {
                let head = String(decoding: buffer[..<range.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
                var headers: [String: String] = [:]
                for line in head.dropFirst() {
                    if let colon = line.firstIndex(of: ":") {
                        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                    }
                }
                let length = Int(headers["content-length"] ?? "0") ?? 0
                while buffer.count < range.upperBound + length { try fill() }
                let body = Array(buffer[range.upperBound..<(range.upperBound + length)])
                buffer.removeFirst(range.upperBound + length)
                let status = Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
                return (status, headers, body)
            }
            try fill()
        }
    }

    /// Sends raw bytes as they are (a request cut short, a body never finished).
    func send(raw text: String) async throws {
        let bytes = Array(text.utf8)
        try await offPool {
            let sent = bytes.withUnsafeBufferPointer { Glibc.send(self.fd, $0.baseAddress, $0.count, 0) }
            guard sent == bytes.count else { throw LedgerError("socket", "short write") }
        }
    }

    /// Whether the server closes the connection within `seconds` (any answer bytes before are skipped).
    func closedByServer(within seconds: Int) async throws -> Bool {
        try await offPool {
            var timeout = timeval(tv_sec: seconds, tv_usec: 0)
            setsockopt(self.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = recv(self.fd, &chunk, chunk.count, 0)
                if n == 0 { return true }
                if n < 0 { return errno == ECONNRESET }
            }
        }
    }

    private func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        guard n > 0 else { throw LedgerError("socket", "connection closed") }
        buffer += chunk[..<n]
    }
}
