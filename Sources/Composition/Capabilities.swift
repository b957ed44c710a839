import ContractKit
import NotaryContract
import RecordsContract
import Recovery
import RecoveryContract
import Node
import Records
import Server
import Supply
import SupplyContract
import LedgerCore

extension ContractSet {
    /// The one list of the capabilities' contracts this release runs: notary; records (records,
    /// consent, audit events); recovery; supply chain.
    public static let careLedger = ContractSet { operators in
        [
            NotaryContract(), ConsentContract(), RecordsContract(), AuditContract(operators: operators), RecoveryContract(),
            SupplyContract(operators: operators),
        ]
    }
}

extension ContractRegistry {
    /// The registry of a chain with this release's capabilities (`governance` in a consortium).
    public static func standard(operators: Set<String>, governance: GovernanceContract? = nil) -> ContractRegistry {
        ContractSet.careLedger.registry(operators: operators, governance: governance)
    }
}

/// The capabilities a node of this release hosts beside the kernel (their routes, services, privacy
/// rules, event audience, vault claims), built on the node's host: the other half of the one list.
/// A capability that reads or writes through another is given that one's declared interface here.
public enum HostedCapabilities {
    public static let careLedger: CapabilityList = { host in
        let records = RecordsCapability(host: host)
        return [
            records,
            RecoveryCapability(),
            try SupplyCapability(host: host, records: records),
        ]
    }
}

/// The records capability as the supply chain's `DispenseRecording`: the FHIR write path.
extension RecordsCapability: DispenseRecording {
    public func write(medicationDispense resource: JSONValue, id: String, user: String, acting: ActingOrganisation, host: LedgerAPI) async throws {
        try await write(resource, id: id, user: user, acting: acting, host: host)
    }
}
