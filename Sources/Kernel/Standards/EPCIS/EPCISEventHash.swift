import Crypto
import LedgerCore

/// The CBV 2.0 EPCIS event hash ID (GS1 CBV 2.0 §8.9, `ni:///sha-256;<hex>?ver=CBV2.0`): a pre-hash
/// string of the event's fields in a fixed order with canonical values, then SHA-256. Follows the
/// reference implementation (github.com/RalphTro/epcis-event-hash-generator) and passes its vectors.
public enum EPCISEventHash {
    /// The hash ids of a document's events, in document order.
    public static func hashIDs(document: JSONValue) throws(LedgerError) -> [String] {
        try preHashes(document: document).map(hashID(preHash:))
    }

    public static func hashID(preHash: String) -> String {
        "ni:///sha-256;" + Hash.sha256(utf8: preHash).hex + "?ver=CBV2.0"
    }

    /// The pre-hash strings of a document's events (or of a bare event).
    public static func preHashes(document: JSONValue) throws(LedgerError) -> [String] {
        let ns = namespaces(document)
        let ignore = ignoredFields(document, ns)
        let events: [JSONValue]
        if let body = document["epcisBody"] {
            if let list = body["eventList"]?.arrayValue {
                events = list
            } else if let list = body["queryResults"]?["resultsBody"]?["eventList"]?.arrayValue {
                events = list
            } else if let event = body["event"] {
                events = [event]
            } else {
                throw LedgerError("bad_epcis", "no events in epcisBody")
            }
        } else {
            events = [document]
        }
        let memo = PreHashMemo()
        return events.map { preHash(event: $0, ns: ns, ignore: ignore, memo: memo) }
    }

    /// The canonical texts of a document's values that repeat from event to event (time, step,
    /// disposition, locations, lot and expiry), computed once per document. Each field first
    /// compares with the value it had in the previous event (events of a document mostly repeat
    /// them in a row), then looks in a table of the values seen.
    final class PreHashMemo {
        enum Slot: Int, CaseIterable { case eventTime, offset, parentID, action, bizStep, disposition, readPoint, bizLocation }
        private var last: [(raw: String, text: String)?] = Array(repeating: nil, count: Slot.allCases.count)
        private var lastIlmd: [String: (raw: String, text: String?)] = [:]
        private var texts: [Key: String?] = [:]
        let sgtin = EPCISCanonicalValue.SGTINMemo()

        /// A value of a field (two strings, not joined: no separator could be told from the text).
        private struct Key: Hashable {
            let field: String
            let raw: String
        }

        /// The text of `raw` in `slot` (`make` computes it from the raw value).
        func text(_ slot: Slot, _ raw: String, _ make: () -> String) -> String {
            if let known = last[slot.rawValue], known.raw == raw { return known.text }
            let text = table(Key(field: String(slot.rawValue), raw: raw), make) ?? ""
            last[slot.rawValue] = (raw, text)
            return text
        }

        /// The text of one half of a source or destination pair (`type`, `source`, `destination`).
        func pair(_ name: String, _ raw: String, _ make: () -> String) -> String {
            table(Key(field: "pair:" + name, raw: raw), make) ?? ""
        }

        /// The text of an `ilmd` member (raw key and value), nil when the direct path cannot take it.
        func ilmd(_ key: String, _ raw: String, _ make: () -> String?) -> String? {
            if let known = lastIlmd[key], known.raw == raw { return known.text }
            let text = table(Key(field: "ilmd:" + key, raw: raw), make)
            if lastIlmd.count < 64 { lastIlmd[key] = (raw, text) }
            return text
        }

        private func table(_ key: Key, _ make: () -> String?) -> String? {
            if let known = texts[key] { return known }
            let text = make()
            if texts.count < 4096 { texts[key] = text }
            return text
        }
    }

    // MARK: Namespaces

    static let gs1Vocabulary = "https://gs1.org/voc/"
    static let wellKnown: [String: String] = [
        "gs1": gs1Vocabulary, "cbv": EPCISCanonicalValue.cbv, "epcis": "https://ref.gs1.org/epcis/", "cbvmda": "urn:epcglobal:cbv:mda:",
    ]

