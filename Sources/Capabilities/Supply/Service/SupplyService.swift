import ContractKit
import Foundation
import LedgerCore
import Node
import Standards
import Store
import SupplyContract
import Synchronization

/// The supply-chain service of a node: EPCIS ingestion (validate, hash, blind, seal the document
/// for the parties, submit the derived events), pack verification (EU FMD / DSCSA VRS terms) with
/// dispensing, counterfeit rules and alerts, recall reports.
public final class SupplyService: Sendable {
    public let node: LedgerNode
    let vault: Vault
    public let keys: SupplyKeys
    let clock: @Sendable () -> UInt64
    /// An alert for one (rule, pack, verifier) is raised again only after this window. (Two scans of one
    /// pack by two parties are compared on chain: `SupplyContract.scanWindowMillis`.)
    public let scanWindowMillis: UInt64
    /// The latest scan of each pack this node recorded on chain (a repeat by the same party within
    /// `rescanMillis` is not recorded again).
    let scans = Mutex<[String: (party: String, time: UInt64)]>([:])
    static let rescanMillis: UInt64 = 60_000
    /// When each (rule, pack or lot, verifier) last raised an alert: repeats within `scanWindowMillis` are not raised again.
    let raised = Mutex<[String: UInt64]>([:])
    /// Alerts raised and not yet committed (at most `maxQueuedAlerts`; more are counted and dropped),
    /// who waits for none to be left, and a wake-up for the loop that commits them in batches.
    let pendingAlerts = Mutex<(queue: [JSONValue], scans: [JSONValue], inFlight: Int, dropped: Int, waiters: [CheckedContinuation<Void, Never>])>(([], [], 0, 0, []))
    let alertSignal: AsyncStream<Void>.Continuation
    let alertWakeUps: AsyncStream<Void>
    static let maxQueuedAlerts = 100_000

    /// Off-chain, this node only: packs dispensed to patients and the notices owed to them.
    public let local: LocalIndex

    public init(
        node: LedgerNode, vault: Vault, secret: ConsortiumSecret, scanWindowMillis: UInt64 = 600_000,
        clock: @escaping @Sendable () -> UInt64 = LedgerNode.systemClock
    ) throws {
        self.node = node
        self.vault = vault
        local = try LocalIndex(path: vault.path + "/supply-local.sqlite")
        self.keys = SupplyKeys(secret: secret)
        self.clock = clock
        self.scanWindowMillis = scanWindowMillis
        (alertWakeUps, alertSignal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func json(_ key: String) throws(LedgerError) -> JSONValue? { try node.stateJSON(key) }

    public func party(_ did: String) throws(LedgerError) -> JSONValue? { try json(SupplyState.party(did)) }

    /// A registered product by its GTIN.
    public func product(_ gtin: String) throws(LedgerError) -> JSONValue? { try json(SupplyState.product(gtin)) }

    /// A serialised item by its blinded key.
    public func item(_ key: String) throws(LedgerError) -> SupplyItem? { try json(SupplyItem.stateKey(key)).map(SupplyItem.init(json:)) }

    /// What the events of a document mostly repeat: the lot they commission, the party they ship to.
    struct DeriveMemo {
        var lot: (gtin: String, lot: String, key: String)?
        var party: (id: String, did: String)?
    }
}
