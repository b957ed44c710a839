import Composition
import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Node
import Prometheus
import Standards
import Store
import Supply
import SupplyContract
import Testing

@testable import Server

/// EPCIS documents for the tests: GTIN 09506000100012 (company prefix 950600), serials SN…, lot LOTA1.
enum Pharma {
    static let gtin = "09506000100012"
    static func sgtin(_ serial: String) -> String { "urn:epc:id:sgtin:950600.0010001.\(serial)" }
    static let caseSSCC = "urn:epc:id:sscc:950600.00000000017"
    static func pgln(_ reference: String) -> String { "urn:epc:id:pgln:950600.\(reference)" }
    static func scan(_ serial: String, lot: String = "LOTA1", expiry: String = "300131") -> String {
        "01\(gtin)17\(expiry)10\(lot)\u{1D}21\(serial)"
    }

    static func event(_ type: String = "ObjectEvent", action: String? = "OBSERVE", bizStep: String, disposition: String? = nil, time: String,
                      fields: [String: JSONValue]) -> JSONValue {
        var e: [String: JSONValue] = [
            "type": .string(type), "bizStep": .string(bizStep), "eventTime": .string(time), "eventTimeZoneOffset": .string("+01:00"),
        ]
        if let action { e["action"] = .string(action) }
        if let disposition { e["disposition"] = .string(disposition) }
        for (k, v) in fields { e[k] = v }
        return .object(e)
    }

    static func document(_ events: [JSONValue]) -> JSONValue {
        .object([
            "@context": .array([.string("https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld")]), "type": .string("EPCISDocument"),
            "schemaVersion": .string("2.0"), "creationDate": .string("2026-11-25T10:00:00Z"),
            "epcisBody": .object(["eventList": .array(events)]),
        ])
    }

    static func list(_ items: [String]) -> JSONValue { .array(items.map { .string($0) }) }

    static func commissioning(_ serials: [String], lot: String = "LOTA1", expiry: String = "2030-01-31", time: String = "2026-11-25T09:00:00.000+01:00") -> JSONValue {
        event(action: "ADD", bizStep: "commissioning", disposition: "active", time: time, fields: [
            "epcList": list(serials.map(sgtin)),
            "ilmd": .object(["cbvmda:lotNumber": .string(lot), "cbvmda:itemExpirationDate": .string(expiry)]),
        ])
    }

    static func shipping(_ epcs: [String], to party: String, time: String) -> JSONValue {
        event(bizStep: "shipping", disposition: "in_transit", time: time, fields: [
            "epcList": list(epcs),
            "destinationList": .array([.object(["type": .string("owning_party"), "destination": .string(party)])]),
        ])
    }

    static func receiving(_ epcs: [String], time: String) -> JSONValue {
        event(bizStep: "receiving", disposition: "in_progress", time: time, fields: ["epcList": list(epcs)])
    }
}

/// Drives /v1/supply as the organisations' systems would.
struct SupplyClient {
    var rc: RecordsClient

    func post(_ path: String, _ body: JSONValue, as party: Party) async throws -> (HTTPResponse.Status, JSONValue) {
        let r = try await rc.client.execute(
            uri: path, method: .post, headers: [.authorization: "Bearer \(try await rc.token(party))", .contentType: "application/json"],
            body: ByteBuffer(bytes: body.canonicalBytes))
        return (r.status, try rc.json(r))
    }

    func ingest(_ events: [JSONValue], as party: Party) async throws -> (HTTPResponse.Status, JSONValue) {
        try await post("/v1/supply/epcis", Pharma.document(events), as: party)
    }

    func verify(_ scan: String, as party: Party, dispense: Bool = false) async throws -> JSONValue {
        var body: [String: JSONValue] = ["scan": .string(scan)]
        if dispense { body["dispense"] = .bool(true) }
        return try await post("/v1/supply/verify", .object(body), as: party).1
    }
}

@Suite struct SupplyTests {
    /// The organisations of the tests: a manufacturer (MAH, company prefix 950600), a wholesaler, two pharmacies, a regulator.
    struct World {
        let pharma = Party(), wholesaler = Party(), pharmacy = Party(), otherPharmacy = Party(), regulator = Party(), pharmacist = Party()
        var organisations: [ActingOrganisation] {
            [pharma, wholesaler, pharmacy, otherPharmacy, regulator].map { ActingOrganisation(signing: $0.key, encryption: $0.encryption) }
        }

