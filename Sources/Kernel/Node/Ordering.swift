/// Where a node's blocks are ordered. The node executes, commits and certifies blocks; its ordering
/// decides which block comes next: `SoloOrdering` (one validator, in this process) or a consortium's
/// ordering service (`EtcdOrderingService`, in the EtcdOrdering target).
public protocol Ordering: Sendable {
    /// Its name, as `/healthz` reports it ("solo", "etcd").
    var name: String { get }
    /// Whether blocks are ordered in this process by this node alone.
    var isSolo: Bool { get }
    /// Orders, executes and commits `node`'s blocks until the task is cancelled.
    func run(_ node: LedgerNode) async
    /// The did of the node that leads block proposal now (nil when none does).
    func leader(_ node: LedgerNode) async throws -> String?
}

/// One validator orders its chain's blocks in its own process (pipelined block production).
public struct SoloOrdering: Ordering {
    public init() {}
    public var name: String { "solo" }
    public var isSolo: Bool { true }
    public func run(_ node: LedgerNode) async { await node.runSolo() }
    public func leader(_ node: LedgerNode) async throws -> String? { node.publicKey.did }
}
