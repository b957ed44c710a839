import LedgerCore
import Server

/// The OpenAPI entries of the records capability: `/v1/records`, `/v1/patients`, break-the-glass
/// reports and the FHIR facade's resources (`APITests.openAPIMatchesRoutes` compares the router's
/// table with the document both ways).
enum RecordsRoutes {
    typealias Route = OpenAPIRoute

    static let purpose = OpenAPIDocument.oneOf(["treatment", "payment", "research", "emergency"])
    static let reason: JSONValue = .object(["type": .string("string"), "minLength": .int(10), "maxLength": .int(1024)])
    /// A FHIR resource type's name (`Observation`).
    nonisolated(unsafe) static let resourceTypeName = /[A-Z][A-Za-z]{1,63}/
    /// A patient as FHIR search names her: `Patient/<did:key multibase>` or the did itself.
    static let patient = OpenAPIDocument.string(
        pattern: "^(Patient/|did:key:)\(OpenAPIDocument.didKeyMultibase)$")

    static let all: [Route] = [
        Route(method: "get", path: "/v1/consent/categories", summary: "The consent categories a grant may name (categories in consent.grant), each with the FHIR resource types it covers",
              parameters: [], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/records/{id}", summary: "Read a record (authenticated, consent-checked, audited): ciphertext and the key wrapped for the reader",
              parameters: [
                  ("id", "path", true, "record id"), ("purpose", "query", false, "treatment (default), payment, research, emergency"),
                  ("reason", "query", false, "break-the-glass: why the reader reads without consent (10 characters or more; with purpose emergency)"),
              ],
              responseType: "application/json", hasBody: false, schemas: ["purpose": purpose, "reason": reason],
              links: [
                  ("history", "get", "/v1/records/{id}/history", ["id": "$request.path.id"]),
                  ("erasure", "get", "/v1/records/{id}/erasure", ["id": "$request.path.id"]),
              ]),
        Route(method: "get", path: "/v1/records/{id}/erasure", summary: "The signed erasure receipt of an erased record: salted hashes, height, transaction and every node's on-chain shredding attestation (the patient or her delegate)",
              parameters: [("id", "path", true, "record id")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/records/{id}/history", summary: "A record's versions: salted hashes, authors, endorsements, status, recipients and key envelopes (authenticated, consent-checked, audited as a metadata read)",
              parameters: [("id", "path", true, "record id")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/patients/{did}/records", summary: "A patient's timeline for the reader (authenticated, consent-checked, one access event); an emergency read answers with the header CareLedger-Break-Glass-Until (when the window closes, ms since the epoch)",
              parameters: [
                  ("did", "path", true, "the patient's did"), ("purpose", "query", false, "purpose of use"),
                  ("reason", "query", false, "break-the-glass: why the reader reads without consent (10 characters or more; with purpose emergency)"),
              ], responseType: "application/json", hasBody: false,
              schemas: ["purpose": purpose, "reason": reason]),
        Route(method: "get", path: "/v1/practitioners/{did}/endorsements", summary: "The record versions waiting for the practitioner's endorsement (she is a required party, e.g. the ordering practitioner of a DiagnosticReport, and has not endorsed); the practitioner herself only",
              parameters: [("did", "path", true, "the practitioner's did")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/practitioners/{did}/patients", summary: "The practitioner's patients: those with a consent in force letting her, her organisation or one of her care teams treat them, with those grants (the practitioner herself only)",
              parameters: [("did", "path", true, "the practitioner's did")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/patients/{did}/keys", summary: "After the patient rotated her keys: each version whose key for her predates them, with that key (her previous encryption key opens it; her client wraps it anew for records.rewrap), and the versions with no key for her (the custodian re-wraps them from escrow). The patient herself only",
              parameters: [("did", "path", true, "the patient's did")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/patients/{did}/access-log", summary: "Every access to the patient's data (the patient or her delegate)",
              parameters: [("did", "path", true, "the patient's did")], responseType: "application/json", hasBody: false,
              links: [
                  ("disclosures", "get", "/v1/patients/{did}/disclosures", ["did": "$request.path.did"]),
                  ("consents", "get", "/v1/patients/{did}/consents", ["did": "$request.path.did"]),
                  ("auditEvents", "get", "/fhir/AuditEvent", ["patient": "$request.path.did"]),
              ]),
        Route(method: "get", path: "/v1/organisations/{did}/break-glass", summary: "Break-the-glass accesses by the organisation's people, for its privacy officers to review (the organisation's key or a practitioner with the privacy-officer duty)",
              parameters: [("did", "path", true, "the organisation's did"), ("status", "query", false, "pending (default) or all")], responseType: "application/json", hasBody: false,
              schemas: ["status": OpenAPIDocument.oneOf(["pending", "all"])]),
        Route(method: "get", path: "/v1/patients/{did}/disclosures", summary: "The HIPAA-style accounting of disclosures: date, recipient, purpose, what, for every access that released her data (the patient or her delegate)",
              parameters: [("did", "path", true, "the patient's did")], responseType: "application/json", hasBody: false),
        Route(method: "get", path: "/v1/patients/{did}/consents", summary: "The patient's consent grants (the patient or her delegate)",
              parameters: [("did", "path", true, "the patient's did")], responseType: "application/json", hasBody: false,
              links: [
                  ("fhirConsent", "get", "/fhir/Consent/{id}", ["id": "$response.body#/consents/0/id"]),
                  ("fhirConsents", "get", "/fhir/Consent", ["patient": "$request.path.did"]),
              ]),
        Route(method: "get", path: "/v1/patients/{did}/recipients", summary: "Who a new version's key must be wrapped for, with their encryption keys (authenticated)",
              parameters: [("did", "path", true, "the patient's did"), ("resourceType", "query", true, "FHIR resource type"), ("custodian", "query", false, "the custodian organisation's did: included (it holds every version's key in escrow for break-the-glass reads)")], responseType: "application/json", hasBody: false,
              schemas: ["resourceType": OpenAPIDocument.string(pattern: "^[A-Z][A-Za-z]{1,63}$"), "custodian": OpenAPIDocument.string(pattern: OpenAPIDocument.didPattern)]),
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
              parameters: [("patient", "query", true, "the patient's did")], responseType: "application/fhir+json", hasBody: false, schemas: ["patient": patient]),
        Route(method: "get", path: "/fhir/Consent/{id}", summary: "One FHIR Consent (authenticated: the patient or her delegate)",
              parameters: [("id", "path", true, "consent id")], responseType: "application/fhir+json", hasBody: false),
        Route(method: "get", path: "/fhir/Provenance", summary: "FHIR Provenance of every version of a record, from the chain (authenticated, consent-checked)",
              parameters: [("target", "query", true, "Type/id")], responseType: "application/fhir+json", hasBody: false,
              schemas: ["target": OpenAPIDocument.string(pattern: "^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9.-]{1,64}$")]),
        Route(method: "get", path: "/fhir/AuditEvent", summary: "FHIR AuditEvent resources for every access to a patient's data (authenticated: the patient or her delegate)",
              parameters: [("patient", "query", true, "the patient's did")], responseType: "application/fhir+json", hasBody: false, schemas: ["patient": patient]),
        Route(method: "get", path: "/fhir/AuditEvent/{id}", summary: "One FHIR AuditEvent, id <patient multibase>-<index> (authenticated: the patient or her delegate)",
              parameters: [("id", "path", true, "audit event id")], responseType: "application/fhir+json", hasBody: false),
        Route(method: "get", path: "/fhir/Provenance/{id}", summary: "The FHIR Provenance of one record version, id <record id>-<version> (authenticated, consent-checked)",
              parameters: [("id", "path", true, "provenance id")], responseType: "application/fhir+json", hasBody: false),
        Route(method: "post", path: "/fhir/Consent", summary: "Refused with 405: a consent is a grant the patient signs (consent.grant)",
              parameters: [], responseType: "application/fhir+json", hasBody: true, refused: true),
        Route(method: "put", path: "/fhir/Consent/{id}", summary: "Refused with 405: a consent is a grant the patient signs (consent.grant)",
              parameters: [("id", "path", true, "consent id")], responseType: "application/fhir+json", hasBody: true, refused: true),
        Route(method: "post", path: "/fhir/AuditEvent", summary: "Refused with 405: access events are the ledger's own",
              parameters: [], responseType: "application/fhir+json", hasBody: true, refused: true),
        Route(method: "put", path: "/fhir/AuditEvent/{id}", summary: "Refused with 405: access events are the ledger's own",
              parameters: [("id", "path", true, "audit event id")], responseType: "application/fhir+json", hasBody: true, refused: true),
        Route(method: "post", path: "/fhir/Provenance", summary: "Refused with 405: provenance is derived from the chain",
              parameters: [], responseType: "application/fhir+json", hasBody: true, refused: true),
        Route(method: "put", path: "/fhir/Provenance/{id}", summary: "Refused with 405: provenance is derived from the chain",
              parameters: [("id", "path", true, "provenance id")], responseType: "application/fhir+json", hasBody: true, refused: true),
        Route(method: "post", path: "/fhir/{type}/$validate",
              summary: "FHIR $validate: checks a resource (or a Parameters holding it) as a write would and stores nothing; 200 with an OperationOutcome of its issues, one informational issue when valid",
              parameters: [("type", "path", true, "resource type")], responseType: "application/fhir+json", hasBody: true),
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
                  parameters: [("type", "path", true, "resource type")], responseType: "application/fhir+json", hasBody: false, refused: true),
            Route(method: method, path: "/fhir/{type}/{id}", summary: "Refused with 405 and an OperationOutcome: records are versioned, never deleted or patched (a patient erases hers with records.erase)",
                  parameters: [("type", "path", true, "resource type"), ("id", "path", true, "resource id")], responseType: "application/fhir+json", hasBody: false, refused: true),
        ]
    }
}
