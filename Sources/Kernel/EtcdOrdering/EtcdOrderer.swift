import Foundation
import LedgerCore
import Node
import Logging
import Store
import Synchronization

/// Orders a consortium node's blocks through etcd and certifies them.
///
/// Keys under `/careledger/<chain id>/`:
/// - `queue/<time><node>…`: batches of admitted transactions each node forwards (one value per batch);
/// - `blocks/<slot>`: the decided proposals, one per slot, written with a compare-and-swap that only
///   succeeds while the slot is free (`EtcdBlockLog`); the valid proposals, in slot order, are the chain;
/// - `leader`: the elected proposer, held with a lease (`EtcdElection`);
/// - `votes/<height>/<validator>/<block hash>`: each validator's signed vote for the block it executed.
///
/// Every node applies every decided slot: it checks the proposer's signature and validator membership,
/// the link to its head, every transaction's signature, re-executes the block and accepts it only when
/// it computes exactly the proposed header (state root, log root…). A slot that fails any check is
/// skipped by every honest node alike (the checks are deterministic) and kept as evidence. A block is
/// final when a quorum of validators voted for it; the quorum certificate is stored with the block.
final class EtcdOrderer: Sendable {
    let node: LedgerNode
    let client: EtcdClient
    let slots: EtcdBlockLog
    let election: EtcdElection
    let prefix: String
    let me: String
    let appliedSlot: Mutex<UInt64>
    /// Whether the head is exactly what applying the slots up to `appliedSlot` in order gives. It is
    /// not after catching up from peers or starting from a snapshot: then a proposal for a height past
    /// the next one means blocks are still missing here (retry), not that the proposal is invalid.
    let exact: Mutex<Bool>
    /// Read etcd's compaction floor on the next catch-up (at start, and after a lost proposal).
    let checkFloor = Mutex(true)
    /// The floor key was created (or found) by an earlier proposal of this node.
    let floorExists = Mutex(false)
    /// This node decided the last slot it knows of: its next proposal need not read the slots first
    /// (a slot decided meanwhile by another leader makes that proposal's compare-and-swap fail, and
    /// the one after reads them).
    let decidedLast = Mutex(false)
    let votes = Mutex<[UInt64: [PublicKey: BlockVote]]>([:])
    let lastCertificate = Mutex<(height: UInt64, certificate: QuorumCertificate)?>(nil)
    let sequence = Atomic<UInt64>(0)
    let logger: Logger

    static let slotMetaKey = "etcd.slot"

    init(node: LedgerNode, client: EtcdClient) {
        self.node = node
        self.client = client
        slots = EtcdBlockLog(client: client, chainID: node.genesis.chainID)
        election = EtcdElection(client: EtcdClient(endpoints: client.endpoints, timeout: .seconds(2)), chainID: node.genesis.chainID, ttlSeconds: 3)
        prefix = "/careledger/\(node.genesis.chainID)/"
        me = node.publicKey.did
        let stored = (try? node.store.meta(Self.slotMetaKey)).flatMap { UInt64(String(decoding: $0, as: UTF8.self)) } ?? 0
        appliedSlot = Mutex(stored)
        exact = Mutex(!(stored == 0 && ((try? node.store.firstHeight()) ?? 0) > 0))
        logger = node.logger
    }

    var queuePrefix: String { prefix + "queue/" }
    var votesPrefix: String { prefix + "votes/" }

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.forwardLoop() }
            group.addTask { await self.applyLoop() }
            group.addTask { await self.voteLoop() }
            group.addTask { await self.republishLoop() }
            group.addTask { await self.leaderLoop() }
            await group.waitForAll()
        }
    }
}
