import ContractKit
import NotaryContract
import RecordsContract
import Recovery
import RecoveryContract
import Server
import SupplyContract

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

/// The capabilities a node of this release hosts beside the kernel (their routes, privacy rules,
/// event audience, vault claims): the other half of the one list.
public enum HostedCapabilities {
    public static let careLedger: [any NodeCapability] = [RecoveryCapability()]
}
