import ContractKit
import Records
import RecordsContract
import Server

extension ContractSet {
    /// The records capability's contracts (consent, records, audit) beside the kernel's: a records test's
    /// chain runs no other capability's.
    static let records = ContractSet { operators in [ConsentContract(), RecordsContract(), AuditContract(operators: operators)] }
}

/// The records capability alone on a records test's node.
let recordsAlone: CapabilityList = { host in [RecordsCapability(host: host)] }

extension LedgerAPI {
    /// The records service of the node's records capability.
    var records: RecordsService { capability(RecordsCapability.self)!.records }
}
