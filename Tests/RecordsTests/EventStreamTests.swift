import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
@testable import Node
import Standards
import Testing

@testable import Server

/// The server-sent event stream over HTTP: live events that concern the caller,
/// resumption with Last-Event-ID (nothing committed while disconnected is lost), bad input refused.
@Suite struct EventStreamTests {
    struct SSE: Equatable {
        let id: String
        let type: String
        let data: JSONValue
    }

    static func parse(_ text: String) throws -> [SSE] {
        var out: [SSE] = []
        for block in text.components(separatedBy: "\n\n") {
            var id = "", type = "", data = ""
            for line in block.split(separator: "\n") {
                if line.hasPrefix("id: ") { id = String(line.dropFirst(4)) }
                if line.hasPrefix("event: ") { type = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
            }
            if !id.isEmpty { out.append(SSE(id: id, type: type, data: try JSONValue.parse(Array(data.utf8)))) }
        }
        return out
    }

    /// Runs `body` and fails instead of hanging if it takes more than 20 s.
    static func within<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .seconds(20))
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            return try #require(first, "timed out")
        }
    }

    @Test func liveStreamResumptionAndBadInput() async throws {
        let network = try TestNetwork(contracts: .records, capabilities: recordsAlone)
        let operatorParty = network.operatorParty, node = network.node
        let hospital = Party(), drA = Party(), patient = Party()
        try await network.run { client in
            var rc = RecordsClient(client: client)
            try await rc.registerAll([
                (operatorParty, hospital, "organisation", "Hospital"),
                (hospital, drA, "practitioner", nil),
                (patient, patient, "patient", nil),
            ])
            let patientToken = try await rc.token(patient)
            @Sendable func stream(_ query: String, lastEventID: String? = nil, token: String) async throws -> TestResponse {
                var headers: HTTPFields = [.authorization: "Bearer \(token)"]
                if let lastEventID { headers[HTTPField.Name("Last-Event-ID")!] = lastEventID }
                return try await client.execute(uri: "/v1/events\(query)", method: .get, headers: headers)
            }

            #expect(try await client.execute(uri: "/v1/events", method: .get).status == .unauthorized)
            let bad = try await stream("?limit=1", lastEventID: "yesterday", token: patientToken)
            #expect(bad.status == .badRequest)
            #expect(try rc.json(bad)["error"]?["code"] == .string("bad_parameter"))
            #expect(try await stream("?limit=0", token: patientToken).status == .badRequest)

            // Live: the patient listens while she grants dr A and dr A writes and reads her record.
            let subscribers = node.events.subscriberCount
            let live = Task { try await stream("?limit=3", token: patientToken) }
            try await eventually("the stream is subscribed", seconds: 10) { node.events.subscriberCount > subscribers }
            _ = try await rc.submit(patient, "consent", "grant", .object([
                "grantee": .string(drA.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
            ]))
            let condition: JSONValue = .object(["resourceType": .string("Condition"), "id": .string("c1"), "code": .object(["text": .string("Asthma")])])
            _ = try await rc.put(drA, patient: patient, recordID: "c1", version: 1, resource: condition, custodian: hospital)
            #expect(try await rc.get("/v1/records/c1", as: drA).status == .ok)
            let response = try await Self.within { try await live.value }
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/event-stream")
            let events = try Self.parse(String(buffer: response.body))
            #expect(events.map(\.type) == ["consent.granted", "record.written", "access"])
            #expect(events[2].data["reader"] == .string(drA.did))
            #expect(events.allSatisfy { $0.data["patient"] == .string(patient.did) })

            // Replay from the start: her registration first, then the same three, in commit order.
            let all = try Self.parse(String(buffer: try await Self.within { try await stream("?limit=4", lastEventID: "0-0", token: patientToken) }.body))
            #expect(all.map(\.type) == ["identity.registered", "consent.granted", "record.written", "access"])
            #expect(Array(all.dropFirst()) == events)
            // Resuming after the second event gives the third and fourth: nothing lost, nothing twice.
            let resumed = try Self.parse(String(buffer: try await Self.within { try await stream("?limit=2&lastEventId=\(all[1].id)", token: patientToken) }.body))
            #expect(resumed == Array(all[2...3]))
            // Dr A's stream carries what concerns her (the grant to her), not the patient's registration.
            // Dr A's stream carries what concerns her: her registration, the grant to her, and the new record her
            // consent lets her read — not the patient's registration nor the access event.
            let doctorToken = try await rc.token(drA)
            let forDoctor = try Self.parse(String(buffer: try await Self.within { try await stream("?limit=3", lastEventID: "0-0", token: doctorToken) }.body))
            #expect(forDoctor.map(\.type) == ["identity.registered", "consent.granted", "record.written"])
            #expect(forDoctor.first?.data["did"] == .string(drA.did))
            #expect(forDoctor.last?.data["resourceType"] == .string("Condition"))
        }
    }

    /// A subscriber more than the buffer behind is ended, never left with a silent gap; one that
    /// subscribes after the node stopped ends at once.
    @Test func aLaggingSubscriberIsEndedNotSkipped() async throws {
        let hub = EventHub()
        let slow = hub.subscribe()
        let events = (0...EventHub.bufferSize).map { JSONValue.object(["n": .int(Int64($0))]) }
        hub.publish(height: 1, events: events)
        var received: [Int64] = []
        for await event in slow { received.append(event.body["n"]?.intValue ?? -1) }
        #expect(received == (0..<Int64(EventHub.bufferSize)).map { $0 }, "the oldest are kept, in order, then the stream ends")
        #expect(hub.subscriberCount == 0)
        hub.finish()
        var after = 0
        for await _ in hub.subscribe() { after += 1 }
        #expect(after == 0 && hub.isFinished)
    }
}
