import LedgerCore

/// A contract: a named set of actions, checked statelessly at submission and executed
/// deterministically in blocks. Execution must depend only on the context: no clocks, no
/// randomness, no dictionary iteration order in anything written.
public protocol Contract: Sendable {
    var name: String { get }
    var actions: [String] { get }
    /// Checks what can be checked without state, before a transaction enters the mempool.
    func validate(action: String, payload: JSONValue) throws(LedgerError)
    /// The same checks for a whole transaction: a contract may use the typed form the payload was
    /// built from (`Transaction.decoded`) instead of decoding it. By default, `validate(action:payload:)`.
    func validate(_ transaction: Transaction) throws(LedgerError)
    /// Executes one transaction; throwing discards its writes and records a failed receipt.
    func execute(action: String, payload: JSONValue, context: inout ExecutionContext) throws(LedgerError) -> JSONValue
    /// The prefixes of the state keys this contract keeps private (a patient's data): their leaves in
    /// the state tree are salted (`StateLeafHashing`), and nodes serve them to their audience only.
    var privateStatePrefixes: [String] { get }
}

extension Contract {
    public var privateStatePrefixes: [String] { [] }

    public func validate(_ transaction: Transaction) throws(LedgerError) {
        try validate(action: transaction.action, payload: transaction.payload)
    }
}

/// What a transaction sees while it executes: the block's height and time, its author and the
/// state as left by the previous transactions of the block.
public struct ExecutionContext {
    public let height: UInt64
    public let timeMillis: UInt64
    public let transaction: Transaction
    /// The principal the transaction's signing key signs for (its own did:key unless the principal
    /// rotated her keys: see `Signers`), resolved once before the contract runs.
    public internal(set) var author: String
    private let base: any StateReader
    private let blockWrites: BlockWrites
    public private(set) var writes: [String: [UInt8]?] = [:]
    public private(set) var events: [JSONValue] = []
    /// Identity keys written through the kernel's identity API by a contract other than `identity`
    /// (a guardian recovery rotating the patient's keys): the one write outside a contract's prefix.
    var kernelWrites: Set<String> = []

    init(height: UInt64, timeMillis: UInt64, transaction: Transaction, base: any StateReader, blockWrites: BlockWrites) {
        self.height = height
        self.timeMillis = timeMillis
        self.transaction = transaction
        author = transaction.author.did
        self.base = base
        self.blockWrites = blockWrites
    }

    public func value(forKey key: String) throws(LedgerError) -> [UInt8]? {
        if let pending = writes[key] { return pending }
        if let pending = blockWrites.values[key] { return pending }
        do {
            return try base.value(forKey: key)
        } catch {
            throw LedgerError("state_unavailable", "state read failed: \(error)")
        }
    }

    public func json(forKey key: String) throws(LedgerError) -> JSONValue? {
        guard let bytes = try value(forKey: key) else { return nil }
        return try JSONValue.parse(bytes)
    }

    /// Writes a key; the contract may only write under its own prefix `<contract>/`.
    public mutating func set(_ key: String, _ value: JSONValue?) {
        // `.some(nil)` records a deletion; assigning nil would drop the write instead.
        writes[key] = .some(value.map(\.canonicalBytes))
    }

    /// Writes a key's value as canonical JSON bytes the caller wrote (they must be what
    /// `set(_:_:)` would write for the value: checked in debug builds by the types that write them).
    public mutating func set(_ key: String, canonicalJSON bytes: [UInt8]) { writes[key] = .some(bytes) }

    public mutating func emit(_ event: JSONValue) { events.append(event) }

    /// Writes an identity key on behalf of the kernel's identity API (`IdentityContract.rotate`).
    mutating func setIdentity(_ key: String, _ value: JSONValue?) {
        precondition(key.hasPrefix("identity/"), "the identity API writes identity keys only")
        set(key, value)
        kernelWrites.insert(key)
    }
}