    static func namespaces(_ document: JSONValue) -> [String: String] {
        var ns = wellKnown
        let context = document["@context"]
        for c in context?.arrayValue ?? [context ?? .null] {
            for (k, v) in c.objectValue ?? [:] { if let s = v.stringValue { ns[k] = s } }
        }
        return ns
    }

    // The prefix before the first ':' is looked for in the UTF-8 bytes (':' is ASCII, so the index
    // falls on a character boundary): a search by Character would break graphemes for nothing.
    static func expandKey(_ key: String, _ ns: [String: String]) -> String {
        guard let colon = key.utf8.firstIndex(of: 58), let uri = ns[String(key[..<colon])] else { return key }
        return "{" + uri + "}" + key[key.utf8.index(after: colon)...]
    }

    static func expandValue(_ value: String, _ ns: [String: String]) -> String {
        guard let colon = value.utf8.firstIndex(of: 58), let uri = ns[String(value[..<colon])] else { return value }
        return uri + value[value.utf8.index(after: colon)...]
    }

    static func ignoredFields(_ document: JSONValue, _ ns: [String: String]) -> Set<String> {
        var out = Set<String>()
        for holder in [document, document["epcisBody"]?["queryResults"] ?? .null] {
            for (k, v) in holder.objectValue ?? [:] where k == "ignoreFields" || k.hasSuffix(":ignoreFields") {
                for f in v.arrayValue ?? [] { if let s = f.stringValue { out.insert(expandKey(s, ns)) } }
            }
        }
        return out
    }

    // MARK: Bare vocabulary strings (JSON-LD @vocab terms)

    static func words(_ s: String) -> Set<String> { Set(s.split(separator: " ").map(String.init)) }
    static let bizSteps = words(
        "accepting arriving assembling collecting commissioning consigning creating_class_instance cycle_counting decommissioning departing destroying disassembling dispensing encoding entering_exiting holding inspecting installing killing loading other packing picking receiving removing repackaging repairing replacing reserving retail_selling sampling sensor_reporting shipping staging_outbound stock_taking stocking storing transporting unloading unpacking void_shipping"
    )
    static let dispositions = words(
        "active available completeness_verified completeness_inferred conformant container_closed container_open damaged destroyed dispensed disposed encoded expired in_progress in_transit inactive mismatch_instance mismatch_class mismatch_quantity needs_replacement no_pedigree_match non_conformant non_sellable_other partially_dispensed recalled reserved retail_sold returned sellable_accessible sellable_not_accessible stolen unavailable unknown"
    )
    static let businessTransactionTypes = words("bol cert desadv inv pedigree po poc prodorder recadv rma testprd testres upevt")
    static let sourceDestinationTypes = words("owning_party possessing_party location")
    static let components = words(
        "x y z axial_distance azimuth height spherical_radius polar_angle elevation_angle easting northing latitude longitude altitude")
    static let measurementTypes = words(
        "AbsoluteHumidity AbsorbedDose AbsorbedDoseRate Acceleration Radioactivity Altitude AmountOfSubstance AmountOfSubstancePerUnitVolume Angle AngularAcceleration AngularMomentum AngularVelocity Area Capacitance Conductance Conductivity Count Density Dimensionless DoseEquivalent DoseEquivalentRate DynamicViscosity ElectricCharge ElectricCurrent ElectricCurrentDensity ElectricFieldStrength Energy Exposure Force Frequency Illuminance Inductance Irradiance KinematicViscosity Length LinearMomentum Luminance LuminousFlux LuminousIntensity MagneticFlux MagneticFluxDensity MagneticVectorPotential Mass MassConcentration MassFlowRate MassPerAreaTime MemoryCapacity MolalityOfSolute MolarEnergy MolarMass MolarVolume Power Pressure RadiantFlux RadiantIntensity RelativeHumidity Resistance Resistivity SolidAngle SpecificVolume Speed SurfaceDensity SurfaceTension Temperature Time Torque Voltage Volume VolumeFlowRate VolumeFraction VolumetricFlux Wavenumber"
    )
    static let exceptions: Set<String> = ["ALARM_CONDITION", "ERROR_CONDITION"]

