import ContractKit
import Foundation
import LedgerCore
import Logging
import Metrics
import Store
import Synchronization

/// How a node orders and limits work.
public struct NodeConfiguration: Sendable {
    /// Cut a block when this many transactions wait…
    public var blockSize: Int = 2000
    /// …or when the oldest has waited this long.
    public var blockInterval: Duration = .milliseconds(20)
    /// Most transactions in one block.
    public var maxBlockTransactions: Int = 10_000
    /// Most transactions waiting in the mempool.
    public var mempoolCapacity: Int = 200_000
    /// Other nodes' API URLs, to catch up from when etcd no longer holds the blocks this node lacks.
    public var peers: [String] = []
    /// The leader compacts etcd every this many slots…
    public var etcdCompactEvery: Int = 1000
    /// …keeping this many recent slots (and the votes of as many recent heights).
    public var etcdRetainSlots: Int = 10_000
    /// Most bytes of transactions in one block proposed through etcd (its request limit is 1.5 MiB by default).
    public var maxProposalBytes: Int = 1 << 20

    public init() {}
}
