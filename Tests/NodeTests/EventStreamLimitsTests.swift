import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Node
import Testing

@testable import Server

/// Event streams are for registered principals, limited per principal and in all, and a stream whose
/// client hung up ends (a heartbeat finds it gone) and gives its slot back.
@Suite struct EventStreamLimitsTests {
    @Test func streamsAreLimitedAndFreedWhenTheirClientLeaves() async throws {
        let patient = Party(), other = Party(), stranger = Party()
        let network = try TestNetwork(contracts: .kernel, capabilities: { _ in [] }, configure: { server in
            server.eventStreamsPerPrincipal = 4
            server.eventStreamsTotal = 6
            server.eventHeartbeatSeconds = 0.1
        })
        try await network.run(live: true) { client in
            var rc = RecordsClient(client: client)
            try await rc.registerAll([(patient, patient, "patient", nil), (other, other, "patient", nil)])
            let port = try #require(client.port)
            func open(as party: Party) async throws -> (RawHTTPClient, Int) {
                let connection = try RawHTTPClient(from: "127.0.0.1", to: port)
                try await connection.send(raw: "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(try await rc.token(party))\r\n\r\n")
                return (connection, try await connection.readHead().status)
            }
            func streams() async throws -> Int? {
                let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
                return metrics.split(separator: "\n").first { $0.hasPrefix("careledger_event_streams ") }.flatMap { Double($0.split(separator: " ")[1]) }.map { Int($0) }
            }
            // A key nobody registered gets no stream.
            #expect(try await open(as: stranger).1 == 403)
            // Four for the patient; a fifth is refused; two for another patient; then the node is full.
            var held: [RawHTTPClient] = []
            for _ in 0..<4 {
                let (connection, status) = try await open(as: patient)
                #expect(status == 200)
                held.append(connection)
            }
            #expect(try await open(as: patient).1 == 429)
            for _ in 0..<2 {
                let (connection, status) = try await open(as: other)
                #expect(status == 200)
                held.append(connection)
            }
            #expect(try await open(as: other).1 == 429, "the node's 6 are taken")
            #expect(try await streams() == 6)
            // The clients hang up without a word: each stream ends at its next heartbeat and frees its slot.
            for connection in held { connection.hangUp() }
            let deadline = Date().addingTimeInterval(20)
            while try await streams() != 0, Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(try await streams() == 0, "streams of clients that left are still open")
            #expect(try await open(as: patient).1 == 200)
        }
    }
}
