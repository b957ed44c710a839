import ContractKit
import NotaryContract

extension ContractSet {
    /// The notary contract beside the kernel's: the node's tests notarise documents (`notaryTx`).
    static let notary = ContractSet { _ in [NotaryContract()] }
}
