import App
import ContractKit
import Foundation
import Hummingbird
import LedgerCore
import Node
import RecordsContract
import Server
import ServiceLifecycle
import Standards
import Store

/// Patient records on a node: health records, consent and the audit trail (`/v1/records`,
/// `/v1/patients`, break-the-glass reports, the FHIR facade's resources), the denied-reads flush,
/// crypto-shredding of erased records and the custodian's replication, who may read a patient's
/// private entries (she, her delegates, the parties named), who is told of her events, and the
/// record versions' blobs as claimed uploads and as content served to peers.
public struct RecordsCapability: NodeCapability {
    public let records: RecordsService

    /// The records capability's settings (`ServerConfiguration.capabilities[RecordsCapability.Settings.self]`).
    public struct Settings: Sendable {
        /// How long a break-the-glass access stays open.
        public var breakGlassWindowMillis: Int64 = 4 * 3600 * 1000
        /// Denied reads of one patient's data by one reader: the first `deniedReadsRecorded` of each window
        /// of `deniedReadsWindowMillis` are access events of their own, later ones are refused at once (429)
        /// and recorded as one aggregated event after the window.
        public var deniedReadsRecorded = 5
        public var deniedReadsWindowMillis: Int64 = 10 * 60_000

        public init() {}
    }

    public init(host: CapabilityHost) {
        let settings = host.configuration.capabilities[Settings.self] ?? Settings()
        records = RecordsService(
            node: host.node, vault: host.vault, breakGlassWindowMillis: settings.breakGlassWindowMillis,
            custodianKeys: host.organisations.mapValues(\.encryption), custodianSigners: host.organisations.mapValues(\.signing),
            deniedReads: DeniedReads(windowMillis: settings.deniedReadsWindowMillis, recorded: settings.deniedReadsRecorded))
        records.installErasure()
        records.installCustodianReplication()
        records.installCustodianRewrap()
    }

    public var openAPIRoutes: [OpenAPIRoute] { RecordsRoutes.all }

    /// The patient's pages of the web app (`Service/Web`, served under `/app/records/`).
    public var appContribution: AppContribution {
        let module = "/app/records/records.js"
        return AppContribution(
            pages: [
                AppPage(id: "timeline", title: "My record", roles: ["patient"], module: module,
                        summary: "your health record, decrypted on this device", home: true),
                AppPage(id: "consents", title: "Who may see", roles: ["patient"], module: module,
                        summary: "grant and revoke access to your records"),
                AppPage(id: "access-log", title: "Who looked", roles: ["patient"], module: module,
                        summary: "every access to your records, refusals and emergencies included"),
                AppPage(id: "keys", title: "My keys", roles: ["patient"], module: "/app/records/keys.js",
                        summary: "your keys and their history; replace them if they may be in someone else's hands"),
                AppPage(id: "disclosures", title: "Disclosures", roles: ["patient"], module: module,
                        summary: "the accounting of disclosures: what was released, to whom, why"),
                AppPage(id: "endorsements", title: "Endorsements", roles: ["practitioner"], module: "/app/records/clinician.js",
                        summary: "record versions waiting for your endorsement"),
                AppPage(id: "reviews", title: "Reviews", roles: ["privacy-officer", "organisation"], module: "/app/records/review.js",
                        summary: "emergency reads by your organisation's people, to review"),
                AppPage(id: "patients", title: "Patients", roles: ["practitioner"], module: "/app/records/clinician.js",
                        summary: "a patient's record under her consent, or by breaking the glass; write an Observation or a Condition", home: true),
            ], files: Self.webFiles)
    }

    static let webFiles = AppContribution.files(in: .module, prefix: "records")

    func fhir(_ api: LedgerAPI) -> FHIRAPI { FHIRAPI(api: api, records: records, acting: api.acting) }

    public func addRoutes(to router: Router<LedgerRequestContext>, api: LedgerAPI) {
        RecordsAPI(api: api, records: records).register(on: router)
        fhir(api).register(on: router)
    }

    public func services(api: LedgerAPI) -> [any Service] { [DeniedReadsService(records: records)] }

    public func fhirResources(api: LedgerAPI) -> [JSONValue] { fhir(api).capabilityResources() }

    /// Transaction Bundles (POST /fhir) are served where the node acts for an organisation.
    public func fhirInteractions(api: LedgerAPI) -> [String] { api.acting == nil ? [] : ["transaction"] }

    /// Writes a new clinical resource (version 1) to its patient's record as `user` of `acting`, through
    /// the same path as the FHIR facade (consent, references, sealing, the custodian's escrow).
    public func write(_ resource: JSONValue, id: String, user: String, acting: ActingOrganisation, host: LedgerAPI) async throws {
        _ = try await FHIRRecords(fhir: FHIRAPI(api: host, records: records, acting: acting), acting: acting).write(resource, id: id, version: 1, user: user)
    }