    static func bare(_ value: JSONValue?, _ terms: Set<String>, _ prefix: String) -> JSONValue? {
        guard let value else { return nil }
        if let s = value.stringValue, terms.contains(s) { return .string(prefix + s) }
        return value
    }

    static func expandBareStrings(_ event: JSONValue) -> JSONValue {
        guard var e = event.objectValue else { return event }
        let cbv = EPCISCanonicalValue.cbv
        if e["bizStep"] != nil { e["bizStep"] = bare(e["bizStep"], bizSteps, cbv + "BizStep-") }
        if e["disposition"] != nil { e["disposition"] = bare(e["disposition"], dispositions, cbv + "Disp-") }
        if var pd = e["persistentDisposition"]?.objectValue {
            for k in ["set", "unset"] {
                if let list = pd[k]?.arrayValue {
                    pd[k] = .array(list.map { bare($0, dispositions, cbv + "Disp-")! })
                } else if pd[k] != nil {
                    pd[k] = bare(pd[k], dispositions, cbv + "Disp-")
                }
            }
            e["persistentDisposition"] = .object(pd)
        }
        for (list, terms, prefix) in [
            ("bizTransactionList", businessTransactionTypes, "BTT-"), ("sourceList", sourceDestinationTypes, "SDT-"),
            ("destinationList", sourceDestinationTypes, "SDT-"),
        ] {
            guard let items = e[list]?.arrayValue else { continue }
            e[list] = .array(
                items.map { item in
                    guard var o = item.objectValue, o["type"] != nil else { return item }
                    o["type"] = bare(o["type"], terms, cbv + prefix)
                    return .object(o)
                })
        }
        if let elements = e["sensorElementList"]?.arrayValue {
            e["sensorElementList"] = .array(
                elements.map { element in
                    guard var se = element.objectValue, let reports = se["sensorReport"] else { return element }
                    func fix(_ r: JSONValue) -> JSONValue {
                        guard var o = r.objectValue else { return r }
                        if o["type"] != nil { o["type"] = bare(o["type"], measurementTypes, gs1Vocabulary) }
                        if o["exception"] != nil { o["exception"] = bare(o["exception"], exceptions, gs1Vocabulary) }
                        if o["component"] != nil { o["component"] = bare(o["component"], components, cbv + "Comp-") }
                        return .object(o)
                    }
                    se["sensorReport"] = reports.arrayValue.map { .array($0.map(fix)) } ?? fix(reports)
                    return .object(se)
                })
        }
        return .object(e)
    }

    // MARK: The tree

    final class Node {
        var name: String
        var value: String
        var kids: [Node]
        let pair: Bool

        init(_ name: String, _ value: String = "", _ kids: [Node] = [], pair: Bool = false) {
            self.name = name
            self.value = value
            self.kids = kids
            self.pair = pair
        }
    }

    static let skippedKeys: Set<String> = ["rdfs:comment", "comment", "#text", "@context"]
    static let pairLists: Set<String> = ["bizTransactionList", "sourceList", "destinationList"]
    static let pairNames: Set<String> = ["bizTransaction", "source", "destination"]
    static let quantityNames: Set<String> = ["inputQuantity", "outputQuantity", "childQuantity"]

    static func build(_ key: String, _ value: JSONValue, _ ns: [String: String], _ ignore: Set<String>) -> [Node] {
        switch value {
        case .array(let items): return items.flatMap { build(key, $0, ns, ignore) }
        case .object(let members):
            var kids: [Node] = []
            for (k, v) in members {
                let ek = expandKey(k, ns)
                if skippedKeys.contains(k) || (!ignore.isEmpty && ignore.contains(ek)) || ek == "{http://www.w3.org/2000/01/rdf-schema#}comment" { continue }
                kids += build(ek, v, ns, ignore)
            }
            return [Node(key, "", kids)]
        case .null: return []
        case .bool(let b): return [Node(key, b ? "true" : "false")]
        case .int(let i): return [Node(key, String(i))]
        case .double(let d):
            return [Node(key, d == d.rounded(.towardZero) ? EPCISCanonicalValue.integerString(d) : EPCISCanonicalValue.pythonRepr(d))]
        case .string(let s): return [Node(key, expandValue(s, ns))]
        }
    }

