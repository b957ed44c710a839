import ContractKit
import Recovery
import RecoveryContract
import Server

extension ContractSet {
    /// The recovery contract beside the kernel's: a recovery test's chain runs no other capability's.
    static let recovery = ContractSet { _ in [RecoveryContract()] }
}

/// The recovery capability alone on a recovery test's node.
let recoveryAlone: CapabilityList = { _ in [RecoveryCapability()] }
