import ContractKit
import Crypto
import Foundation
import LedgerCore
import Node
import RecordsContract
import Standards

/// After a patient rotates her keys, each version's content key is wrapped anew for her new
/// encryption key: by the custodian's node from its escrow key (on the rotation's commit, and at start
/// for a rotation it had not finished), and by her own client for whatever is left (`careledger key rotate`).
public enum KeyRewrap {
    /// One version whose content key is to be wrapped for the patient's new key: the key as `from` can open it.
    public struct Item: Sendable {
        public let recordID: String
        public let version: Int64
        public let wrapped: WrappedKey

        public init(recordID: String, version: Int64, wrapped: WrappedKey) {
            self.recordID = recordID
            self.version = version
            self.wrapped = wrapped
        }
    }

    /// What a re-wrap gives: the envelopes to store in the vault and the `records.rewrap` payloads (1000 versions each).
    public struct Batch: Sendable {
        public var uploads: [(hash: Hash, blob: [UInt8])] = []
        public var payloads: [JSONValue] = []
    }

    public static let versionsPerTransaction = 1000

    /// Opens each item's content key with `key` and wraps it for `newKey` (`patient`'s new encryption
    /// key), one envelope per version, on every core (one HPKE encapsulation per core for the new key).
    public static func rewrap(patient: String, items: [Item], with key: EncryptionKey, for newKey: [UInt8]) async throws(LedgerError) -> Batch {
        let parts = await Parallel.mapChunks(items, minimumChunk: 64) { slice -> Result<[(Item, KeyEnvelope)], LedgerError> in
            let unwrapper = KeyUnwrapper(key: key)
            let session = KeyWrapSession()
            do throws(LedgerError) {
                return .success(try slice.map { item throws(LedgerError) in
                    let context = RecordEntry.context(id: item.recordID, version: item.version)
                    let contentKey = try unwrapper.unwrap(item.wrapped, context: context)
                    return (item, KeyEnvelope(keys: [patient: try session.wrap(contentKey, for: newKey, context: context)]))
                })
            } catch {
                return .failure(error)
            }
        }
        var batch = Batch()
        var entries: [JSONValue] = []
        for part in parts {
            for (item, envelope) in try part.get() {
                batch.uploads.append((envelope.hash, envelope.blob))
                entries.append(.object(["recordId": .string(item.recordID), "version": .int(item.version), "keys": .string(envelope.hash.hex)]))
            }
        }
        for start in stride(from: 0, to: entries.count, by: versionsPerTransaction) {
            let slice = entries[start..<min(entries.count, start + versionsPerTransaction)]
            batch.payloads.append(.object(["patient": .string(patient), "versions": .array(Array(slice))]))
        }
        return batch
    }
}

extension RecordsService {
    /// The versions of `patient`'s records whose key for her predates her current keys: with the key
    /// `holder` has for each (nil where it has none).
    func staleVersions(patient: String, holder: String, custodian: String? = nil) throws(LedgerError) -> (items: [KeyRewrap.Item], missing: [(String, Int64)]) {
        guard let principal = try principal(patient) else { throw LedgerError("unknown_patient", "\(patient) is not registered") }
        var items: [KeyRewrap.Item] = [], missing: [(String, Int64)] = []
        for id in try recordIDs(patient: patient) {
            guard let entry = try record(id), entry.erasedAtHeight == nil, custodian == nil || entry.custodian == custodian else { continue }
            for version in entry.versions where version.needsRewrap(keysFrom: principal.keysFrom) {
                if let wrapped = try envelopeKeys(version)[holder] {
                    items.append(KeyRewrap.Item(recordID: id, version: version.version, wrapped: wrapped))
                } else {
                    missing.append((id, version.version))
                }
            }
        }
        return (items, missing)
    }

    /// Re-wraps for `patient`'s current key every version of hers that an organisation this node acts
    /// for holds in escrow and that predates her keys; returns how many versions were moved.
    @discardableResult
    public func rewrapEscrowed(patient: String) async throws -> Int {
        guard let principal = try principal(patient), principal.role == .patient, principal.frozen == nil, principal.keysFrom > 0 else { return 0 }
        var moved = 0
        for (custodian, key) in custodianKeys.sorted(by: { $0.key < $1.key }) {
            guard let signer = custodianSigners[custodian] else { continue }
            let (items, _) = try staleVersions(patient: patient, holder: custodian, custodian: custodian)
            guard !items.isEmpty else { continue }
            let batch = try await KeyRewrap.rewrap(patient: patient, items: items, with: key, for: principal.encryptionKey)
            try vault.putMany(batch.uploads)
            for payload in batch.payloads {
                let tx = try Transaction(chainID: node.genesis.chainID, signer: signer, contract: "records", action: "rewrap", payload: payload)
                let receipt = try await node.submit(tx)
                guard receipt.status == .committed else {
                    throw LedgerError(receipt.errorCode ?? "failed", "re-wrap of \(patient)'s versions refused: \(receipt.errorMessage ?? "")")
                }
                moved += payload["versions"]?.arrayValue?.count ?? 0
            }
        }
        return moved
    }

    /// Re-wraps the escrowed versions of every patient who rotates, as the rotation commits; at start,
    /// those of every rotation this node had not finished (a node stopped mid-way picks up where it was).
    public func installCustodianRewrap() {
        guard !custodianSigners.isEmpty else { return }
        let service = self
        @Sendable func run(_ patients: [String]) {
            guard !patients.isEmpty else { return }
            Task {
                for patient in Set(patients).sorted() {
                    do {
                        let moved = try await service.rewrapEscrowed(patient: patient)
                        if moved > 0 { service.node.logger.info("re-wrapped a patient's escrowed versions for her new key", metadata: ["versions": "\(moved)"]) }
                    } catch {
                        service.node.logger.error("escrow re-wrap failed", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
        @Sendable func rotated(_ events: [JSONValue]) -> [String] {
            events.compactMap { $0["type"]?.stringValue == "identity.rotated" ? $0["patient"]?.stringValue : nil }
        }
        do {
            run(rotated(try node.store.events(containing: #""type":"identity.rotated""#)))
        } catch {
            node.logger.error("escrow re-wrap sweep failed", metadata: ["error": "\(error)"])
        }
        node.setAfterCommit("custodian-rewrap") { _, events in run(rotated(events)) }
    }

    /// For the patient's own client (`GET /v1/patients/{did}/keys`): every version whose key for her
    /// predates her current keys, with that key (which her previous encryption key opens), and the
    /// versions with no key for her at all (written while her key was frozen: the custodian re-wraps them).
    public func staleKeys(patient: String, requesterDID: String) throws(LedgerError) -> JSONValue {
        guard requesterDID == patient else { throw LedgerError("forbidden", "only the patient herself fetches her wrapped keys") }
        let (items, missing) = try staleVersions(patient: patient, holder: patient)
        return .object([
            "patient": .string(patient),
            "keys": .array(items.map { .object(["recordId": .string($0.recordID), "version": .int($0.version), "wrappedKey": $0.wrapped.json]) }),
            "missing": .array(missing.map { .object(["recordId": .string($0.0), "version": .int($0.1)]) }),
        ])
    }
}
