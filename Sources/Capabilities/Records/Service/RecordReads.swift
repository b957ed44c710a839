import ContractKit
import Foundation
import LedgerCore
import Node
import RecordsContract
import Standards
import Synchronization

/// Reads: a record, a timeline, their metadata; consent-checked and audited, the content key wrapped for the reader.
extension RecordsService {
    /// A read of a record's metadata (its versions or provenance: authors, endorsements, salted
    /// hashes), consent-checked like a read for treatment and recorded as an access event with scope
    /// `metadata`, granted or denied, before the answer.
    public func metadataRead(recordID: String, readerDID: String) async throws -> RecordEntry {
        guard let record = try record(recordID) else { throw LedgerError("not_found", "no record \(recordID)") }
        guard record.erasedAtHeight == nil else { throw LedgerError("erased", "record \(recordID) was erased") }
        guard let reader = try principal(readerDID) else { throw LedgerError("unknown_principal", "the reader is not registered") }
        let grants = try grants(patient: record.patient)
        let now = Int64(node.now)
        let decision =
            ConsentPolicy.mayActFor(patient: record.patient, actor: readerDID, grants: grants, time: now, resourceType: record.resourceType)
            ? ConsentDecision(permitted: true, grant: nil, reason: "the patient or her delegate")
            : ConsentPolicy.evaluate(
                grants: grants, patient: record.patient, reader: readerDID, readerGroups: reader.groups, purpose: "treatment",
                resourceType: record.resourceType, time: now)
        try await recordAccess(
            patient: record.patient, reader: readerDID, records: [recordID], purpose: "treatment", permitted: decision.permitted,
            reason: decision.reason, extra: ["scope": .string("metadata")])
        guard decision.permitted else { throw LedgerError("consent_denied", decision.reason) }
        return record
    }

    /// The metadata (versions, authors, endorsements) of every record of a patient the reader may see,
    /// consent-checked per resource type like `metadataRead`, with one access event (scope `metadata`)
    /// naming the records returned: a FHIR Provenance search by patient.
    public func metadataTimeline(patient: String, readerDID: String) async throws -> [RecordEntry] {
        guard let reader = try principal(readerDID) else { throw LedgerError("unknown_principal", "the reader is not registered") }
        guard try principal(patient)?.role == .patient else { throw LedgerError("not_found", "no patient \(patient)") }
        let grants = try grants(patient: patient)
        let now = Int64(node.now)
        var decisions: [String: Bool] = [:]
        var permitted: [RecordEntry] = []
        var withheld = 0
        for id in try recordIDs(patient: patient) {
            guard let record = try record(id), record.erasedAtHeight == nil else { continue }
            let allowed =
                decisions[record.resourceType]
                ?? (ConsentPolicy.mayActFor(patient: patient, actor: readerDID, grants: grants, time: now, resourceType: record.resourceType)
                    || ConsentPolicy.evaluate(
                        grants: grants, patient: patient, reader: readerDID, readerGroups: reader.groups, purpose: "treatment",
                        resourceType: record.resourceType, time: now
                    ).permitted)
            decisions[record.resourceType] = allowed
            if allowed { permitted.append(record) } else { withheld += 1 }
        }
        let granted = !permitted.isEmpty || withheld == 0
        try await recordAccess(
            patient: patient, reader: readerDID, records: permitted.map(\.id), purpose: "treatment", permitted: granted,
            reason: "metadata: \(permitted.count) returned, \(withheld) withheld", extra: ["scope": .string("metadata")])
        guard granted else { throw LedgerError("consent_denied", "no consent covers treatment access to this patient's records") }
        return permitted
    }

    /// The wrapped keys of a version, from its key envelopes (later shares after the put), read from the
    /// vault (or `fetched` from a peer) and kept parsed in memory. An envelope this node cannot read
    /// contributes nothing (its recipients are then answered `no_key_for_reader`).
    func envelopeKeys(_ version: RecordVersion, fetched: [Hash: [UInt8]] = [:]) throws(LedgerError) -> [String: WrappedKey] {
        var keys: [String: WrappedKey] = [:]
        for ref in version.keyEnvelopes {
            let hash = try Hash(hex: ref.hash)
            var envelope = parsed.envelope(hash)
            if envelope == nil {
                let content = fetched[hash].map { Array($0[32...]) } ?? vault.ciphertext(hash)
                envelope = content.flatMap { try? KeyEnvelope.keys(content: $0) }
                if let envelope { parsed.store(envelope: hash, envelope) }
            }
            // Only the keys of the recipients the chain lists for this envelope, and the first key of each.
            for did in ref.recipients where keys[did] == nil { if let key = envelope?[did] { keys[did] = key } }
        }
        return keys
    }

