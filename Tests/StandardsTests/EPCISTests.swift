import Foundation
import LedgerCore
@testable import Standards
import Testing

@Suite struct EPCISTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/vectors/epcis")

    static func lines(_ name: String) -> [String]? {
        guard let data = FileManager.default.contents(atPath: root.appendingPathComponent(name).path) else { return nil }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    /// Every document of shared/vectors/epcis: each event's hash id equals the reference's; where the
    /// reference's pre-hash file is consistent with its hash file, the pre-hash strings are equal too.
    @Test func sharedVectors() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.root.path).filter { $0.hasSuffix(".jsonld") }.sorted()
        #expect(files.count >= 20)
        var events = 0
        for file in files {
            let name = String(file.dropLast(".jsonld".count))
            let document = try JSONValue.parse(Array(try Data(contentsOf: Self.root.appendingPathComponent(file))))
            let expected = try #require(Self.lines(name + ".hashes"), "\(name).hashes")
            let ids = try EPCISEventHash.hashIDs(document: document)
            #expect(ids == expected, "\(name)")
            if let preHashes = Self.lines(name + ".prehashes") {
                let ours = try EPCISEventHash.preHashes(document: document)
                for (i, line) in preHashes.enumerated() where i < ours.count && EPCISEventHash.hashID(preHash: line) == expected[i] {
                    #expect(ours[i] == line, "\(name) event \(i)")
                }
            }
            events += ids.count
        }
        #expect(events >= 40)
    }

    /// The direct pre-hash of the common event shape gives exactly the tree's string: on every
    /// event of the shared vectors it accepts, and on generated events in and around that shape.
    @Test func directPreHashEqualsTheTree() throws {
        var direct = 0
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.root.path).filter { $0.hasSuffix(".jsonld") }
        for file in files {
            let document = try JSONValue.parse(Array(try Data(contentsOf: Self.root.appendingPathComponent(file))))
            let ns = EPCISEventHash.namespaces(document)
            for event in document["epcisBody"]?["eventList"]?.arrayValue ?? [] {
                guard let fast = EPCISEventHash.simplePreHash(event, ns) else { continue }
                direct += 1
                #expect(fast == EPCISEventHash.treePreHash(event: event, ns: ns, ignore: []), "\(file)")
            }
        }
        #expect(direct >= 3, "the shared vectors hold events of the common shape")

        var rng = SystemRandomNumberGenerator()
        func pick<T>(_ options: [T]) -> T { options[Int.random(in: 0..<options.count, using: &rng)] }
        let context: JSONValue = .object(["@context": .array([.string("https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"), .object(["ex": .string("https://ns.example.com/epcis/")])])])
        let ns = EPCISEventHash.namespaces(context)
        let epcs = [
            "urn:epc:id:sgtin:950600.0010001.SN1", "urn:epc:id:sgtin:950600.0010001.SN2", "urn:epc:id:sscc:950600.00000000017",
            "https://id.gs1.org/01/09506000100012/21/X9", " urn:epc:id:sgtin:950600.0010001.SN3 ", "", "ex:thing", "urn:epc:id:sgln:950600.00001.0",
        ]
        let times = ["2026-11-25T09:00:00.000+01:00", "2026-11-25T08:00:00Z", " 2026-11-25T09:00:00.5-03:30", ""]
        var fastCount = 0
        let memo = EPCISEventHash.PreHashMemo()  // shared by all the generated events, as by a document's
        for _ in 0..<3000 {
            var e: [String: JSONValue] = ["type": .string(pick(["ObjectEvent", "AggregationEvent", "TransformationEvent"]))]
            if Bool.random(using: &rng) { e["eventTime"] = .string(pick(times)) }
            if Bool.random(using: &rng) { e["eventTimeZoneOffset"] = .string(pick(["+01:00", "-03:30", ""])) }
            if Bool.random(using: &rng) { e["recordTime"] = .string(pick(times)) }
            if Bool.random(using: &rng) { e["epcList"] = .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in .string(pick(epcs)) }) }
            if Bool.random(using: &rng) { e["childEPCs"] = .array((0..<Int.random(in: 0...3, using: &rng)).map { _ in .string(pick(epcs)) }) }
            if Bool.random(using: &rng) { e["parentID"] = .string(pick(epcs)) }
            if Bool.random(using: &rng) { e["action"] = .string(pick(["ADD", "OBSERVE", "DELETE", ""])) }
            if Bool.random(using: &rng) { e["bizStep"] = .string(pick(["commissioning", "shipping", "https://ref.gs1.org/cbv/BizStep-receiving", "ex:custom", "urn:epcglobal:cbv:bizstep:packing", ""])) }
            if Bool.random(using: &rng) { e["disposition"] = .string(pick(["active", "in_transit", "recalled", "urn:epcglobal:cbv:disp:dispensed", " "])) }
            for name in ["readPoint", "bizLocation"] where Bool.random(using: &rng) {
                e[name] = .object(["id": .string(pick(["urn:epc:id:sgln:950600.00001.0", "urn:epc:id:sgln:950600.00001.7", "", "https://id.gs1.org/414/9506000000005"]))])
            }
            if Bool.random(using: &rng) {
                var ilmd: [String: JSONValue] = [:]
                for _ in 0..<Int.random(in: 0...3, using: &rng) {
                    ilmd[pick(["cbvmda:lotNumber", "cbvmda:itemExpirationDate", "ex:grade", "bestBefore", "cbvmda:sellByDate"])] = .string(pick(["L1", " L2 ", "2030-12-31", "", "ex:value", "42.0"]))
                }
                e["ilmd"] = .object(ilmd)
            }
            for (list, member) in [("destinationList", "destination"), ("sourceList", "source")] where Bool.random(using: &rng) {
                e[list] = .array((0..<Int.random(in: 0...3, using: &rng)).map { _ in
                    .object([
                        "type": .string(pick(["owning_party", "possessing_party", "location", "gs1:SDT-owning_party", "https://ref.gs1.org/cbv/SDT-location", "", " ex:kind "])),
                        member: .string(pick(["urn:epc:id:pgln:950600.000002", "urn:epc:id:sgln:950600.00001.0", "https://id.gs1.org/417/9506000000022", "ex:party", "", "did:key:z6Mk"])),
                    ])
                })
            }
            // Sometimes a shape the direct path leaves to the tree.
            switch Int.random(in: 0..<14, using: &rng) {
            case 0: e["ex:extension"] = .string("x")
            case 1: e["ilmd"] = .object(["cbvmda:nested": .object(["a": .string("b")])])
            case 2: e["readPoint"] = .object(["id": .string("urn:epc:id:sgln:950600.00001.0"), "ex:more": .string("y")])
            case 3: e["epcList"] = .string("urn:epc:id:sgtin:950600.0010001.SN1")
            case 4: e["ilmd"] = .object(["ex:someList": .string("z")])
            case 5: e["destinationList"] = .array([.object(["type": .string("owning_party"), "destination": .string("urn:epc:id:pgln:950600.000002"), "ex:x": .string("1")])])
            case 6: e["sourceList"] = .array([.object(["type": .string("owning_party")])])
            default: break
            }
            let event = JSONValue.object(e)
            let tree = EPCISEventHash.treePreHash(event: event, ns: ns, ignore: [])
            if let fast = EPCISEventHash.simplePreHash(event, ns, memo: memo) {
                fastCount += 1
                #expect(fast == tree, "\(event.canonicalString)")
            }
            #expect(EPCISEventHash.preHash(event: event, ns: ns, ignore: []) == tree)
        }
        #expect(fastCount > 1000, "a large share of the generated events take the direct path")
    }

    /// EPC URNs (TDS 2.x) and Digital Links to the identifiers the lifecycle keys on; CBV short names.
    @Test func epcsAndVocabulary() throws {
        #expect(try EPC.parse("urn:epc:id:sgtin:950600.0010001.SN1") == .sgtin(gtin: "09506000100012", serial: "SN1"))
        #expect(try EPC.parse("urn:epc:id:sgtin:950600.0010001.A%2FB") == .sgtin(gtin: "09506000100012", serial: "A/B"))
        #expect(try EPC.parse("urn:epc:id:sscc:950600.00000000017") == .sscc("095060000000000176"))
        #expect(try EPC.parse("urn:epc:id:sgln:950600.000001.0") == .gln("9506000000015", extension: nil))
        #expect(try EPC.parse("urn:epc:id:pgln:950600.000001") == .gln("9506000000015", extension: nil))
        #expect(try EPC.parse("urn:epc:id:sgln:950600.000001.7") == .gln("9506000000015", extension: "7"))
        #expect(try EPC.parse("urn:epc:class:lgtin:950600.0010001.LOT1") == .lgtin(gtin: "09506000100012", lot: "LOT1"))
        #expect(try EPC.parse("urn:epc:idpat:sgtin:950600.0010001.*") == .gtinClass(gtin: "09506000100012"))
        #expect(try EPC.parse("https://id.gs1.org/01/09506000100012/21/SN1") == .sgtin(gtin: "09506000100012", serial: "SN1"))
        #expect(try EPC.parse("urn:example:thing") == .other("urn:example:thing"))
        for bad in ["urn:epc:id:sgtin:950600.001001.SN1", "urn:epc:id:sgtin:95060a.0010001.SN1", "urn:epc:id:sgtin:950600.0010001",
                    "urn:epc:id:sscc:950600.0000000017", "urn:epc:id:sgln:950600.00001.0", "urn:epc:id:sgtin:950600.0010001.\u{e9}"] {
            #expect(throws: LedgerError.self, "\(bad)") { try EPC.parse(bad) }
        }
        #expect(EPCISDocument.cbvShortName("https://ref.gs1.org/cbv/BizStep-shipping", vocabulary: "BizStep") == "shipping")
        #expect(EPCISDocument.cbvShortName("urn:epcglobal:cbv:disp:in_transit", vocabulary: "Disp") == "in_transit")
        #expect(EPCISDocument.cbvShortName("gs1:SDT-owning_party", vocabulary: "SDT") == "owning_party")
        #expect(EPCISDocument.cbvShortName("receiving", vocabulary: "BizStep") == "receiving")
        #expect(EPCISDocument.cbvShortName("https://example.com/BizStep-x", vocabulary: "BizStep") == "https://example.com/BizStep-x")
    }

    /// The in-place readings of plain SGTIN URNs (to an EPC, to its canonical Digital Link), with
    /// memos shared across them, answer as the general paths on generated URNs, valid and not
    /// (lengths, dots, colons, escapes, non-ASCII).
    @Test func plainSGTINsParseAsTheGeneralPath() {
        var rng = SystemRandomNumberGenerator()
        func pick<T>(_ options: [T]) -> T { options[Int.random(in: 0..<options.count, using: &rng)] }
        let memo = EPC.Memo(), linkMemo = EPCISCanonicalValue.SGTINMemo()
        var fast = 0, links = 0
        for _ in 0..<5000 {
            let cp = pick(["950600", "4012345", "950600", "95060", "9506001234567", "", "95a600", "406"])
            let ir = pick(["0010001", "001001", "0010001", "", "0010001.7", "0000000001"])
            let alphabet = Int.random(in: 0..<4, using: &rng) == 0 ? Array("AB12xz-_/!%2F.:é (*") : Array("AB12xz-_!")
            let serial = String((0..<Int.random(in: 0...22, using: &rng)).map { _ in pick(alphabet) })
            let text = pick(["urn:epc:id:sgtin:", "urn:epc:id:sgtin:", "urn:epc:id:sscc:", "urn:epc:id:sgtinx"]) + cp + "." + ir + "." + serial
            func outcome(_ result: () throws(LedgerError) -> EPC) -> String {
                do { return "\(try result())" } catch { return error.code }
            }
            let general = outcome { () throws(LedgerError) in try EPC.parse(text) }
            #expect(outcome { () throws(LedgerError) in try EPC.parse(text, memo: memo) } == general, "\(text)")
            if EPC.plainSGTIN(text, memo) != nil { fast += 1 }
            if let link = EPCISCanonicalValue.plainSGTINLink(text, linkMemo) {
                links += 1
                #expect(link == EPCISCanonicalValue.canonical(text), "\(text)")
            }
        }
        #expect(fast > 80 && links > 80, "many take the in-place paths (about 210 and 170 of 5,000 expected)")
    }

    /// Repeated event times, offsets and expiry dates are read once per document, and each event
    /// still gets its own; a bad offset after good ones is still refused.
    @Test func repeatedValuesOfADocument() throws {
        func event(_ time: String, _ offset: String, _ expiry: String) -> JSONValue {
            .object([
                "type": .string("ObjectEvent"), "action": .string("ADD"), "bizStep": .string("commissioning"), "eventTime": .string(time),
                "eventTimeZoneOffset": .string(offset), "epcList": .array([.string("urn:epc:id:sgtin:950600.0010001.S\(time.count)")]),
                "ilmd": .object(["cbvmda:lotNumber": .string("L1"), "cbvmda:itemExpirationDate": .string(expiry)]),
            ])
        }
        func document(_ events: [JSONValue]) -> JSONValue {
            .object(["type": .string("EPCISDocument"), "schemaVersion": .string("2.0"), "epcisBody": .object(["eventList": .array(events)])])
        }
        let values = [
            ("2026-11-25T09:00:00.000+01:00", "+01:00", "2030-12-31"), ("2026-11-25T09:00:00.000+01:00", "+01:00", "2030-12-31"),
            ("2026-11-25T10:00:00Z", "+00:00", "2031-01-31"), ("2026-11-25T09:00:00.000+01:00", "+01:00", "2030-12-31"),
        ]
        let parsed = try EPCISDocument.parse(document(values.map { event($0.0, $0.1, $0.2) }))
        for (e, v) in zip(parsed.events, values) {
            let alone = try EPCISDocument.parse(document([event(v.0, v.1, v.2)])).events[0]
            #expect(e.timeMillis == alone.timeMillis && e.expiry == alone.expiry)
        }
        #expect(parsed.events[0].timeMillis != parsed.events[2].timeMillis && parsed.events[0].expiry != parsed.events[2].expiry)
        #expect(throws: LedgerError.self) { try EPCISDocument.parse(document([event(values[0].0, "+01:00", values[0].2), event(values[0].0, "+1:00", values[0].2)])) }
    }

    /// Times to UTC with milliseconds, the third decimal rounded up from the fourth; other text unchanged.
    @Test func timesToUTC() {
        #expect(EPCISCanonicalValue.time("2026-11-25T09:00:00.000+01:00") == "2026-11-25T08:00:00.000Z")
        #expect(EPCISCanonicalValue.time("2024-03-01T00:30:05.1234-01:00") == "2024-03-01T01:30:05.123Z")
        #expect(EPCISCanonicalValue.time("2024-03-01T00:30:05.1235+01:00") == "2024-02-29T23:30:05.124Z")
        #expect(EPCISCanonicalValue.time("1970-01-01T00:00Z") == "1970-01-01T00:00:00.000Z")
        #expect(EPCISCanonicalValue.time("9999-12-31T23:59:59.999Z") == "9999-12-31T23:59:59.999Z")
        #expect(EPCISCanonicalValue.time("2026-02-30T00:00:00Z") == "2026-02-30T00:00:00Z")
        #expect(EPCISCanonicalValue.format(millis: 0) == "1970-01-01T00:00:00.000Z")
        #expect(EPCISCanonicalValue.format(millis: -1) == "1969-12-31T23:59:59.999Z")
    }

    /// Numbers are written in their shortest form, integers exactly even beyond 64 bits (Python's str(int(x))).
    @Test func numberCanonicalisation() {
        #expect(EPCISCanonicalValue.number("452.0") == "452")
        #expect(EPCISCanonicalValue.number("0.50") == "0.5")
        #expect(EPCISCanonicalValue.number("+007") == "7")
        #expect(EPCISCanonicalValue.number("1e3") == "1000")
        #expect(EPCISCanonicalValue.number("1.9e19") == "19000000000000000000")
        #expect(EPCISCanonicalValue.number("18446744073709551616") == "18446744073709551616")
        #expect(EPCISCanonicalValue.number("1e22") == "10000000000000000000000")
        #expect(EPCISCanonicalValue.number("-2.5e20") == "-250000000000000000000")
        #expect(EPCISCanonicalValue.number("LOT42") == "LOT42")
    }
}
