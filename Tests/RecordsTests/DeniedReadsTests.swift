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

/// Denied reads cannot flood a patient's ledger: per reader and patient, the first five of a
/// 10-minute window are access events of their own; later ones are refused at once (429) and go on
/// chain as one aggregated event (count, first and last attempt) once the window has closed.
@Suite struct DeniedReadsTests {
    @Test func deniedReadsAreAggregatedAfterTheFirstFew() async throws {
        let hospital = Party(), alice = Party(), prober = Party(), other = Party()
        let clock = ManualClock(startingAt: LedgerNode.systemClock() + 1000)
        let network = try TestNetwork(contracts: .records, capabilities: recordsAlone, clock: clock.read)
        try await network.run { client in
            var rc = RecordsClient(client: client)
            _ = try await rc.register(network.operatorParty, hospital, "organisation", name: "H")
            try await rc.registerAll([(alice, alice, "patient", nil), (prober, prober, "patient", nil), (other, other, "patient", nil)])
            let condition: JSONValue = .object(["resourceType": .string("Condition"), "id": .string("c1"), "code": .object(["text": .string("Asthma")])])
            #expect(try await rc.put(alice, patient: alice, recordID: "c1", version: 1, resource: condition, custodian: hospital)["status"] == .string("committed"))
            func log() async throws -> [JSONValue] {
                try rc.json(try await rc.get("/v1/patients/\(alice.did)/access-log", as: alice))["events"]?.arrayValue ?? []
            }
            func byProber() async throws -> [JSONValue] { try await log().filter { $0["reader"] == .string(prober.did) } }
            var statuses: [UInt] = []
            for _ in 0..<40 { statuses.append(UInt(try await rc.get("/v1/records/c1", as: prober).status.code)) }
            #expect(statuses.prefix(5).allSatisfy { $0 == 403 } && statuses.dropFirst(5).allSatisfy { $0 == 429 }, "\(statuses)")
            let refused = try await rc.get("/v1/records/c1", as: prober)
            #expect(try rc.json(refused)["error"]?["code"] == .string("too_many_denied"))
            var events = try await byProber()
            #expect(events.count == 5, "the first five, each with its detail")
            #expect(events.allSatisfy { $0["outcome"] == .string("deny") && $0["records"] == .array([.string("c1")]) })
            // Another reader is not held back by the first one's attempts.
            #expect(try await rc.get("/v1/records/c1", as: other).status == .forbidden)
            // The window closes; the periodic flush records one event for the 36 refused attempts.
            clock.advance(by: 10 * 60_000)
            await network.api.records.flushDeniedReads()
            events = try await byProber()
            #expect(events.count == 6)
            let aggregate = try #require(events.last)
            #expect(aggregate["aggregated"]?["count"] == .int(36) && aggregate["outcome"] == .string("deny"))
            #expect((aggregate["aggregated"]?["from"]?.intValue ?? 0) <= (aggregate["aggregated"]?["to"]?.intValue ?? -1))
            // A new window: denied reads are recorded in detail again.
            #expect(try await rc.get("/v1/records/c1", as: prober).status == .forbidden)
            #expect(try await byProber().count == 7)
            // Only the node records access events, and an aggregate must be well-formed.
            #expect(try await rc.submit(prober, "audit", "access", .object([
                "patient": .string(alice.did), "reader": .string(prober.did), "records": .array([]), "purpose": .string("treatment"),
                "outcome": .string("permit"), "aggregated": .object(["count": .int(1), "from": .int(0), "to": .int(0)]),
            ]))["error"]?["code"] == .string("bad_payload"))
        }
    }
}