    /// Aligns the JSON tree with the XML data model: `xList` wrappers, source/destination/business
    /// transaction pairs, `childEPCs`, and the quantity element names.
    static func correct(_ node: Node) -> Node {
        if node.pair { return node }
        var groups: [(String, [Node])] = []
        var kids: [Node] = []
        for k in node.kids {
            if k.name.utf8.count >= 4, k.name.utf8.reversed().starts(with: "tsiL".utf8) {
                let item = Node(String(k.name.dropLast(4)), k.value, k.kids)
                if let i = groups.firstIndex(where: { $0.0 == k.name }) { groups[i].1.append(item) } else { groups.append((k.name, [item])) }
            } else {
                kids.append(k)
            }
        }
        for (name, items) in groups {
            var list = items
            if pairLists.contains(name) {
                let inner = String(name.dropLast(4))
                list = items.map { item in Node("", "", item.kids.filter { $0.name == "type" } + item.kids.filter { $0.name == inner }, pair: true) }
            }
            kids.append(Node(name, "", list))
        }
        if kids.contains(where: { $0.name == "childEPCs" }) {
            let childEPCs = kids.filter { $0.name == "childEPCs" }
            kids = kids.filter { $0.name != "childEPCs" } + [Node("childEPCs", "", childEPCs.map { Node("epc", $0.value) })]
        }
        node.kids = kids.map(correct)
        if node.name == "inputEPC" || node.name == "outputEPC" {
            node.name = "epc"
        } else if quantityNames.contains(node.name) || (node.name == "quantity" && !node.kids.isEmpty) {
            node.name = "quantityElement"
        }
        return node
    }

    // MARK: Ordering

