import LedgerCore

/// One operation of the HTTP API, as the OpenAPI document describes it.
public struct OpenAPIRoute: Sendable {
    public let method: String
    /// Path in OpenAPI form (`{name}` parameters).
    public let path: String
    public let summary: String
    public let parameters: [(name: String, in: String, required: Bool, description: String)]
    public let responseType: String
    public let hasBody: Bool
    /// JSON Schemas of parameters, by name, where the common one for that name (see
    /// `OpenAPIDocument.parameterSchema`) does not fit.
    public let schemas: [String: JSONValue]
    /// The JSON Schema of the request body, where "an object" says too little.
    public let body: JSONValue?
    /// OpenAPI links from a successful answer to other operations (method, path) with their parameters'
    /// runtime expressions, so that a client or a stateful fuzzer goes from one answer to the next.
    public let links: [(name: String, method: String, path: String, parameters: [String: String])]
    /// Success statuses other than 200 (e.g. 201 for a create).
    public let success: [Int]
    /// A method served only to refuse it with 405 and an explanation: not an operation of the
    /// document (listed under `x-refused`), and never in an `Allow` header.
    public let refused: Bool

    public init(
        method: String, path: String, summary: String, parameters: [(name: String, in: String, required: Bool, description: String)], responseType: String,
        hasBody: Bool, schemas: [String: JSONValue] = [:], body: JSONValue? = nil,
        links: [(name: String, method: String, path: String, parameters: [String: String])] = [], success: [Int] = [200], refused: Bool = false
    ) {
        self.body = body
        self.links = links
        self.method = method
        self.path = path
        self.summary = summary
        self.parameters = parameters
        self.responseType = responseType
        self.hasBody = hasBody
        self.schemas = schemas
        self.success = success
        self.refused = refused
    }
}

/// The kernel's routes, in one table; with the capabilities' (`NodeCapability.openAPIRoutes`) the
/// OpenAPI document is generated from it. The handlers are registered beside their code (`LedgerAPI`,
/// `AuthAPI`, `EventsAPI`, …); `APITests.openAPIMatchesRoutes` compares the router's own table with
/// the document both ways (method and path).
enum KernelRoutes {
    typealias Route = OpenAPIRoute

    static let syncVault = "/v1/sync/vault/{hash}"

