import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import LedgerCore
import NIOCore
import Node
import Prometheus
import Standards
import Store

/// Server settings.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Largest request body accepted (bytes).
    public var maxBodyBytes = 8 * 1024 * 1024
    /// Most transactions in one batch request.
    public var maxBatch = 10_000
    /// Requests each client (IP address) may make to the sign-in routes (`/v1/auth/challenge`,
    /// `/v1/auth/token`): `authBurst` at once, then `authRequestsPerSecond`; past that, 429 with `Retry-After`.
    public var authRequestsPerSecond: Double = 50
    public var authBurst: Double = 200
    /// A connection is closed when a request's head is not complete within `idleTimeoutSeconds` of
    /// the connection opening or of the previous answer (idle keep-alive, slow or unfinished headers),
    /// or its body within `bodyTimeoutSeconds` of its head.
    /// Event streams (`GET /v1/events`) open at once, per principal and on the node; a comment line is
    /// sent every `eventHeartbeatSeconds` while no event is, so that a stream whose client left ends.
    public var eventStreamsPerPrincipal = 16
    public var eventStreamsTotal = 1024
    public var eventHeartbeatSeconds: Double = 5
    /// Vault uploads (`PUT /v1/vault/{hash}`, registered principals only): the largest blob, the bytes of
    /// uploads no committed transaction claims yet that one principal may hold, and how long such an
    /// upload is kept before it is destroyed.
    public var vault = VaultUploads.Limits()
    /// The hosted capabilities' own settings, each under its type (a capability without one uses its defaults).
    public var capabilities = CapabilitySettings()
    public var idleTimeoutSeconds: Double = 60
    public var bodyTimeoutSeconds: Double = 60
    /// More names (`host` or `host:port`) clients address this node by, for RFC 9421 signed requests,
    /// whose `@authority` must name this node: `host`, `localhost`, `127.0.0.1` and `[::1]`, with and
    /// without `:port`, are always accepted.
    public var authorities: [String] = []

    /// The names a signed request's `@authority` may take (`name:*`: any port, when the port is chosen at start).
    public var acceptedAuthorities: Set<String> {
        var names: Set<String> = []
        for host in [host, "localhost", "127.0.0.1", "[::1]"] + authorities {
            names.insert(host.lowercased())
            if !host.contains(":") || host.hasPrefix("[") && host.hasSuffix("]") { names.insert("\(host.lowercased()):\(port == 0 ? "*" : String(port))") }
        }
        return names
    }

    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
    }
}

/// The `/v1` JSON API of one node.
public struct LedgerAPI: Sendable {
    public static let version = Release.version
    package let node: LedgerNode
    package let configuration: ServerConfiguration
    let registry: PrometheusCollectorRegistry
    package let auth: AuthService
    /// The vault of this node.
    package let vault: Vault
    /// The capabilities this node hosts beside the kernel.
    public let capabilities: [any NodeCapability]
    /// The per-client limit of the sign-in routes.
    let authLimiter: RateLimiter
    let eventStreams: EventStreamSlots
    /// The organisation this node acts for first (the FHIR facade's), if any.
    public let acting: ActingOrganisation?
    /// The organisations whose keys this node holds (by did): it signs their writes (supply-chain events, FHIR records).
    public let organisations: [String: ActingOrganisation]
    /// Client uploads to the vault, until a transaction claims them.
    public let uploads: VaultUploads

