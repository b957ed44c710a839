/// Every route of the HTTP API, in one table, from which the OpenAPI document is generated. The
/// handlers are registered beside their code (`LedgerAPI`, `FHIRAPI`, …); `APITests.openAPIMatchesRoutes`
/// compares the router's own table with this one both ways (method and path).
/// One operation of the HTTP API, as the OpenAPI document describes it.
public struct OpenAPIRoute: Sendable {
    public let method: String
    /// Path in OpenAPI form (`{name}` parameters).
    public let path: String
    public let summary: String
    public let parameters: [(name: String, in: String, required: Bool, description: String)]
    public let responseType: String
    public let hasBody: Bool

    public init(
        method: String, path: String, summary: String, parameters: [(name: String, in: String, required: Bool, description: String)], responseType: String,
        hasBody: Bool
    ) {
        self.method = method
        self.path = path
        self.summary = summary
        self.parameters = parameters
        self.responseType = responseType
        self.hasBody = hasBody
    }
}

enum Routes {
    typealias Route = OpenAPIRoute

    static let syncVault = "/v1/sync/vault/{hash}"

    static let all: [Route] = [
        Route(method: "post", path: "/v1/transactions", summary: "Submit one signed transaction, or {\"transactions\":[…]} as a batch; answers after commit with each id, status and whether its block is final",
              parameters: [("wait", "query", false, "commit (default) or final: answer once a quorum of validators certified the block")],
              responseType: "application/json", hasBody: true),
        Route(method: "get", path: "/v1/transactions/{id}", summary: "A transaction: status, block height, leaf index, raw canonical bytes, decoded view (a patient's records, consent, audit and recovery transactions: authenticated, for her, her delegates, the parties named and consortium members)",
              parameters: [("id", "path", true, "transaction id (hex SHA-256)")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/proofs/inclusion", summary: "RFC 9162 inclusion proof of a transaction (authenticated as for the transaction when it concerns a patient)",
              parameters: [("id", "query", true, "transaction id (hex)"), ("treeSize", "query", false, "tree size (default: the latest checkpoint's)")],
              responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/proofs/consistency", summary: "RFC 9162 consistency proof between two tree sizes",
              parameters: [("from", "query", true, "smaller tree size (≥ 1)"), ("to", "query", true, "larger tree size")],
              responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/checkpoint", summary: "The latest checkpoint, a C2SP tlog-checkpoint signed note (headers CareLedger-Height and CareLedger-Final say its block and whether it is final)",
              parameters: [("final", "query", false, "true: the checkpoint of the last final block")],
              responseType: "text/plain", hasBody: false),
        Route(method: "get", path: "/v1/consensus", summary: "The node's view of the consortium: validators, quorum, height, final height, ordering and its leader",
              parameters: [], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/sync/blocks", summary: "Final blocks (proposal bytes: header, proposer signature, transactions) with their quorum certificates, for a node catching up (consortium nodes and members only: RFC 9421 signed, with the CareLedger-Member proof for a node key the chain does not name)",
              parameters: [("from", "query", true, "first height"), ("limit", "query", false, "most blocks (1-256, default 64)")],
              responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/sync/snapshot", summary: "A snapshot of the head once final: block, certificate, validator-set changes with proofs, state, log leaves, used nonces (consortium nodes and members only)",
              parameters: [], responseType: "application/json", hasBody: false),
        Route(method: "get", path: syncVault, summary: "A vault blob (salt || ciphertext, or a key envelope) by its salted hash, for a member node whose reader or custodian lacks it (consortium nodes and members only); only for what the one query parameter names (a record version not erased, an EPCIS document) when it names this hash on chain, 404 not_in_vault otherwise",
              parameters: [("hash", "path", true, "salted hash (hex)")],
              responseType: "application/octet-stream", hasBody: false),
        Route(method: "get", path: "/v1/consensus/evidence", summary: "Misbehaviour seen: refused proposals, equivocating validators, forks",
              parameters: [], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/checkpoint/key", summary: "The checkpoint verifier key (C2SP vkey)", parameters: [],
              responseType: "text/plain", hasBody: false),
        Route(method: "get", path: "/v1/blocks/{height}", summary: "One block: header, signature, checkpoint, transaction ids, whether it is final and its quorum certificate",
              parameters: [("height", "path", true, "block height")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/blocks", summary: "Block headers from a height",
              parameters: [("from", "query", false, "first height (default 0)"), ("limit", "query", false, "at most this many (default 20, max 100)")],
              responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/state/{key}", summary: "A state entry with its sparse Merkle proof (membership or non-membership) against the latest state root (records/, consent/, audit/, recovery/: authenticated, for the patient, her delegates, the parties named and consortium members)",
              parameters: [("key", "path", true, "state key, e.g. notary/<sha256 hex>")], responseType: "application/json", hasBody: false),
        Route(method: "post", path: "/v1/auth/challenge", summary: "A fresh challenge to sign with the principal's Ed25519 key",
              parameters: [], responseType: "application/json", hasBody: false),
        Route(method: "post", path: "/v1/auth/token", summary: "Exchange {did, challenge, signature} for a short-lived bearer token",
              parameters: [], responseType: "application/json", hasBody: true),
        Route(method: "get", path: "/v1/principals/{did}", summary: "A registered principal: role, encryption key, organisation",
              parameters: [("did", "path", true, "did:key")], responseType: "application/json", hasBody: false),
        Route(method: "put", path: "/v1/vault/{hash}", summary: "Store a vault blob under its salted hash (a registered principal, 403 not_registered otherwise): an encrypted record version (salt || ciphertext), its key envelope (salt || {did: wrapped key}) or a recovery kit; at most the vault's blob limit (413), within the uploader's quota of blobs no transaction claims yet (429 vault_quota, Retry-After); unclaimed blobs are removed after the grace period",
              parameters: [("hash", "path", true, "SHA-256 of the blob (salt || ciphertext, or salt || envelope JSON), hex")], responseType: "application/json", hasBody: true),
        Route(method: "get", path: "/v1/records/{id}", summary: "Read a record (authenticated, consent-checked, audited): ciphertext and the key wrapped for the reader",
              parameters: [("id", "path", true, "record id"), ("purpose", "query", false, "treatment (default), payment, research, emergency")],
              responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/records/{id}/erasure", summary: "The signed erasure receipt of an erased record: salted hashes, height, transaction and every node's on-chain shredding attestation (the patient or her delegate)",
              parameters: [("id", "path", true, "record id")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/records/{id}/history", summary: "A record's versions: salted hashes, authors, endorsements, status, recipients and key envelopes (authenticated, consent-checked, audited as a metadata read)",
              parameters: [("id", "path", true, "record id")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/patients/{did}/records", summary: "A patient's timeline for the reader (authenticated, consent-checked, one access event)",
              parameters: [("did", "path", true, "the patient's did"), ("purpose", "query", false, "purpose of use")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/patients/{did}/access-log", summary: "Every access to the patient's data (the patient or her delegate)",
              parameters: [("did", "path", true, "the patient's did")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/organisations/{did}/break-glass", summary: "Break-the-glass accesses by the organisation's people, for its privacy officers to review (the organisation's key or a practitioner with the privacy-officer duty)",
              parameters: [("did", "path", true, "the organisation's did"), ("status", "query", false, "pending (default) or all")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/patients/{did}/disclosures", summary: "The HIPAA-style accounting of disclosures: date, recipient, purpose, what, for every access that released her data (the patient or her delegate)",
              parameters: [("did", "path", true, "the patient's did")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/patients/{did}/consents", summary: "The patient's consent grants (the patient or her delegate)",
              parameters: [("did", "path", true, "the patient's did")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/patients/{did}/recipients", summary: "Who a new version's key must be wrapped for, with their encryption keys (authenticated)",
              parameters: [("did", "path", true, "the patient's did"), ("resourceType", "query", true, "FHIR resource type"), ("custodian", "query", false, "the custodian organisation's did: included (it holds every version's key in escrow for break-the-glass reads)")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/events", summary: "Server-sent events of committed blocks that concern the caller (authenticated): records, consents, accesses, break-the-glass alerts; each with id <height>-<index>; a Last-Event-ID header resumes after that event, replaying what was committed since",
              parameters: [("lastEventId", "query", false, "resume after this event id (as the Last-Event-ID header)"), ("limit", "query", false, "end the stream after this many events (1-100000; endless by default)")],
              responseType: "text/event-stream", hasBody: false),
        Route(method: "get", path: "/fhir/metadata", summary: "FHIR R4 CapabilityStatement of the facade", parameters: [],
              responseType: "application/fhir+json", hasBody: false),
        Route(method: "post", path: "/fhir", summary: "FHIR transaction Bundle: every entry commits in one ledger transaction or none (node acting for an organisation)",
              parameters: [], responseType: "application/fhir+json", hasBody: true),
        Route(method: "post", path: "/fhir/{type}", summary: "FHIR create (authenticated practitioner of the organisation the node acts for)",
              parameters: [("type", "path", true, "resource type")], responseType: "application/fhir+json", hasBody: true),
        Route(method: "get", path: "/fhir/{type}", summary: "FHIR search by patient/subject and _lastUpdated (authenticated, consent-checked, audited)",
              parameters: [("type", "path", true, "resource type"), ("patient", "query", false, "Patient/<did:key multibase>"), ("subject", "query", false, "Patient/<…>"), ("_lastUpdated", "query", false, "ge/le date")],
              responseType: "application/fhir+json", hasBody: false),
        Route(method: "get", path: "/fhir/{type}/{id}", summary: "FHIR read (authenticated, consent-checked, audited)",
              parameters: [("type", "path", true, "resource type"), ("id", "path", true, "resource id")], responseType: "application/fhir+json", hasBody: false),
        Route(method: "put", path: "/fhir/{type}/{id}", summary: "FHIR update with If-Match (authenticated)",
              parameters: [("type", "path", true, "resource type"), ("id", "path", true, "resource id")], responseType: "application/fhir+json", hasBody: true),
        Route(method: "get", path: "/fhir/{type}/{id}/_history", summary: "FHIR instance history (authenticated)",
              parameters: [("type", "path", true, "resource type"), ("id", "path", true, "resource id")], responseType: "application/fhir+json", hasBody: false),
        Route(method: "get", path: "/fhir/{type}/{id}/_history/{vid}", summary: "FHIR vread (authenticated)",
              parameters: [("type", "path", true, "resource type"), ("id", "path", true, "resource id"), ("vid", "path", true, "version")],
              responseType: "application/fhir+json", hasBody: false),
        Route(method: "get", path: "/fhir/Consent", summary: "FHIR Consent resources of a patient, from the ledger's consent grants (authenticated: the patient or her delegate)",
              parameters: [("patient", "query", true, "the patient's did")], responseType: "application/fhir+json", hasBody: false),
        Route(method: "get", path: "/fhir/Consent/{id}", summary: "One FHIR Consent (authenticated: the patient or her delegate)",
              parameters: [("id", "path", true, "consent id")], responseType: "application/fhir+json", hasBody: false),
        Route(method: "get", path: "/fhir/Provenance", summary: "FHIR Provenance of every version of a record, from the chain (authenticated, consent-checked)",
              parameters: [("target", "query", true, "Type/id")], responseType: "application/fhir+json", hasBody: false),
        Route(method: "get", path: "/fhir/AuditEvent", summary: "FHIR AuditEvent resources for every access to a patient's data (authenticated: the patient or her delegate)",
              parameters: [("patient", "query", true, "the patient's did")], responseType: "application/fhir+json", hasBody: false),
        Route(method: "get", path: "/fhir/AuditEvent/{id}", summary: "One FHIR AuditEvent, id <patient multibase>-<index> (authenticated: the patient or her delegate)",
              parameters: [("id", "path", true, "audit event id")], responseType: "application/fhir+json", hasBody: false),
        Route(method: "get", path: "/fhir/Provenance/{id}", summary: "The FHIR Provenance of one record version, id <record id>-<version> (authenticated, consent-checked)",
              parameters: [("id", "path", true, "provenance id")], responseType: "application/fhir+json", hasBody: false),
        Route(method: "post", path: "/fhir/Consent", summary: "Refused with 405: a consent is a grant the patient signs (consent.grant)",
              parameters: [], responseType: "application/fhir+json", hasBody: true),
        Route(method: "put", path: "/fhir/Consent/{id}", summary: "Refused with 405: a consent is a grant the patient signs (consent.grant)",
              parameters: [("id", "path", true, "consent id")], responseType: "application/fhir+json", hasBody: true),
        Route(method: "post", path: "/fhir/AuditEvent", summary: "Refused with 405: access events are the ledger's own",
              parameters: [], responseType: "application/fhir+json", hasBody: true),
        Route(method: "put", path: "/fhir/AuditEvent/{id}", summary: "Refused with 405: access events are the ledger's own",
              parameters: [("id", "path", true, "audit event id")], responseType: "application/fhir+json", hasBody: true),
        Route(method: "post", path: "/fhir/Provenance", summary: "Refused with 405: provenance is derived from the chain",
              parameters: [], responseType: "application/fhir+json", hasBody: true),
        Route(method: "put", path: "/fhir/Provenance/{id}", summary: "Refused with 405: provenance is derived from the chain",
              parameters: [("id", "path", true, "provenance id")], responseType: "application/fhir+json", hasBody: true),
        Route(method: "get", path: "/healthz", summary: "Liveness and current height", parameters: [], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/metrics", summary: "Prometheus metrics", parameters: [], responseType: "text/plain", hasBody: false),
        Route(method: "get", path: "/openapi.json", summary: "This document", parameters: [], responseType: "application/json", hasBody: false),
    ] + ledgerOwnedHistory + refusedFHIRMethods

    /// `_history` and vread of the FHIR types the ledger derives (one version each).
    static let ledgerOwnedHistory: [Route] = [("Consent", "consent id"), ("AuditEvent", "audit event id"), ("Provenance", "provenance id")].flatMap {
        type, id in
        [
            Route(method: "get", path: "/fhir/\(type)/{id}/_history", summary: "\(type) history: one entry, version 1, the current state (its history is the ledger's own transactions)",
                  parameters: [("id", "path", true, id)], responseType: "application/fhir+json", hasBody: false),
            Route(method: "get", path: "/fhir/\(type)/{id}/_history/{vid}", summary: "\(type) vread: version 1 only (404 for any other)",
                  parameters: [("id", "path", true, id), ("vid", "path", true, "version (1)")], responseType: "application/fhir+json", hasBody: false),
        ]
    }

    /// DELETE and PATCH on the FHIR facade: 405 with an OperationOutcome (never a bare 404).
    static let refusedFHIRMethods: [Route] = ["delete", "patch"].flatMap { method in
        [
            Route(method: method, path: "/fhir/{type}", summary: "Refused with 405 and an OperationOutcome: records are versioned, never deleted or patched",
                  parameters: [("type", "path", true, "resource type")], responseType: "application/fhir+json", hasBody: false),
            Route(method: method, path: "/fhir/{type}/{id}", summary: "Refused with 405 and an OperationOutcome: records are versioned, never deleted or patched (a patient erases hers with records.erase)",
                  parameters: [("type", "path", true, "resource type"), ("id", "path", true, "resource id")], responseType: "application/fhir+json", hasBody: false),
        ]
    }
}
