import Hummingbird
import LedgerCore
import Node
import Prometheus
import ServiceLifecycle
import Store

/// A capability the node hosts beside the kernel: what it adds to the HTTP host (its contracts come
/// through the `ContractSet`). The executable's one list (`Composition`) names every capability;
/// no kernel file names one. Every requirement but the routes has a default that adds nothing.
public protocol NodeCapability: Sendable {
    /// The OpenAPI entries of its routes (the document is the kernel's entries and these).
    var openAPIRoutes: [OpenAPIRoute] { get }
    /// Adds its routes to the node's router; `api` is the host (authentication, error answers, the node).
    func addRoutes(to router: Router<LedgerRequestContext>, api: LedgerAPI)
    /// Routes answered on the connection's event loop before the router (`FastRoute`): for the few
    /// read-only requests whose hops between threads cost more than their work.
    func fastRoutes(api: LedgerAPI) -> [FastRoute.Route]
    /// Its background services, run in the node's service group (stopped on a graceful shutdown).
    func services(api: LedgerAPI) -> [any Service]
    /// For a private state entry of its contracts: the patients it concerns and who else may read it
    /// (beyond them, their delegates and consortium members); nil when the key is not its own.
    func audience(ofStateKey key: String, node: LedgerNode) throws -> StateAudience?
    /// For a transaction of its contracts concerning `patients`: who else may read it; nil when it is not its own.
    func parties(ofTransaction tx: Transaction, patients: Set<String>, node: LedgerNode) throws -> Set<String>?
    /// Whether a committed event concerns `did` (nil: not this capability's event).
    func concerns(_ event: JSONValue, did: String, node: LedgerNode) -> Bool?
    /// Whether a committed transaction of its contracts claims the vault blob `hash` that `uploader` uploaded.
    func claims(upload hash: Hash, uploader: String, node: LedgerNode) -> Bool
    /// Whether a peer may be served the vault blob `hash` as the content of `owner` (`GET /v1/sync/vault`):
    /// nil when `owner.kind` is not its own.
    func serves(blob hash: Hash, as owner: VaultOwner, node: LedgerNode) throws -> Bool?
    /// The kinds of vault blob owner it answers for (`serves(blob:as:node:)`), each with what its id names (OpenAPI).
    var vaultOwners: [(kind: String, description: String)] { get }
    /// On a development node's first start: registers what its demo needs (keys in `keys`, the directory of demo key files).
    func setUpDemo(node: LedgerNode, keys: String) async throws
}

/// Who a private state entry concerns (its patients) and who else may read it.
public struct StateAudience: Sendable {
    public var patients: Set<String>
    public var parties: Set<String>

    public init(patients: Set<String>, parties: Set<String>) {
        self.patients = patients
        self.parties = parties
    }
}

extension NodeCapability {
    public func fastRoutes(api: LedgerAPI) -> [FastRoute.Route] { [] }
    public func services(api: LedgerAPI) -> [any Service] { [] }
    public func audience(ofStateKey key: String, node: LedgerNode) throws -> StateAudience? { nil }
    public func parties(ofTransaction tx: Transaction, patients: Set<String>, node: LedgerNode) throws -> Set<String>? { nil }
    public func concerns(_ event: JSONValue, did: String, node: LedgerNode) -> Bool? { nil }
    public func claims(upload hash: Hash, uploader: String, node: LedgerNode) -> Bool { false }
    public func serves(blob hash: Hash, as owner: VaultOwner, node: LedgerNode) throws -> Bool? { nil }
    public var vaultOwners: [(kind: String, description: String)] { [] }
    public func setUpDemo(node: LedgerNode, keys: String) async throws {}
}

/// What a capability is built from on a node: the node, its vault, the server's settings and metrics,
/// and the organisations whose keys the node holds.
public struct CapabilityHost: Sendable {
    public let node: LedgerNode
    public let vault: Vault
    public let configuration: ServerConfiguration
    public let registry: PrometheusCollectorRegistry
    /// The organisation the node acts for first (the FHIR facade's), if any.
    public let acting: ActingOrganisation?
    /// Every organisation whose keys the node holds, by did (the acting one among them).
    public let organisations: [String: ActingOrganisation]
}

/// Builds a node's capabilities (the composition's one list) once the kernel's host is ready.
public typealias CapabilityList = @Sendable (CapabilityHost) throws -> [any NodeCapability]
