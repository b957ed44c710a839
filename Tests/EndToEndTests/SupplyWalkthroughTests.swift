import Foundation
import LedgerCore
import Testing

/// The supply-chain walk-through (docs/walkthrough-supply-chain.md), through the real CLI against a real node process (`up`
/// acts for the demo organisations pharma-co, wholesaler, pharmacy and regulator).
@Suite(.serialized) struct SupplyWalkthroughTests {
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/supply").path

    @Test func gs1ParseExitCodes() throws {
        let ok = try CLI.run(["gs1", "parse", "--json", "--today", "2026-11-25", "0109506000134352172602001010L<GS>2112345"])
        #expect(ok.status == 0, "\(ok.stderr)")
        let parsed = try JSONValue.parse(ok.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(parsed["elements"]?[1]?["date"] == .string("2026-02-28"))
        #expect(parsed["elements"]?[3]?["value"] == .string("12345"))
        let bad = try CLI.run(["gs1", "parse", "0109506000134353"])
        #expect(bad.status == 2)
        #expect(bad.stderr.hasPrefix("error: gs1_check_digit:"))
        let hashes = try CLI.run(["epcis", "hash", "../shared/vectors/epcis/epcisDocWithSingleEvent.jsonld"])
        #expect(hashes.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            == "ni:///sha-256;ffa491b16867e34a7791a8d5389d826afc24e63a121026b6a4004ace38631b4b?ver=CBV2.0")
    }

    @Test func commissionShipVerifyDispenseRecall() async throws {
        let data = temporaryPath("supply")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let node = try NodeProcess(data: data)
        defer { node.stop() }
        let keys = data + "/keys"
        func cl(_ args: [String]) throws -> CLI.Result { try CLI.run(args + ["--node", node.url]) }
        let scan = "(01)09506000100012(17)300630(10)LOT42(21)SN1001"

        #expect(try cl(["supply", "product", "--key", "\(keys)/wholesaler.key", "--gtin", "09506000100012"]).stderr.hasPrefix("error: forbidden:"))
        let product = try cl(["supply", "product", "--key", "\(keys)/pharma-co.key", "--gtin", "09506000100012", "--name", "Amoxicillin 500 mg"])
        #expect(product.status == 0, "\(product.stderr)")
        let ingest = try cl(["epcis", "ingest", "--key", "\(keys)/pharma-co.key", "--json", Self.examples + "/commission.jsonld"])
        #expect(ingest.status == 0, "\(ingest.stderr)")
        #expect(try JSONValue.parse(ingest.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["applied"] == .int(4))
        let again = try cl(["epcis", "ingest", "--key", "\(keys)/pharma-co.key", "--json", Self.examples + "/commission.jsonld"])
        #expect(try JSONValue.parse(again.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["applied"] == .int(0))
        // The wholesaler cannot receive what was shipped to the pharmacy.
        let wrongReceiver = try cl(["epcis", "ingest", "--key", "\(keys)/wholesaler.key", Self.examples + "/receive.jsonld"])
        #expect(wrongReceiver.status == 1 && wrongReceiver.stderr.hasPrefix("error: "), "refused by the packs' state: \(wrongReceiver.stderr)")
        #expect(try cl(["epcis", "ingest", "--key", "\(keys)/pharmacy.key", Self.examples + "/receive.jsonld"]).status == 0)

        let verified = try cl(["drug", "verify", "--key", "\(keys)/pharmacy.key", scan])
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.hasPrefix("verified"))
        // Wrong batch: exit 1, EMVS A68.
        let mismatch = try cl(["drug", "verify", "--key", "\(keys)/pharmacy.key", "--json", "(01)09506000100012(17)300630(10)LOT41(21)SN1001"])
        #expect(mismatch.status == 1)
        #expect(try JSONValue.parse(mismatch.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["emvs"]?["alert"] == .string("A68"))
        // Unreadable scan: exit 2.
        #expect(try cl(["drug", "verify", "--key", "\(keys)/pharmacy.key", "(01)09506000100013(21)X"]).status == 2)
        // Dispense, then the same serial again.
        #expect(try cl(["drug", "verify", "--key", "\(keys)/pharmacy.key", "--dispense", scan]).stdout.contains("dispensed at height"))
        let twice = try cl(["drug", "verify", "--key", "\(keys)/pharmacy.key", "--dispense", scan])
        #expect(twice.status == 1)
        #expect(twice.stdout.contains("already_decommissioned (dispensed)"))
        // The regulator recalls the lot; verification answers recalled; the MAH's report finds the packs.
        #expect(try cl(["supply", "recall", "--key", "\(keys)/regulator.key", "--gtin", "09506000100012", "--lot", "LOT42", "--reason", "sterility"]).status == 0)
        let recalled = try cl(["drug", "verify", "--key", "\(keys)/pharmacy.key", "(01)09506000100012(17)300630(10)LOT42(21)SN1002"])
        #expect(recalled.status == 1)
        #expect(recalled.stdout.hasPrefix("recalled"))
        let report = try cl(["supply", "report", "--key", "\(keys)/pharma-co.key", "--gtin", "09506000100012", "--lot", "LOT42", "--json"])
        #expect(try JSONValue.parse(report.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["packCount"] == .int(3))
        node.stop()
        #expect(try CLI.run(["audit", "--data", data]).status == 0)
    }
}
