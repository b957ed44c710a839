import Hummingbird
import LedgerCore
import Node

/// A capability the node hosts beside the kernel: what it adds to the HTTP host (its contracts come
/// through the `ContractSet`). The executable's one list (`Composition`) names every capability;
/// no kernel file names one. Every requirement but the routes has a default that adds nothing.
public protocol NodeCapability: Sendable {
    /// The OpenAPI entries of its routes (the document is the kernel's entries and these).
    var openAPIRoutes: [OpenAPIRoute] { get }
    /// Adds its routes to the node's router; `api` is the host (authentication, error answers, the node).
    func addRoutes(to router: Router<LedgerRequestContext>, api: LedgerAPI)
    /// For a private state entry of its contracts: the patients it concerns and who else may read it
    /// (beyond them, their delegates and consortium members); nil when the key is not its own.
    func audience(ofStateKey key: String, node: LedgerNode) throws -> StateAudience?
    /// For a transaction of its contracts concerning `patients`: who else may read it; nil when it is not its own.
    func parties(ofTransaction tx: Transaction, patients: Set<String>, node: LedgerNode) throws -> Set<String>?
    /// Whether a committed event concerns `did` (nil: not this capability's event).
    func concerns(_ event: JSONValue, did: String, node: LedgerNode) -> Bool?
    /// Whether a committed transaction of its contracts claims the vault blob `hash` that `uploader` uploaded.
    func claims(upload hash: Hash, uploader: String, node: LedgerNode) -> Bool
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
    public func audience(ofStateKey key: String, node: LedgerNode) throws -> StateAudience? { nil }
    public func parties(ofTransaction tx: Transaction, patients: Set<String>, node: LedgerNode) throws -> Set<String>? { nil }
    public func concerns(_ event: JSONValue, did: String, node: LedgerNode) -> Bool? { nil }
    public func claims(upload hash: Hash, uploader: String, node: LedgerNode) -> Bool { false }
}
