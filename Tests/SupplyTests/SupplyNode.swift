import ContractKit
import Records
import Server
import Supply
import SupplyContract

extension ContractSet {
    /// The supply contract beside the kernel's: a contract-level supply test's chain runs no other capability's.
    static let supply = ContractSet { operators in [SupplyContract(operators: operators)] }
}

extension LedgerAPI {
    /// The supply-chain service of the node's supply capability.
    var supply: SupplyService { capability(SupplyCapability.self)!.supply }

    /// The records service of the node's records capability (where a dispense writes the patient's record).
    var records: RecordsService { capability(RecordsCapability.self)!.records }
}
