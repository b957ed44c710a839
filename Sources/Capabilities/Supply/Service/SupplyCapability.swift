import App
import ContractKit
import Foundation
import Hummingbird
import LedgerCore
import Node
import Server
import ServiceLifecycle
import Store
import SupplyContract

/// What the supply chain needs of the patient-records capability (its declared reader-writer, as a
/// Cosmos module declares its expected keepers): adding the MedicationDispense of a dispensed pack to
/// the patient's record, as a pharmacist of the dispensing organisation, when her consent lets the
/// pharmacy write it. The composition passes the records capability's implementation in.
public protocol DispenseRecording: Sendable {
    /// Writes `resource` (a valid MedicationDispense) under `id`; throws the refusal (`consent_denied`, …).
    func write(medicationDispense resource: JSONValue, id: String, user: String, acting: ActingOrganisation, host: LedgerAPI) async throws
}

/// The pharmaceutical supply chain on a node: `/v1/supply` (EPCIS ingestion, pack verification and
/// dispensing, recalls, reports, notices, alerts), single-scan verification on the event loop, the
/// loop that records alerts and fans recalls out, who is told of an alert, sealed EPCIS documents
/// served to peers, and the demo consortium's supply-chain parties.
public struct SupplyCapability: NodeCapability {
    public let supply: SupplyService
    let records: any DispenseRecording

    /// `records`: how a dispense reaches the patient's record (the records capability).
    public init(host: CapabilityHost, records: any DispenseRecording) throws {
        supply = try SupplyService(node: host.node, vault: host.vault, secret: host.node.secret)
        self.records = records
    }

    func api(_ api: LedgerAPI) -> SupplyAPI { SupplyAPI(api: api, supply: supply, records: records) }

    /// The pharmacist's pages of the web app (`Service/Web`, served under `/app/supply/`).
    public var appContribution: AppContribution {
        let module = "/app/supply/supply.js"
        return AppContribution(
            pages: [
                AppPage(id: "scan", title: "Pharmacy", roles: ["organisation", "practitioner"], module: module,
                        summary: "verify a pack before dispensing it, and dispense", home: true),
                AppPage(id: "supply-alerts", title: "Supply alerts", roles: ["organisation"], module: module,
                        summary: "recalls, suspect packs and failed verifications"),
                AppPage(id: "recalls", title: "Recall reports", roles: ["organisation"], module: module,
                        summary: "for a product's MAH and regulators: where every pack of a lot is"),
                AppPage(id: "medicines", title: "My medicines", roles: ["patient"], module: module,
                        summary: "your prescriptions and dispensed packs, each with its recall status"),
            ], files: Self.webFiles)
    }

    static let webFiles = AppContribution.files(in: .module, prefix: "supply")

    public var openAPIRoutes: [OpenAPIRoute] {
        [
            OpenAPIRoute(method: "post", path: "/v1/supply/epcis", summary: "Ingest an EPCIS 2.0 JSON-LD document: all events applied or none, duplicates (same CBV 2.0 event hash) skipped; signed by the caller's organisation (authenticated)",
                parameters: [], responseType: "application/json", hasBody: true),
            OpenAPIRoute(method: "post", path: "/v1/supply/verify", summary: "Verify a scanned pack ({scan, dispense?, patient?, prescriber?}) or up to 1000 ({scans}): EMVS/VRS outcome; dispense decommissions a verified pack in the same step and, with a consenting patient, adds a MedicationDispense to her record (authenticated)",
                parameters: [], responseType: "application/json", hasBody: true,
                body: .object(["oneOf": .array([
                    OpenAPIDocument.object(
                        required: ["scan": OpenAPIDocument.nonEmpty],
                        optional: [
                            "dispense": .object(["type": .string("boolean")]), "patient": OpenAPIDocument.string(pattern: OpenAPIDocument.didPattern),
                            "prescriber": OpenAPIDocument.string(pattern: OpenAPIDocument.didPattern),
                        ]),
                    OpenAPIDocument.object(required: [
                        "scans": .object(["type": .string("array"), "minItems": .int(1), "maxItems": .int(1000), "items": OpenAPIDocument.nonEmpty])
                    ]),
                ])])),
            OpenAPIRoute(method: "post", path: "/v1/supply/recalls", summary: "Recall a lot ({gtin, lot, reason}) as its MAH or a regulator (authenticated)",
                parameters: [], responseType: "application/json", hasBody: true,
                body: OpenAPIDocument.object(required: [
                    "gtin": OpenAPIDocument.string(pattern: "^[0-9]{14}$"), "lot": OpenAPIDocument.string(pattern: "^[!-~]{1,20}$"), "reason": OpenAPIDocument.nonEmpty,
                ])),
            OpenAPIRoute(method: "get", path: "/v1/supply/recalls/report", summary: "Where every pack of a lot is now (MAH or regulator, authenticated)",
                parameters: [("gtin", "query", true, "GTIN-14"), ("lot", "query", true, "batch/lot number")], responseType: "application/json", hasBody: false),
            OpenAPIRoute(method: "get", path: "/v1/supply/documents/{id}", summary: "A sealed EPCIS document for one of its trading partners (the caller or her organisation): ciphertext and the key wrapped for that party, opened on the partner's side (authenticated)",
                parameters: [("id", "path", true, "document id (as the ingestion answered)")], responseType: "application/json", hasBody: false),
            OpenAPIRoute(method: "get", path: "/v1/supply/notices", summary: "Recall notices for the caller as a patient or prescriber of a dispensed pack (kept on the dispensing node only, authenticated)",
                parameters: [], responseType: "application/json", hasBody: false),
            OpenAPIRoute(method: "get", path: "/v1/supply/alerts", summary: "Supply-chain alerts addressed to the caller's organisation, each naming its rule (authenticated)",
                parameters: [], responseType: "application/json", hasBody: false),
        ]
    }

