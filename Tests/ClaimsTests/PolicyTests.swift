import ClaimsContract
import Composition
import ContractKit
import Foundation
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Testing

/// Payers' policies on the ledger: published by an organisation, checked with their path, versioned,
/// the version in force chosen by the day of service.
@Suite struct PolicyTests {
    @Test func anInsurerPublishesVersionsAndTheOneInForceIsFoundByDate() async throws {
        let insurer = Party(), doctor = Party()
        let network = try TestNetwork(contracts: .claims(evidence: ClaimsFromRecords()), capabilities: { _ in [] })
        try await network.run { client in
            var rc = RecordsClient(client: client)
            try await rc.registerAll([(network.operatorParty, insurer, "organisation", "Insurer"), (doctor, doctor, "patient", nil)])
            let first = try AdjudicationTests.policy()

            // Only an organisation publishes; a bad policy is refused with its path and nothing is stored.
            #expect(try await rc.submit(doctor, "claims", "publish-policy", .object(["policy": first]))["error"]?["code"] == .string("forbidden"))
            var broken = first.objectValue!
            broken["coinsuranceBp"] = .int(-1)
            let refused = try await rc.submit(insurer, "claims", "publish-policy", .object(["policy": .object(broken)]))
            #expect(refused["error"]?["code"] == .string("bad_policy"))
            #expect(refused["error"]?["message"]?.stringValue?.hasPrefix("coinsuranceBp: ") == true)
            #expect(network.node.stateValue(forKey: ClaimsContract.planKey(insurer: insurer.did, plan: "gold-2027")) == nil)

            let published = try await rc.submit(insurer, "claims", "publish-policy", .object(["policy": first]))
            #expect(published["status"] == .string("committed"))
            #expect(published["result"]?["version"] == .int(1))

            // Version 2 lowers the fee of 99213 from April on.
            var second = first.objectValue!
            second["effective"] = .string("2027-04-01")
            var services = second["services"]!.arrayValue!
            var visit = services[0].objectValue!
            visit["allowed"] = .int(10000)
            services[0] = .object(visit)
            second["services"] = .array(services)
            #expect(try await rc.submit(insurer, "claims", "publish-policy", .object(["policy": .object(second)]))["result"]?["version"] == .int(2))

            // A plan keeps its year: another year is another plan.
            var otherYear = first.objectValue!
            otherYear["year"] = .object(["start": .string("2028-01-01"), "end": .string("2028-12-31")])
            otherYear["members"] = .array([])
            #expect(try await rc.submit(insurer, "claims", "publish-policy", .object(["policy": .object(otherYear)]))["error"]?["code"] == .string("plan_year_fixed"))

            let plan = try JSONValue.parse(try #require(network.node.stateValue(forKey: ClaimsContract.planKey(insurer: insurer.did, plan: "gold-2027"))))
            #expect(plan["versions"]?.arrayValue?.count == 2)
            #expect(ClaimsContract.inForce(plan: plan, on: CivilDate("2027-03-31")!) == 1)
            #expect(ClaimsContract.inForce(plan: plan, on: CivilDate("2027-04-01")!) == 2)
            #expect(ClaimsContract.inForce(plan: plan, on: CivilDate("2028-01-01")!) == nil)
            let stored = try JSONValue.parse(try #require(network.node.stateValue(forKey: ClaimsContract.policyKey(insurer: insurer.did, plan: "gold-2027", version: 2))))
            let policy = try ClaimsPolicy(json: try #require(stored["policy"]))
            #expect(policy.service(system: AdjudicationTests.cpt, code: "99213")?.allowed == 10000)
            #expect(stored["effective"] == .string("2027-04-01") && stored["insurer"] == .string(insurer.did))
        }
    }
}
