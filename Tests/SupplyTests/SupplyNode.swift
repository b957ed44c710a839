import ContractKit
import Records
import Server
import Supply
import SupplyContract

extension LedgerAPI {
    /// The supply-chain service of the node's supply capability.
    var supply: SupplyService { capability(SupplyCapability.self)!.supply }

    /// The records service of the node's records capability (where a dispense writes the patient's record).
    var records: RecordsService { capability(RecordsCapability.self)!.records }
}
