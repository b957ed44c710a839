import Composition
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Node
import Testing

@testable import Server

/// Connections that hold the server without sending a request are closed; a declared body past the
/// limit is refused before it is awaited; FHIR writes take FHIR JSON only.
@Suite struct ServerHygieneTests {
    @Test func idleSlowAndUnfinishedRequestsAreClosed() async throws {
        let network = try TestNetwork(contracts: .careLedger, capabilities: HostedCapabilities.careLedger, configure: { server in
            server.idleTimeoutSeconds = 0.5
            server.bodyTimeoutSeconds = 0.5
        })
        try await network.run(live: true) { client in
            let port = try #require(client.port)
            // Opened, nothing sent.
            let idle = try RawHTTPClient(from: "127.0.0.1", to: port)
            // Headers begun, never finished.
            let halfHeaders = try RawHTTPClient(from: "127.0.0.1", to: port)
            try await halfHeaders.send(raw: "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            // A body declared and never sent.
            let slowBody = try RawHTTPClient(from: "127.0.0.1", to: port)
            try await slowBody.send(raw: "POST /v1/transactions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            // Answered before its body came (401), the body sent after the answer: idle again, then closed.
            let earlyAnswer = try RawHTTPClient(from: "127.0.0.1", to: port)
            try await earlyAnswer.send(raw: "PUT /v1/vault/\(String(repeating: "0", count: 64)) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n")
            // (The server may also close at once instead of draining the body: either way it must end closed.)
            if let early = try? await earlyAnswer.readAnswer() {
                #expect(early.status == 401)
                try? await earlyAnswer.send(raw: "0123456789")
            }
            // A kept-alive connection after its answer.
            let keptAlive = try RawHTTPClient(from: "127.0.0.1", to: port)
            #expect(try await keptAlive.request("GET", "/healthz").status == 200)
            for (name, connection) in [
                ("idle", idle), ("half-sent headers", halfHeaders), ("unfinished body", slowBody), ("answered before its body", earlyAnswer),
                ("kept alive", keptAlive),
            ] {
                #expect(try await connection.closedByServer(within: 20), "\(name) connection still open")
            }
        }
    }

    @Test func declaredBodiesPastTheLimitAndWrongMediaTypesAreRefused() async throws {
        let hospital = Party(), doctor = Party()
        let network = try TestNetwork(
            contracts: .careLedger, capabilities: HostedCapabilities.careLedger,
            acting: ActingOrganisation(signing: hospital.key, encryption: hospital.encryption))
        try await network.run(live: true) { client in
            let port = try #require(client.port)
            let connection = try RawHTTPClient(from: "127.0.0.1", to: port)
            try await connection.send(raw: "POST /v1/transactions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000000000000000\r\n\r\n{")
            let answer = try await connection.readAnswer()
            #expect(answer.status == 413)
            #expect(try JSONValue.parse(answer.body)["error"]?["code"] == .string("body_too_large"))

            var rc = RecordsClient(client: client)
            _ = try await rc.register(network.operatorParty, hospital, "organisation", name: "H")
            try await rc.registerAll([(hospital, doctor, "practitioner", nil)])
            let body: JSONValue = .object(["resourceType": .string("Observation"), "status": .string("final"), "code": .object(["text": .string("x")])])
            let plain = try await client.execute(
                uri: "/fhir/Observation", method: .post, headers: [.authorization: "Bearer \(try await rc.token(doctor))", .contentType: "text/plain"],
                body: ByteBuffer(bytes: body.canonicalBytes))
            #expect(plain.status == .unsupportedMediaType)
            #expect(try rc.json(plain)["issue"]?[0]?["diagnostics"]?.stringValue?.hasPrefix("unsupported_media_type") == true)
        }
    }
}