    struct Order {
        let entries: [(name: String, sub: Order?)]
        /// The position of each name in `entries` (the names are distinct).
        let position: [String: Int]
        init(_ entries: [(String, Order?)]) {
            self.entries = entries.map { (name: $0.0, sub: $0.1) }
            position = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($0.element.0, $0.offset) })
        }
        init(leaves: String) { self.init(leaves.split(separator: " ").map { (String($0), nil) }) }
    }

    static let quantity = Order([("epcClass", nil), ("quantity", nil), ("uom", nil)])
    static let epcs = Order([("epc", nil)])
    static let propertyOrder = Order([
        ("eventTime", nil), ("eventTimeZoneOffset", nil), ("certificationInfo", nil), ("epcList", epcs), ("parentID", nil), ("inputEPCList", epcs),
        ("childEPCs", epcs), ("quantityList", Order([("quantityElement", quantity)])), ("childQuantityList", Order([("quantityElement", quantity)])),
        ("inputQuantityList", Order([("quantityElement", quantity)])), ("outputEPCList", epcs),
        ("outputQuantityList", Order([("quantityElement", quantity)])), ("action", nil), ("transformationID", nil), ("bizStep", nil),
        ("disposition", nil), ("persistentDisposition", Order([("set", nil), ("unset", nil)])), ("readPoint", Order([("id", nil)])),
        ("bizLocation", Order([("id", nil)])),
        (
            "sensorElementList",
            Order([
                (
                    "sensorElement",
                    Order([
                        ("sensorMetadata", Order(leaves: "time startTime endTime deviceID deviceMetadata rawData dataProcessingMethod bizRules")),
                        (
                            "sensorReport",
                            Order(
                                leaves:
                                    "type exception deviceID deviceMetadata rawData dataProcessingMethod time microorganism chemicalSubstance value component stringValue booleanValue hexBinaryValue uriValue minValue maxValue meanValue sDev percRank percValue uom coordinateReferenceSystem"
                            )
                        ),
                    ])
                )
            ])
        ),
    ])
    static let notHashed: Set<String> = ["recordTime", "eventID", "type", "errorDeclaration"]

    static func isExtension(_ name: String) -> Bool { name.containsUTF8("{") && name.containsUTF8("/}") }

    /// Python's `sorted` on strings: by code point, which is UTF-8 byte order.
    static func sortedByCodePoint(_ values: [String]) -> [String] {
        values.sorted(by: UTF8Order.precedes)
    }

    /// A name containing "time" (any case) but not "offset": its value is a timestamp.
    static func isTimeName(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { b in
            func contains(_ w: StaticString) -> Bool {
                let n = w.utf8CodeUnitCount
                guard b.count >= n else { return false }
                let p = w.utf8Start
                for start in 0...(b.count - n) {
                    var i = 0
                    while i < n, b[start + i] | 0x20 == p[i] { i += 1 }
                    if i == n { return true }
                }
                return false
            }
            return contains("time") && !contains("offset")
        }
    }

    static func trimmed(_ s: String) -> String {
        // Fast path: first and last bytes ASCII and not white space (Python's strip also strips
        // non-ASCII white space, which the slow path below handles).
        if let f = s.utf8.first, let l = s.utf8.last, f > 32, f < 128, l > 32, l < 128 { return s }
        if let f = s.first, let l = s.last, !f.isWhitespace, !l.isWhitespace { return s }
        var sub = Substring(s)
        while let f = sub.first, f.isWhitespace { sub.removeFirst() }
        while let l = sub.last, l.isWhitespace { sub.removeLast() }
        return String(sub)
    }

    static func ordered(_ kids: inout [Node], _ order: Order, top: Bool) -> String {
        var extensions: [Node] = []
        if !top && kids.count > 1 {
            extensions = kids.filter { isExtension($0.name) }
            kids.removeAll { isExtension($0.name) }
        }
        // The kids the order names, as (position in the order, index) in that order: one lookup per
        // kid in the order's table, instead of a scan of every kid for each of the order's names.
        var slots: [(entry: Int, kid: Int)] = []
        slots.reserveCapacity(kids.count)
        for (i, c) in kids.enumerated() { if let entry = order.position[c.name] { slots.append((entry, i)) } }
        slots.sort { $0.entry < $1.entry || ($0.entry == $1.entry && $0.kid < $1.kid) }
        var removed: [Bool] = []
        var out = ""
        var start = 0
        while start < slots.count {
            let entry = slots[start].entry
            var end = start + 1
            while end < slots.count, slots[end].entry == entry { end += 1 }
            let sub = order.entries[entry].sub
            if end - start == 1 {
                out += element(kids[slots[start].kid], sub)
            } else {
                var values: [String] = []
                for slot in slots[start..<end] {
                    let s = element(kids[slot.kid], sub)
                    if !s.isEmpty { values.append(s) }
                }
                out += values.count == 1 ? values[0] : sortedByCodePoint(values).joined()
            }
            // A kid of that name without (or left without) children of its own is used up.
            for slot in slots[start..<end] where kids[slot.kid].kids.isEmpty {
                if removed.isEmpty { removed = [Bool](repeating: false, count: kids.count) }
                removed[slot.kid] = true
            }
            start = end
        }
        if !removed.isEmpty { kids = kids.indices.filter { !removed[$0] }.map { kids[$0] } }
        return out + (extensions.isEmpty ? "" : generic(extensions))
    }

    static func element(_ c: Node, _ sub: Order?) -> String {
        var grand = ""
        if let sub { grand = ordered(&c.kids, sub, top: false) }
        let text = valueText(c.name, c.value)
        return text.isEmpty && grand.isEmpty ? "" : c.name + text + grand
    }

    /// `=value` of a named element, canonical (a timestamp when the name says so), or "" when empty.
    static func valueText(_ name: String, _ value: String) -> String {
        if value.isEmpty { return "" }
        var t = trimmed(value)
        t = isTimeName(name) ? EPCISCanonicalValue.time(t) : EPCISCanonicalValue.canonical(t)
        return t.isEmpty ? "" : "=" + t
    }

    // MARK: The common shape, directly

    /// Names a field of `ilmd` may not take in the fast path: the tree corrects them (lists,
    /// child EPCs, quantity and EPC renames), skips them, or keeps their order (pairs).
    static func plainIlmdName(_ name: String) -> Bool {
        !(name.utf8.count >= 4 && name.utf8.reversed().starts(with: "tsiL".utf8)) && !pairNames.contains(name) && !quantityNames.contains(name)
            && !["childEPCs", "inputEPC", "outputEPC", "quantity", "{http://www.w3.org/2000/01/rdf-schema#}comment"].contains(name)
    }

    /// The pre-hash of an event of the common shape — string fields among the event time and its
    /// offset, EPC lists, parent id, action, business step, disposition, read point and business
    /// location ids, and a flat `ilmd` of strings — built without the tree; nil for any other
    /// shape, which the general path handles. It gives exactly the general path's string: the
    /// shared vectors and generated events compare both (EPCISTests).
    static func simplePreHash(_ event: JSONValue, _ ns: [String: String], memo: PreHashMemo = PreHashMemo()) -> String? {
        guard case .object(let members) = event, case .string(let type)? = members["type"] else { return nil }
        // The raw values; each is expanded and canonicalised once per document (`memo`).
        var eventTime: String?, offset: String?, parentID: String?, action: String?, bizStep: String?, disposition: String?
        var readPoint: String?, bizLocation: String?
        var epcList: [String]?, childEPCs: [String]?
        var ilmd: [String]?
        var destinations: [String]?, sources: [String]?
        func epcTexts(_ value: JSONValue) -> [String]? {
            guard case .array(let items) = value else { return nil }
            var texts: [String] = []
            texts.reserveCapacity(items.count)
            for item in items {
                guard case .string(let epc) = item else { return nil }
                let expanded = expandValue(epc, ns)
                if let link = EPCISCanonicalValue.plainSGTINLink(expanded, memo.sgtin) {
                    texts.append("epc=" + link)
                    continue
                }
                let text = valueText("epc", expanded)
                if !text.isEmpty { texts.append("epc" + text) }
            }
            return texts
        }
        /// A source or destination list of `{type, source|destination}` strings: each pair's text
        /// (`type=…` then the party or location), as the tree writes the pairs.
        func pairs(_ value: JSONValue, _ member: String) -> [String]? {
            guard case .array(let items) = value else { return nil }
            var texts: [String] = []
            texts.reserveCapacity(items.count)
            for item in items {
                guard case .object(let o) = item, o.count == 2, case .string(let type)? = o["type"], case .string(let id)? = o[member] else { return nil }
                func part(_ name: String, _ raw: String, bare: Bool) -> String {
                    memo.pair(name, raw) {
                        var value = raw
                        if bare, sourceDestinationTypes.contains(value) { value = EPCISCanonicalValue.cbv + "SDT-" + value }
                        let t = trimmed(expandValue(value, ns))
                        return name + (t.isEmpty ? "" : "=" + EPCISCanonicalValue.canonical(t))
                    }
                }
                texts.append(part("type", type, bare: true) + part(member, id, bare: false))
            }
            return texts
        }
        func locationID(_ value: JSONValue) -> String? {
            guard case .object(let o) = value, o.count == 1, case .string(let id)? = o["id"] else { return nil }
            return id
        }
        for (key, value) in members {
            switch key {
            case "type", "recordTime", "eventID":
                guard case .string = value else { return nil }
            case "eventTime", "eventTimeZoneOffset", "parentID", "action", "bizStep", "disposition":
                guard case .string(let text) = value else { return nil }
                switch key {
                case "eventTime": eventTime = text
                case "eventTimeZoneOffset": offset = text
                case "parentID": parentID = text
                case "action": action = text
                case "bizStep": bizStep = text
                default: disposition = text
                }
            case "readPoint", "bizLocation":
                guard let id = locationID(value) else { return nil }
                if key == "readPoint" { readPoint = id } else { bizLocation = id }
            case "epcList", "childEPCs":
                guard let texts = epcTexts(value) else { return nil }
                if key == "epcList" { epcList = texts } else { childEPCs = texts }
            case "destinationList", "sourceList":
                guard let texts = pairs(value, key == "destinationList" ? "destination" : "source") else { return nil }
                if key == "destinationList" { destinations = texts } else { sources = texts }
            case "ilmd":
                guard case .object(let o) = value else { return nil }
                var parts: [String] = []
                for (k, v) in o {
                    guard case .string(let text) = v else { return nil }
                    let part = memo.ilmd(k, text) { () -> String? in
                        guard !skippedKeys.contains(k) else { return nil }
                        let name = expandKey(k, ns)
                        guard plainIlmdName(name) else { return nil }
                        let t = trimmed(expandValue(text, ns))
                        return name + (t.isEmpty ? "" : "=" + EPCISCanonicalValue.canonical(t))
                    }
                    guard let part else { return nil }
                    parts.append(part)
                }
                ilmd = parts
            default:
                return nil
            }
        }
        var out = "eventType=" + type
        func field(_ slot: PreHashMemo.Slot, _ name: String, _ raw: String?, vocabulary: (terms: Set<String>, prefix: String)? = nil) {
            guard let raw else { return }
            let text = memo.text(slot, raw) {
                var value = raw
                if let vocabulary, vocabulary.terms.contains(value) { value = EPCISCanonicalValue.cbv + vocabulary.prefix + value }
                return valueText(name, expandValue(value, ns))
            }
            if !text.isEmpty { out += name + text }
        }
        func list(_ name: String, _ texts: [String]?) {
            guard let texts, !texts.isEmpty else { return }
            out += name + (texts.count == 1 ? texts[0] : sortedByCodePoint(texts).joined())
        }
        func location(_ slot: PreHashMemo.Slot, _ name: String, _ raw: String?) {
            guard let raw else { return }
            let text = memo.text(slot, raw) { valueText("id", expandValue(raw, ns)) }
            if !text.isEmpty { out += name + "id" + text }
        }
        field(.eventTime, "eventTime", eventTime)
        field(.offset, "eventTimeZoneOffset", offset)
        list("epcList", epcList)
        field(.parentID, "parentID", parentID)
        list("childEPCs", childEPCs)
        field(.action, "action", action)
        field(.bizStep, "bizStep", bizStep, vocabulary: (bizSteps, "BizStep-"))
        field(.disposition, "disposition", disposition, vocabulary: (dispositions, "Disp-"))
        location(.readPoint, "readPoint", readPoint)
        location(.bizLocation, "bizLocation", bizLocation)
        // The members the order does not name, in code point order (d, i, s: as `generic` sorts them).
        if let destinations, !destinations.isEmpty { out += "destinationList" + (destinations.count > 1 ? sortedByCodePoint(destinations).joined() : destinations[0]) }
        if let ilmd { out += "ilmd" + (ilmd.count > 1 ? sortedByCodePoint(ilmd).joined() : ilmd.joined()) }
        if let sources, !sources.isEmpty { out += "sourceList" + (sources.count > 1 ? sortedByCodePoint(sources).joined() : sources[0]) }
        return out
    }

    static func generic(_ kids: [Node]) -> String {
        var values: [String] = []
        for c in kids {
            if c.pair {
                values.append(generic(c.kids))
            } else {
                let t = trimmed(c.value)
                values.append(c.name + (t.isEmpty ? "" : "=" + EPCISCanonicalValue.canonical(t)) + generic(c.kids))
            }
        }
        if kids.count > 1 && !kids.contains(where: { pairNames.contains($0.name) }) {
            values = sortedByCodePoint(values)
        }
        return values.joined()
    }

    static func preHash(event: JSONValue, ns: [String: String], ignore: Set<String>, memo: PreHashMemo = PreHashMemo()) -> String {
        if ignore.isEmpty, let direct = simplePreHash(event, ns, memo: memo) { return direct }
        return treePreHash(event: event, ns: ns, ignore: ignore)
    }

    /// The general path: the event as a tree aligned with the XML data model, then ordered.
    static func treePreHash(event: JSONValue, ns: [String: String], ignore: Set<String>) -> String {
        let expanded = expandBareStrings(event)
        guard let root = build("event", expanded, ns, ignore).first.map(correct) else { return "eventType=" }
        let head = "eventType=" + (event["type"]?.stringValue ?? "") + ordered(&root.kids, propertyOrder, top: true)
        return head + generic(root.kids.filter { !notHashed.contains($0.name) })
    }
}