    static let all: [Route] = [
        Route(method: "post", path: "/v1/transactions", summary: "Submit one signed transaction, or {\"transactions\":[…]} as a batch; answers after commit with each id, status and whether its block is final",
              parameters: [("wait", "query", false, "commit (default) or final: answer once a quorum of validators certified the block")],
              responseType: "application/json", hasBody: true, schemas: ["wait": OpenAPIDocument.oneOf(["commit", "final"])]),
        Route(method: "get", path: "/v1/transactions/{id}", summary: "A transaction: status, block height, leaf index, raw canonical bytes, decoded view (a patient's records, consent, audit and recovery transactions: authenticated, for her, her delegates, the parties named and consortium members)",
              parameters: [("id", "path", true, "transaction id (hex SHA-256)")], responseType: "application/json", hasBody: false,
              schemas: ["id": OpenAPIDocument.string(pattern: OpenAPIDocument.hexHashPattern)]),
        Route(method: "get", path: "/v1/proofs/inclusion", summary: "RFC 9162 inclusion proof of a transaction (authenticated as for the transaction when it concerns a patient)",
              parameters: [("id", "query", true, "transaction id (hex)"), ("treeSize", "query", false, "tree size (default: the latest checkpoint's)")],
              responseType: "application/json", hasBody: false,
              schemas: ["id": OpenAPIDocument.string(pattern: OpenAPIDocument.hexHashPattern), "treeSize": OpenAPIDocument.integer(1...OpenAPIDocument.maxHeight)]),
        Route(method: "get", path: "/v1/proofs/consistency", summary: "RFC 9162 consistency proof between two tree sizes",
              parameters: [("from", "query", true, "smaller tree size (≥ 1)"), ("to", "query", true, "larger tree size")],
              responseType: "application/json", hasBody: false,
              schemas: ["from": OpenAPIDocument.integer(1...OpenAPIDocument.maxHeight), "to": OpenAPIDocument.integer(1...OpenAPIDocument.maxHeight)]),
        Route(method: "get", path: "/v1/checkpoint", summary: "The latest checkpoint, a C2SP tlog-checkpoint signed note (headers CareLedger-Height and CareLedger-Final say its block and whether it is final)",
              parameters: [("final", "query", false, "true: the checkpoint of the last final block")],
              responseType: "text/plain", hasBody: false, schemas: ["final": OpenAPIDocument.oneOf(["true", "false"])]),
        Route(method: "get", path: "/v1/consensus", summary: "The node's view of the consortium: validators, quorum, height, final height, ordering and its leader",
              parameters: [], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/sync/blocks", summary: "Final blocks (proposal bytes: header, proposer signature, transactions) with their quorum certificates, for a node catching up (consortium nodes and members only: RFC 9421 signed, with the CareLedger-Member proof for a node key the chain does not name)",
              parameters: [("from", "query", true, "first height"), ("limit", "query", false, "most blocks (1-256, default 64)")],
              responseType: "application/json", hasBody: false, schemas: ["limit": OpenAPIDocument.integer(1...256)]),
        Route(method: "get", path: "/v1/sync/snapshot", summary: "A snapshot of the head once final: block, certificate, validator-set changes with proofs, state, log leaves, used nonces (consortium nodes and members only)",
              parameters: [], responseType: "application/json", hasBody: false),
        Route(method: "get", path: syncVault, summary: "A vault blob (salt || ciphertext, or a key envelope) by its salted hash, for a member node whose reader or custodian lacks it (consortium nodes and members only); only for what the one query parameter names (a record version not erased, an EPCIS document) when it names this hash on chain, 404 not_in_vault otherwise",
              parameters: [("hash", "path", true, "salted hash (hex)")],
              responseType: "application/octet-stream", hasBody: false, schemas: ["hash": OpenAPIDocument.string(pattern: OpenAPIDocument.hexHashPattern)]),
        Route(method: "get", path: "/v1/consensus/evidence", summary: "Misbehaviour seen: refused proposals, equivocating validators, forks",
              parameters: [], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/", summary: "Redirects (302) to the web app, /app/", parameters: [], responseType: "text/html", hasBody: false),
        Route(method: "get", path: "/app", summary: "The web app, at /app/ (HTML; strict Content-Security-Policy, ETag, Cache-Control: no-cache)", parameters: [],
              responseType: "text/html", hasBody: false),
        Route(method: "get", path: "/app/{key}", summary: "A file of the web app (ES modules, CSS, images), with its MIME type and ETag (If-None-Match answers 304)",
              parameters: [("key", "path", true, "the file's path under /app/, e.g. js/api.js")], responseType: "*/*", hasBody: false),
        Route(method: "get", path: "/v1/checkpoint/key", summary: "The checkpoint verifier key (C2SP vkey)", parameters: [],
              responseType: "text/plain", hasBody: false),
        Route(method: "get", path: "/v1/blocks/{height}", summary: "One block: header, signature, checkpoint, transaction ids, whether it is final and its quorum certificate",
              parameters: [("height", "path", true, "block height")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/blocks", summary: "Block headers from a height",
              parameters: [("from", "query", false, "first height (default 0)"), ("limit", "query", false, "at most this many (default 20, max 100)")],
              responseType: "application/json", hasBody: false,
              links: [("head", "get", "/v1/blocks/{height}", ["height": "$response.body#/height"])]),
        Route(method: "get", path: "/v1/state/{key}", summary: "A state entry with its sparse Merkle proof (membership or non-membership) against the latest state root (records/, consent/, audit/, recovery/: authenticated, for the patient, her delegates, the parties named and consortium members)",
              parameters: [("key", "path", true, "state key, e.g. notary/<sha256 hex>")], responseType: "application/json", hasBody: false,
              schemas: ["key": OpenAPIDocument.string(pattern: "^[!-~]{1,512}$")]),
        Route(method: "post", path: "/v1/auth/challenge", summary: "A fresh challenge to sign with the principal's Ed25519 key",
              parameters: [], responseType: "application/json", hasBody: false),
        Route(method: "post", path: "/v1/auth/token", summary: "Exchange {did, challenge, signature, key?} for a short-lived bearer token of the signing key `key` (default: the did's own), which must sign for `did` now; it stops working when the key is rotated away or frozen",
              parameters: [], responseType: "application/json", hasBody: true,
              body: OpenAPIDocument.object(required: [
                  "did": OpenAPIDocument.string(pattern: OpenAPIDocument.didPattern), "challenge": OpenAPIDocument.nonEmpty,
                  "signature": OpenAPIDocument.string(pattern: OpenAPIDocument.base64Pattern),
              ], optional: ["key": OpenAPIDocument.string(pattern: OpenAPIDocument.didPattern)])),
        Route(method: "get", path: "/v1/principals", summary: "Registered principals whose name contains the text given (organisations and care teams have names on chain; at most 20)",
              parameters: [("name", "query", true, "2 to 128 characters of the name")], responseType: "application/json", hasBody: false,
              schemas: ["name": OpenAPIDocument.string(minLength: 2, maxLength: 128)]),
        Route(method: "get", path: "/v1/principals/{did}", summary: "A registered principal: role, current encryption key, organisation; after a rotation its signing key, keysFrom and keyHistory (each key with the heights it was current from and until); frozen while frozen",
              parameters: [("did", "path", true, "did:key")], responseType: "application/json", hasBody: false),
        Route(method: "put", path: "/v1/vault/{hash}", summary: "Store a vault blob under its salted hash (a registered principal, 403 not_registered otherwise): an encrypted record version (salt || ciphertext), its key envelope (salt || {did: wrapped key}) or a recovery kit; at most the vault's blob limit (413), within the uploader's quota of blobs no transaction claims yet (429 vault_quota, Retry-After); unclaimed blobs are removed after the grace period",
              parameters: [("hash", "path", true, "SHA-256 of the blob (salt || ciphertext, or salt || envelope JSON), hex")], responseType: "application/json", hasBody: true,
              schemas: ["hash": OpenAPIDocument.string(pattern: OpenAPIDocument.hexHashPattern)]),
        Route(method: "get", path: "/v1/events", summary: "Server-sent events of committed blocks that concern the caller (authenticated): records, consents, accesses, break-the-glass alerts; each with id <height>-<index>; a Last-Event-ID header resumes after that event, replaying what was committed since",
              parameters: [("lastEventId", "query", false, "resume after this event id (as the Last-Event-ID header)"), ("limit", "query", false, "end the stream after this many events (1-100000; endless by default)")],
              responseType: "text/event-stream", hasBody: false,
              schemas: ["lastEventId": OpenAPIDocument.string(pattern: "^[0-9]{1,18}-[0-9]{1,9}$"), "limit": OpenAPIDocument.integer(1...100_000)]),
        Route(method: "get", path: "/fhir/metadata", summary: "FHIR R4 CapabilityStatement of the facade", parameters: [],
              responseType: "application/fhir+json", hasBody: false),
        Route(method: "get", path: "/healthz", summary: "Liveness and current height", parameters: [], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/metrics", summary: "Prometheus metrics", parameters: [], responseType: "text/plain", hasBody: false),
        Route(method: "get", path: "/openapi.json", summary: "This document", parameters: [], responseType: "application/json", hasBody: false),
    ]
}