        /// Registers the organisations (operator), the pharmacist (her pharmacy), their supply roles (operator only) and the product (its MAH only).
        func admit(_ rc: inout RecordsClient, operatorParty: Party) async throws {
            for (party, name) in [(pharma, "Pharma"), (wholesaler, "W"), (pharmacy, "P"), (otherPharmacy, "P2"), (regulator, "R")] {
                #expect(try await rc.register(operatorParty, party, "organisation", name: name)["status"] == .string("committed"))
            }
            #expect(try await rc.register(pharmacy, pharmacist, "practitioner")["status"] == .string("committed"))
            let parties: [(Party, [String], [String], [String])] = [
                (pharma, ["manufacturer", "mah"], ["9506000000008"], ["950600"]), (wholesaler, ["wholesaler"], ["9506000000015"], []),
                (pharmacy, ["pharmacy"], ["9506000000022"], []), (otherPharmacy, ["pharmacy"], ["9506000000039"], []), (regulator, ["regulator"], [], []),
            ]
            for (party, roles, glns, prefixes) in parties {
                let payload: JSONValue = .object([
                    "party": .string(party.did), "roles": Pharma.list(roles), "glns": Pharma.list(glns), "companyPrefixes": Pharma.list(prefixes),
                ])
                #expect(try await rc.submit(pharma, "supply", "party", payload)["error"]?["code"] == .string("forbidden"))
                #expect(try await rc.submit(operatorParty, "supply", "party", payload)["status"] == .string("committed"))
            }
            #expect(try await rc.submit(wholesaler, "supply", "product", .object(["gtin": .string(Pharma.gtin)]))["error"]?["code"] == .string("forbidden"))
            #expect(try await rc.submit(pharma, "supply", "product", .object(["gtin": .string(Pharma.gtin), "name": .string("Amoxicillin 500 mg")]))["status"] == .string("committed"))
        }
    }

