import ContractKit
import Foundation
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import RecordsContract
import Standards
import Testing

@testable import Server

/// A care team as a consent grantee: its members read (with keys wrapped for each of them) while
/// they are members; the organisation manages membership; a removed member loses access at once and
/// never receives the keys of later versions.
@Suite struct CareTeamTests {
    @Test func careTeamMembersReadWhileTheyAreMembers() async throws {
        let network = try TestNetwork(contracts: .records, capabilities: recordsAlone)
        let operatorParty = network.operatorParty
        let hospital = Party(), otherHospital = Party(), team = Party(), drA = Party(), drB = Party(), outsider = Party(), patient = Party()
        try await network.run { client in
            var rc = RecordsClient(client: client)
            #expect(try await rc.register(operatorParty, hospital, "organisation", name: "H")["status"] == .string("committed"))
            #expect(try await rc.register(operatorParty, otherHospital, "organisation", name: "O")["status"] == .string("committed"))
            for dr in [drA, drB] { #expect(try await rc.register(hospital, dr, "practitioner")["status"] == .string("committed")) }
            #expect(try await rc.register(otherHospital, outsider, "practitioner")["status"] == .string("committed"))
            #expect(try await rc.register(patient, patient, "patient")["status"] == .string("committed"))
            // A care team is registered by an organisation (a practitioner cannot), with a name.
            #expect(try await rc.register(drA, team, "careteam", name: "Cardiology ward 3")["error"]?["code"] == .string("forbidden"))
            #expect(try await rc.register(hospital, team, "careteam")["error"]?["code"] == .string("bad_payload"))
            #expect(try await rc.register(hospital, team, "careteam", name: "Cardiology ward 3")["status"] == .string("committed"))
            // Only its organisation manages members; members are registered practitioners.
            let add: JSONValue = .object(["team": .string(team.did), "add": .array([.string(drA.did)])])
            #expect(try await rc.submit(otherHospital, "identity", "members", add)["error"]?["code"] == .string("forbidden"))
            #expect(try await rc.submit(hospital, "identity", "members", .object(["team": .string(team.did), "add": .array([.string(patient.did)])]))["error"]?["code"]
                == .string("unknown_principal"))
            #expect(try await rc.submit(hospital, "identity", "members", add)["status"] == .string("committed"))

            // The patient grants the team; Dr A (a member) writes and reads; Dr B (not a member) cannot read.
            #expect(try await rc.submit(patient, "consent", "grant", .object([
                "grantee": .string(team.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
            ]))["status"] == .string("committed"))
            let v1: JSONValue = .object(["resourceType": .string("Observation"), "id": .string("o1"), "status": .string("final"), "code": .object(["text": .string("BP")])])
            #expect(try await rc.put(drA, patient: patient, recordID: "o1", version: 1, resource: v1, custodian: hospital)["result"]?["status"] == .string("current"))
            let read = try await rc.get("/v1/records/o1", as: drA)
            #expect(read.status == .ok)
            #expect(try SealedVersion.open(read: try rc.json(read), with: drA.encryption) == v1.canonicalBytes)
            #expect(try await rc.get("/v1/records/o1", as: drB).status == .forbidden)
            #expect(try await rc.get("/v1/records/o1", as: outsider).status == .forbidden)

            // Dr B joins: she can read the versions written from now on (wrapped for her).
            #expect(try await rc.submit(hospital, "identity", "members", .object(["team": .string(team.did), "add": .array([.string(drB.did)])]))["status"] == .string("committed"))
            let v2: JSONValue = .object(["resourceType": .string("Observation"), "id": .string("o1"), "status": .string("amended"), "code": .object(["text": .string("BP")])])
            #expect(try await rc.put(drA, patient: patient, recordID: "o1", version: 2, resource: v2, custodian: hospital)["result"]?["status"] == .string("current"))
            let readB = try await rc.get("/v1/records/o1", as: drB)
            #expect(readB.status == .ok)
            #expect(try SealedVersion.open(read: try rc.json(readB), with: drB.encryption) == v2.canonicalBytes)

            // Dr A leaves: denied at once; the next version is not wrapped for her.
            #expect(try await rc.submit(hospital, "identity", "members", .object(["team": .string(team.did), "remove": .array([.string(drA.did)])]))["status"] == .string("committed"))
            #expect(try await rc.get("/v1/records/o1", as: drA).status == .forbidden)
            let v3: JSONValue = .object(["resourceType": .string("Observation"), "id": .string("o1"), "status": .string("final"), "code": .object(["text": .string("BP 120/80")])])
            #expect(try await rc.put(drB, patient: patient, recordID: "o1", version: 3, resource: v3, custodian: hospital)["result"]?["status"] == .string("current"))
            let history = try rc.json(try await rc.get("/v1/records/o1/history", as: patient))
            let last = history["versions"]?.arrayValue?.last
            #expect(last?["recipients"]?.arrayValue?.contains(.string(drB.did)) == true)
            #expect(last?["recipients"]?.arrayValue?.contains(.string(drA.did)) == false)
            // The principals record the membership both ways.
            let teamRecord = try rc.json(try await client.execute(uri: "/v1/principals/\(team.did)", method: .get))
            #expect(teamRecord["members"] == .array([.string(drB.did)]))
            let drBRecord = try rc.json(try await client.execute(uri: "/v1/principals/\(drB.did)", method: .get))
            #expect(drBRecord["careTeams"] == .array([.string(team.did)]))

            // Another organisation's practitioner is only invited: she reads nothing until she, or her
            // organisation, accepts; nobody else can accept for her.
            let invite: JSONValue = .object(["team": .string(team.did), "add": .array([.string(outsider.did)])])
            #expect(try await rc.submit(hospital, "identity", "members", invite)["status"] == .string("committed"))
            var invited = try rc.json(try await client.execute(uri: "/v1/principals/\(team.did)", method: .get))
            #expect(invited["members"] == .array([.string(drB.did)]) && invited["invited"] == .array([.string(outsider.did)]))
            #expect(try await rc.get("/v1/records/o1", as: outsider).status == .forbidden)
            let join: JSONValue = .object(["team": .string(team.did), "member": .string(outsider.did)])
            #expect(try await rc.submit(hospital, "identity", "join", join)["error"]?["code"] == .string("forbidden"))
            #expect(try await rc.submit(drB, "identity", "join", join)["error"]?["code"] == .string("forbidden"))
            #expect(try await rc.submit(drB, "identity", "join", .object(["team": .string(team.did)]))["error"]?["code"] == .string("not_invited"))
            #expect(try await rc.submit(otherHospital, "identity", "join", join)["status"] == .string("committed"))
            invited = try rc.json(try await client.execute(uri: "/v1/principals/\(team.did)", method: .get))
            #expect(invited["members"] == .array([.string(drB.did), .string(outsider.did)]) && invited["invited"] == nil)
            #expect(try await rc.get("/v1/records/o1", as: outsider).status != .forbidden, "a member now (no key for the versions before her)")
            // An invitation withdrawn cannot be accepted.
            let other = Party()
            #expect(try await rc.register(otherHospital, other, "practitioner")["status"] == .string("committed"))
            #expect(try await rc.submit(hospital, "identity", "members", .object(["team": .string(team.did), "add": .array([.string(other.did)])]))["status"] == .string("committed"))
            #expect(try await rc.submit(hospital, "identity", "members", .object(["team": .string(team.did), "remove": .array([.string(other.did)])]))["status"] == .string("committed"))
            #expect(try await rc.submit(other, "identity", "join", .object(["team": .string(team.did)]))["error"]?["code"] == .string("not_invited"))
        }
    }
}