    /// The reader's copy of a version: its ciphertext and the content key wrapped for the reader (or her
    /// organisation). In a break-the-glass access (`emergency`), a reader without a key gets one
    /// re-wrapped for her alone from the custodian's escrow key, when this node acts for the custodian.
    func materialise(
        _ record: RecordEntry, reader: Principal, version number: Int64? = nil, emergency: Bool = false, fetched: [Hash: [UInt8]] = [:]
    ) throws(LedgerError) -> RecordRead? {
        let chosen = number.map { n in record.versions.first { $0.version == n } } ?? record.current
        guard let version = chosen else {
            if let number { throw LedgerError("not_found", "record \(record.id) has no version \(number)") }
            return nil
        }
        let holder: String
        let wrapped: WrappedKey
        let keys = try envelopeKeys(version, fetched: fetched)
        if let w = keys[reader.did] {
            (holder, wrapped) = (reader.did, w)
        } else if let org = reader.organisation, let w = keys[org] {
            (holder, wrapped) = (org, w)
        } else if emergency, let escrow = keys[record.custodian] {
            guard let key = custodianKeys[record.custodian] else {
                throw LedgerError("not_custodian", "break-the-glass: only the node of \(record.id)'s custodian \(record.custodian) can open it for an emergency reader")
            }
            let context = RecordEntry.context(id: record.id, version: version.version)
            guard let w = try SealedVersion.rewrap(escrow, with: key, context: context, for: [reader.did: reader.encryptionKey])[reader.did] else {
                throw LedgerError("internal_error", "re-wrap")
            }
            (holder, wrapped) = (reader.did, w)
        } else {
            throw LedgerError("no_key_for_reader", "version \(version.version) of \(record.id) has no key wrapped for the reader; the patient must share it")
        }
        let hash = try Hash(hex: version.saltedHash)
        guard let ciphertext = fetched[hash].map({ Array($0[32...]) }) ?? vault.ciphertext(hash) else {
            throw LedgerError("not_in_vault", "this node does not hold the content of \(record.id) version \(version.version)")
        }
        return RecordRead(record: record, version: version, ciphertext: ciphertext, wrappedKey: wrapped, keyHolder: holder, keys: keys)
    }

    /// One record, for `readerDID`, for `purpose`.
    /// `releasable`: whether the caller can actually release a read (the FHIR facade opens reads with its
    /// organisation's key); a read it cannot is logged as nothing released, never as a disclosure.
    public func read(
        recordID: String, readerDID: String, purpose: String, reason: String? = nil, version: Int64? = nil,
        releasable: (@Sendable (RecordRead) -> Bool)? = nil
    ) async throws -> RecordRead {
        try check(purpose: purpose)
        guard let reader = try principal(readerDID) else { throw LedgerError("unknown_principal", "the reader is not registered") }
        guard let record = try record(recordID) else { throw LedgerError("not_found", "no record \(recordID)") }
        guard record.erasedAtHeight == nil else { throw LedgerError("erased", "record \(recordID) was erased at the patient's request") }
        let decision: ConsentDecision
        let extra: [String: JSONValue]
        do {
            (decision, extra) = try authorise(
                patient: record.patient, resourceType: record.resourceType, reader: reader, grants: try grants(patient: record.patient),
                purpose: purpose, reason: reason)
        } catch {
            // A refused emergency access is an access attempt too: on the ledger before the refusal.
            try await recordAccess(patient: record.patient, reader: reader.did, records: [record.id], purpose: purpose, permitted: false, reason: error.message)
            throw error
        }
        guard decision.permitted else {
            try await recordAccess(patient: record.patient, reader: reader.did, records: [record.id], purpose: purpose, permitted: false, reason: decision.reason)
            throw LedgerError("consent_denied", decision.reason)
        }
        // Consent permits; the access event says `permit` only when data is actually released (the
        // accounting of disclosures must not list a read that returned nothing).
        let read: RecordRead
        let fetched = await obtain([record], version: version)
        do {
            guard let r = try materialise(record, reader: reader, version: version, emergency: extra["breakGlass"] == .bool(true), fetched: fetched) else {
                throw LedgerError("no_current_version", "record \(recordID) has no current version yet (pending endorsement)")
            }
            if let releasable, !releasable(r) {
                throw LedgerError("no_key_for_reader", "version \(r.version.version) of \(recordID) is not readable here: its key is the reader's own (read it through /v1)")
            }
            read = r
        } catch {
            try await recordAccess(
                patient: record.patient, reader: reader.did, records: [record.id], purpose: purpose, permitted: false,
                reason: "\(decision.reason); nothing released: \((error as? LedgerError)?.code ?? "\(error)")", refusal: false)
            throw error
        }
        try await recordAccess(
            patient: record.patient, reader: reader.did, records: [record.id], purpose: purpose, permitted: true, reason: decision.reason, extra: extra)
        return read
    }

