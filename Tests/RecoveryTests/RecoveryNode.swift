import ContractKit
import Recovery
import RecoveryContract
import Server

/// The recovery capability alone on a recovery test's node.
let recoveryAlone: CapabilityList = { _ in [RecoveryCapability()] }