/// The outcome of one transaction in a block.
public struct Receipt: Sendable, Hashable {
    public enum Status: String, Sendable { case committed, failed }
    public let transactionID: Hash
    public let status: Status
    public let height: UInt64
    public let leafIndex: UInt64
    public let result: JSONValue
    public let errorCode: String?
    public let errorMessage: String?

    public init(
        transactionID: Hash, status: Status, height: UInt64, leafIndex: UInt64, result: JSONValue, errorCode: String?,
        errorMessage: String?
    ) {
        self.transactionID = transactionID
        self.status = status
        self.height = height
        self.leafIndex = leafIndex
        self.result = result
        self.errorCode = errorCode
        self.errorMessage = errorMessage
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(transactionID.hex),
            "status": .string(status.rawValue),
            "height": .int(Int64(height)),
            "leafIndex": .int(Int64(leafIndex)),
        ]
        if status == .committed {
            o["result"] = result
        } else {
            o["error"] = .object(["code": .string(errorCode ?? "failed"), "message": .string(errorMessage ?? "")])
        }
        return .object(o)
    }
}

/// The capabilities' contracts a chain runs besides the kernel's (identity; governance in a
/// consortium), built from what its genesis fixes: `operators`, the dids of the consortium's node
/// keys at genesis (see `OperatorSet`: governance's changes to the validator set change them too).
/// The executable's one list of capabilities makes it (`Composition`).
public struct ContractSet: Sendable {
    private let make: @Sendable (_ operators: Set<String>) -> [any Contract]

    public init(_ make: @escaping @Sendable (_ operators: Set<String>) -> [any Contract]) { self.make = make }

    /// The kernel's contracts alone.
    public static let kernel = ContractSet { _ in [] }

    /// The contracts of several sets, in their order.
    public init(joining sets: [ContractSet]) { self.init { operators in sets.flatMap { $0.make(operators) } } }

    /// Its contracts for a chain whose operators are `operators`.
    public func contracts(operators: Set<String>) -> [any Contract] { make(operators) }

    /// The registry: identity, the capabilities' contracts, and `governance` when given.
    public func registry(operators: Set<String>, governance: GovernanceContract? = nil) -> ContractRegistry {
        ContractRegistry([IdentityContract(operators: operators)] + make(operators) + (governance.map { [$0] } ?? []))
    }
}

/// The contracts a node runs, by name.
public struct ContractRegistry: Sendable {
    public let contracts: [String: any Contract]

    public init(_ contracts: [any Contract]) {
        var byName: [String: any Contract] = [:]
        for c in contracts { byName[c.name] = c }
        self.contracts = byName
    }

    /// Every contract's private state prefixes, sorted.
    public var privateStatePrefixes: [String] { Set(contracts.values.flatMap(\.privateStatePrefixes)).sorted() }

    /// The state tree's leaves for this registry's private prefixes, salted with the consortium `secret`.
    public func stateHashing(secret: ConsortiumSecret) -> StateLeafHashing { StateLeafHashing(secret: secret, privatePrefixes: privateStatePrefixes) }

    /// The contracts whose transactions are private (those that declare private state).
    public var privateContracts: Set<String> { Set(contracts.values.filter { !$0.privateStatePrefixes.isEmpty }.map(\.name)) }

    /// Stateless admission check: known contract and action, valid payload.
    public func validate(_ tx: Transaction) throws(LedgerError) {
        guard let contract = contracts[tx.contract] else {
            throw LedgerError("unknown_contract", "no contract named \(tx.contract)")
        }
        guard contract.actions.contains(tx.action) else {
            throw LedgerError("unknown_action", "contract \(tx.contract) has no action \(tx.action)")
        }
        try contract.validate(tx)
    }

