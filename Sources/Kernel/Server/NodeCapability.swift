import App
import Hummingbird
import LedgerCore
import Node
import ServiceLifecycle
import Store

/// A capability the node hosts beside the kernel: what it adds to the HTTP host (its contracts come
/// through the `ContractSet`). The executable's one list (`Composition`) names every capability;
/// no kernel file names one. Every requirement but the routes has a default that adds nothing.
public protocol NodeCapability: Sendable {
    /// The OpenAPI entries of its routes (the document is the kernel's entries and these).
    var openAPIRoutes: [OpenAPIRoute] { get }
    /// Its pages of the web app and the files they load (served under `/app/`).
    var appContribution: AppContribution { get }
    /// Adds its routes to the node's router; `api` is the host (authentication, error answers, the node).
    func addRoutes(to router: Router<LedgerRequestContext>, api: LedgerAPI)
    /// Routes answered on the connection's event loop before the router (`FastRoute`): for the few
    /// read-only requests whose hops between threads cost more than their work.
    func fastRoutes(api: LedgerAPI) -> [FastRoute.Route]
    /// Its background services, run in the node's service group (stopped on a graceful shutdown).
    func services(api: LedgerAPI) -> [any Service]
    /// For a private state entry of its contracts (its current value parsed, if JSON): the patients it
    /// concerns and who else may read it (beyond them, their delegates and consortium members); nil
    /// when the key is not its own. (A value's `patient` field names a patient of every entry.)
    func audience(ofStateKey key: String, value: JSONValue?, node: LedgerNode) throws -> Audience?
    /// For a transaction of its private contracts: the patients it concerns and who else may read it;
    /// nil when it is not its own. (A payload's `patient` field names a patient of every transaction;
    /// one that names none concerns its author.)
    func audience(ofTransaction tx: Transaction, node: LedgerNode) throws -> Audience?
    /// Whether a committed event concerns `did` by this capability's rules (an event reaches `did` when
    /// one capability says so).
    func concerns(_ event: JSONValue, did: String, node: LedgerNode) -> Bool
    /// Whether a committed transaction of its contracts claims the vault blob `hash` that `uploader` uploaded.
    func claims(upload hash: Hash, uploader: String, node: LedgerNode) -> Bool
    /// Whether a peer may be served the vault blob `hash` as the content of `owner` (`GET /v1/sync/vault`):
    /// nil when `owner.kind` is not its own.
    func serves(blob hash: Hash, as owner: VaultOwner, node: LedgerNode) throws -> Bool?
    /// Its entries in the FHIR CapabilityStatement (`rest.resource`) and the system interactions it
    /// serves (`transaction`…), on this node.
    func fhirResources(api: LedgerAPI) -> [JSONValue]
    func fhirInteractions(api: LedgerAPI) -> [String]
    /// Whether `actor` may act for `patient` (a delegate), for a record of `resourceType` when given:
    /// the read policy serves a patient's private data to her and to those. False when it keeps no delegations.
    func mayActFor(patient: String, actor: String, resourceType: String?, node: LedgerNode) throws -> Bool
    /// The kinds of vault blob owner it answers for (`serves(blob:as:node:)`), each with what its id names (OpenAPI).
    var vaultOwners: [(kind: String, description: String)] { get }
    /// On a development node's first start: registers what its demo needs (keys in `keys`, the directory of demo key files).
    func setUpDemo(node: LedgerNode, keys: String) async throws
}

/// Who a private transaction or state entry concerns (its patients) and who else may read it; for a
/// health record, its resource type (a delegate reads it only when her delegation covers the type).
public struct Audience: Sendable {
    public var patients: Set<String>
    public var parties: Set<String>
    public var resourceType: String?

    public init(patients: Set<String>, parties: Set<String>, resourceType: String? = nil) {
        self.patients = patients
        self.parties = parties
        self.resourceType = resourceType
    }

    mutating func add(_ other: Audience) {
        patients.formUnion(other.patients)
        parties.formUnion(other.parties)
        resourceType = resourceType ?? other.resourceType
    }
}

extension NodeCapability {
    public var appContribution: AppContribution { .none }
    public func fastRoutes(api: LedgerAPI) -> [FastRoute.Route] { [] }
    public func services(api: LedgerAPI) -> [any Service] { [] }
    public func audience(ofStateKey key: String, value: JSONValue?, node: LedgerNode) throws -> Audience? { nil }
    public func audience(ofTransaction tx: Transaction, node: LedgerNode) throws -> Audience? { nil }
    public func concerns(_ event: JSONValue, did: String, node: LedgerNode) -> Bool { false }
    public func claims(upload hash: Hash, uploader: String, node: LedgerNode) -> Bool { false }
    public func serves(blob hash: Hash, as owner: VaultOwner, node: LedgerNode) throws -> Bool? { nil }
    public var vaultOwners: [(kind: String, description: String)] { [] }
    public func fhirResources(api: LedgerAPI) -> [JSONValue] { [] }
    public func fhirInteractions(api: LedgerAPI) -> [String] { [] }
    public func mayActFor(patient: String, actor: String, resourceType: String?, node: LedgerNode) throws -> Bool { false }
    public func setUpDemo(node: LedgerNode, keys: String) async throws {}
}

/// What a capability is built from on a node: the node, its vault, the server's settings (its own among
/// them), and the organisations whose keys the node holds.
public struct CapabilityHost: Sendable {
    public let node: LedgerNode
    public let vault: Vault
    public let configuration: ServerConfiguration
    /// Every organisation whose keys the node holds, by did (the acting one among them).
    public let organisations: [String: ActingOrganisation]
}

/// The settings of the hosted capabilities, each capability's under its own settings type: the node's
/// command line fills them in, the capability reads its own when it is built.
public struct CapabilitySettings: Sendable {
    private var values: [ObjectIdentifier: any Sendable] = [:]

    public init() {}

    public subscript<T: Sendable>(_ type: T.Type) -> T? {
        get { values[ObjectIdentifier(type)] as? T }
        set { values[ObjectIdentifier(type)] = newValue }
    }
}

/// Builds a node's capabilities (the composition's one list) once the kernel's host is ready.
public typealias CapabilityList = @Sendable (CapabilityHost) throws -> [any NodeCapability]
