import ClaimsContract
import Composition
import ContractKit
import Foundation
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Node
import Records
import Testing

@Suite struct ClaimLifecycleTests {
    /// Every line the rule adjudicates passes the ledger's check, in date order with the accumulators
    /// it carries; the same line with any amount or reason changed does not.
    @Test func theLedgerAcceptsTheRuleAndNothingElse() throws {
        let policy = try ClaimsPolicy(json: try AdjudicationTests.policy { p in
            p["deductible"] = .int(20000)
            p["outOfPocketMax"] = .int(30000)
        })
        var claims: [JSONValue] = []
        for (n, day) in ["2027-01-10", "2027-02-11", "2027-02-12", "2027-03-01", "2027-05-05", "2027-06-06", "2027-07-07"].enumerated() {
            claims.append(try AdjudicationTests.claim("c\(n)", preAuth: n % 2 == 0 ? ["PA"] : nil, items: [("99213", day, "\(100 + n * 37).5\(n)"), ("71046", day, "95"), ("12345", day, "10")]))
        }
        claims.append(try AdjudicationTests.claim("bob", patient: AdjudicationTests.bob, items: [("99213", "2027-02-01", "90"), ("99213", "2027-07-02", "90")]))
        let inputs = try ClaimInput.claims(in: .array(claims), minorDigits: 2, currency: "EUR")
        let results = Adjudication.run(inputs, policy: policy)
        var accumulators: [String: Adjudication.Accumulator] = [:]
        var checked = 0, capped = false
        let order = inputs.indices.flatMap { c in inputs[c].lines.indices.map { (c, $0) } }.sorted { a, b in
            let (x, y) = (inputs[a.0].lines[a.1], inputs[b.0].lines[b.1])
            return (x.date, a.0, x.sequence) < (y.date, b.0, y.sequence)
        }
        for (c, l) in order {
            let line = inputs[c].lines[l], result = results[c].items[l], patient = inputs[c].patient
            let before = accumulators[patient] ?? Adjudication.Accumulator()
            func verify(_ r: LineAdjudication) throws -> Adjudication.Accumulator {
                try Adjudication.verify(r, line: (line.date, line.submitted), patient: patient, policy: policy, planYear: (policy.yearStart, policy.yearEnd),
                                        filed: inputs[c].created ?? line.date, accumulator: before, path: "x")
            }
            accumulators[patient] = try verify(result)
            checked += 1
            if !result.denied && result.deductible + result.copay + result.coinsurance == policy.outOfPocketMax - before.outOfPocket { capped = true }
            // Tampered: a cent moved, a reason dropped or added, a denial where the member was not covered.
            var tampered: [LineAdjudication] = []
            if !result.denied {
                tampered.append(LineAdjudication(sequence: result.sequence, submitted: result.submitted, eligible: result.eligible, deductible: result.deductible,
                                                 copay: result.copay, coinsurance: result.coinsurance + 1, benefit: result.benefit - 1, reasons: result.reasons))
                tampered.append(LineAdjudication(sequence: result.sequence, submitted: result.submitted, eligible: result.eligible + 1, deductible: result.deductible,
                                                 copay: result.copay, coinsurance: result.coinsurance, benefit: result.benefit, reasons: result.reasons))
                tampered.append(LineAdjudication(sequence: result.sequence, submitted: result.submitted, eligible: result.eligible, deductible: result.deductible,
                                                 copay: result.copay, coinsurance: result.coinsurance, benefit: result.benefit, reasons: result.reasons + [96]))
            } else {
                tampered.append(LineAdjudication(sequence: result.sequence, submitted: result.submitted, eligible: 0, deductible: 0, copay: 0, coinsurance: 0, benefit: 0,
                                                 reasons: [result.reasons[0] == 27 ? 96 : 27]))
            }
            for t in tampered {
                #expect(throws: LedgerError.self, "\(inputs[c].id) line \(line.sequence): \(t)") { try verify(t) }
            }
        }
        #expect(checked == 23)
        #expect(capped, "the out-of-pocket cap is reached on some line")
        #expect(results.last?.items.map(\.reasons) == [[26], [27]], "Bob before and after his coverage")
    }

