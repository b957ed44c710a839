import AsyncHTTPClient
import Foundation
import LedgerCore
import NIOCore
import Store

/// What became of a proposed block.
package enum ProposalOutcome {
    case committed(BlockHeader)
    /// This height is committed here already, with this very block.
    case alreadyCommitted
    /// Refused by the deterministic checks: the evidence kind and why.
    case refused(kind: String, detail: String, other: [UInt8]? = nil)
    /// For a height past the next one: blocks are missing here (fetch them from peers first).
    case gap(UInt64)
}

extension LedgerNode {
    /// Checks a proposed block and commits it if it is valid (the commit lock is held): its proposer is
    /// a validator of the set in force and signed it; it extends the head; every transaction decodes,
    /// is signed, for this chain, with an unused nonce; and re-executing it gives exactly its header.
    package func applyProposal(_ proposal: BlockProposal, certificate: QuorumCertificate? = nil, meta: [(String, [UInt8])]) async throws -> ProposalOutcome {
        let header = proposal.header
        guard header.chainID == genesis.chainID else { return .refused(kind: "invalid_proposal", detail: "for chain \(header.chainID)") }
        let head = latestBlock.header
        if header.height <= head.height {
            // Already committed here (this node proposed it, or it is replayed after a restart), or below
            // the snapshot this node started from (certified before it: nothing to compare with).
            guard let mine = try store.block(height: header.height) else { return .alreadyCommitted }
            if mine.header.hash == header.hash { return .alreadyCommitted }
            guard proposal.isSignatureValid else { return .refused(kind: "bad_signature", detail: "the proposer's signature over the header does not verify") }
            if mine.header.proposer == header.proposer {
                // One validator signed two different blocks for one height: equivocation, both signed headers kept.
                return .refused(
                    kind: "block_equivocation", detail: "two blocks signed for height \(header.height): \(mine.header.hash.hex) and \(header.hash.hex)",
                    other: BlockProposal(
                        header: mine.header, signature: mine.signature, transactions: try store.transactions(of: mine).map(\.transaction.encoded)
                    ).encoded)
            }
            return .refused(kind: "conflicting_block", detail: "a different block for height \(header.height), which is already committed")
        }
        guard validators.contains(header.proposer) else { return .refused(kind: "invalid_proposal", detail: "the proposer is not a validator") }
        guard proposal.isSignatureValid else { return .refused(kind: "bad_signature", detail: "the proposer's signature over the header does not verify") }
        if header.height > head.height + 1 { return .gap(header.height) }
        guard header.previousHash == head.hash else {
            return .refused(kind: "invalid_proposal", detail: "does not extend the head (height \(head.height))")
        }
        guard header.timeMillis >= head.timeMillis else { return .refused(kind: "invalid_proposal", detail: "its time is before the previous block's") }
        if let certificate {
            do {
                try certificate.verify(header: header, validators: validators)
            } catch {
                return .refused(kind: "bad_certificate", detail: error.message)
            }
        }
        var txs: [Transaction] = []
        txs.reserveCapacity(proposal.transactions.count)
        for raw in proposal.transactions {
            guard let tx = try? Transaction(encoded: raw) else { return .refused(kind: "invalid_proposal", detail: "a transaction does not decode") }
            txs.append(tx)
        }
        if let problem = await proposalProblem(txs) { return .refused(kind: "invalid_proposal", detail: problem) }
        let prepared = prepare(txs, timeMillis: header.timeMillis, proposer: header.proposer)
        guard prepared.header == header else {
            discard(prepared)
            let what =
                prepared.header.stateRoot != header.stateRoot
                ? "state root \(prepared.header.stateRoot.hex) computed here, \(header.stateRoot.hex) proposed"
                : "header computed here differs from the proposal"
            logger.error("refusing a proposed block: \(what)", metadata: ["height": "\(header.height)", "proposer": "\(header.proposer.did)"])
            return .refused(kind: "state_mismatch", detail: what)
        }
        try await commit(prepared, signature: proposal.signature, certificate: certificate, meta: meta)
        return .committed(header)
    }

    /// Committed blocks from `height` on as proposals with their certificates, for a peer catching up
    /// (at most `limit` blocks and about `maxBytes` of transactions; only final blocks).
    public func syncBlocks(from height: UInt64, limit: Int, maxBytes: Int = 8 << 20) throws -> [(proposal: BlockProposal, certificate: QuorumCertificate?)] {
        var out: [(BlockProposal, QuorumCertificate?)] = []
        var bytes = 0
        let final = lastFinalHeight
        var h = max(height, 1)
        while h <= final && out.count < limit && bytes < maxBytes {
            guard let block = try store.block(height: h) else { break }
            let raws = try store.transactions(of: block).map(\.transaction.encoded)
            bytes += raws.reduce(0) { $0 + $1.count }
            out.append((BlockProposal(header: block.header, signature: block.signature, transactions: raws), try certificate(height: h)))
            h += 1
        }
        return out
    }