    @Test func packLifecycleVerificationRecallAndAlerts() async throws {
        let world = World()
        let pharma = world.pharma, wholesaler = world.wholesaler, pharmacy = world.pharmacy, otherPharmacy = world.otherPharmacy
        let regulator = world.regulator, pharmacist = world.pharmacist
        let secret = ConsortiumSecret.random()
        let network = try TestNetwork(
            contracts: .careLedger, capabilities: HostedCapabilities.careLedger, organisations: world.organisations, secret: secret)
        let operatorParty = network.operatorParty
        try await network.run(live: true) { client in
            var rc = RecordsClient(client: client)
            try await world.admit(&rc, operatorParty: operatorParty)

            let sc = SupplyClient(rc: rc)
            let serials = ["SN0001", "SN0002", "SN0003", "SN0004"]

            // A document with one invalid event is refused whole; nothing of it is applied.
            let bad = Pharma.event(action: "ADD", bizStep: "commissioning", time: "not a time", fields: ["epcList": Pharma.list([Pharma.sgtin("SN0009")])])
            let (badStatus, badBody) = try await sc.ingest([Pharma.commissioning(["SN0008"]), bad], as: pharma)
            #expect(badStatus == .badRequest)
            #expect(badBody["error"]?["message"]?.stringValue?.contains("event 1") == true)
            #expect(try await sc.verify(Pharma.scan("SN0008"), as: pharmacy)["outcome"] == .string("unknown_serial"))

            // Only the MAH or a named manufacturer commissions; the refused document changes nothing.
            #expect(try await sc.ingest([Pharma.commissioning(["SN0005"])], as: wholesaler).1["error"]?["code"] == .string("forbidden"))

            // Commission four packs and a case, pack three into the case, ship the case to the wholesaler.
            let commission = [
                Pharma.commissioning(serials),
                Pharma.event(action: "ADD", bizStep: "commissioning", time: "2026-11-25T09:00:01.000+01:00", fields: ["epcList": Pharma.list([Pharma.caseSSCC])]),
                Pharma.event("AggregationEvent", action: "ADD", bizStep: "packing", time: "2026-11-25T09:05:00.000+01:00", fields: [
                    "parentID": .string(Pharma.caseSSCC), "childEPCs": Pharma.list(serials.prefix(3).map(Pharma.sgtin)),
                ]),
            ]
            let (status, first) = try await sc.ingest(commission, as: pharma)
            #expect(status == .created)
            #expect(first["applied"] == .int(3))
            #expect(first["hashes"]?.arrayValue?.count == 3)
            // The chain keys an event by the blinded hex of its CBV 2.0 hash id: a commissioned pack's record names it.
            let firstHash = try #require(first["hashes"]?.arrayValue?.first?.stringValue)
            #expect(firstHash.hasPrefix("ni:///sha-256;") && firstHash.hasSuffix("?ver=CBV2.0"))
            let hashHex = String(firstHash.dropFirst("ni:///sha-256;".count).dropLast("?ver=CBV2.0".count))
            let packRecord = try JSONValue.parse(try #require(network.node.stateValue(forKey: SupplyItem.stateKey(network.api.supply.keys.pack(gtin: Pharma.gtin, serial: serials[0])))))
            #expect(packRecord["event"] == .string(network.api.supply.keys.event(hashHex)))
            // The same document again: recognised by its event hashes, not applied twice.
            let (_, again) = try await sc.ingest(commission, as: pharma)
            #expect(again["applied"] == .int(0))
            #expect(again["duplicates"]?.arrayValue?.count == 3)
            // Lots alternating within one document: each pack keeps its own lot.
            let lots = [("SN0101", "LOTB1"), ("SN0102", "LOTB2"), ("SN0103", "LOTB1"), ("SN0104", "LOTB2")]
            #expect(try await sc.ingest(lots.map { Pharma.commissioning([$0.0], lot: $0.1) }, as: pharma).0 == .created)
            for (serial, lot) in lots {
                #expect(try await sc.verify(Pharma.scan(serial, lot: lot), as: pharma)["outcome"] == .string("verified"), "\(serial)")
            }
            // Shipments to two parties in one document: each pack goes to its own receiver.
            let (toWholesaler, toPharmacy) = (Pharma.pgln("000001"), Pharma.pgln("000002"))
            let split = [("SN0101", toWholesaler), ("SN0102", toPharmacy), ("SN0103", toWholesaler)]
            #expect(try await sc.ingest(split.map { Pharma.shipping([Pharma.sgtin($0.0)], to: $0.1, time: "2026-11-25T09:30:00Z") }, as: pharma).0 == .created)
            #expect(try await sc.ingest([Pharma.receiving([Pharma.sgtin("SN0102")], time: "2026-11-25T09:40:00Z")], as: pharmacy).0 == .created)
            #expect(try await sc.ingest([Pharma.receiving([Pharma.sgtin("SN0103")], time: "2026-11-25T09:40:00Z")], as: pharmacy).1["error"]?["code"]
                == .string("custody_violation"))
            #expect(try await sc.ingest([Pharma.receiving([Pharma.sgtin("SN0101"), Pharma.sgtin("SN0103")], time: "2026-11-25T09:40:00Z")], as: wholesaler).0 == .created)

            // A pack inside the case cannot travel alone.
            let wGLN = Pharma.pgln("000001"), pGLN = Pharma.pgln("000002")
            #expect(try await sc.ingest([Pharma.shipping([Pharma.sgtin("SN0001")], to: wGLN, time: "2026-11-25T10:00:00Z")], as: pharma).1["error"]?["code"]
                == .string("custody_violation"))
            let shipment = [Pharma.shipping([Pharma.caseSSCC], to: wGLN, time: "2026-11-25T10:00:00Z")]
            let (shipped, shipAnswer) = try await sc.ingest(shipment, as: pharma)
            #expect(shipped == .created)
            // The commercial document stays off-chain, sealed for the trading partners: the receiving
            // wholesaler (and the sender) open it with their own keys; another pharmacy may not have it.
            let documentID = try #require(shipAnswer["document"]?.stringValue)
            for (party, key) in [(wholesaler, wholesaler.encryption), (pharma, pharma.encryption)] {
                let sealed = try rc.json(try await rc.get("/v1/supply/documents/\(documentID)", as: party))
                #expect(try JSONValue.parse(try SealedVersion.open(read: sealed, with: key)) == Pharma.document(shipment))
            }
            #expect(try await rc.get("/v1/supply/documents/\(documentID)", as: otherPharmacy).status == .forbidden)
            #expect(try await rc.get("/v1/supply/documents/\(String(repeating: "0", count: 64))", as: wholesaler).status == .notFound)
            #expect(try await client.execute(uri: "/v1/supply/documents/\(documentID)", method: .get).status == .unauthorized)
            // Only the named receiver can receive it.
            #expect(try await sc.ingest([Pharma.receiving([Pharma.caseSSCC], time: "2026-11-25T12:00:00Z")], as: pharmacy).1["error"]?["code"]
                == .string("custody_violation"))
            // In transit to the wholesaler: the manufacturer's scan is fine for verification; a pharmacy's is suspect.
            #expect(try await sc.verify(Pharma.scan("SN0001"), as: pharmacy)["outcome"] == .string("suspect"))
            #expect(try await sc.ingest([Pharma.receiving([Pharma.caseSSCC], time: "2026-11-25T12:00:00Z")], as: wholesaler).0 == .created)
            // Unpack and ship one pack on to the pharmacy, which receives it.
            let unpack = Pharma.event("AggregationEvent", action: "DELETE", bizStep: "unpacking", time: "2026-11-25T13:00:00Z", fields: [
                "parentID": .string(Pharma.caseSSCC),
            ])
            #expect(try await sc.ingest([unpack, Pharma.shipping([Pharma.sgtin("SN0001"), Pharma.sgtin("SN0002")], to: pGLN, time: "2026-11-25T13:05:00Z")], as: wholesaler).0 == .created)
            #expect(try await sc.ingest([Pharma.receiving([Pharma.sgtin("SN0001"), Pharma.sgtin("SN0002")], time: "2026-11-25T15:00:00Z")], as: pharmacy).0 == .created)
            // A return to the wholesaler moves custody back like a shipment (it receives it), and it is sent on again.
            func returning(_ epcs: [String], to party: String?, time: String) -> JSONValue {
                var fields: [String: JSONValue] = ["epcList": Pharma.list(epcs)]
                if let party { fields["destinationList"] = .array([.object(["type": .string("owning_party"), "destination": .string(party)])]) }
                return Pharma.event(bizStep: "returning", disposition: "returned", time: time, fields: fields)
            }
            #expect(try await sc.ingest([returning([Pharma.sgtin("SN0002")], to: nil, time: "2026-11-25T15:30:00Z")], as: pharmacy).1["error"]?["code"] == .string("bad_event"))
            #expect(try await sc.ingest([returning([Pharma.sgtin("SN0002")], to: wGLN, time: "2026-11-25T15:30:00Z")], as: pharmacy).0 == .created)
            #expect(try await sc.ingest([Pharma.receiving([Pharma.sgtin("SN0002")], time: "2026-11-25T16:00:00Z")], as: pharmacy).1["error"]?["code"] == .string("custody_violation"))
            #expect(try await sc.ingest([Pharma.receiving([Pharma.sgtin("SN0002")], time: "2026-11-25T16:00:00Z")], as: wholesaler).0 == .created)
            #expect(try await sc.ingest([Pharma.shipping([Pharma.sgtin("SN0002")], to: pGLN, time: "2026-11-25T16:10:00Z")], as: wholesaler).0 == .created)
            #expect(try await sc.ingest([Pharma.receiving([Pharma.sgtin("SN0002")], time: "2026-11-25T16:30:00Z")], as: pharmacy).0 == .created)
            // Only a pharmacy or a hospital dispenses: a wholesaler holding a pack may not.
            let wholesaleDispense = Pharma.event(bizStep: "dispensing", disposition: "dispensed", time: "2026-11-25T16:35:00Z", fields: ["epcList": Pharma.list([Pharma.sgtin("SN0003")])])
            #expect(try await sc.ingest([wholesaleDispense], as: wholesaler).1["error"]?["code"] == .string("forbidden"))
            // A recall names a lot: one over single packs is refused, not silently ignored.
            let packRecall = Pharma.event(bizStep: "holding", disposition: "recalled", time: "2026-11-25T16:40:00Z", fields: ["epcList": Pharma.list([Pharma.sgtin("SN0001")])])
            #expect(try await sc.ingest([packRecall], as: pharma).1["error"]?["code"] == .string("bad_event"))