    /// `organisations`: the keys this node may sign its organisations' writes with (the acting organisation is one);
    /// `capabilities` builds the capabilities it hosts (the composition's one list). The consortium
    /// secret is the node's (`LedgerNode.secret`).
    public init(
        node: LedgerNode, configuration: ServerConfiguration, registry: PrometheusCollectorRegistry, vault: Vault, acting: ActingOrganisation? = nil,
        organisations: [ActingOrganisation] = [], capabilities: CapabilityList = { _ in [] }
    ) throws {
        self.acting = acting
        var byDID: [String: ActingOrganisation] = [:]
        for o in organisations + (acting.map { [$0] } ?? []) { byDID[o.did] = o }
        self.organisations = byDID
        let capabilities = try capabilities(
            CapabilityHost(node: node, vault: vault, configuration: configuration, organisations: byDID))
        self.capabilities = capabilities
        self.node = node
        self.configuration = configuration
        self.registry = registry
        self.vault = vault
        uploads = try VaultUploads(vault: vault, limits: configuration.vault, registry: registry) { hash, uploader in
            capabilities.contains { $0.claims(upload: hash, uploader: uploader, node: node) }
        }
        auth = AuthService(chainID: node.genesis.chainID, authorities: configuration.acceptedAuthorities) { (key) throws(LedgerError) in
            try node.principal(signedBy: key)
        }
        authLimiter = RateLimiter(perSecond: configuration.authRequestsPerSecond, burst: configuration.authBurst)
        eventStreams = EventStreamSlots(perPrincipal: configuration.eventStreamsPerPrincipal, total: configuration.eventStreamsTotal, registry: registry)
    }

    /// Takes one request of `context`'s client from `limiter`: nil when allowed, else the 429 answer
    /// (`rate_limited`, with `Retry-After`). A request that came over no socket is not limited.
    func limited(_ context: LedgerRequestContext, by limiter: RateLimiter) -> Response? {
        guard let client = context.clientAddress, let wait = limiter.take(client) else { return nil }
        var response = APIError.response(LedgerError("rate_limited", "too many requests from \(client): retry in \(wait) s"))
        response.headers[.retryAfter] = String(wait)
        return response
    }

    /// Sweeps the unclaimed vault uploads as of the chain this node has applied: the earlier of its
    /// clock and its head block's time, so that an upload is destroyed only once the node holds every
    /// block of its grace period (a claim committed in time is seen; a quiet chain sweeps at its next block).
    @discardableResult
    public func sweepUploads() -> (claimed: Int, removed: Int) {
        uploads.sweep(now: min(node.now, node.latestBlock.header.timeMillis))
    }

    /// Whether a committed event concerns `did`: when one capability says so.
    func concerns(_ event: JSONValue, did: String) -> Bool {
        capabilities.contains { $0.concerns(event, did: did, node: node) }
    }

    /// The kinds of vault blob owner answered for (`?<kind>=<id>` of `/v1/sync/vault/{hash}`).
    var vaultOwnerKinds: Set<String> { Set(capabilities.flatMap(\.vaultOwners).map(\.kind)) }

    /// Whether a peer may be served the vault blob `hash` as the content of `owner`.
    func servesVaultBlob(_ hash: Hash, as owner: VaultOwner) throws -> Bool {
        for capability in capabilities { if let answer = try capability.serves(blob: hash, as: owner, node: node) { return answer } }
        return false
    }

    package var readPolicy: LedgerReadPolicy { LedgerReadPolicy(node: node, auth: auth, capabilities: capabilities) }

    /// A JSON request body within the size limit.
    package func jsonBody(_ request: Request) async throws -> JSONValue {
        try JSONValue.parse(try await Self.body(request, limit: configuration.maxBodyBytes))
    }