    /// Reads the current version of record `id` as `acting` (an organisation this node acts for) for
    /// `purpose`, consent-checked and audited like any read, and opens it with the organisation's key.
    public func readResource(_ id: String, as acting: ActingOrganisation, purpose: String, host: LedgerAPI) async throws -> JSONValue {
        let facade = FHIRRecords(fhir: FHIRAPI(api: host, records: records, acting: acting), acting: acting)
        return try facade.open(try await records.read(recordID: id, readerDID: acting.did, purpose: purpose))
    }

    static let contracts: Set<String> = ["records", "consent", "audit"]

    /// Who a records, consent or audit transaction concerns: the patients of its puts, its record or
    /// its grant; the grantee or reader it names; for a record, its resource type.
    public func audience(ofTransaction tx: Transaction, node: LedgerNode) throws -> Audience? {
        guard Self.contracts.contains(tx.contract) else { return nil }
        let p = tx.payload
        var audience = Audience(patients: [], parties: [])
        for put in p["puts"]?.arrayValue ?? [] { if let patient = put["patient"]?.stringValue { audience.patients.insert(patient) } }
        var resourceType = p["resourceType"]?.stringValue
        if let id = p["recordId"]?.stringValue, let entry = try node.stateJSON(RecordEntry.key(id)), let patient = entry["patient"]?.stringValue {
            audience.patients.insert(patient)
            resourceType = resourceType ?? entry["resourceType"]?.stringValue
        }
        if let grant = p["grant"]?.stringValue, let patient = try node.stateJSON(ConsentGrant.idKey(grant))?["patient"]?.stringValue {
            audience.patients.insert(patient)
        }
        for key in ["grantee", "reader"] { if let d = p[key]?.stringValue { audience.parties.insert(d) } }
        if tx.contract == "records" { audience.resourceType = resourceType }
        return audience
    }

    /// Who a `records/`, `consent/` or `audit/` entry concerns, by its key and value.
    public func audience(ofStateKey key: String, value: JSONValue?, node: LedgerNode) throws -> Audience? {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard Self.contracts.contains(parts[0]) else { return nil }
        var audience = Audience(patients: [], parties: [])
        switch (parts[0], parts.count > 1 ? parts[1] : "") {
        case ("records", "by-patient") where parts.count > 2: audience.patients.insert(parts[2])
        case ("consent", "by-id"): break
        case ("audit", "break-glass") where parts.count > 3:
            audience.patients.insert(parts[2])
            audience.parties.insert(parts[3])
        case ("audit", "review") where parts.count > 2, ("audit", "erasure") where parts.count > 2: audience.patients.insert(parts[2])
        default: if parts[0] != "records", parts.count > 1 { audience.patients.insert(parts[1]) }
        }
        for field in ["grantee", "reader"] { if let d = value?[field]?.stringValue { audience.parties.insert(d) } }
        // A record's entry is served to a delegate only within her delegation's types.
        if parts[0] == "records" { audience.resourceType = value?["resourceType"]?.stringValue }
        return audience
    }

    /// A delegate by the patient's consent grants (within her delegation's types for a record).
    public func mayActFor(patient: String, actor: String, resourceType: String?, node: LedgerNode) throws -> Bool {
        ConsentPolicy.mayActFor(patient: patient, actor: actor, grants: try records.grants(patient: patient), time: Int64(node.now), resourceType: resourceType)
    }

    public func concerns(_ event: JSONValue, did: String, node: LedgerNode) -> Bool { records.concerns(event, did: did) }

    public func claims(upload hash: Hash, uploader: String, node: LedgerNode) -> Bool { records.claimsUpload(hash, uploader: uploader) }

    public var vaultOwners: [(kind: String, description: String)] { [(VaultOwner.recordKind, "the record whose version it is")] }

    /// A version's blob of a record that is not erased.
    public func serves(blob hash: Hash, as owner: VaultOwner, node: LedgerNode) throws -> Bool? {
        guard owner.kind == VaultOwner.recordKind else { return nil }
        return try records.record(owner.id).map { r in r.erasedAtHeight == nil && r.versions.contains { $0.blobs.contains(hash.hex) } } ?? false
    }

    /// Records on chain, once a minute, the aggregates of the windows of denied reads that have closed.
    struct DeniedReadsService: Service {
        let records: RecordsService
        func run() async throws {
            await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(60))
                    await records.flushDeniedReads()
                }
            }
        }
    }
}

extension VaultOwner {
    static let recordKind = "record"

    /// A version's blob of record `id`.
    static func record(_ id: String) -> VaultOwner { VaultOwner(kind: recordKind, id: id) }
}