    /// Executes a block's transactions in order over `base`; returns the results and the
    /// block's state writes (sorted by key) and events.
    /// `prevalidated` names transactions whose stateless checks already passed on this node (at
    /// admission); the checks are pure, so skipping them changes no outcome, only the time.
    public func execute(
        transactions: [Transaction], height: UInt64, timeMillis: UInt64, firstLeafIndex: UInt64, base: any StateReader,
        prevalidated: (Transaction) -> Bool = { _ in false }
    ) -> BlockExecution {
        let blockWrites = BlockWrites()
        var receipts: [Receipt] = []
        var events: [JSONValue] = []
        receipts.reserveCapacity(transactions.count)
        for (offset, tx) in transactions.enumerated() {
            let leaf = firstLeafIndex + UInt64(offset)
            var context = ExecutionContext(height: height, timeMillis: timeMillis, transaction: tx, base: base, blockWrites: blockWrites)
            do throws(LedgerError) {
                if !prevalidated(tx) { try validate(tx) }
                guard let contract = contracts[tx.contract] else { throw LedgerError("unknown_contract", "no contract named \(tx.contract)") }
                let reader = context
                context.author = try Signers.principal(signedBy: context.author) { (key) throws(LedgerError) in try reader.value(forKey: key) }
                let result = try contract.execute(action: tx.action, payload: tx.payload, context: &context)
                for key in context.writes.keys where !key.hasPrefix(contract.name + "/") && !context.kernelWrites.contains(key) {
                    throw LedgerError("forbidden_write", "contract \(contract.name) may not write \(key)")
                }
                for (key, value) in context.writes { blockWrites.values[key] = value }
                events.append(contentsOf: context.events)
                receipts.append(
                    Receipt(transactionID: tx.id, status: .committed, height: height, leafIndex: leaf, result: result, errorCode: nil, errorMessage: nil))
            } catch {
                receipts.append(
                    Receipt(transactionID: tx.id, status: .failed, height: height, leafIndex: leaf, result: .null, errorCode: error.code, errorMessage: error.message))
            }
        }
        return BlockExecution(receipts: receipts, writes: Self.sortedWrites(blockWrites.values), events: events)
    }

    /// A block's writes in UTF-8 byte order of their keys (SQLite's BINARY order): keys sorted alone
    /// (cheaper to move than key-value pairs), then paired with their values.
    public static func sortedWrites(_ values: [String: [UInt8]?]) -> [(key: String, value: [UInt8]?)] {
        values.keys.sorted(by: UTF8Order.precedes).map { (key: $0, value: values[$0]!) }
    }
}

/// What executing a block produced.
public struct BlockExecution: Sendable {
    public let receipts: [Receipt]
    /// State writes in key order; a nil value deletes the key.
    public let writes: [(key: String, value: [UInt8]?)]
    public let events: [JSONValue]
}

/// The writes of the transactions executed so far in a block; shared by reference so that each
/// transaction's context reads them without copying.
final class BlockWrites {
    var values: [String: [UInt8]?] = [:]
}

/// The consortium's operators: the node keys that record access events and alerts and admit
/// organisations and supply-chain parties. At genesis, the validators and the proposer; once
/// governance has changed the validator set (`governance/validators`), exactly the validators in
/// force — a validator added by governance gains these powers, a removed or rotated-away key loses them.
public struct OperatorSet: Sendable {
    public let initial: Set<String>

    public init(_ initial: Set<String>) { self.initial = initial }

    public func contains(_ did: String, read: (String) throws(LedgerError) -> [UInt8]?) throws(LedgerError) -> Bool {
        guard let bytes = try read(GovernanceContract.validatorsKey) else { return initial.contains(did) }
        return try JSONValue.parse(bytes).arrayValue?.contains(.string(did)) ?? false
    }

    public func contains(_ did: String, in context: ExecutionContext) throws(LedgerError) -> Bool {
        try contains(did) { (key: String) throws(LedgerError) -> [UInt8]? in try context.value(forKey: key) }
    }
}
