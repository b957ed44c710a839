import ContractKit
import LedgerCore

/// An in-memory chain for contract-level tests: blocks at chosen times, state as a dictionary, running
/// `contracts` (the identity contract and `governance` beside them).
public final class MemoryChain: StateReader, @unchecked Sendable {
    public var state: [String: [UInt8]] = [:]
    public var height: UInt64 = 0
    public let registry: ContractRegistry
    public let operatorKey = SigningKey()
    public var nonce: UInt64 = 0

    public init(contracts: ContractSet, governance: GovernanceContract? = nil) {
        registry = contracts.registry(operators: [operatorKey.publicKey.did], governance: governance)
    }

    public func value(forKey key: String) throws -> [UInt8]? { state[key] }

    /// Executes one transaction in its own block at `time` (ms); returns its receipt.
    @discardableResult
    public func run(
        _ signer: SigningKey, _ contract: String, _ action: String, _ payload: JSONValue, time: UInt64 = 1_790_000_000_000, decoded: (any Sendable)? = nil
    ) -> Receipt {
        nonce += 1
        height += 1
        let tx = try! Transaction(chainID: "memory", signer: signer, nonce: nonce, contract: contract, action: action, payload: payload, decoded: decoded)
        let execution = registry.execute(transactions: [tx], height: height, timeMillis: time, firstLeafIndex: nonce, base: self)
        for (key, value) in execution.writes { state[key] = value }
        return execution.receipts[0]
    }
}