            // Verification, in EMVS/VRS terms; a pharmacist verifies for her pharmacy.
            let ok = try await sc.verify(Pharma.scan("SN0001"), as: pharmacist)
            #expect(ok["outcome"] == .string("verified"))
            #expect(ok["vrs"]?["verified"] == .bool(true))
            #expect(ok["product"] == .string("Amoxicillin 500 mg"))
            let wrongLot = try await sc.verify(Pharma.scan("SN0001", lot: "LOTB2"), as: pharmacy)
            #expect(wrongLot["outcome"] == .string("batch_mismatch"))
            #expect(wrongLot["emvs"]?["alert"] == .string("A68"))
            #expect(wrongLot["vrs"]?["verificationFailureReason"] == .string("No_match_GTIN_Serial_Lot"))
            let wrongExpiry = try await sc.verify(Pharma.scan("SN0001", expiry: "300228"), as: pharmacy)
            #expect(wrongExpiry["outcome"] == .string("expiry_mismatch"))
            #expect(wrongExpiry["emvs"]?["alert"] == .string("A52"))
            let unknown = try await sc.verify(Pharma.scan("SN9999"), as: pharmacy)
            #expect(unknown["outcome"] == .string("unknown_serial"))
            #expect(unknown["emvs"]?["alert"] == .string("A3"))
            #expect(try await sc.verify("01095060001000291730013110LOTA1\u{1D}21SN0001", as: pharmacy)["outcome"] == .string("unknown_product"))
            // SN0003 is at the wholesaler: the other pharmacy's scan is suspect (chain of custody).
            let suspect = try await sc.verify(Pharma.scan("SN0003"), as: otherPharmacy)
            #expect(suspect["outcome"] == .string("suspect"))
            #expect(suspect["alert"] == .string("custody_mismatch"))
            // A malformed scan is a 400 with the parser's code.
            #expect(try await sc.post("/v1/supply/verify", .object(["scan": .string("0109506000100013")]), as: pharmacy).1["error"]?["code"] == .string("gs1_check_digit"))

            // Dispensing verifies and decommissions in one step; a second dispense of the same serial is refused.
            let dispensed = try await sc.verify(Pharma.scan("SN0001"), as: pharmacy, dispense: true)
            #expect(dispensed["outcome"] == .string("verified"))
            #expect(dispensed["dispensed"] == .bool(true))
            let twice = try await sc.verify(Pharma.scan("SN0001"), as: pharmacy, dispense: true)
            #expect(twice["outcome"] == .string("already_decommissioned"))
            #expect(twice["state"] == .string("dispensed"))
            #expect(twice["emvs"]?["alert"] == .string("A7"))
            // The same serial scanned at another pharmacy: the alert names the rule.
            #expect(try await sc.verify(Pharma.scan("SN0001"), as: otherPharmacy)["alert"] == .string("scanned_after_decommission"))

            // Reactivation: by the party that dispensed, within 240 h; not by another.
            let item = network.api.supply.keys.pack(gtin: Pharma.gtin, serial: "SN0001")
            #expect(try await rc.submit(otherPharmacy, "supply", "reactivate", .object(["item": .string(item)]))["error"]?["code"] == .string("forbidden"))
            #expect(try await rc.submit(pharmacy, "supply", "reactivate", .object(["item": .string(item)]))["status"] == .string("committed"))
            #expect(try await sc.verify(Pharma.scan("SN0001"), as: pharmacy)["outcome"] == .string("verified"))

