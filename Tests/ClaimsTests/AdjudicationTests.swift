import ClaimsContract
import LedgerCore
import Testing

@Suite struct AdjudicationTests {
    static let alice = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    static let bob = "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG"
    static let cpt = "http://www.ama-assn.org/go/cpt"

    /// The issue's policy shape, with Alice and Bob as members.
    static func policy(_ change: (inout [String: JSONValue]) -> Void = { _ in }) throws -> JSONValue {
        var p = try JSONValue.parse(
            """
            {"plan": "gold-2027", "currency": "EUR", "year": {"start": "2027-01-01", "end": "2027-12-31"},
             "deductible": 50000, "outOfPocketMax": 300000, "coinsuranceBp": 2000, "timelyFilingDays": 90,
             "services": [{"system": "\(cpt)", "code": "99213", "allowed": 12000, "copay": 2500},
                          {"system": "\(cpt)", "code": "71046", "allowed": 9000, "copay": 0, "priorAuth": true}],
             "members": [{"patient": "\(alice)", "from": "2027-01-01", "to": "2027-12-31"},
                         {"patient": "\(bob)", "from": "2027-03-01", "to": "2027-06-30"}]}
            """
        ).objectValue!
        change(&p)
        return .object(p)
    }

    static func claim(_ id: String, patient: String = alice, provider: String = "hospital-a", created: String? = nil, preAuth: [String]? = nil,
                      items: [(code: String, date: String, net: String)]) throws -> JSONValue {
        let lines = items.enumerated().map { i, item in
            """
            {"sequence": \(i + 1), "productOrService": {"coding": [{"system": "\(cpt)", "code": "\(item.code)"}]},
             "servicedDate": "\(item.date)", "net": {"value": \(item.net), "currency": "EUR"}}
            """
        }.joined(separator: ",")
        let insurance = preAuth.map { refs in #", "insurance": [{"sequence": 1, "focal": true, "coverage": {"display": "gold"}, "preAuthRef": [\#(refs.map { "\"\($0)\"" }.joined(separator: ","))]}]"# } ?? ""
        return try JSONValue.parse(
            """
            {"resourceType": "Claim", "id": "\(id)", "patient": {"identifier": {"value": "\(patient)"}},
             "provider": {"identifier": {"value": "\(provider)"}}\(created.map { #", "created": "\#($0)""# } ?? "")\(insurance),
             "item": [\(lines)]}
            """)
    }

    func adjudicate(_ claims: [JSONValue], policy: JSONValue? = nil) throws -> [ClaimAdjudication] {
        let p = try ClaimsPolicy(json: policy ?? Self.policy())
        return Adjudication.run(try ClaimInput.claims(in: .array(claims), minorDigits: p.minorDigits, currency: p.currency), policy: p)
    }

    /// The base rule by hand: deductible first, then copay, coinsurance rounded half up, CARC 45 above the fee.
    @Test func theBaseRuleLineByLine() throws {
        let results = try adjudicate([
            try Self.claim("c1", items: [("99213", "2027-02-01", "150.00")]),  // 150 submitted, fee 120: all of it deductible
            try Self.claim("c2", items: [("99213", "2027-02-10", "100"), ("99213", "2027-02-11", "99.99")]),
        ])
        let first = results[0].items[0]
        #expect(first == LineAdjudication(sequence: 1, submitted: 15000, eligible: 12000, deductible: 12000, copay: 0, coinsurance: 0, benefit: 0, reasons: [1, 45]))
        // 100.00 allowed; deductible left 380.00 takes it all.
        #expect(results[1].items[0].deductible == 10000 && results[1].items[0].benefit == 0 && results[1].items[0].reasons == [1])
        // 99.99: deductible left 280.00 takes it all again.
        #expect(results[1].items[1].deductible == 9999)
        #expect(results.map(\.outcome) == ["complete", "complete"])
    }

    @Test func copayCoinsuranceAndTheOutOfPocketCap() throws {
        // No deductible, a small out-of-pocket maximum: copay 25.00, coinsurance 20 % of the rest, capped.
        let policy = try Self.policy { p in
            p["deductible"] = .int(0)
            p["outOfPocketMax"] = .int(4000)
        }
        let results = try adjudicate([try Self.claim("c1", items: [("99213", "2027-01-05", "120"), ("99213", "2027-01-06", "120"), ("99213", "2027-01-07", "120")])], policy: policy)
        let lines = results[0].items
        // 120.00: copay 25.00, coinsurance ⌊(9500 × 2000 + 5000) / 10000⌋ = 1900; share 4400 > 4000 → cap takes 400 from coinsurance.
        #expect(lines[0] == LineAdjudication(sequence: 1, submitted: 12000, eligible: 12000, deductible: 0, copay: 2500, coinsurance: 1500, benefit: 8000, reasons: [2, 3]))
        // The maximum is reached: the plan pays all of the next lines.
        #expect(lines[1] == LineAdjudication(sequence: 2, submitted: 12000, eligible: 12000, deductible: 0, copay: 0, coinsurance: 0, benefit: 12000, reasons: []))
        #expect(lines[2].benefit == 12000)
    }

    @Test func coinsuranceRoundsHalfUp() throws {
        let policy = try Self.policy { p in
            p["deductible"] = .int(0)
            p["coinsuranceBp"] = .int(2500)
            p["services"] = .array([.object(["system": .string(Self.cpt), "code": .string("99213"), "allowed": .int(100_000), "copay": .int(0)])])
        }
        // 0.02 × 25 % = 0.005 → rounds to 0.01; 0.01 × 25 % = 0.0025 → 0.
        let lines = try adjudicate([try Self.claim("c", items: [("99213", "2027-01-05", "0.02"), ("99213", "2027-01-06", "0.01")])], policy: policy)[0].items
        #expect(lines[0].coinsurance == 1 && lines[0].benefit == 1)
        #expect(lines[1].coinsurance == 0 && lines[1].benefit == 1)
    }

    @Test func denialsEachWithItsCode() throws {
        let results = try adjudicate([
            try Self.claim("not-member", patient: "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf", items: [("99213", "2027-04-01", "100")]),
            try Self.claim("before", patient: Self.bob, items: [("99213", "2027-02-28", "100")]),
            try Self.claim("after", patient: Self.bob, items: [("99213", "2027-07-01", "100")]),
            try Self.claim("uncovered", items: [("12345", "2027-04-01", "100")]),
            try Self.claim("no-auth", items: [("71046", "2027-04-01", "100")]),
            try Self.claim("with-auth", preAuth: ["PA-1"], items: [("71046", "2027-04-02", "100")]),
            try Self.claim("late", created: "2027-08-01", items: [("99213", "2027-04-03", "100")]),
            try Self.claim("first", items: [("99213", "2027-04-04", "100")]),
            try Self.claim("again", items: [("99213", "2027-04-04", "100")]),
            try Self.claim("elsewhere", provider: "hospital-b", items: [("99213", "2027-04-04", "100")]),
        ])
        let byID = Dictionary(uniqueKeysWithValues: results.map { ($0.id, $0) })
        for (id, code) in [("not-member", 31), ("before", 26), ("after", 27), ("uncovered", 96), ("no-auth", 197), ("late", 29), ("again", 18)] {
            let line = try #require(byID[id]?.items.first)
            #expect(line.reasons == [code], "\(id)")
            #expect(line.eligible == 0 && line.deductible == 0 && line.copay == 0 && line.coinsurance == 0 && line.benefit == 0, "\(id)")
            #expect(byID[id]?.outcome == "error")
        }
        #expect(byID["with-auth"]?.items[0].eligible == 9000)
        #expect(byID["first"]?.items[0].reasons == [1])
        #expect(byID["elsewhere"]?.items[0].reasons == [1], "another provider is no duplicate")
    }

    /// Lines run in date-of-service order across claims: the deductible goes to the earliest service.
    @Test func dateOfServiceOrderDecidesWhoMeetsTheDeductible() throws {
        let policy = try Self.policy { p in p["deductible"] = .int(10000) }
        let results = try adjudicate([
            try Self.claim("later", items: [("99213", "2027-05-01", "100")]),
            try Self.claim("earlier", items: [("99213", "2027-04-01", "100"), ("99213", "2027-04-01", "50")]),
        ], policy: policy)
        #expect(results[1].items[0].deductible == 10000)
        // Same patient, provider, code and date as the line before it: a duplicate.
        #expect(results[1].items[1].reasons == [18])
        #expect(results[1].outcome == "partial")
        #expect(results[0].items[0].deductible == 0 && results[0].items[0].copay == 2500)
    }

    @Test func aBundleGivesTheSameAnswerAsAnArray() throws {
        let claims = [try Self.claim("a", items: [("99213", "2027-01-05", "120")]), try Self.claim("b", items: [("99213", "2027-01-06", "80.5")])]
        let p = try ClaimsPolicy(json: try Self.policy())
        let bundle: JSONValue = .object([
            "resourceType": .string("Bundle"), "type": .string("collection"),
            "entry": .array(claims.map { .object(["resource": $0]) }),
        ])
        let fromArray = Adjudication.run(try ClaimInput.claims(in: .array(claims), minorDigits: 2, currency: "EUR"), policy: p)
        let fromBundle = Adjudication.run(try ClaimInput.claims(in: bundle, minorDigits: 2, currency: "EUR"), policy: p)
        #expect(fromArray == fromBundle)
        #expect(fromArray[1].items[0].submitted == 8050)
    }

    @Test func aBadPolicyIsRefusedWithItsPath() throws {
        func refusal(_ change: (inout [String: JSONValue]) -> Void) throws -> String {
            do {
                _ = try ClaimsPolicy(json: try Self.policy(change))
                return "accepted"
            } catch let error as LedgerError {
                #expect(error.code == "bad_policy")
                return error.message
            }
        }
        #expect(try refusal { $0["services"] = .array([$0["services"]!.arrayValue![0], .object(["system": .string(Self.cpt), "code": .string("1"), "allowed": .int(-5)])]) }
            .hasPrefix("services[1].allowed: must be an integer"))
        #expect(try refusal { $0["coinsuranceBp"] = .int(10001) }.hasPrefix("coinsuranceBp: "))
        #expect(try refusal { $0["currency"] = .string("XYZ") }.hasPrefix("currency: "))
        #expect(try refusal { $0["year"] = .object(["start": .string("2027-01-01"), "end": .string("2027-02-30")]) }.hasPrefix("year.end: must be a date"))
        #expect(try refusal { $0["deductable"] = .int(1) }.hasPrefix("deductable: is not a member"))
        #expect(try refusal { $0["members"] = .array([.object(["patient": .string(Self.alice), "from": .string("2026-12-01"), "to": .string("2027-01-31")])]) }
            .hasPrefix("members[0].from: coverage lies within the plan year"))
        #expect(try refusal { $0["services"] = .array([$0["services"]!.arrayValue![0], $0["services"]!.arrayValue![0]]) }.hasPrefix("services[1].code: "))
        #expect(try refusal { $0["plan"] = nil }.hasPrefix("plan: is required"))
    }

    @Test func aBadClaimIsRefusedWithItsPath() throws {
        func refusal(_ claim: JSONValue) throws -> String {
            do {
                _ = try adjudicate([claim])
                return "accepted"
            } catch let error as LedgerError {
                #expect(error.code == "bad_claim")
                return error.message
            }
        }
        #expect(try refusal(try Self.claim("c", items: [("99213", "2027-01-05", "120.005")])).hasPrefix("[0].item[0].net.value: 120.005 has more decimals"))
        #expect(try refusal(try Self.claim("c", items: [("99213", "2027-01-05", "-1")])).hasPrefix("[0].item[0].net.value: must not be negative"))
        #expect(try refusal(try Self.claim("c", items: [("99213", "2027-13-05", "1")])).hasPrefix("[0].item[0].servicedDate: "))
        #expect(try refusal(try Self.claim("c", patient: "alice", items: [("99213", "2027-01-05", "1")])).hasPrefix("[0].patient.identifier.value: "))
    }

    @Test func moneyIsReadExactly() throws {
        for (json, digits, minor) in [("150", 2, 15000), ("150.5", 2, 15050), ("150.25", 2, 15025), ("0.1", 2, 10), ("1234567890.12", 2, 123_456_789_012), ("7", 0, 7), ("1.234", 3, 1234), ("1e2", 2, 10000)] {
            #expect(try Money.minorUnits(try JSONValue.parse(json), digits: digits, at: "x") == Int64(minor), "\(json)")
        }
        #expect(throws: LedgerError.self) { try Money.minorUnits(try JSONValue.parse("1.5"), digits: 0, at: "x") }
        #expect(throws: LedgerError.self) { try Money.minorUnits(.string("15.00"), digits: 2, at: "x") }
    }

    @Test func civilDates() {
        #expect(CivilDate("1970-01-01")?.day == 0)
        #expect(CivilDate("2027-03-01")!.day - CivilDate("2027-02-28")!.day == 1)
        #expect(CivilDate("2028-03-01")!.day - CivilDate("2028-02-28")!.day == 2)
        #expect(CivilDate("2027-02-29") == nil && CivilDate("2027-1-01") == nil)
        #expect(CivilDate(dateOrDateTime: "2001-09-20T13:11:35+00:00")?.description == "2001-09-20")
        #expect(CivilDate("1999-12-31")?.description == "1999-12-31")
    }
}
