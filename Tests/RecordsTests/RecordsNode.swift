import ContractKit
import Records
import RecordsContract
import Server

/// The records capability alone on a records test's node.
let recordsAlone: CapabilityList = { host in [RecordsCapability(host: host)] }

extension LedgerAPI {
    /// The records service of the node's records capability.
    var records: RecordsService { capability(RecordsCapability.self)!.records }
}
