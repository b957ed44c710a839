import ContractKit
import Foundation
import LedgerCore
import Node
import Standards
import Store
import SupplyContract
import Synchronization

/// EPCIS ingestion: a document checked, its events derived into blinded item keys, sealed in the vault and committed.
extension SupplyService {
    /// A sealed EPCIS document for one of its parties (the caller, or her organisation): the ciphertext
    /// from this node's vault and the content key wrapped for that party (end to end: the node never
    /// opens it). A document held by another node is fetched from the peers (kept in memory only);
    /// `not_in_vault` (with the holding node) when none serves it.
    public func document(id: String, requesterDID: String) async throws(LedgerError) -> JSONValue {
        guard let meta = try json(SupplyState.document(id)), let keys = meta["wrappedKeys"]?.objectValue else {
            throw LedgerError("not_found", "no EPCIS document \(id)")
        }
        let organisation = try json(Principal.key(requesterDID))?["organisation"]?.stringValue
        guard let holder = [requesterDID, organisation].compactMap({ $0 }).first(where: { keys[$0] != nil }), let wrapped = keys[holder] else {
            throw LedgerError("forbidden", "the document is shared with its trading partners only")
        }
        let hash = try Hash(hex: meta["saltedHash"]?.stringValue ?? "")
        let fetched = vault.holds(hash) ? [:] : await node.obtainVaultBlobs([(hash, .document(id))], into: vault, keep: false)
        guard let ciphertext = fetched[hash].map({ Array($0[32...]) }) ?? vault.ciphertext(hash) else {
            throw LedgerError("not_in_vault", "this node does not hold document \(id); its holder is \(meta["holder"]?.stringValue ?? "unknown")")
        }
        return .object([
            "id": .string(id), "ciphertext": .string(Base64.encode(ciphertext)), "wrappedKey": wrapped, "keyHolder": .string(holder),
            "context": .string(SealedVersion.context(id: "epcis/\(id)", version: 1)), "author": meta["author"] ?? .null,
            "height": meta["height"] ?? .null, "holder": meta["holder"] ?? .null,
        ])
    }

    /// Validates an EPCIS 2.0 document, derives the chain's view of its events (hash ids, blinded
    /// keys, receiving parties), seals the document for the author and the receivers in the vault,
    /// and submits one `supply.events` transaction signed by `author`. All or nothing. `text` is the
    /// document as the author sent it (what is sealed for the parties, and what its id is derived
    /// from); without it, the document's canonical JSON.
    public func ingest(document: JSONValue, as text: [UInt8]? = nil, author: SigningKey) async throws -> JSONValue {
        let (events, hashes, receivers) = try derive(document: document)
        var answer: [String: JSONValue] = [:]
        let parties = receivers.union([author.publicKey.did])
        var payload: [String: JSONValue] = ["events": .array(events.map(\.json))]
        // The payload's canonical bytes, written from the typed events (`SupplyEvent.writeJSON`).
        var eventBytes: [UInt8] = [UInt8(ascii: "[")]
        eventBytes.reserveCapacity(events.count * 400)
        for (i, event) in events.enumerated() {
            if i > 0 { eventBytes.append(UInt8(ascii: ",")) }
            event.writeJSON(into: &eventBytes)
        }
        eventBytes.append(UInt8(ascii: "]"))
        // The document itself (commercial data) stays off-chain, encrypted for the parties.
        var recipients: [String: [UInt8]] = [:]
        for did in parties {
            if let p = try json(Principal.key(did)), let key = p["encryptionKey"]?.stringValue { recipients[did] = try Base64.decode(key) }
        }
        if !recipients.isEmpty {
            let bytes = text ?? document.canonicalBytes
            let id = keys.document(bytes)
            let sealed = try SealedVersion(resource: bytes, recordID: "epcis/\(id)", version: 1, recipients: recipients)
            try vault.put(saltedHash: sealed.saltedHash, blob: sealed.blob)
            payload["document"] = .object([
                "id": .string(id), "saltedHash": .string(sealed.saltedHash.hex), "wrappedKeys": .object(sealed.wrappedKeys.mapValues(\.json)),
                "holder": .string(node.publicKey.did),
            ])
            answer["document"] = .string(id)
        }
        var payloadBytes: [UInt8] = []
        payloadBytes.reserveCapacity(eventBytes.count + 4096)
        var w = JSONObjectWriter()
        if let document = payload["document"] {
            w.key("document", into: &payloadBytes)
            document.write(into: &payloadBytes)
        }
        w.key("events", into: &payloadBytes)
        payloadBytes += eventBytes
        w.end(into: &payloadBytes)
        let tx = try Transaction(
            chainID: node.genesis.chainID, signer: author, contract: "supply", action: "events",
            payload: .object(payload), canonicalPayload: payloadBytes, decoded: events)
        let receipt = try await node.submit(tx)
        guard receipt.status == .committed else {
            throw LedgerError(receipt.errorCode ?? "refused", receipt.errorMessage ?? "the document was refused")
        }
        answer["transaction"] = .string(receipt.transactionID.hex)
        answer["height"] = .int(Int64(receipt.height))
        answer["events"] = .int(Int64(events.count))
        answer["applied"] = receipt.result["applied"] ?? .int(0)
        answer["duplicates"] = receipt.result["duplicates"] ?? .array([])
        answer["hashes"] = .array(hashes.map { JSONValue.string($0) })
        return .object(answer)
    }

