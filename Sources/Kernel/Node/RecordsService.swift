import ContractKit
import Foundation
import LedgerCore
import RecordsContract
import RecoveryContract
import Standards
import Synchronization

/// What a reader gets for one record: the metadata, and for the current version the ciphertext
/// and the content key wrapped for the reader (end-to-end: the node never sees the content key).
public struct RecordRead: Sendable {
    public let record: RecordEntry
    public let version: RecordVersion
    public let ciphertext: [UInt8]
    public let wrappedKey: WrappedKey
    /// Whose key the wrapped key is for (the reader, or her organisation).
    public let keyHolder: String
    /// Every wrapped key of the version (from its key envelopes), by recipient.
    public let keys: [String: WrappedKey]

    public var json: JSONValue {
        .object([
            "recordId": .string(record.id), "patient": .string(record.patient), "resourceType": .string(record.resourceType),
            "custodian": .string(record.custodian), "version": .int(version.version), "author": .string(version.author),
            "time": .int(version.time), "status": .string(version.status.rawValue),
            "ciphertext": .string(Base64.encode(ciphertext)), "wrappedKey": wrappedKey.json, "keyHolder": .string(keyHolder),
            "context": .string(RecordEntry.context(id: record.id, version: version.version)),
        ])
    }

    /// `json`'s canonical bytes, written without building and sorting a dictionary (a timeline
    /// writes a thousand of these).
    public func write(into out: inout [UInt8]) {
        func member(_ key: String, _ value: String) {
            out.append(contentsOf: key.utf8)
            JSONValue.writeString(value, into: &out)
        }
        member(#"{"author":"#, version.author)
        out.append(contentsOf: #","ciphertext":""#.utf8)
        Base64.encode(ciphertext, into: &out)
        out.append(UInt8(ascii: "\""))
        member(#","context":"#, RecordEntry.context(id: record.id, version: version.version))
        member(#","custodian":"#, record.custodian)
        member(#","keyHolder":"#, keyHolder)
        member(#","patient":"#, record.patient)
        member(#","recordId":"#, record.id)
        member(#","resourceType":"#, record.resourceType)
        member(#","status":"#, version.status.rawValue)
        out.append(contentsOf: #","time":\#(version.time),"version":\#(version.version),"wrappedKey":"#.utf8)
        wrappedKey.write(into: &out)
        out.append(UInt8(ascii: "}"))
    }

    /// `{"records":[…],"withheld":n}` for a timeline, its records written on every core.
    public static func timelineBytes(_ reads: [RecordRead], withheld: Int) async -> [UInt8] {
        let chunks = await Parallel.mapChunks(reads) { slice in
            var out: [UInt8] = []
            out.reserveCapacity(2048 * slice.count)
            for i in slice.indices {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                slice[i].write(into: &out)
            }
            return out
        }
        var out = Array(#"{"records":["#.utf8)
        out.reserveCapacity(chunks.reduce(64) { $0 + $1.count })
        for chunk in chunks { out.append(contentsOf: chunk) }
        out.append(contentsOf: Array(#"],"withheld":\#(withheld)}"#.utf8))
        return out
    }
}

/// Reads of health data: consent checked against the latest committed state, an access event
/// committed to the ledger for every attempt (granted or denied), then the ciphertext and the
/// key wrapped for the reader.
public struct RecordsService: Sendable {
    public let node: LedgerNode
    public let vault: Vault
    /// How long a break-the-glass access lasts.
    public let breakGlassWindowMillis: Int64
    /// Denied reads per reader and patient: the first few recorded in detail, the rest aggregated.
    public let deniedReads: DeniedReads
    /// Parsed record entries, valid while their state bytes are unchanged.
    private let parsed = ParsedRecords()
    /// The encryption keys of the custodian organisations this node acts for: every version's content
    /// key is wrapped for its custodian, so this node can answer a break-the-glass read of the records
    /// it holds by re-wrapping the key for the emergency reader.
    let custodianKeys: [String: EncryptionKey]
    /// Custodian fetches in flight (bounded), and blobs no peer served lately.
    let fetching = PeerFetchState()

    public init(
        node: LedgerNode, vault: Vault, breakGlassWindowMillis: Int64 = 4 * 3600 * 1000, custodianKeys: [String: EncryptionKey] = [:],
        deniedReads: DeniedReads = DeniedReads()
    ) {
        self.deniedReads = deniedReads
        self.node = node
        self.vault = vault
        self.breakGlassWindowMillis = breakGlassWindowMillis
        self.custodianKeys = custodianKeys
    }

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

    /// Keeps the custodian's copy: when a version filed with an organisation this node acts for was
    /// uploaded to another node, this node fetches its blob from its peers as the version commits (a
    /// few tries over about six seconds) and stores it in its vault. A blob still missing (every peer
    /// down) is fetched at its first read here.
    public func installCustodianReplication() {
        guard !custodianKeys.isEmpty, !node.configuration.peers.isEmpty else { return }
        node.setAfterCommit("custodian-replication") { [self] _, events in
            let written = events.compactMap { e -> (String, Int64)? in
                guard e["type"]?.stringValue == "record.written" || e["type"]?.stringValue == "record.shared", let id = e["record"]?.stringValue,
                    let version = e["version"]?.intValue
                else { return nil }
                return (id, version)
            }
            guard !written.isEmpty else { return }
            // Bounded: past 64 blocks' fetches in flight (a long catch-up), the rest is fetched at first read.
            guard self.fetching.inFlight.withLock({ n -> Bool in
                guard n < 64 else { return false }
                n += 1
                return true
            }) else { return }
            Task {
                await self.keepFiled(written)
                self.fetching.inFlight.withLock { $0 -= 1 }
            }
        }
    }

    func keepFiled(_ written: [(record: String, version: Int64)]) async {
        var records: [RecordEntry] = []
        var wanted: [(hash: Hash, owner: VaultOwner)] = []
        for (id, number) in written {
            guard let record = try? record(id), custodianKeys[record.custodian] != nil,
                let version = record.versions.first(where: { $0.version == number })
            else { continue }
            records.append(record)
            for hex in version.blobs { if let hash = try? Hash(hex: hex) { wanted.append((hash, .record(id))) } }
        }
        for attempt in 0..<6 {
            wanted = wanted.filter { !vault.contains($0.hash) }
            if wanted.isEmpty { break }
            if attempt > 0 { try? await Task.sleep(for: .milliseconds(100 << attempt)) }
            await node.obtainVaultBlobs(wanted, into: vault, keep: true)
        }
        if !wanted.isEmpty {
            node.logger.error("no peer holds versions filed with this node's organisation", metadata: ["versions": "\(wanted.count)"])
        }
        shredIfErased(records)
    }

    /// Fetches from peers the ciphertexts of `records` this node lacks (version `number`, or the
    /// current one): stored in the vault when this node acts for the custodian, otherwise kept in memory
    /// only. Answers the ciphertexts fetched, for this request. Nothing when the node has no peers. A
    /// blob no peer served is not asked for again for 30 s (a read does not wait on the peers each time).
    func obtain(_ records: [RecordEntry], version number: Int64? = nil) async -> [Hash: [UInt8]] {
        guard !node.configuration.peers.isEmpty else { return [:] }
        let now = ContinuousClock.now
        let unavailable = fetching.missing.withLock { missing -> Set<Hash> in
            missing = missing.filter { now - $0.value < .seconds(30) }
            return Set(missing.keys)
        }
        var kept: [(hash: Hash, owner: VaultOwner)] = []
        var remembered: [(hash: Hash, owner: VaultOwner)] = []
        for record in records {
            let version = number.map { n in record.versions.first { $0.version == n } } ?? record.current
            guard let version else { continue }
            for hex in version.blobs {
                // An envelope already parsed here needs no fetch (checked first: no file system call).
                guard let hash = try? Hash(hex: hex), hex == version.saltedHash || parsed.envelope(hash) == nil, !vault.holds(hash),
                    !unavailable.contains(hash)
                else { continue }

                if custodianKeys[record.custodian] != nil { kept.append((hash, .record(record.id))) } else { remembered.append((hash, .record(record.id))) }
            }
        }
        guard !kept.isEmpty || !remembered.isEmpty else { return [:] }
        var fetched = await node.obtainVaultBlobs(kept, into: vault, keep: true)
        fetched.merge(await node.obtainVaultBlobs(remembered, into: vault, keep: false)) { a, _ in a }
        let failed = (kept + remembered).map(\.hash).filter { fetched[$0] == nil }
        if !failed.isEmpty { fetching.missing.withLock { missing in for hash in failed.prefix(10_000) { missing[hash] = now } } }
        shredIfErased(records)
        return fetched
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

    /// Consent, else break-the-glass: an emergency read by a practitioner with a stated reason opens a
    /// time-boxed window; reads inside an open window need no new reason. Returns the decision and
    /// the break-the-glass fields for the access event.
    func authorise(patient: String, resourceType: String?, reader: Principal, grants: [ConsentGrant], purpose: String, reason: String?)
        throws(LedgerError) -> (ConsentDecision, [String: JSONValue])
    {
        let now = Int64(node.now)
        let consent = ConsentPolicy.evaluate(
            grants: grants, patient: patient, reader: reader.did, readerGroups: reader.groups, purpose: purpose,
            resourceType: resourceType ?? "*", time: now)
        guard !consent.permitted, purpose == "emergency" else { return (consent, [:]) }
        if let open = try json(AuditContract.breakGlassKey(patient: patient, reader: reader.did)), let until = open["until"]?.intValue, until > now {
            return (ConsentDecision(permitted: true, grant: nil, reason: "break-the-glass window open until \(until)"),
                    ["breakGlass": .bool(true), "until": .int(until), "reason": .string(reason ?? "within an open break-the-glass window")])
        }
        guard reader.role == .practitioner else { return (consent, [:]) }
        guard let reason, reason.count >= 10 else {
            throw LedgerError("break_glass_reason_required", "an emergency access without consent needs a stated reason (10 characters or more)")
        }
        return (ConsentDecision(permitted: true, grant: nil, reason: "break-the-glass: \(reason)"),
                ["breakGlass": .bool(true), "until": .int(now + breakGlassWindowMillis), "reason": .string(reason)])
    }

    func json(_ key: String) throws(LedgerError) -> JSONValue? { try node.stateJSON(key) }

    /// The principal registered under `did` (parsed once per version of its state entry: every
    /// authenticated request looks its caller up).
    /// Whether a committed transaction refers to the vault blob `hash` that `uploader` uploaded: a
    /// record version's ciphertext or key envelope (claimed once, under `records/blob/<hash>`), or the
    /// recovery kit of the uploader's own recovery set-up.
    public func claimsUpload(_ hash: Hash, uploader: String) -> Bool {
        if node.stateValue(forKey: RecordEntry.blobKey(hash.hex)) != nil { return true }
        guard let setup = node.stateValue(forKey: RecoveryContract.key(uploader)), let kit = try? JSONValue.parse(setup)["kit"]?.stringValue else {
            return false
        }
        return kit == hash.hex
    }

    public func principal(_ did: String) throws(LedgerError) -> Principal? { try node.principal(did) }

    public func record(_ id: String) throws(LedgerError) -> RecordEntry? {
        let key = RecordEntry.key(id)
        guard let bytes = node.stateValue(forKey: key) else { return nil }
        return try parsed.entries.value(key, bytes) { (bytes) throws(LedgerError) in try RecordEntry(json: try JSONValue.parse(bytes)) }
    }

    public func recordIDs(patient: String) throws(LedgerError) -> [String] {
        (try json(RecordEntry.indexKey(patient: patient))?["records"]?.arrayValue ?? []).compactMap(\.stringValue)
    }

    public func grants(patient: String) throws(LedgerError) -> [ConsentGrant] {
        try ConsentPolicy.grants(patient: patient) { (key) throws(LedgerError) in try json(key) }
    }

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

    /// Records an access event and waits for its commit.
    /// `refusal`: a denial by consent (counted against the reader, see `DeniedReads`), as opposed to a
    /// permitted read that released nothing.
    func recordAccess(
        patient: String, reader: String, records: [String], purpose: String, permitted: Bool, reason: String, extra: [String: JSONValue] = [:],
        refusal: Bool = true
    ) async throws {
        if !permitted, refusal, reader != patient {
            let (admission, closed) = deniedReads.admit(reader: reader, patient: patient, purpose: purpose, now: Int64(node.now))
            if let closed { try await recordDeniedAggregate(closed) }
            if case .suppress(let wait) = admission {
                throw LedgerError(
                    "too_many_denied",
                    "\(deniedReads.recorded) reads of this patient's data were denied in \(deniedReads.windowMillis / 60_000) minutes: retry in \(wait) s")
            }
        }
        var payload: [String: JSONValue] = [
            "patient": .string(patient), "reader": .string(reader), "records": .array(records.map { .string($0) }),
            "purpose": .string(purpose), "outcome": .string(permitted ? "permit" : "deny"), "reason": .string(reason),
        ]
        for (k, v) in extra { payload[k] = v }
        let receipt = try await node.submitAsNode(contract: "audit", action: "access", payload: .object(payload))
        guard receipt.status == .committed else {
            throw LedgerError("audit_failed", "the access event was not recorded: \(receipt.errorCode ?? "")")
        }
    }

    /// Records the aggregate of a closed window of denied reads: one access event with their count and
    /// the times of the first and last.
    func recordDeniedAggregate(_ closed: (reader: String, patient: String, DeniedReads.Window)) async throws {
        let w = closed.2
        let payload: JSONValue = .object([
            "patient": .string(closed.patient), "reader": .string(closed.reader), "records": .array([]), "purpose": .string(w.purpose),
            "outcome": .string("deny"), "reason": .string("\(w.suppressed) further denied attempts, refused without an event of their own"),
            "aggregated": .object(["count": .int(Int64(w.suppressed)), "from": .int(w.first), "to": .int(w.last)]),
        ])
        let receipt = try await node.submitAsNode(contract: "audit", action: "access", payload: payload)
        guard receipt.status == .committed else { throw LedgerError("audit_failed", "the access event was not recorded: \(receipt.errorCode ?? "")") }
    }

    /// Records the aggregates of every window of denied reads closed by now (run periodically).
    public func flushDeniedReads() async {
        for closed in deniedReads.closed(by: Int64(node.now)) {
            do {
                try await recordDeniedAggregate(closed)
            } catch {
                node.logger.error("denied reads aggregate not recorded", metadata: ["error": "\(error)"])
            }
        }
    }

    func check(purpose: String) throws(LedgerError) {
        guard ConsentGrant.purposes.contains(purpose) else {
            throw LedgerError("bad_parameter", "purpose must be one of \(ConsentGrant.purposes.sorted().joined(separator: ", "))")
        }
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

    /// Every access event about the patient's data (the patient or her delegate only).
    public func accessLog(patient: String, requesterDID: String) throws(LedgerError) -> [JSONValue] {
        guard ConsentPolicy.mayActFor(patient: patient, actor: requesterDID, grants: try grants(patient: patient), time: Int64(node.now)) else {
            throw LedgerError("forbidden", "only the patient or her delegate reads her access log")
        }
        let count = try json(AuditContract.countKey(patient: patient))?["count"]?.intValue ?? 0
        var events: [JSONValue] = []
        for i in 0..<count {
            if let e = try json(AuditContract.eventKey(patient: patient, index: i)) { events.append(e) }
        }
        return events
    }

    /// The HIPAA-style accounting of disclosures (45 CFR 164.528): every access that released her
    /// data — date, recipient (with role and organisation), purpose, what (record ids and types),
    /// break-the-glass and its reason — newest first. Refused attempts are in the access log, not here.
    public func disclosures(patient: String, requesterDID: String) throws(LedgerError) -> [JSONValue] {
        let events = try accessLog(patient: patient, requesterDID: requesterDID)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var out: [JSONValue] = []
        // A permitted access that released no record (an empty timeline) disclosed nothing, her own reads
        // are not disclosures, and neither are reads of metadata only.
        for e in events.reversed()
        where e["outcome"]?.stringValue == "permit" && e["records"]?.arrayValue?.isEmpty == false && e["reader"]?.stringValue != patient
            && e["scope"]?.stringValue != "metadata"
        {
            guard let readerDID = e["reader"]?.stringValue else { continue }
            let reader = try principal(readerDID)
            var recipient: [String: JSONValue] = ["did": .string(readerDID), "role": reader.map { .string($0.role.rawValue) } ?? .null]
            if let org = reader?.organisation {
                recipient["organisation"] = .string(org)
                recipient["organisationName"] = (try principal(org))?.name.map { .string($0) } ?? .null
            }
            var what: [JSONValue] = []
            for id in (e["records"]?.arrayValue ?? []).compactMap(\.stringValue) {
                what.append(.object(["recordId": .string(id), "resourceType": (try record(id)).map { .string($0.resourceType) } ?? .null]))
            }
            let time = e["time"]?.intValue ?? 0
            var item: [String: JSONValue] = [
                "date": .string(formatter.string(from: Date(timeIntervalSince1970: Double(time) / 1000))), "time": .int(time),
                "recipient": .object(recipient), "purpose": e["purpose"] ?? .null, "what": .array(what),
                "height": e["height"] ?? .null, "index": e["index"] ?? .null, "recordedBy": e["recordedBy"] ?? .null,
            ]
            if e["breakGlass"]?.boolValue == true {
                item["breakGlass"] = .bool(true)
                item["reason"] = e["reason"] ?? .null
                // Where its review stands: pending, justified or unjustified.
                if let index = (e["reviewIndex"] ?? e["index"])?.intValue {
                    item["review"] = (try json(AuditContract.reviewKey(patient: patient, index: index)))?["status"] ?? .null
                }
            }
            out.append(.object(item))
        }
        return out
    }

    /// Who a writer must wrap a new version's key for: the patient, and every principal with an
    /// active treatment permit for the type (organisations included), with their encryption keys.
    /// With `custodian`, the custodian organisation too (it holds every version's key in escrow).
    public func recipients(patient: String, resourceType: String, custodian: String? = nil) throws(LedgerError) -> [Principal] {
        guard let p = try principal(patient), p.role == .patient else { throw LedgerError("not_found", "no patient \(patient)") }
        var out = [p]
        if let custodian {
            guard let c = try principal(custodian), c.role == .organisation else { throw LedgerError("unknown_custodian", "\(custodian) is not a registered organisation") }
            out.append(c)
        }
        let grants = try grants(patient: patient)
        for g in grants where g.active && g.permit {
            guard let grantee = try principal(g.grantee) else { continue }
            // A care team's members read with their own keys.
            var candidates = [grantee]
            if grantee.role == .careteam {
                candidates = []
                for did in grantee.members { if let member = try principal(did) { candidates.append(member) } }
            }
            for candidate in candidates where !out.contains(where: { $0.did == candidate.did }) {
                if ConsentPolicy.mayReceiveKeys(
                    did: candidate.did, groups: candidate.groups, patient: patient, resourceType: resourceType, grants: grants,
                    time: Int64(node.now))
                {
                    out.append(candidate)
                }
            }
        }
        return out
    }

    /// Whether `did` reviews the break-the-glass accesses of `organisation`'s people: the organisation's
    /// own key, or one of its practitioners with the `privacy-officer` duty.
    public func isPrivacyOfficer(_ did: String, of organisation: String) throws(LedgerError) -> Bool {
        if did == organisation { return try principal(did)?.role == .organisation }
        guard let p = try principal(did) else { return false }
        return p.organisation == organisation && p.duties.contains("privacy-officer")
    }

    /// The break-the-glass accesses by `organisation`'s people, for its privacy officers to review:
    /// patient, access index, reader, reason, records, when, and the review status (pending first).
    public func breakGlassReviews(organisation: String, requesterDID: String, pendingOnly: Bool) throws -> [JSONValue] {
        guard try isPrivacyOfficer(requesterDID, of: organisation) else {
            throw LedgerError("forbidden", "break-the-glass reviews are for the organisation and its privacy officers")
        }
        var out: [JSONValue] = []
        for key in try node.store.stateKeys(prefix: "audit/review/", limit: 100_000) {
            guard let review = try json(key), let reader = review["reader"]?.stringValue,
                try principal(reader)?.organisation == organisation
            else { continue }
            let status = review["status"]?.stringValue ?? "pending"
            if pendingOnly && status != "pending" { continue }
            // audit/review/<patient>/<index>
            let parts = key.split(separator: "/").map(String.init)
            guard parts.count == 4, let index = Int64(parts[3]) else { continue }
            let event = try json(AuditContract.eventKey(patient: parts[2], index: index))
            var o: [String: JSONValue] = [
                "patient": .string(parts[2]), "index": .int(index), "reader": .string(reader), "status": .string(status),
                "reason": event?["reason"] ?? .null, "records": event?["records"] ?? .array([]), "time": event?["time"] ?? .null,
                "until": event?["until"] ?? .null,
            ]
            if status != "pending" {
                o["reviewedBy"] = review["reviewedBy"] ?? .null
                o["note"] = review["note"] ?? .null
            }
            out.append(.object(o))
        }
        return out.sorted { ($0["status"] == .string("pending") ? 0 : 1, $0["time"]?.intValue ?? 0) < ($1["status"] == .string("pending") ? 0 : 1, $1["time"]?.intValue ?? 0) }
    }

    /// Whether a committed event concerns `did`: her records, her consents (as patient or grantee),
    /// accesses to her data and break-the-glass alerts — for the patient and her delegates; a new
    /// record also for the grantees whose consent covers its type; a break-the-glass alert also for
    /// the reader's organisation and its privacy officers.
    public func concerns(_ event: JSONValue, did: String) -> Bool {
        if event["type"]?.stringValue == "break-glass", let reader = event["reader"]?.stringValue,
            let organisation = (try? principal(reader))??.organisation, (try? isPrivacyOfficer(did, of: organisation)) == true
        {
            return true
        }
        if event["type"]?.stringValue == "supply.alert" {
            let recipients = event["recipients"]?.arrayValue ?? []
            if recipients.contains(.string(did)) { return true }
            guard let organisation = (try? principal(did))??.organisation else { return false }
            return recipients.contains(.string(organisation))
        }
        if event["grantee"]?.stringValue == did || event["did"]?.stringValue == did || event["prescriber"]?.stringValue == did { return true }
        guard let patient = event["patient"]?.stringValue else { return false }
        if patient == did { return true }
        // A key recovery's news: to its requester and to the patient's guardians.
        if event["type"]?.stringValue?.hasPrefix("recovery.") == true {
            if event["requester"]?.stringValue == did { return true }
            if let setup = node.stateValue(forKey: RecoveryContract.key(patient)), (try? JSONValue.parse(setup))?["shares"]?[did] != nil { return true }
        }
        guard let grants = try? grants(patient: patient) else { return false }
        let now = Int64(node.now)
        // A delegate: the patient's events, those about a record only within her delegation's types.
        if ConsentPolicy.mayActFor(patient: patient, actor: did, grants: grants, time: now, resourceType: event["resourceType"]?.stringValue) { return true }
        // A new record of a type her consent lets a grantee read (for treatment) is news to the grantee too.
        if event["type"]?.stringValue == "record.written", let type = event["resourceType"]?.stringValue {
            let groups = (try? principal(did))??.groups ?? []
            return ConsentPolicy.evaluate(grants: grants, patient: patient, reader: did, readerGroups: groups, purpose: "treatment", resourceType: type, time: now).permitted
        }
        return false
    }
}

/// A cache of parsed record entries keyed by state key, checked against the current state bytes.
final class ParsedRecords: Sendable {
    let entries = ParsedStateCache<RecordEntry>(capacity: 100_000)
    /// Parsed key envelopes by salted hash (their blobs are immutable), and the hashes erasure destroyed:
    /// a parse that finishes after the erasure is not kept.
    private let envelopes = Mutex<(parsed: [Hash: [String: WrappedKey]], destroyed: Set<Hash>)>(([:], []))

    func envelope(_ hash: Hash) -> [String: WrappedKey]? { envelopes.withLock { $0.parsed[hash] } }

    func store(envelope hash: Hash, _ keys: [String: WrappedKey]) {
        envelopes.withLock { e in
            guard !e.destroyed.contains(hash) else { return }
            if e.parsed.count > 200_000 { e.parsed.removeAll(keepingCapacity: true) }
            e.parsed[hash] = keys
        }
    }

    func forget(envelope hash: Hash) {
        envelopes.withLock { e in
            e.parsed.removeValue(forKey: hash)
            if e.destroyed.count < 1_000_000 { e.destroyed.insert(hash) }
        }
    }
}

