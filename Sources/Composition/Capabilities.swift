import CLIKit
import Claims
import ClaimsContract
import ContractKit
import LedgerCore
import Node
import NotaryContract
import Records
import RecordsContract
import Recovery
import RecoveryContract
import Server
import Supply
import SupplyContract

/// One capability of this release, as the executable composes it: its contracts (what executes in a
/// block), what it hosts on a node (routes, services, privacy rules…; built once the kernel's host
/// is ready, given the capabilities built before it), and its command group.
public struct Capability: Sendable {
    public let name: String
    let contracts: ContractSet
    let node: (@Sendable (_ host: CapabilityHost, _ built: [any NodeCapability]) throws -> any NodeCapability)?
    public let commands: (any CommandCapability.Type)?

    public init(
        _ name: String, contracts: ContractSet,
        node: (@Sendable (_ host: CapabilityHost, _ built: [any NodeCapability]) throws -> any NodeCapability)? = nil,
        commands: (any CommandCapability.Type)? = nil
    ) {
        self.name = name
        self.contracts = contracts
        self.node = node
        self.commands = commands
    }
}

extension Capability {
    /// The one list of this release's capabilities: the contract registry, the node's routes, OpenAPI
    /// document, read policy, event audience and services, the auditor and the command line's help
    /// are all built from it. A capability that reads or writes through another is given that one's
    /// declared interface here (`built`: the capabilities listed before it).
    public static let careLedger: [Capability] = [
        Capability("notary", contracts: .notary),
        Capability("records", contracts: .records, node: { host, _ in RecordsCapability(host: host) }, commands: RecordsCommands.self),
        Capability("recovery", contracts: .recovery, node: { _, _ in RecoveryCapability() }, commands: RecoveryCommands.self),
        Capability(
            "supply", contracts: .supply, node: { host, built in try SupplyCapability(host: host, records: try built.first(RecordsCapability.self)) },
            commands: SupplyCommands.self),
        Capability(
            "claims", contracts: .claims(evidence: ClaimsFromRecords()),
            node: { _, built in ClaimsCapability(records: try built.first(RecordsCapability.self)) }, commands: ClaimsCommands.self),
    ]
}

extension [any NodeCapability] {
    /// The capability of type `C` among those built, which a capability listed later depends on.
    public func first<C: NodeCapability>(_ type: C.Type) throws -> C {
        guard let found = lazy.compactMap({ $0 as? C }).first else {
            throw LedgerError("internal_error", "capability \(C.self) must be listed before the capabilities that use it")
        }
        return found
    }
}

extension ContractSet {
    /// The contracts of this release's capabilities, in the list's order.
    public static let careLedger = ContractSet(joining: Capability.careLedger.map(\.contracts))
}

extension ContractRegistry {
    /// The registry of a chain with this release's capabilities (`governance` in a consortium).
    public static func standard(operators: Set<String>, governance: GovernanceContract? = nil) -> ContractRegistry {
        ContractSet.careLedger.registry(operators: operators, governance: governance)
    }
}

/// The capabilities a node of this release hosts beside the kernel, built on the node's host.
public enum HostedCapabilities {
    public static let careLedger: CapabilityList = { host in
        var built: [any NodeCapability] = []
        for capability in Capability.careLedger { if let make = capability.node { built.append(try make(host, built)) } }
        return built
    }
}

/// The records capability as the supply chain's `DispenseRecording`: the FHIR write path.
extension RecordsCapability: DispenseRecording {
    public func write(medicationDispense resource: JSONValue, id: String, user: String, acting: ActingOrganisation, host: LedgerAPI) async throws {
        try await write(resource, id: id, user: user, acting: acting, host: host)
    }
}

/// The records capability as the claims capability's `ClaimRecords`: the sealed Claim, read for payment.
extension RecordsCapability: ClaimRecords {
    public func read(claim id: String, as reader: ActingOrganisation, host: LedgerAPI) async throws -> JSONValue {
        try await readResource(id, as: reader, purpose: "payment", host: host)
    }
}

/// What the claims contract reads of the records capability: the sealed Claim record and the
/// patient's consent for payment (the pure readers of RecordsContract).
public struct ClaimsFromRecords: ClaimsEvidence {
    public init() {}

    public func record(_ id: String, state: (String) throws(LedgerError) -> JSONValue?) throws(LedgerError)
        -> (patient: String, resourceType: String, custodian: String, authors: [String])?
    {
        guard let json = try state(RecordEntry.key(id)) else { return nil }
        let entry = try RecordEntry(json: json)
        return (entry.patient, entry.resourceType, entry.custodian, entry.versions.map(\.author))
    }

    public func permitsPayment(
        patient: String, insurer: String, resourceType: String, time: Int64, state: (String) throws(LedgerError) -> JSONValue?
    ) throws(LedgerError) -> Bool {
        let grants = try ConsentPolicy.grants(patient: patient, state: state)
        return ConsentPolicy.evaluate(grants: grants, patient: patient, reader: insurer, readerGroups: [], purpose: "payment", resourceType: resourceType, time: time)
            .permitted
    }
}