    /// Catches up from peers' APIs (`GET /v1/sync/blocks`) to the highest final block they serve,
    /// verifying each block (certificate, proposer, re-execution) before committing it. Answers the
    /// number of blocks committed. Only blocks with a valid quorum certificate are taken.
    package func syncFromPeers(_ peers: [String]) async throws -> Int {
        var committed = 0
        var lastError: LedgerError?
        // Whether a peer answered with nothing more that is final (not an error).
        var answered = false
        peers: for peer in peers {
            // Blocks per request: more when a run of uncertified blocks is longer than one batch.
            var limit = 64
            fetching: while true {
                let batch: [(BlockProposal, QuorumCertificate?)]
                do {
                    batch = try await PeerClient.blocks(peer: peer, from: height + 1, limit: limit, credentials: peerCredentials)
                } catch let error as LedgerError {
                    lastError = error
                    continue peers
                }
                if batch.isEmpty { break }
                for (index, (proposal, certificate)) in batch.enumerated() {
                    // Only final blocks are taken: certified themselves, or followed in the batch by a certified
                    // block they hash-link to (a quorum signing a block vouches for its ancestors; a node may
                    // mark lower heights final with the certificate of a higher one). The rest comes through ordering.
                    if certificate == nil, !Self.anchored(batch, from: index, validators: validators) {
                        // The anchor may lie past this batch: ask once for the most the API serves.
                        if index == 0, batch.count == limit, limit < 256 {
                            limit = 256
                            continue fetching
                        }
                        // This peer serves nothing final past here (its tip, or a span whose certificate is
                        // by a validator set changed inside it): another peer may hold the certificates.
                        answered = true
                        continue peers
                    }
                    switch try await applyProposal(proposal, certificate: certificate, meta: []) {
                    case .committed: committed += 1
                    case .alreadyCommitted, .gap: continue
                    case .refused(let kind, let detail, _):
                        alarm(
                            height: proposal.header.height, validator: peer, kind: "bad_sync_block", detail: "\(kind): \(detail)",
                            first: proposal.encoded, second: nil)
                        lastError = LedgerError("bad_sync_block", "\(peer) served a block that does not verify: \(detail)")
                        continue peers
                    }
                }
            }
            return committed
        }
        if committed == 0, !answered, let lastError { throw lastError }
        return committed
    }
}

extension LedgerNode {
    /// Whether the uncertified block at `index` is vouched for by a later certified block of the batch:
    /// every block from it to that one links to the previous by hash, and the certificate verifies.
    static func anchored(_ batch: [(BlockProposal, QuorumCertificate?)], from index: Int, validators: [PublicKey]) -> Bool {
        var j = index
        while j + 1 < batch.count {
            guard batch[j + 1].0.header.previousHash == batch[j].0.header.hash, batch[j + 1].0.header.height == batch[j].0.header.height + 1 else { return false }
            j += 1
            if let certificate = batch[j].1 { return (try? certificate.verify(header: batch[j].0.header, validators: validators)) != nil }
        }
        return false
    }
}

/// Fetches blocks from a peer node's API.
enum PeerClient {
    /// An HTTP/1 client with a large pool per host, for long-lived streams (peers' block sync).
    package static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 512)
        // A member that is down refuses at once: move on to the next one instead of retrying it until the deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(1)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// A JSON answer of a peer's API.
    static func get(_ url: String, credentials: PeerCredentials?) async throws -> JSONValue {
        let (status, body) = try await fetch(url, credentials: credentials, limit: 1 << 30)
        guard status == 200 else { throw LedgerError("peer_error", "\(url) answered \(status)") }
        return try JSONValue.parse(body)
    }

    /// A signed GET of a peer's API: the status and the body (at most `limit` bytes).
    static func fetch(_ url: String, credentials: PeerCredentials?, limit: Int, timeout: Duration = .seconds(120)) async throws -> (status: Int, body: [UInt8]) {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        for (name, value) in try credentials?.headers(url: url) ?? [] { request.headers.add(name: name, value: value) }
        do {
            let response = try await PeerClient.http.execute(request, timeout: .seconds(timeout.components.seconds))
            let body = try await response.body.collect(upTo: limit)
            return (Int(response.status.code), Array(body.readableBytesView))
        } catch let error as LedgerError {
            throw error
        } catch {
            throw LedgerError("peer_unavailable", "\(url): \(error)")
        }
    }

    static func blocks(peer: String, from: UInt64, limit: Int, credentials: PeerCredentials?) async throws -> [(BlockProposal, QuorumCertificate?)] {
        let base = peer.hasSuffix("/") ? String(peer.dropLast()) : peer
        let json = try await get("\(base)/v1/sync/blocks?from=\(from)&limit=\(limit)", credentials: credentials)
        return try (json["blocks"]?.arrayValue ?? []).map { item throws(LedgerError) in
            guard let p = item["proposal"]?.stringValue else { throw LedgerError("peer_error", "a block without its proposal") }
            let proposal = try BlockProposal(encoded: try Base64.decode(p))
            let certificate = try item["certificate"]?.stringValue.map { (c: String) throws(LedgerError) in try QuorumCertificate(encoded: try Base64.decode(c)) }
            return (proposal, certificate)
        }
    }
}

extension LedgerNode {
    /// Why a block's transactions cannot be applied (nil when they can): bad signature or chain, a nonce
    /// already committed, or used twice in the block.
    package func proposalProblem(_ txs: [Transaction]) async -> String? {
        var seen: Set<NonceKey> = []
        for tx in txs {
            if isCommitted(tx) { return "transaction \(tx.id.hex) replays a committed nonce" }
            if !seen.insert(NonceKey(tx.author, tx.nonce)).inserted { return "transaction \(tx.id.hex) repeats a nonce of the block" }
        }
        if let (tx, error) = await badTransactions(txs).first { return "transaction \(tx.id.hex): \(error.message)" }
        return nil
    }

    /// The transactions with a bad signature or for another chain (those this node admitted itself were checked then).
    package func badTransactions(_ txs: [Transaction]) async -> [(Transaction, LedgerError)] {
        let chain = genesis.chainID
        let unchecked = txs.filter { !admittedHere($0) }
        // On the cooperative pool: a block waits for these.
        let errors = await LedgerNode.checkAll(unchecked, on: nil) { (tx) throws(LedgerError) in
            guard tx.chainID == chain else { throw LedgerError("wrong_chain", "for chain \(tx.chainID)") }
        }
        return zip(unchecked, errors).compactMap { tx, e in e.map { (tx, $0) } }
    }
}