    /// The request body, refused with `body_too_large` past `limit` bytes. A `Content-Digest` (RFC 9530:
    /// `sha-256` or `sha-512`) is checked against it: a body changed in transit is refused with
    /// `digest_mismatch`. (An RFC 9421 signature over a request with a body must cover the digest.)
    package static func body(_ request: Request, limit: Int) async throws -> [UInt8] {
        var request = request
        // A declared length past the limit is refused at once, before any of the body is awaited.
        if let declared = request.headers[.contentLength], declared.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), declared.count > 18 || Int(declared)! > limit {
            throw LedgerError("body_too_large", "request body exceeds \(limit) bytes")
        }
        let bytes: [UInt8]
        do {
            bytes = Array(try await request.collectBody(upTo: limit).readableBytesView)
        } catch {
            throw LedgerError("body_too_large", "request body exceeds \(limit) bytes")
        }
        try checkDigest(request, body: bytes)
        return bytes
    }

    package static func checkDigest(_ request: Request, body bytes: [UInt8]) throws {
        if let field = request.headers[Self.contentDigest] { try ContentDigest.check(field, body: bytes) }
    }

    static let contentDigest = HTTPField.Name("Content-Digest")!

    /// Runs `body`, turning ledger errors into the standard error response.
    package func handle(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch {
            return APIError.response(Self.ledgerError(error))
        }
    }

    /// The stable error an API caller is told of.
    package static func ledgerError(_ error: any Error) -> LedgerError {
        switch error {
        case let error as LedgerError: return error
        case let rejection as BatchRejection: return rejection.first
        default: return LedgerError("internal_error", "\(error)")
        }
    }

    /// The routes answered on the connection's event loop before the router (`FastRoute`): the capabilities'.
    func fastRoutes() -> [FastRoute.Route] { capabilities.flatMap { $0.fastRoutes(api: self) } }

    /// The hosted capability of type `C`, if this node hosts it.
    public func capability<C: NodeCapability>(_ type: C.Type) -> C? {
        capabilities.lazy.compactMap { $0 as? C }.first
    }

    public static let serverName = "careledger"

    /// HTTP/1.1 with the fast routes in front of the router: the server of `NodeServer` (and of tests run live).
    public var httpServer: HTTPServerBuilder {
        let routes = fastRoutes()
        let idle = TimeAmount.milliseconds(Int64(configuration.idleTimeoutSeconds * 1000))
        let body = TimeAmount.milliseconds(Int64(configuration.bodyTimeoutSeconds * 1000))
        return .http1(
            configuration: .init(additionalChannelHandlers: [RequestDeadlines(idle: idle, body: body), FastRoute(routes: routes, serverName: Self.serverName)]))
    }

    public func router() -> Router<LedgerRequestContext> {
        let router = Router(context: LedgerRequestContext.self)
        // First, so that it wraps every route; its table is filled once they are all registered.
        let unrouted = Unrouted.Table()
        router.add(middleware: Unrouted(table: unrouted))
        router.post("/v1/transactions") { request, _ in await handle { try await submit(request) } }
        router.get("/v1/transactions/:id") { request, context in await handle { try transaction(context.parameters.get("id") ?? "", request) } }
        router.get("/v1/proofs/inclusion") { request, _ in await handle { try inclusion(request.uri.queryParameters, request) } }
        router.get("/v1/proofs/consistency") { request, _ in await handle { try consistency(request.uri.queryParameters) } }
        router.get("/v1/checkpoint") { request, _ in
            await handle {
                switch request.uri.queryParameters.get("final") {
                case nil, "false":
                    // The note format is fixed (C2SP): whether its block is final travels in a header.
                    let latest = node.latestBlock
                    var response = JSONResponse.text(latest.checkpoint)
                    response.headers[HTTPField.Name("CareLedger-Final")!] = latest.header.height <= node.lastFinalHeight ? "true" : "false"
                    response.headers[HTTPField.Name("CareLedger-Height")!] = String(latest.header.height)
                    return response
                case "true":
                    // The checkpoint of the last final block, cosigned by the quorum that certified it.
                    return JSONResponse.text(try node.finalCheckpoint())
                default: throw LedgerError("bad_parameter", "final is true or false")
                }
            }
        }
        router.get("/v1/consensus") { _, _ in await handle { try await consensus() } }
        router.get("/v1/sync/blocks") { request, _ in
            await handle {
                _ = try readPolicy.requireMember(request)
                return try syncBlocks(request.uri.queryParameters)
            }
        }
        router.get("/v1/sync/snapshot") { request, _ in
            await handle {
                _ = try readPolicy.requireMember(request)
                return JSONResponse.make(try await node.snapshot())
            }
        }
        router.get("/v1/sync/vault/:hash") { request, context in
            await handle {
                _ = try readPolicy.requireMember(request)
                let hash = try Hash(hex: context.parameters.get("hash") ?? "")
                // Only the content of what the query names (a record version not erased, an EPCIS
                // document…) when that names this hash on chain, as the capability whose kind it is
                // judges; never a recovery kit or anything else a vault holds.
                let kinds = vaultOwnerKinds
                let named = request.uri.queryParameters.compactMap { kinds.contains(String($0.key)) ? VaultOwner(kind: String($0.key), id: String($0.value)) : nil }
                guard named.count == 1, let owner = named.first else {
                    throw LedgerError("bad_parameter", "name what the blob belongs to: one of " + kinds.sorted().map { "?\($0)=<id>" }.joined(separator: ", "))
                }
                guard try servesVaultBlob(hash, as: owner), let (salt, ciphertext) = vault.get(hash) else {
                    throw LedgerError("not_in_vault", "this node does not hold \(hash.hex) for that \(owner.kind)")
                }
                return Response(
                    status: .ok, headers: [.contentType: "application/octet-stream"], body: .init(byteBuffer: ByteBuffer(bytes: salt + ciphertext)))
            }
        }
        router.get("/v1/consensus/evidence") { request, _ in await handle { try evidence(request) } }
        router.get("/v1/checkpoint/key") { _, _ in JSONResponse.text(node.noteVerifier.vkey + "\n") }
        router.get("/v1/blocks/:height") { _, context in await handle { try block(context.parameters.get("height") ?? "") } }
        router.get("/v1/blocks") { request, _ in await handle { try blocks(request.uri.queryParameters) } }
        router.get("/v1/state/**") { request, context in
            await handle { try state(context.parameters.getCatchAll().joined(separator: "/"), request) }
        }
        router.get("/healthz") { _, _ in
            JSONResponse.make(
                .object([
                    "status": .string("ok"), "chainId": .string(node.genesis.chainID), "height": .int(Int64(node.height)),
                    "finalHeight": .int(Int64(node.lastFinalHeight)),
                ]))
        }
        router.get("/metrics") { _, _ in
            JSONResponse.text(registry.emitToString(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        let document = OpenAPIDocument.make(
            version: Self.version, capabilities: capabilities.flatMap(\.openAPIRoutes), vaultOwners: capabilities.flatMap(\.vaultOwners))
        router.get("/openapi.json") { _, _ in JSONResponse.make(document) }
        EventsAPI(api: self).register(on: router)
        AuthAPI(api: self).register(on: router)
        VaultAPI(api: self).register(on: router)
        AppRoutes.register(on: router, capabilities: capabilities)
        for capability in capabilities { capability.addRoutes(to: router, api: self) }
        router.get("/fhir/metadata") { _, _ in
            FHIRHost.respond(
                FHIRHost.capabilityStatement(
                    resources: capabilities.flatMap { $0.fhirResources(api: self) }, interactions: capabilities.flatMap { $0.fhirInteractions(api: self) },
                    custodian: acting?.did))
        }
        // What no route answers: 405 with Allow where the path is served with other methods; under /fhir
        // an OperationOutcome (the middleware added first).
        let refused = Set((KernelRoutes.all + capabilities.flatMap(\.openAPIRoutes)).filter(\.refused).map { "\($0.method.uppercased()) \($0.path)" })
        unrouted.fill(served: router.routes.map { ($0.method.rawValue, $0.path.description) }, refused: refused)
        return router
    }

    // MARK: handlers

    func submit(_ request: Request) async throws -> Response {
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            throw LedgerError("unsupported_media_type", "send application/json")
        }
        // Checked before anything is submitted: a bad parameter changes nothing.
        let waitFinal = try waitMode(request) == "final"
        let json = try await jsonBody(request)
        if let list = json["transactions"] {
            guard case .array(let items) = list, json.objectValue?.count == 1 else {
                throw LedgerError("bad_transaction", "a batch is {\"transactions\": [ … ]}")
            }
            guard !items.isEmpty else { throw LedgerError("bad_transaction", "empty batch") }
            guard items.count <= configuration.maxBatch else {
                throw LedgerError("batch_too_large", "at most \(configuration.maxBatch) transactions per batch")
            }
            var txs: [Transaction] = []
            var decodeErrors: [LedgerError?] = []
            for item in items {
                do {
                    txs.append(try Transaction(json: item))
                    decodeErrors.append(nil)
                } catch {
                    decodeErrors.append(error)
                }
            }
            if decodeErrors.contains(where: { $0 != nil }) { return batchRejected(decodeErrors, txs: nil) }
            do {
                let receipts = try await node.submit(txs)
                if waitFinal { await waitFinality(receipts) }
                return JSONResponse.make(.object(["results": .array(receipts.map(receiptJSON))]))
            } catch let rejection as BatchRejection {
                return batchRejected(rejection.items, txs: txs)
            }
        }
        let receipt = try await node.submit(try Transaction(json: json))
        if waitFinal { await waitFinality([receipt]) }
        return JSONResponse.make(receiptJSON(receipt))
    }

    /// The `wait` parameter: `commit` (the default) or `final`.
    func waitMode(_ request: Request) throws -> String {
        let wait = request.uri.queryParameters.get("wait").map { String($0) } ?? "commit"
        guard wait == "final" || wait == "commit" else { throw LedgerError("bad_parameter", "wait is commit (the default) or final") }
        return wait
    }

    /// Waits until the receipts' blocks are final (a quorum of validators signed them), at most 30 s;
    /// the receipts then say whether they are.
    func waitFinality(_ receipts: [Receipt]) async {
        if let top = receipts.map(\.height).max() { _ = await node.waitFinal(top, timeout: .seconds(30)) }
    }

    /// A receipt, saying whether its block is final yet.
    func receiptJSON(_ receipt: Receipt) -> JSONValue {
        guard case .object(var o) = receipt.json else { return receipt.json }
        o["final"] = .bool(receipt.height <= node.lastFinalHeight)
        return .object(o)
    }

    /// A refused batch: nothing admitted; the status of each item and the first error.
    func batchRejected(_ errors: [LedgerError?], txs: [Transaction]?) -> Response {
        let first = errors.compactMap { $0 }.first ?? LedgerError("rejected", "batch rejected")
        let results: [JSONValue] = errors.enumerated().map { i, e in
            var o: [String: JSONValue] = ["index": .int(Int64(i))]
            if let txs { o["id"] = .string(txs[i].id.hex) }
            if let e {
                o["status"] = .string("rejected")
                o["error"] = .object(["code": .string(e.code), "message": .string(e.message)])
            } else {
                o["status"] = .string("not_submitted")
            }
            return .object(o)
        }
        var body = APIError.body(LedgerError(first.code, "batch refused, nothing was submitted: \(first.message)"))
        if case .object(var o) = body {
            o["results"] = .array(results)
            body = .object(o)
        }
        return JSONResponse.make(body, status: APIError.status(for: first.code))
    }

    func transactionID(_ text: String) throws -> Hash {
        guard let id = try? Hash(hex: text) else { throw LedgerError("bad_id", "a transaction id is 64 hex digits") }
        return id
    }

    func transaction(_ idText: String, _ request: Request) throws -> Response {
        let id = try transactionID(idText)
        guard let stored = try node.store.transaction(id: id) else {
            throw LedgerError("not_found", "no committed transaction \(id.hex)")
        }
        try readPolicy.authorize(stored.transaction, request: request)
        guard case .object(var o) = Self.transactionJSON(stored) else { return JSONResponse.make(Self.transactionJSON(stored)) }
        o["final"] = .bool(stored.height <= node.lastFinalHeight)
        return JSONResponse.make(.object(o))
    }

    static func transactionJSON(_ stored: StoredTransaction) -> JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(stored.transaction.id.hex),
            "status": .string(stored.status),
            "height": .int(Int64(stored.height)),
            "leafIndex": .int(Int64(stored.leafIndex)),
            "raw": .string(Base64.encode(stored.transaction.encoded)),
            "transaction": stored.transaction.jsonView,
        ]
        if let result = stored.result, let parsed = try? JSONValue.parse(result) { o["result"] = parsed }
        if let code = stored.errorCode {
            o["error"] = .object(["code": .string(code), "message": .string(stored.errorMessage ?? "")])
        }
        return .object(o)
    }

    func integer(_ params: Parameters, _ name: String, required: Bool, default value: UInt64? = nil) throws -> UInt64? {
        guard let text = params.get(name) else {
            if required { throw LedgerError("missing_parameter", "query parameter \(name) is required") }
            return value
        }
        guard let n = UInt64(text), n <= UInt64(OpenAPIDocument.maxHeight) else {
            throw LedgerError("bad_parameter", "\(name) must be an integer from 0 to 2^53")
        }
        return n
    }

    func inclusion(_ params: Parameters, _ request: Request) throws -> Response {
        guard let idText = params.get("id") else { throw LedgerError("missing_parameter", "query parameter id is required") }
        let id = try transactionID(String(idText))
        guard let stored = try node.store.transaction(id: id) else {
            throw LedgerError("not_found", "no committed transaction \(id.hex)")
        }
        try readPolicy.authorize(stored.transaction, request: request)
        let latest = node.latestBlock
        let size = try integer(params, "treeSize", required: false) ?? latest.header.logSize
        let proof = try node.inclusionProof(leafIndex: stored.leafIndex, treeSize: size)
        var o: [String: JSONValue] = [
            "id": .string(id.hex),
            "leafIndex": .int(Int64(stored.leafIndex)),
            "treeSize": .int(Int64(size)),
            "leafHash": .string(stored.transaction.leafHash.base64),
            "raw": .string(Base64.encode(stored.transaction.encoded)),
            "rootHash": .string(try node.root(size: size).base64),
            "hashes": .array(proof.map { .string($0.base64) }),
        ]
        if size == latest.header.logSize { o["checkpoint"] = .string(latest.checkpoint) }
        return JSONResponse.make(.object(o))
    }

    func consistency(_ params: Parameters) throws -> Response {
        let from = try integer(params, "from", required: true)!
        let to = try integer(params, "to", required: true)!
        let proof = try node.consistencyProof(from: from, to: to)
        let latest = node.latestBlock
        var o: [String: JSONValue] = [
            "from": .int(Int64(from)), "to": .int(Int64(to)),
            "fromRoot": .string(try node.root(size: from).base64), "toRoot": .string(try node.root(size: to).base64),
            "hashes": .array(proof.map { .string($0.base64) }),
        ]
        if to == latest.header.logSize { o["checkpoint"] = .string(latest.checkpoint) }
        return JSONResponse.make(.object(o))
    }

    static func blockJSON(_ block: StoredBlock, transactions: [StoredTransaction]?) -> JSONValue {
        var o: [String: JSONValue] = [
            "header": block.header.json,
            "headerRaw": .string(Base64.encode(block.header.encoded)),
            "signature": .string(Base64.encode(block.signature)),
            "checkpoint": .string(block.checkpoint),
        ]
        if let transactions {
            o["transactions"] = .array(transactions.map { .object(["id": .string($0.transaction.id.hex), "status": .string($0.status), "leafIndex": .int(Int64($0.leafIndex))]) })
        }
        return .object(o)
    }

    func block(_ heightText: String) throws -> Response {
        guard let height = UInt64(heightText), height <= UInt64(OpenAPIDocument.maxHeight) else {
            throw LedgerError("bad_parameter", "height must be an integer from 0 to 2^53")
        }
        guard let block = try node.store.block(height: height) else { throw LedgerError("not_found", "no block at height \(height)") }
        guard case .object(var o) = Self.blockJSON(block, transactions: try node.store.transactions(of: block)) else { throw LedgerError("internal_error", "block") }
        o["final"] = .bool(height <= node.lastFinalHeight)
        if let certificate = try node.certificate(height: height) { o["certificate"] = certificate.json }
        return JSONResponse.make(.object(o))
    }

    func blocks(_ params: Parameters) throws -> Response {
        let from = try integer(params, "from", required: false, default: 0)!
        let limit = try integer(params, "limit", required: false, default: 20)!
        guard (1...100).contains(limit) else { throw LedgerError("bad_parameter", "limit must be between 1 and 100") }
        let list = try node.store.blocks(from: from, limit: Int(limit))
        let final = node.lastFinalHeight
        let items: [JSONValue] = list.map { block in
            guard case .object(var o) = Self.blockJSON(block, transactions: nil) else { return .null }
            o["final"] = .bool(block.header.height <= final)
            return .object(o)
        }
        return JSONResponse.make(.object(["blocks": .array(items), "height": .int(Int64(node.height)), "finalHeight": .int(Int64(final))]))
    }

    /// The node's view of the consortium: validators, quorum, heights, ordering and its leader, evidence.
    func consensus() async throws -> Response {
        var o: [String: JSONValue] = [
            "chainId": .string(node.genesis.chainID),
            "node": .string(node.publicKey.did),
            "validator": .bool(node.isValidator),
            "validators": .array(node.validators.map { .string($0.did) }),
            "quorum": .int(Int64(Quorum.size(validators: node.validators.count))),
            "vkeys": .array(node.validatorVKeys.map { .string($0) }),
            "height": .int(Int64(node.height)),
            "finalHeight": .int(Int64(node.lastFinalHeight)),
            "ordering": .string(node.ordering.name),
            "evidence": .int(Int64(try node.store.evidence().count)),
        ]
        if let leader = try? await node.orderingLeader() {
            o["leader"] = .string(leader)
        }
        return JSONResponse.make(.object(o))
    }

    /// Final blocks with their transactions and quorum certificates, for a node catching up.
    func syncBlocks(_ params: Parameters) throws -> Response {
        let from = try integer(params, "from", required: true)!
        let limit = try integer(params, "limit", required: false, default: 64)!
        guard (1...256).contains(limit) else { throw LedgerError("bad_parameter", "limit must be between 1 and 256") }
        let blocks = try node.syncBlocks(from: from, limit: Int(limit))
        let items: [JSONValue] = blocks.map { b in
            var o: [String: JSONValue] = ["height": .int(Int64(b.proposal.header.height)), "proposal": .string(Base64.encode(b.proposal.encoded))]
            if let c = b.certificate { o["certificate"] = .string(Base64.encode(c.encoded)) }
            return .object(o)
        }
        return JSONResponse.make(.object(["blocks": .array(items), "finalHeight": .int(Int64(node.lastFinalHeight))]))
    }

    /// Misbehaviour this node has seen: refused proposals, equivocating validators, forks. The signed
    /// blocks and votes kept as evidence (`first`, `second`) carry whole transactions: they are served
    /// to consortium nodes and members only; others see the summary.
    func evidence(_ request: Request) throws -> Response {
        let member = (try? readPolicy.requireMember(request)) != nil
        let items: [JSONValue] = try node.store.evidence().map { e in
            var o: [String: JSONValue] = [
                "height": .int(Int64(e.height)), "validator": .string(e.validator), "kind": .string(e.kind), "detail": .string(e.detail),
                "time": .int(Int64(e.timeMillis)),
            ]
            if member, let first = e.first { o["first"] = .string(Base64.encode(first)) }
            if member, let second = e.second { o["second"] = .string(Base64.encode(second)) }
            return .object(o)
        }
        return JSONResponse.make(.object(["evidence": .array(items)]))
    }

    func state(_ key: String, _ request: Request) throws -> Response {
        // Every contract's keys are visible ASCII (ids, dids, hex hashes, GS1 keys joined by "/").
        guard (1...512).contains(key.utf8.count), key.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw LedgerError("bad_parameter", "a state key is 1 to 512 visible ASCII characters")
        }
        if readPolicy.isPrivate(stateKey: key) { try readPolicy.authorize(stateKey: key, value: node.stateValue(forKey: key), request: request) }
        let (block, value, proof, salt) = try node.state(key: key)
        var o: [String: JSONValue] = [
            "key": .string(key),
            "present": .bool(value != nil),
            "height": .int(Int64(block.header.height)),
            "stateRoot": .string(block.header.stateRoot.hex),
            "proof": proof.json,
        ]
        // A private entry's leaf is salted: its reader checks the proof with the salt.
        if let salt { o["salt"] = .string(Hex.encode(salt)) }
        if let value {
            o["value"] = (try? JSONValue.parse(value)) ?? .string(Base64.encode(value))
            o["valueRaw"] = .string(Base64.encode(value))
        }
        return JSONResponse.make(.object(o))
    }
}
