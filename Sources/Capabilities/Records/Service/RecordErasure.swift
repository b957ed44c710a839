import ContractKit
import Foundation
import LedgerCore
import Node
import RecordsContract
import Standards
import Synchronization

/// Erasure: the vault blobs of erased records destroyed on every node, attested on chain, and the signed receipt.
extension RecordsService {
    /// Destroys the vault blobs of erased records as their erasure commits, after first sweeping the
    /// blobs of every erasure already committed (a node stopped between an erasure's commit and the
    /// deletion of its blobs finishes the deletion when it starts again). Then the node attests on
    /// chain (`audit.shredded`, signed with its key, once per record) what it destroyed; the sweep at
    /// start attests the erasures this node has not attested yet.
    public func installErasure() {
        let node = node
        let service = self
        @Sendable func shred(_ events: [JSONValue]) -> [(patient: String, record: String, destroyed: Int)] {
            var done: [(String, String, Int)] = []
            for e in events where e["type"]?.stringValue == "record.erased" {
                var destroyed = 0
                for h in e["saltedHashes"]?.arrayValue ?? [] {
                    if let hash = try? Hash(hex: h.stringValue ?? ""), service.destroy(hash) { destroyed += 1 }
                }
                if let patient = e["patient"]?.stringValue, let record = e["record"]?.stringValue { done.append((patient, record, destroyed)) }
            }
            return done
        }
        @Sendable func attest(_ done: [(patient: String, record: String, destroyed: Int)]) {
            let me = node.publicKey.did
            let pending = done.filter { item in
                let attested = (try? node.stateValue(forKey: AuditContract.erasureKey(patient: item.patient, recordID: item.record)).map { try JSONValue.parse($0) })??["attestations"]?.arrayValue ?? []
                return !attested.contains { $0["node"]?.stringValue == me }
            }
            guard !pending.isEmpty, node.isOperator(me) else { return }
            Task {
                for item in pending {
                    do {
                        let receipt = try await node.submitAsNode(
                            contract: "audit", action: "shredded",
                            payload: .object(["patient": .string(item.patient), "recordId": .string(item.record), "destroyed": .int(Int64(item.destroyed))]))
                        if receipt.status != .committed, receipt.errorCode != "already_attested" {
                            node.logger.error("shredding attestation refused", metadata: ["record": "\(item.record)", "error": "\(receipt.errorCode ?? "")"])
                        }
                    } catch {
                        node.logger.error("shredding attestation failed", metadata: ["record": "\(item.record)", "error": "\(error)"])
                    }
                }
            }
        }
        do {
            attest(shred(try node.store.events(containing: #""type":"record.erased""#)))
        } catch {
            node.logger.error("erasure sweep failed", metadata: ["error": "\(error)"])
        }
        node.setAfterCommit("erasure") { _, events in attest(shred(events)) }
    }

    /// An erasure committed while blobs were being fetched: what was fetched goes too.
    func shredIfErased(_ records: [RecordEntry]) {
        for record in records where (try? self.record(record.id))??.erasedAtHeight != nil {
            for version in record.versions {
                for hex in version.blobs { if let hash = try? Hash(hex: hex) { destroy(hash) } }
            }
        }
    }

    /// Destroys a vault blob (ciphertext or key envelope) on this node: file, cached ciphertext, parsed keys.
    @discardableResult
    func destroy(_ hash: Hash) -> Bool {
        parsed.forget(envelope: hash)
        return vault.destroy(hash)
    }

    /// The erasure receipt of a record, for the patient or her delegate: what was erased (the
    /// salted hashes, whose salts are gone), at which height and by which transaction, and every
    /// node's on-chain attestation of its shredding, signed by this node's key (Ed25519 over the
    /// canonical JSON of `receipt`).
    public func erasureReceipt(recordID: String, requesterDID: String) throws(LedgerError) -> JSONValue {
        guard let record = try record(recordID) else { throw LedgerError("not_found", "no record \(recordID)") }
        guard ConsentPolicy.mayActFor(patient: record.patient, actor: requesterDID, grants: try grants(patient: record.patient), time: Int64(node.now)) else {
            throw LedgerError("forbidden", "only the patient or her delegate gets her erasure receipts")
        }
        guard let height = record.erasedAtHeight else { throw LedgerError("not_erased", "record \(recordID) is not erased") }
        let attestations = try json(AuditContract.erasureKey(patient: record.patient, recordID: recordID))?["attestations"]?.arrayValue ?? []
        let receipt: JSONValue = .object([
            "type": .string("careledger.erasure-receipt"), "chainId": .string(node.genesis.chainID), "recordId": .string(recordID),
            "patient": .string(record.patient), "resourceType": .string(record.resourceType), "custodian": .string(record.custodian),
            "erasedAtHeight": .int(height), "erasureTransaction": record.erasureTransaction.map { .string($0) } ?? .null,
            "saltedHashes": .array(record.versions.map { .string($0.saltedHash) }),
            "keyEnvelopes": .array(record.versions.flatMap { $0.keyEnvelopes.map { .string($0.hash) } }), "attestations": .array(attestations),
            "issuedAt": .int(Int64(node.now)),
        ])
        return .object([
            "receipt": receipt, "signer": .string(node.publicKey.did),
            "signature": .string(Base64.encode(node.signingKey.signature(for: receipt.canonicalBytes))),
        ])
    }
}