            // A pack of the same lot commissioned by another document: the lot's packs are listed per
            // commissioning transaction, and the report gathers them all.
            #expect(try await sc.ingest([Pharma.commissioning(["SN0006"], time: "2026-11-25T12:00:00.000+01:00")], as: pharma).0 == .created)

            // Recall of the lot: verification answers recalled from the next block; holders are alerted; the report says where every pack is.
            let events = network.node.events.subscribe()
            let recallAlert = Task {
                for await event in events where event.body["rule"] == .string("lot_recalled") { return event.body }
                return JSONValue.null
            }
            #expect(try await sc.post("/v1/supply/recalls", .object(["gtin": .string(Pharma.gtin), "lot": .string("LOTA1"), "reason": .string("sterility")]), as: wholesaler).1["error"]?["code"] == .string("forbidden"))
            #expect(try await sc.post("/v1/supply/recalls", .object(["gtin": .string(Pharma.gtin), "lot": .string("LOTA1"), "reason": .string("sterility")]), as: regulator).0 == .created)
            let recalled = try await sc.verify(Pharma.scan("SN0002"), as: pharmacy)
            #expect(recalled["outcome"] == .string("recalled"))
            #expect(recalled["vrs"]?["additionalInfo"] == .string("Recalled"))
            let fanOut = try await withDeadline(seconds: 60) { await recallAlert.value }
            let recipients = Set(fanOut["recipients"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            #expect(recipients.isSuperset(of: [pharma.did, wholesaler.did, pharmacy.did, regulator.did]))
            #expect(!recipients.contains(otherPharmacy.did))
            let report = try JSONValue.parse(Array(try await rc.get("/v1/supply/recalls/report?gtin=\(Pharma.gtin)&lot=LOTA1", as: pharma).body.readableBytesView))
            #expect(report["packCount"] == .int(5))
            let holders = (report["packs"]?.arrayValue ?? []).map { $0["holder"]?.stringValue ?? "" }.sorted()
            #expect(holders == [pharma.did, pharma.did, pharmacy.did, pharmacy.did, wholesaler.did].sorted())
            let lotEntries = try network.node.store.stateKeys(prefix: SupplyState.lotItemPrefix(network.api.supply.keys.lot(gtin: Pharma.gtin, lot: "LOTA1")), limit: 100)
            #expect(lotEntries.count == 2, "one entry per commissioning transaction, not per pack")
            #expect(try await rc.get("/v1/supply/recalls/report?gtin=\(Pharma.gtin)&lot=LOTA1", as: pharmacy).status == .forbidden)

            // The same pack scanned at two places within minutes: simultaneous_scans (compared on chain).
            _ = try await sc.verify(Pharma.scan("SN0004"), as: pharmacy)
            _ = try await sc.verify(Pharma.scan("SN0004"), as: otherPharmacy)

            // A patient who scans a pack that was never commissioned: the MAH and the regulator are alerted, without her name.
            let scanningPatient = Party()
            _ = try await rc.register(scanningPatient, scanningPatient, "patient")
            #expect(try await sc.verify(Pharma.scan("SN0999"), as: scanningPatient)["outcome"] == .string("unknown_serial"))

            // Alerts reach the MAH, the regulator and the verifiers, each naming its rule.
            try await withDeadline(seconds: 60) { await network.api.supply.alertsRecorded() }
            func alertRules(of party: Party) async throws -> Set<String> {
                let alerts = try JSONValue.parse(Array(try await rc.get("/v1/supply/alerts", as: party).body.readableBytesView))["alerts"]?.arrayValue ?? []
                return Set(alerts.compactMap { $0["rule"]?.stringValue })
            }
            let rules = try await alertRules(of: regulator)
            #expect(rules.isSuperset(of: ["batch_mismatch", "expiry_mismatch", "never_commissioned", "custody_mismatch", "scanned_after_decommission", "lot_recalled", "simultaneous_scans"]))
            #expect(try await alertRules(of: pharma).isSuperset(of: ["simultaneous_scans", "never_commissioned"]), "the MAH")
            #expect(try await alertRules(of: otherPharmacy).contains("simultaneous_scans"), "the second verifier")
            #expect(try await alertRules(of: pharmacy).contains("simultaneous_scans"), "the first verifier, named by the rule")
            let regulatorAlerts = try JSONValue.parse(Array(try await rc.get("/v1/supply/alerts", as: regulator).body.readableBytesView))["alerts"]?.arrayValue ?? []
            let fromPatient = regulatorAlerts.filter { $0["reportedBy"] != nil }
            #expect(fromPatient.count == 1)
            #expect(fromPatient.first?["verifier"] == nil && fromPatient.first?["recipients"]?.arrayValue?.contains(.string(scanningPatient.did)) == false)
            #expect(fromPatient.first?["recipients"]?.arrayValue?.contains(.string(pharma.did)) == true, "the MAH")

            // Another organisation's node (or this one after a restart) has no memory of those scans: nodes
            // record their parties' scans on chain, so a scan of the pack by a third party there raises the rule too.
            let sn4 = network.api.supply.keys.pack(gtin: Pharma.gtin, serial: "SN0004")
            let recordedScan = try JSONValue.parse(try #require(network.node.stateValue(forKey: SupplyState.scan(sn4))))
            #expect(recordedScan["party"] == .string(otherPharmacy.did))
            let elsewhere = try SupplyService(node: network.node, vault: network.vault, secret: secret)
            let loop = Task { await elsewhere.run() }
            defer { loop.cancel() }
            let scan = try GS1ElementString.parse(Pharma.scan("SN0004"), today: GS1Date(millis: LedgerNode.systemClock()))
            _ = try elsewhere.verify(scan, verifier: wholesaler.did)
            try await withDeadline(seconds: 60) { await elsewhere.alertsRecorded() }
            let wholesalerAlerts = try JSONValue.parse(Array(try await rc.get("/v1/supply/alerts", as: wholesaler).body.readableBytesView))["alerts"]?.arrayValue ?? []
            let twoPlaces = wholesalerAlerts.filter { $0["rule"] == .string("simultaneous_scans") && $0["item"] == .string(sn4) }
            #expect(twoPlaces.count == 1)
            #expect(twoPlaces.first?["detail"]?.stringValue?.contains(otherPharmacy.did) == true, "names where it was scanned before")
            #expect(twoPlaces.first?["recipients"]?.arrayValue?.contains(.string(otherPharmacy.did)) == true)
            #expect(try JSONValue.parse(try #require(network.node.stateValue(forKey: SupplyState.scan(sn4))))["party"] == .string(wholesaler.did))
            // A scan record from anyone but a consortium node is refused.
            #expect(try await rc.submit(pharmacy, "supply", "scans", .object(["scans": .array([.object([
                "item": .string(sn4), "party": .string(pharmacy.did), "outcome": .string("verified"), "recipients": .array([]),
            ])])]))["error"]?["code"] == .string("forbidden"))
        }
        // No serial, lot or EPCIS document in the clear on the chain.
        var clear = 0
        try network.node.store.forEachState { key, value in
            let text = key + String(decoding: value, as: UTF8.self)
            if text.contains("SN000") || text.contains("LOTA1") || text.contains("950600.") { clear += 1 }
        }
        try network.node.store.forEachTransaction { _, _, raw in
            let text = String(decoding: raw, as: UTF8.self)
            if text.contains("SN000") || text.contains("LOTA1") || text.contains("950600.") { clear += 1 }
        }
        #expect(clear == 0)
    }

    /// Dispensing to a consenting patient adds a MedicationDispense to her record; a later recall of the
    /// lot notifies her and her prescriber (off-chain, from the dispensing node); without consent the
    /// pack is still dispensed but nothing is written.
    /// The node's HTTP server answers a single-scan verification on the event loop (`FastRoute`); a
    /// request with a query takes the router. Both answer the same, byte for byte: status,
    /// body, content type, the alert raised for a negative outcome, and the errors of a bad request.
    @Test func fastRouteAnswersAsTheRouter() async throws {
        let world = World()
        let network = try TestNetwork(
            contracts: .careLedger, capabilities: HostedCapabilities.careLedger, organisations: world.organisations, secret: .random())
        let operatorParty = network.operatorParty
        let pharmacy = world.pharmacy
        try await network.run(live: true) { client in
            var rc = RecordsClient(client: client)
            try await world.admit(&rc, operatorParty: operatorParty)
            let sc = SupplyClient(rc: rc)
            #expect(try await sc.ingest([Pharma.commissioning(["SN0301", "SN0302"])], as: world.pharma).0 == .created)
            let token = try await rc.token(pharmacy)
            let unregistered = try await rc.token(Party())

            func ask(_ body: [UInt8], bearer: String?, viaRouter: Bool, digest: String? = nil) async throws -> TestResponse {
                var headers: HTTPFields = [.contentType: "application/json"]
                if let bearer { headers[.authorization] = "Bearer \(bearer)" }
                if let digest { headers[HTTPField.Name("Content-Digest")!] = digest }
                let uri = viaRouter ? "/v1/supply/verify?via=router" : "/v1/supply/verify"
                return try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(bytes: body))
            }
            func scanBody(_ scan: String) -> [UInt8] { JSONValue.object(["scan": .string(scan)]).canonicalBytes }
            let cases: [(String, [UInt8], String?, String?)] = [
                ("verified", scanBody(Pharma.scan("SN0301")), token, nil),
                ("unknown serial", scanBody(Pharma.scan("SN0399")), token, nil),
                ("batch mismatch", scanBody(Pharma.scan("SN0302", lot: "OTHER")), token, nil),
                ("check digit", scanBody("0109506000100013"), token, nil),
                ("no scan", JSONValue.object(["scan": .int(5)]).canonicalBytes, token, nil),
                ("not JSON", Array("{scan".utf8), token, nil),
                ("no token", scanBody(Pharma.scan("SN0301")), nil, nil),
                ("bad token", scanBody(Pharma.scan("SN0301")), "x.1.y", nil),
                ("not registered", scanBody(Pharma.scan("SN0301")), unregistered, nil),
                ("digest mismatch", scanBody(Pharma.scan("SN0301")), token, "sha-256=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"),
                ("bulk", JSONValue.object(["scans": .array([.string(Pharma.scan("SN0301")), .string(Pharma.scan("SN0302"))])]).canonicalBytes, token, nil),
            ]
            for (name, body, bearer, digest) in cases {
                let fast = try await ask(body, bearer: bearer, viaRouter: false, digest: digest)
                let routed = try await ask(body, bearer: bearer, viaRouter: true, digest: digest)
                #expect(fast.status == routed.status, "\(name)")
                #expect(String(buffer: fast.body) == String(buffer: routed.body), "\(name)")
                for field in [HTTPField.Name.contentType, .contentLength, .server] {
                    #expect(fast.headers[field] == routed.headers[field], "\(name): \(field)")
                }
                #expect(fast.headers[.date] != nil, "\(name)")
            }
            // A negative outcome answered on the event loop raises its alert (to the verifier among others).
            let other = try await rc.token(world.otherPharmacy)
            let unknown = try await ask(scanBody(Pharma.scan("SN0398")), bearer: other, viaRouter: false)
            #expect(try JSONValue.parse(Array(unknown.body.readableBytesView))["outcome"] == .string("unknown_serial"))
            try await withDeadline(seconds: 60) { await network.api.supply.alertsRecorded() }
            let alerts = try JSONValue.parse(Array(try await rc.get("/v1/supply/alerts", as: world.otherPharmacy).body.readableBytesView))
            #expect(alerts["alerts"]?.arrayValue?.contains { $0["rule"] == .string("never_commissioned") } == true, "\(alerts)")
        }
    }

    @Test func dispensingClosesTheLoopWithThePatient() async throws {
        let world = World()
        let pharmacy = world.pharmacy, pharma = world.pharma, pharmacist = world.pharmacist
        let patient = Party(), other = Party(), prescriber = Party(), hospital = Party()
        let network = try TestNetwork(contracts: .careLedger, capabilities: HostedCapabilities.careLedger, organisations: world.organisations)
        let operatorParty = network.operatorParty
        try await network.run(live: true) { client in
            var rc = RecordsClient(client: client)
            try await world.admit(&rc, operatorParty: operatorParty)
            #expect(try await rc.register(operatorParty, hospital, "organisation", name: "H")["status"] == .string("committed"))
            #expect(try await rc.register(hospital, prescriber, "practitioner")["status"] == .string("committed"))
            #expect(try await rc.register(patient, patient, "patient")["status"] == .string("committed"))
            #expect(try await rc.register(other, other, "patient")["status"] == .string("committed"))
            #expect(try await rc.submit(patient, "consent", "grant", .object([
                "grantee": .string(pharmacy.did), "purposes": Pharma.list(["treatment"]), "resourceTypes": Pharma.list(["MedicationDispense"]),
            ]))["status"] == .string("committed"))
            let sc = SupplyClient(rc: rc)
            let pGLN = Pharma.pgln("000002")
            #expect(try await sc.ingest([Pharma.commissioning(["SN0101", "SN0102"]), Pharma.shipping([Pharma.sgtin("SN0101"), Pharma.sgtin("SN0102")], to: pGLN, time: "2026-11-25T10:00:00Z")], as: pharma).0 == .created)
            #expect(try await sc.ingest([Pharma.receiving([Pharma.sgtin("SN0101"), Pharma.sgtin("SN0102")], time: "2026-11-25T11:00:00Z")], as: pharmacy).0 == .created)

            // A patient who is not registered is refused before anything happens.
            #expect(try await sc.post("/v1/supply/verify", .object(["scan": .string(Pharma.scan("SN0101")), "dispense": .bool(true), "patient": .string(Party().did)]), as: pharmacist).1["error"]?["code"] == .string("unknown_patient"))
            #expect(try await sc.verify(Pharma.scan("SN0101"), as: pharmacist)["outcome"] == .string("verified"))

            let (_, answer) = try await sc.post("/v1/supply/verify", .object([
                "scan": .string(Pharma.scan("SN0101")), "dispense": .bool(true), "patient": .string(patient.did), "prescriber": .string(prescriber.did),
            ]), as: pharmacist)
            #expect(answer["dispensed"] == .bool(true))
            #expect(answer["record"]?["written"] == .bool(true))
            let recordID = try #require(answer["record"]?["id"]?.stringValue)
            // The patient reads it and decrypts it with her own key: a MedicationDispense naming the pack.
            let read = try rc.json(try await rc.get("/v1/records/\(recordID)", as: patient))
            let resource = try JSONValue.parse(try SealedVersion.open(read: read, with: patient.encryption))
            #expect(resource["resourceType"] == .string("MedicationDispense"))
            #expect(resource["contained"]?[0]?["batch"]?["lotNumber"] == .string("LOTA1"))
            #expect(resource["identifier"]?[0]?["value"] == .string("https://id.gs1.org/01/\(Pharma.gtin)/21/SN0101"))

            // No consent: dispensed all the same, nothing written to her record.
            let (_, noConsent) = try await sc.post("/v1/supply/verify", .object([
                "scan": .string(Pharma.scan("SN0102")), "dispense": .bool(true), "patient": .string(other.did),
            ]), as: pharmacist)
            #expect(noConsent["dispensed"] == .bool(true))
            #expect(noConsent["record"]?["written"] == .bool(false))
            #expect(noConsent["record"]?["reason"] == .string("consent_denied"))

            // The recall reaches the patient and her prescriber; not the other patient (no record, no notice).
            let events = network.node.events.subscribe()
            let notice = Task {
                for await event in events where event.body["type"] == .string("supply.recall-notice") {
                    // A node-local notice: no ledger position, never replayed by Last-Event-ID.
                    #expect(event.local)
                    return event.body
                }
                return JSONValue.null
            }
            #expect(try await sc.post("/v1/supply/recalls", .object(["gtin": .string(Pharma.gtin), "lot": .string("LOTA1"), "reason": .string("mislabelled")]), as: pharma).0 == .created)
            let live = try await withDeadline(seconds: 60) { await notice.value }
            #expect(live["patient"] == .string(patient.did))
            #expect(live["prescriber"] == .string(prescriber.did))
            #expect(network.api.records.concerns(live, did: patient.did))
            #expect(network.api.records.concerns(live, did: prescriber.did))
            #expect(!network.api.records.concerns(live, did: other.did))
            for did in [patient, prescriber] {
                let notices = try rc.json(try await rc.get("/v1/supply/notices", as: did))["notices"]?.arrayValue ?? []
                #expect(notices.count == 1)
                #expect(notices.first?["recordId"] == .string(recordID))
                #expect(notices.first?["reason"] == .string("mislabelled"))
            }
            #expect(try rc.json(try await rc.get("/v1/supply/notices", as: other))["notices"]?.arrayValue?.isEmpty == true)
        }
        // The link between the patient and the lot (or the pack) is not on the chain.
        let lotKey = network.api.supply.keys.lot(gtin: Pharma.gtin, lot: "LOTA1")
        let packKey = network.api.supply.keys.pack(gtin: Pharma.gtin, serial: "SN0101")
        var linked = 0
        try network.node.store.forEachState { key, value in
            let text = key + String(decoding: value, as: UTF8.self)
            if text.contains(patient.did) && (text.contains(lotKey) || text.contains(packKey)) { linked += 1 }
        }
        try network.node.store.forEachTransaction { _, _, raw in
            let text = String(decoding: raw, as: UTF8.self)
            if text.contains(patient.did) && (text.contains(lotKey) || text.contains(packKey) || text.contains("SN0101")) { linked += 1 }
        }
        #expect(linked == 0)
    }
}

