import ContractKit
import Foundation
import LedgerCore
import Node
import Standards
import Store
import SupplyContract
import Synchronization

/// Verification at the point of dispensing: a scanned pack checked against the chain, and dispensed.
extension SupplyService {
    /// Verifies a scanned pack against the chain at the latest block (read-only).
    /// The organisation a principal acts for in the supply chain: its own, or itself.
    public func organisation(of did: String) throws(LedgerError) -> String {
        try json(Principal.key(did))?["organisation"]?.stringValue ?? did
    }

    /// Verifies a scanned pack against the chain at the latest block (read-only). `verifier` is the
    /// authenticated principal (nil for an anonymous check). Supply-chain parties (and their members)
    /// learn who decommissioned a pack and are named in the alerts they raise; anyone else — a patient
    /// checking her pack — gets the outcome, and a bad outcome alerts the MAH, the holder and the
    /// regulators without naming her.
    public func verify(_ scan: GS1ElementString, verifier user: String?) throws(LedgerError) -> PackVerification {
        // A pharmacist or device verifies for its organisation.
        let verifier = try user.map { (did: String) throws(LedgerError) -> String in try organisation(of: did) }
        let roles = try verifier.map { (did: String) throws(LedgerError) in try self.roles(of: did) } ?? []
        let result = try PackVerification.check(
            scan: scan, keys: keys, today: GS1Date(millis: clock()), verifier: verifier, verifierRoles: roles, state: json)
        guard let verifier else { return result }
        guard !roles.isEmpty else {
            // A patient (or any principal outside the supply chain) who scans a bad pack: the MAH, the
            // holder and the regulators are alerted, without her name (a scan links her to a medicine);
            // she has the outcome in the answer.
            if let rule = result.rule { raise(result, rule: rule, detail: result.detail, extra: [], anonymous: true) }
            return result
        }
        if let key = result.packKey {
            // The scan goes on chain (in a batch with the alerts): the supply contract compares it with the
            // pack's previous scan, made at any node, and records `simultaneous_scans` when two parties
            // scanned it within its window (`SupplyContract.scanWindowMillis`, block time).
            let now = clock()
            let record = scans.withLock { m -> Bool in
                if m.count > 1_000_000 { m.removeAll(keepingCapacity: true) }
                if let last = m[key], last.party == verifier, now >= last.time, now - last.time < Self.rescanMillis { return false }
                m[key] = (verifier, now)
                return true
            }
            if record, result.outcome != .unknownSerial {
                var scan: [String: JSONValue] = [
                    "item": .string(key), "party": .string(verifier), "outcome": .string(result.outcome.rawValue),
                    "recipients": .array(Set([verifier, result.mah, result.holder].compactMap { $0 }).sorted().map { .string($0) }),
                ]
                if let gtin = result.gtin { scan["gtin"] = .string(gtin) }
                pendingAlerts.withLock { p in
                    if p.scans.count < Self.maxQueuedAlerts { p.scans.append(.object(scan)) } else { p.dropped += 1 }
                }
                alertSignal.yield()
            }
        }
        if let rule = result.rule { raise(result, rule: rule, detail: result.detail, extra: []) }
        return result
    }

    func roles(of did: String) throws(LedgerError) -> Set<SupplyRole> {
        Set((try party(did)?["roles"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(SupplyRole.init(rawValue:)) })
    }

    /// Verifies, and when the pack is verified decommissions it as dispensed in the same step
    /// (signed by the pharmacy's organisation key); answers after the block commits.
    public func dispense(_ scan: GS1ElementString, verifier: String, organisation: SigningKey) async throws -> PackVerification {
        let result = try verify(scan, verifier: verifier)
        guard result.outcome == .verified, let key = result.packKey else { return result }
        let hash = Hash.sha256(Array("dispense/\(key)/\(clock())/\(UInt64.random(in: 0..<UInt64.max))".utf8)).hex
        let event = SupplyEvent(
            hash: hash, type: .object, action: .observe, bizStep: "dispensing", disposition: "dispensed", timeMillis: Int64(clock()),
            items: [SupplyEvent.Item(key: key)])
        let tx = try Transaction(
            chainID: node.genesis.chainID, signer: organisation, contract: "supply", action: "events",
            payload: .object(["events": .array([event.json])]))
        let receipt = try await node.submit(tx)
        if receipt.status == .committed { return result.dispensed(height: receipt.height) }
        // The state changed between the check and the block (a second dispense raced this one).
        let again = try verify(scan, verifier: verifier)
        if again.outcome == .verified { throw LedgerError(receipt.errorCode ?? "refused", receipt.errorMessage ?? "dispensing was refused") }
        return again
    }
}