    /// Every record of a patient the reader may see for `purpose`, with one access event.
    /// With `resourceType`, only the records of that type (a FHIR search): the access event names what was read, no more.
    public func timeline(
        patient: String, readerDID: String, purpose: String, reason: String? = nil, resourceType: String? = nil,
        releasable: (@Sendable (RecordRead) -> Bool)? = nil
    ) async throws -> (reads: [RecordRead], withheld: Int) {
        try await timeline(patient: patient, readerDID: readerDID, purpose: purpose, reason: reason, resourceType: resourceType, releasable: releasable) {
            reads, withheld in (reads, withheld)
        }
    }

    /// The timeline, rendered by `render` while its access event commits: the consent checks and
    /// vault reads come first (so the event names exactly the records returned), then the event is
    /// submitted and the answer is built during the block's commit. Nothing is returned before the
    /// event is committed; if it is not, the rendered answer is dropped and the read fails.
    public func timeline<Rendered: Sendable>(
        patient: String, readerDID: String, purpose: String, reason: String? = nil, resourceType: String? = nil,
        releasable: (@Sendable (RecordRead) -> Bool)? = nil, render: @escaping @Sendable ([RecordRead], Int) async throws -> Rendered
    ) async throws -> Rendered {
        try check(purpose: purpose)
        guard let reader = try principal(readerDID) else { throw LedgerError("unknown_principal", "the reader is not registered") }
        guard try principal(patient)?.role == .patient else { throw LedgerError("not_found", "no patient \(patient)") }
        let grants = try grants(patient: patient)
        var permittedRecords: [RecordEntry] = []
        var withheld = 0
        var breakGlass: [String: JSONValue] = [:]
        // One consent decision per resource type (the policy depends on the type, not the record).
        var decisions: [String: (ConsentDecision, [String: JSONValue])?] = [:]
        // Why an emergency read without consent was refused (no reason stated), to answer with it.
        var refusal: LedgerError?
        for id in try recordIDs(patient: patient) {
            guard let record = try record(id), record.erasedAtHeight == nil, resourceType.map({ $0 == record.resourceType }) ?? true else { continue }
            let authorised: (ConsentDecision, [String: JSONValue])?
            if let known = decisions[record.resourceType] {
                authorised = known
            } else {
                do {
                    authorised = try authorise(
                        patient: patient, resourceType: record.resourceType, reader: reader, grants: grants, purpose: purpose, reason: reason)
                } catch {
                    authorised = nil
                    refusal = error
                }
                decisions[record.resourceType] = .some(authorised)
            }
            let decision = authorised?.0 ?? ConsentDecision(permitted: false, grant: nil, reason: "break-the-glass needs a reason")
            let extra = authorised?.1 ?? [:]
            if !extra.isEmpty { breakGlass = extra }
            if decision.permitted { permittedRecords.append(record) } else { withheld += 1 }
        }
        // Vault reads on every core; a record without a key for the reader or not held here is withheld.
        let fetched = await obtain(permittedRecords)
        let emergency = Set(decisions.compactMap { type, d in d?.1["breakGlass"] == .bool(true) ? type : nil })
        // A record consent permits but the caller cannot release (its key is the reader's own, not the
        // facade's) is left out without counting as a refusal.
        let materialised = await Parallel.map(permittedRecords) { record -> (read: RecordRead?, unreleasable: Bool) in
            guard let read = try? self.materialise(record, reader: reader, emergency: emergency.contains(record.resourceType), fetched: fetched) else {
                return (nil, false)
            }
            return releasable.map { $0(read) } ?? true ? (read, false) : (nil, true)
        }
        let reads = materialised.compactMap(\.read)
        let unreleasable = materialised.filter(\.unreleasable).count
        withheld += materialised.count - reads.count - unreleasable
        let permitted = !reads.isEmpty || withheld == 0
        withheld += unreleasable
        let (readerDID, event, extra) = (reader.did, "timeline: \(reads.count) returned, \(withheld) withheld", permitted ? breakGlass : [:])
        let ids = reads.map(\.record.id)
        let access = Task {
            try await recordAccess(
                patient: patient, reader: readerDID, records: ids, purpose: purpose, permitted: permitted, reason: event, extra: extra)
        }
        var rendered: Result<Rendered, any Error>?
        if permitted {
            do { rendered = .success(try await render(reads, withheld)) } catch { rendered = .failure(error) }
        }
        try await access.value
        guard let rendered else {
            if let refusal, reads.isEmpty { throw refusal }
            throw LedgerError("consent_denied", "no consent covers \(purpose) access to this patient's records")
        }
        return try rendered.get()
    }
}