/// A recall committed while a node's supply service is not running is fanned out when it starts again
/// (handled from the stored events past the saved cursor, not from the live stream).
@Suite struct RecallCatchUpTests {
    @Test func recallCommittedWhileTheServiceIsDownIsHandledAtStart() async throws {
        let world = SupplyTests.World()
        let secret = try ConsortiumSecret(bytes: [UInt8](repeating: 42, count: 32))
        let network = try TestNetwork(
            contracts: .careLedger, capabilities: HostedCapabilities.careLedger, organisations: world.organisations, secret: secret)
        let operatorParty = network.operatorParty
        try await network.run(live: true) { client in
            var rc = RecordsClient(client: client)
            try await world.admit(&rc, operatorParty: operatorParty)
            let sc = SupplyClient(rc: rc)
            #expect(try await sc.ingest([Pharma.commissioning(["SN0201"])], as: world.pharma).0 == .created)
        }
        // The node restarts without its supply service: the regulator's recall commits unseen.
        network.node.close()
        let lot = SupplyKeys(secret: secret).lot(gtin: Pharma.gtin, lot: "LOTA1")
        let recall = try Transaction(
            chainID: network.node.genesis.chainID, signer: world.regulator.key, nonce: 77, contract: "supply", action: "recall",
            payload: .object(["gtin": .string(Pharma.gtin), "lot": .string(lot), "reason": .string("while down")]))
        let second = try LedgerNode(directory: network.chain.directory, contracts: .careLedger)
        let receipt = try await withRunningNode(second) { try await second.submit(recall) }
        #expect(receipt.status == .committed)
        second.close()
        // Started again with its supply service: the fan-out to the holders is recorded.
        let third = try LedgerNode(directory: network.chain.directory, contracts: .careLedger)
        let api = try LedgerAPI(
            node: third, configuration: ServerConfiguration(), registry: PrometheusCollectorRegistry(), vault: network.vault,
            organisations: world.organisations, capabilities: HostedCapabilities.careLedger)
        let events = third.events.subscribe()
        let supply = api.supply
        let service = Task { await supply.run() }
        defer { service.cancel() }
        let alert = try await withRunningNode(third) {
            try await withDeadline(seconds: 60) { () -> JSONValue in
                for await event in events where event.body["rule"] == .string("lot_recalled") { return event.body }
                return .null
            }
        }
        #expect(alert["recipients"]?.arrayValue?.contains(.string(world.pharma.did)) == true)
        #expect(alert["detail"] == .string("1 packs; 1 current holders"))
    }
}
