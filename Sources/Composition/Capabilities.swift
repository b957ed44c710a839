import ContractKit
import NotaryContract
import RecordsContract
import RecoveryContract
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
