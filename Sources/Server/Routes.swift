/// Every route of the HTTP API, in one table: the router is built from these paths and the
/// OpenAPI document describes exactly these (a test checks both ways).
enum Routes {
    struct Route: Sendable {
        let method: String
        /// Path in OpenAPI form (`{name}` parameters).
        let path: String
        let summary: String
        let parameters: [(name: String, in: String, required: Bool, description: String)]
        let responseType: String
        let hasBody: Bool
    }

    static let all: [Route] = [
        Route(method: "post", path: "/v1/transactions", summary: "Submit one signed transaction, or {\"transactions\":[…]} as a batch; answers after commit with each id and status",
              parameters: [], responseType: "application/json", hasBody: true),
        Route(method: "get", path: "/v1/transactions/{id}", summary: "A transaction: status, block height, leaf index, raw canonical bytes, decoded view",
              parameters: [("id", "path", true, "transaction id (hex SHA-256)")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/proofs/inclusion", summary: "RFC 9162 inclusion proof of a transaction",
              parameters: [("id", "query", true, "transaction id (hex)"), ("treeSize", "query", false, "tree size (default: the latest checkpoint's)")],
              responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/proofs/consistency", summary: "RFC 9162 consistency proof between two tree sizes",
              parameters: [("from", "query", true, "smaller tree size (≥ 1)"), ("to", "query", true, "larger tree size")],
              responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/checkpoint", summary: "The latest checkpoint, a C2SP tlog-checkpoint signed note", parameters: [],
              responseType: "text/plain", hasBody: false),
        Route(method: "get", path: "/v1/checkpoint/key", summary: "The checkpoint verifier key (C2SP vkey)", parameters: [],
              responseType: "text/plain", hasBody: false),
        Route(method: "get", path: "/v1/blocks/{height}", summary: "One block: header, signature, checkpoint, transaction ids",
              parameters: [("height", "path", true, "block height")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/blocks", summary: "Block headers from a height",
              parameters: [("from", "query", false, "first height (default 0)"), ("limit", "query", false, "at most this many (default 20, max 100)")],
              responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/state/{key}", summary: "A state entry with its sparse Merkle proof (membership or non-membership) against the latest state root",
              parameters: [("key", "path", true, "state key, e.g. notary/<sha256 hex>")], responseType: "application/json", hasBody: false),
        Route(method: "post", path: "/v1/auth/challenge", summary: "A fresh challenge to sign with the principal's Ed25519 key",
              parameters: [], responseType: "application/json", hasBody: false),
        Route(method: "post", path: "/v1/auth/token", summary: "Exchange {did, challenge, signature} for a short-lived bearer token",
              parameters: [], responseType: "application/json", hasBody: true),
        Route(method: "get", path: "/v1/principals/{did}", summary: "A registered principal: role, encryption key, organisation",
              parameters: [("did", "path", true, "did:key")], responseType: "application/json", hasBody: false),
        Route(method: "put", path: "/v1/vault/{hash}", summary: "Store an encrypted record version (salt || ciphertext) under its salted hash (authenticated)",
              parameters: [("hash", "path", true, "SHA-256(salt || ciphertext), hex")], responseType: "application/json", hasBody: true),
        Route(method: "get", path: "/v1/records/{id}", summary: "Read a record (authenticated, consent-checked, audited): ciphertext and the key wrapped for the reader",
              parameters: [("id", "path", true, "record id"), ("purpose", "query", false, "treatment (default), payment, research, emergency")],
              responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/records/{id}/history", summary: "A record's versions: salted hashes, authors, endorsements, status (authenticated, consent-checked)",
              parameters: [("id", "path", true, "record id")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/patients/{did}/records", summary: "A patient's timeline for the reader (authenticated, consent-checked, one access event)",
              parameters: [("did", "path", true, "the patient's did"), ("purpose", "query", false, "purpose of use")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/patients/{did}/access-log", summary: "Every access to the patient's data (the patient or her delegate)",
              parameters: [("did", "path", true, "the patient's did")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/patients/{did}/consents", summary: "The patient's consent grants (the patient or her delegate)",
              parameters: [("did", "path", true, "the patient's did")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/patients/{did}/recipients", summary: "Who a new version's key must be wrapped for, with their encryption keys (authenticated)",
              parameters: [("did", "path", true, "the patient's did"), ("resourceType", "query", true, "FHIR resource type")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/recovery/{did}/kit", summary: "The encrypted recovery kit, for the key that opened the recovery request (authenticated)",
              parameters: [("did", "path", true, "the patient's did")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/events", summary: "Server-sent events of committed blocks that concern the caller (authenticated): records, consents, accesses, break-the-glass alerts",
              parameters: [], responseType: "text/event-stream", hasBody: false),
        Route(method: "get", path: "/fhir/metadata", summary: "FHIR R4 CapabilityStatement of the facade", parameters: [],
              responseType: "application/fhir+json", hasBody: false),
        Route(method: "get", path: "/fhir/Consent", summary: "FHIR Consent resources of a patient, from the ledger's consent grants (authenticated: the patient or her delegate)",
              parameters: [("patient", "query", true, "the patient's did")], responseType: "application/fhir+json", hasBody: false),
        Route(method: "get", path: "/fhir/Consent/{id}", summary: "One FHIR Consent (authenticated: the patient or her delegate)",
              parameters: [("id", "path", true, "consent id")], responseType: "application/fhir+json", hasBody: false),
        Route(method: "get", path: "/fhir/AuditEvent", summary: "FHIR AuditEvent resources for every access to a patient's data (authenticated: the patient or her delegate)",
              parameters: [("patient", "query", true, "the patient's did")], responseType: "application/fhir+json", hasBody: false),
        Route(method: "get", path: "/healthz", summary: "Liveness and current height", parameters: [], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/metrics", summary: "Prometheus metrics", parameters: [], responseType: "text/plain", hasBody: false),
        Route(method: "get", path: "/openapi.json", summary: "This document", parameters: [], responseType: "application/json", hasBody: false),
    ]
}