    /// Submit, adjudicate (a wrong adjudication refused), pay, appeal, re-adjudicate: the accumulators
    /// count each line once.
    @Test func aClaimFromSubmissionToPaymentAndAppeal() async throws {
        let insurer = Party(), hospital = Party(), alice = Party()
        let network = try TestNetwork(contracts: .careLedger, capabilities: { host in [RecordsCapability(host: host)] })
        try await network.run { client in
            var rc = RecordsClient(client: client)
            try await rc.registerAll([
                (network.operatorParty, insurer, "organisation", "Insurer"), (network.operatorParty, hospital, "organisation", "Hospital"), (alice, alice, "patient", nil),
            ])
            let policyJSON = try AdjudicationTests.policy { p in
                p["deductible"] = .int(5000)
                p["members"] = .array([.object(["patient": .string(alice.did), "from": .string("2027-01-01"), "to": .string("2027-12-31")])])
            }
            #expect(try await rc.submit(insurer, "claims", "publish-policy", .object(["policy": policyJSON]))["status"] == .string("committed"))
            _ = try await rc.submit(alice, "consent", "grant", .object([
                "grantee": .string(hospital.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
            ]))
            let claim = try AdjudicationTests.claim("claim-1", patient: alice.did, items: [("99213", "2027-02-01", "150"), ("99213", "2027-02-02", "100")])
            #expect(try await rc.put(hospital, patient: alice, recordID: "claim-1", version: 1, resource: claim, custodian: hospital)["status"] == .string("committed"))
            let submit: JSONValue = .object([
                "claim": .string("claim-1"), "record": .string("claim-1"), "patient": .string(alice.did), "insurer": .string(insurer.did), "plan": .string("gold-2027"),
                "lines": .array([
                    .object(["sequence": .int(1), "date": .string("2027-02-01"), "submitted": .int(15000)]),
                    .object(["sequence": .int(2), "date": .string("2027-02-02"), "submitted": .int(10000)]),
                ]),
            ])
            // Without her consent for payment, the insurer may not have it.
            #expect(try await rc.submit(hospital, "claims", "submit", submit)["error"]?["code"] == .string("consent_denied"))
            _ = try await rc.submit(alice, "consent", "grant", .object([
                "grantee": .string(insurer.did), "purposes": .array([.string("payment")]), "categories": .array([.string("financial")]),
            ]))
            #expect(try await rc.submit(hospital, "claims", "submit", submit)["result"]?["status"] == .string("queued"))
            #expect(try await rc.submit(hospital, "claims", "submit", submit)["error"]?["code"] == .string("duplicate_claim"))

            // The insurer's adjudication: the rule's, computed from the sealed claim.
            let policy = try ClaimsPolicy(json: policyJSON)
            let lines = Adjudication.run(try ClaimInput.claims(in: claim, minorDigits: 2, currency: "EUR"), policy: policy)[0].items
            #expect(lines.map(\.benefit) == [3600, 6000])
            var wrong = lines.map(\.json)
            wrong[1] = .object(wrong[1].objectValue!.merging(["deductible": .int(100), "benefit": .int(5900)]) { $1 })
            #expect(try await rc.submit(hospital, "claims", "adjudicate", .object(["claim": .string("claim-1"), "lines": .array(lines.map(\.json))]))["error"]?["code"]
                == .string("forbidden"))
            let refused = try await rc.submit(insurer, "claims", "adjudicate", .object(["claim": .string("claim-1"), "lines": .array(wrong)]))
            #expect(refused["error"]?["code"] == .string("bad_adjudication"))
            #expect(refused["error"]?["message"]?.stringValue?.contains("sequence 2") == true)
            let adjudicated = try await rc.submit(insurer, "claims", "adjudicate", .object(["claim": .string("claim-1"), "lines": .array(lines.map(\.json))]))
            #expect(adjudicated["result"]?["benefit"] == .int(9600))
            #expect(adjudicated["result"]?["payment"]?["payee"] == .string(hospital.did))
            let accumulatorKey = ClaimState.accumulatorKey(insurer: insurer.did, plan: "gold-2027", patient: alice.did)
            func accumulator() throws -> JSONValue { try JSONValue.parse(try #require(network.node.stateValue(forKey: accumulatorKey))) }
            #expect(try accumulator() == .object(["deductible": .int(5000), "outOfPocket": .int(5000 + 2500 + 900 + 2500 + 1500)]))

            let pay: (Int64) -> JSONValue = { .object(["claim": .string("claim-1"), "amount": .int($0), "reference": .string("SEPA-1")]) }
            #expect(try await rc.submit(insurer, "claims", "pay", pay(9000))["error"]?["code"] == .string("wrong_amount"))
            #expect(try await rc.submit(insurer, "claims", "pay", pay(9600))["result"]?["status"] == .string("paid"))
            #expect(try await rc.submit(insurer, "claims", "pay", pay(9600))["error"]?["code"] == .string("wrong_status"))

            // Alice appeals; the insurer adjudicates again: the accumulators count each line once.
            #expect(try await rc.submit(alice, "claims", "appeal", .object(["claim": .string("claim-1"), "reason": .string("the visit on 1 February was one visit")]))["result"]?["status"]
                == .string("appealed"))
            #expect(try await rc.submit(insurer, "claims", "adjudicate", .object(["claim": .string("claim-1"), "lines": .array(lines.map(\.json))]))["result"]?["benefit"] == .int(9600))
            #expect(try accumulator()["outOfPocket"] == .int(12400))
            #expect(try await rc.submit(insurer, "claims", "pay", pay(1))["error"]?["code"] == .string("nothing_to_pay"))
            let stored = try JSONValue.parse(try #require(network.node.stateValue(forKey: ClaimState.key("claim-1"))))
            #expect(stored["history"]?.arrayValue?.compactMap { $0["status"]?.stringValue } == ["queued", "adjudicated", "paid", "appealed", "adjudicated"])
            #expect(stored["paid"] == .int(9600))
        }
    }
}

/// The insurer's node adjudicates by itself: it reads the sealed claim as the insurer, applies the rule
/// with the ledger's accumulators and its duplicate keys, and commits; a claim whose record does not
/// match its lines is pended with the signal.
@Suite struct PayerTests {
    func waitFor(_ network: TestNetwork, _ id: String, status: String) async throws -> JSONValue {
        for _ in 0..<2000 {
            if let bytes = network.node.stateValue(forKey: ClaimState.key(id)), let claim = try? JSONValue.parse(bytes), claim["status"] == .string(status) {
                return claim
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw LedgerError("timeout", "claim \(id) never became \(status)")
    }

    @Test func theInsurersNodeAdjudicatesAsClaimsArrive() async throws {
        let insurer = Party(), hospital = Party(), alice = Party(), carol = Party()
        let network = try TestNetwork(
            contracts: .careLedger, capabilities: HostedCapabilities.careLedger, acting: ActingOrganisation(signing: hospital.key, encryption: hospital.encryption),
            organisations: [ActingOrganisation(signing: insurer.key, encryption: insurer.encryption)])
        try await network.run { client in
            var rc = RecordsClient(client: client)
            try await rc.registerAll([
                (network.operatorParty, insurer, "organisation", "Insurer"), (network.operatorParty, hospital, "organisation", "Hospital"),
                (alice, alice, "patient", nil), (carol, carol, "patient", nil),
            ])
            let policyJSON = try AdjudicationTests.policy { p in
                p["deductible"] = .int(5000)
                p["members"] = .array([.object(["patient": .string(alice.did), "from": .string("2027-01-01"), "to": .string("2027-12-31")])])
            }
            #expect(try await rc.submit(insurer, "claims", "publish-policy", .object(["policy": policyJSON]))["status"] == .string("committed"))
            for (grantee, purpose, scope) in [(hospital, "treatment", "resourceTypes"), (insurer, "payment", "categories")] {
                _ = try await rc.submit(alice, "consent", "grant", .object([
                    "grantee": .string(grantee.did), "purposes": .array([.string(purpose)]), scope: .array([.string(scope == "categories" ? "financial" : "*")]),
                ]))
            }
            func file(_ id: String, _ items: [(code: String, date: String, net: String)], lines: [(Int64, String, Int64)]? = nil) async throws {
                let claim = try AdjudicationTests.claim(id, patient: alice.did, provider: hospital.did, items: items)
                #expect(try await rc.put(hospital, patient: alice, recordID: id, version: 1, resource: claim, custodian: hospital)["status"] == .string("committed"))
                let given = lines ?? items.enumerated().map { (Int64($0.offset + 1), $0.element.date, Int64((Double($0.element.net)! * 100).rounded())) }
                let submitted = try await rc.submit(hospital, "claims", "submit", .object([
                    "claim": .string(id), "record": .string(id), "patient": .string(alice.did), "insurer": .string(insurer.did), "plan": .string("gold-2027"),
                    "lines": .array(given.map { .object(["sequence": .int($0.0), "date": .string($0.1), "submitted": .int($0.2)]) }),
                ]))
                #expect(submitted["result"]?["status"] == .string("queued"), "\(submitted)")
            }

            try await file("claim-1", [("99213", "2027-02-01", "150"), ("99213", "2027-02-02", "100")])
            let first = try await waitFor(network, "claim-1", status: "adjudicated")
            let policy = try ClaimsPolicy(json: policyJSON)
            let expected = Adjudication.run(
                try ClaimInput.claims(in: try AdjudicationTests.claim("claim-1", patient: alice.did, provider: hospital.did, items: [("99213", "2027-02-01", "150"), ("99213", "2027-02-02", "100")]),
                                      minorDigits: 2, currency: "EUR"), policy: policy)[0]
            #expect(first["adjudication"]?["lines"]?.arrayValue?.map { line -> JSONValue in
                var o = line.objectValue!
                o["version"] = nil
                return .object(o)
            } == expected.items.map(\.json))
            #expect(first["adjudication"]?["benefit"] == .int(9600))

            // The same service on the same day again, in another claim: a duplicate (18); the new day's line is paid.
            try await file("claim-2", [("99213", "2027-02-01", "150"), ("99213", "2027-03-01", "100")])
            let second = try await waitFor(network, "claim-2", status: "adjudicated")
            #expect(second["adjudication"]?["lines"]?[0]?["reasons"] == .array([.int(18)]))
            #expect(second["adjudication"]?["lines"]?[1]?["benefit"] == .int(6000))

            // Lines on the ledger that are not the sealed claim's: pended with the signal, never paid.
            try await file("claim-3", [("99213", "2027-04-01", "100")], lines: [(1, "2027-04-01", 90000)])
            let pended = try await waitFor(network, "claim-3", status: "pended")
            #expect(pended["pended"]?["signals"]?[0]?.stringValue?.hasPrefix("claim_mismatch") == true)

            // The claim is served to its parties only.
            #expect(try await rc.get("/v1/claims/claim-1", as: alice).status == .ok)
            #expect(try await rc.get("/v1/claims/claim-1", as: carol).status == .forbidden)
            #expect(try await rc.get("/v1/claims/no-such-claim", as: carol).status == .forbidden)
            #expect(try await rc.get("/v1/state/" + ClaimState.key("claim-1"), as: carol).status == .forbidden)
        }
    }
}