    /// Validates a document and derives the chain's view of its events; also answers their hash ids
    /// and the parties that receive shipments. Synchronous on purpose: the work is CPU only.
    func derive(document: JSONValue) throws(LedgerError) -> (events: [SupplyEvent], hashes: [String], receivers: Set<String>) {
        let parsed = try EPCISDocument.parse(document)
        let hashes = try EPCISEventHash.hashIDs(document: document)
        var events: [SupplyEvent] = []
        var receivers: Set<String> = []
        events.reserveCapacity(parsed.events.count)
        var memo = DeriveMemo()
        for (index, (event, hashID)) in zip(parsed.events, hashes).enumerated() {
            do throws(LedgerError) {
                let derived = try derive(event, hashID: hashID, memo: &memo)
                // Execution uses these typed events in place of the payload built from them (`Transaction.decoded`).
                assert((try? SupplyEvent(json: derived.json)) == derived, "a derived event must read back from its JSON")
                if let to = derived.destination { receivers.insert(to) }
                events.append(derived)
            } catch {
                throw LedgerError(error.code, "event \(index): \(error.message)")
            }
        }
        return (events, hashes, receivers)
    }

    func itemKey(_ epc: EPC) throws(LedgerError) -> String {
        switch epc {
        case .sgtin(let gtin, let serial): return keys.pack(gtin: gtin, serial: serial)
        case .sscc(let sscc): return keys.container(sscc: sscc)
        default: throw LedgerError("bad_epcis", "only serialised items (SGTIN, SSCC) can be tracked, not \(epc)")
        }
    }

    /// The registered party behind an EPCIS party or location id (PGLN/SGLN/GLN URI, or a did).
    func resolveParty(_ id: String) throws(LedgerError) -> String {
        if id.hasPrefix("did:key:") { return id }
        guard case .gln(let gln, _) = try EPC.parse(id) else { throw LedgerError("unknown_party", "\(id) is not a GLN") }
        guard let did = try json(SupplyState.location(gln))?["party"]?.stringValue else {
            throw LedgerError("unknown_party", "GLN \(gln) is not registered to a party")
        }
        return did
    }

    func derive(_ e: EPCISEvent, hashID: String, memo: inout DeriveMemo) throws(LedgerError) -> SupplyEvent {
        // Keyed like the serials: the CBV hash of an event is over data holding them, so a plain hash could confirm a guess.
        // The 64 hex digits after `ni:///sha-256;` (sliced in the UTF-8 bytes: all ASCII).
        let hex = keys.event(String(decoding: hashID.utf8.dropFirst(14).prefix(64), as: UTF8.self))
        let type: SupplyEvent.EventType
        switch e.type {
        case .object: type = .object
        case .aggregation: type = .aggregation
        case .transformation: type = .transformation
        default: throw LedgerError("bad_epcis", "\(e.type.rawValue) is not part of the pack lifecycle")
        }
        let bizStep = e.bizStep ?? "other"
        let commissioning = bizStep == "commissioning"
        func item(_ epc: EPC, commissioned: Bool) throws(LedgerError) -> SupplyEvent.Item {
            var out = SupplyEvent.Item(key: try itemKey(epc))
            if commissioned, case .sgtin(let gtin, _) = epc {
                guard let lot = e.lot, let expiry = e.expiry else {
                    throw LedgerError("bad_epcis", "commissioning a pack needs ilmd cbvmda:lotNumber and cbvmda:itemExpirationDate")
                }
                out.gtin = gtin
                if let last = memo.lot, last.gtin == gtin, last.lot == lot {
                    out.lot = last.key
                } else {
                    let key = keys.lot(gtin: gtin, lot: lot)
                    memo.lot = (gtin, lot, key)
                    out.lot = key
                }
                out.expiry = expiry.iso
            }
            return out
        }
        var items: [SupplyEvent.Item] = []
        var lots: [(gtin: String, lot: String)] = []
        for epc in e.epcs { items.append(try item(epc, commissioned: commissioning)) }
        for q in e.quantities {
            if case .lgtin(let gtin, let lot) = q { lots.append((gtin, keys.lot(gtin: gtin, lot: lot))) }
        }
        var destination: String?
        if bizStep == "shipping" || bizStep == "returning", let id = e.destinationParty {
            if let last = memo.party, last.id == id {
                destination = last.did
            } else {
                let did = try resolveParty(id)
                memo.party = (id, did)
                destination = did
            }
        }
        return SupplyEvent(
            hash: hex, type: type, action: e.action.flatMap(SupplyEvent.Action.init(rawValue:)), bizStep: bizStep, disposition: e.disposition,
            timeMillis: e.timeMillis, items: items, parent: try e.parent.map { (p: EPC) throws(LedgerError) in try itemKey(p) },
            outputs: try e.outputs.map { (o: EPC) throws(LedgerError) in try item(o, commissioned: true) }, destination: destination, lots: lots)
    }
}