    public func addRoutes(to router: Router<LedgerRequestContext>, api: LedgerAPI) { self.api(api).register(on: router) }

    public func fastRoutes(api: LedgerAPI) -> [FastRoute.Route] {
        let supply = self.api(api)
        return [.init(method: .post, path: "/v1/supply/verify", respond: { supply.fastVerify($0, $1) })]
    }

    public func services(api: LedgerAPI) -> [any Service] { [AlertService(supply: supply)] }

    /// An alert is news to its recipients: the parties it names, and the users of an organisation it names.
    public func concerns(_ event: JSONValue, did: String, node: LedgerNode) -> Bool {
        guard event["type"]?.stringValue == "supply.alert" else { return false }
        let recipients = event["recipients"]?.arrayValue ?? []
        if recipients.contains(.string(did)) { return true }
        guard let organisation = (try? node.principal(did))??.organisation else { return false }
        return recipients.contains(.string(organisation))
    }

    public var vaultOwners: [(kind: String, description: String)] { [(VaultOwner.documentKind, "the EPCIS document it is")] }

    /// A sealed EPCIS document whose metadata on chain names the blob.
    public func serves(blob hash: Hash, as owner: VaultOwner, node: LedgerNode) throws -> Bool? {
        guard owner.kind == VaultOwner.documentKind else { return nil }
        return try node.stateJSON(SupplyState.document(owner.id))?["saltedHash"]?.stringValue == hash.hex
    }

    /// The demo supply-chain organisations: roles, GLNs and GS1 company prefixes (GS1 example numbers).
    public static let demoParties: [(name: String, roles: [String], glns: [String], prefixes: [String])] = [
        ("pharma-co", ["manufacturer", "mah"], ["9506000000008"], ["950600"]),
        ("wholesaler", ["wholesaler"], ["9506000000015"], []),
        ("pharmacy", ["pharmacy"], ["9506000000022"], []),
        ("regulator", ["regulator"], [], []),
    ]

    /// Admits the demo organisations whose key files are in `keys` (registered first) as supply-chain parties.
    public func setUpDemo(node: LedgerNode, keys: String) async throws {
        for org in Self.demoParties {
            let path = "\(keys)/\(org.name).key"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            _ = try await node.submitAsNode(
                contract: "supply", action: "party",
                payload: .object([
                    "party": .string(try KeyFile.load(path).publicKey.did), "roles": .array(org.roles.map { .string($0) }),
                    "glns": .array(org.glns.map { .string($0) }), "companyPrefixes": .array(org.prefixes.map { .string($0) }),
                ]))
        }
    }

    /// Records supply-chain alerts on chain and fans recalls out to the holders.
    struct AlertService: Service {
        let supply: SupplyService
        func run() async throws {
            await cancelWhenGracefulShutdown { await supply.run() }
        }
    }
}

extension VaultOwner {
    static let documentKind = "document"

    /// The blob of sealed EPCIS document `id`.
    static func document(_ id: String) -> VaultOwner { VaultOwner(kind: documentKind, id: id) }
}
