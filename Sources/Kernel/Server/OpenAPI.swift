import LedgerCore

/// The OpenAPI 3.1 document, generated from `KernelRoutes.all` and the capabilities' `openAPIRoutes`.
public enum OpenAPIDocument {
    /// `vaultOwners`: the kinds of vault blob owner the capabilities answer for, query parameters of `/v1/sync/vault/{hash}`.
    static func make(version: String, capabilities: [OpenAPIRoute] = [], vaultOwners: [(kind: String, description: String)] = []) -> JSONValue {
        var paths: [String: JSONValue] = [:]
        let kernel = KernelRoutes.all.map { route in
            guard route.path == KernelRoutes.syncVault else { return route }
            return OpenAPIRoute(
                method: route.method, path: route.path, summary: route.summary, parameters: route.parameters + vaultOwners.map { ($0.kind, "query", false, $0.description) },
                responseType: route.responseType, hasBody: route.hasBody)
        }
        var refused: [JSONValue] = []
        for route in kernel + capabilities {
            if route.refused {
                refused.append(.object(["method": .string(route.method), "path": .string(route.path), "summary": .string(route.summary)]))
                continue
            }
            var operation: [String: JSONValue] = [
                "summary": .string(route.summary),
                "operationId": .string(operationID(route.method, route.path)),
                "responses": .object(responses(route)),
            ]
            if !route.parameters.isEmpty {
                operation["parameters"] = .array(
                    route.parameters.map { p in
                        .object([
                            "name": .string(p.name), "in": .string(p.in), "required": .bool(p.required),
                            "description": .string(p.description), "schema": route.schemas[p.name] ?? parameterSchema(p.name),
                        ])
                    })
            }
            if route.hasBody && route.path.hasPrefix("/v1/vault") {
                operation["requestBody"] = .object([
                    "required": .bool(true),
                    "content": .object(["application/octet-stream": .object(["schema": .object(["type": .string("string"), "contentEncoding": .string("binary")])])]),
                ])
            } else if route.hasBody && route.path != "/v1/transactions" {
                let type = route.path.hasPrefix("/fhir") ? "application/fhir+json" : "application/json"
                operation["requestBody"] = .object([
                    "required": .bool(true), "content": .object([type: .object(["schema": route.body ?? .object(["type": .string("object")])])]),
                ])
            } else if route.hasBody {
                operation["requestBody"] = .object([
                    "required": .bool(true),
                    "content": .object(["application/json": .object(["schema": .object(["oneOf": .array([
                        .object(["$ref": .string("#/components/schemas/Transaction")]),
                        .object(["type": .string("object"), "required": .array([.string("transactions")]),
                                 "properties": .object(["transactions": .object(["type": .string("array"), "items": .object(["$ref": .string("#/components/schemas/Transaction")])])])]),
                    ])])])]),
                ])
            }
            var item = paths[route.path]?.objectValue ?? [:]
            item[route.method] = .object(operation)
            paths[route.path] = .object(item)
        }
        return .object([
            "openapi": .string("3.1.0"),
            "info": .object([
                "title": .string("CareLedger node API"), "version": .string(version),
                "description": .string("A permissioned healthcare ledger node. Errors are {\"error\":{\"code\",\"message\"}} with a stable snake_case code."),
            ]),
            "paths": .object(paths),
            // Methods served only to refuse them with 405 and an explanation (e.g. DELETE of a FHIR record).
            "x-refused": .array(refused),
            "components": .object(["schemas": .object([
                "Error": .object([
                    "type": .string("object"), "required": .array([.string("error")]),
                    "properties": .object(["error": .object([
                        "type": .string("object"), "required": .array([.string("code"), .string("message")]),
                        "properties": .object(["code": .object(["type": .string("string")]), "message": .object(["type": .string("string")])]),
                    ])]),
                ]),
                "OperationOutcome": .object([
                    "type": .string("object"), "required": .array([.string("resourceType"), .string("issue")]),
                    "properties": .object([
                        "resourceType": .object(["const": .string("OperationOutcome")]),
                        "issue": .object(["type": .string("array"), "items": .object(["type": .string("object")])]),
                    ]),
                ]),
                "Transaction": .object([
                    "description": .string("Either {\"raw\": base64 canonical bytes} or the fields, with the Ed25519 signature over the canonical encoding"),
                    "type": .string("object"),
                    "properties": .object([
                        "raw": .object(["type": .string("string"), "contentEncoding": .string("base64")]),
                        "chainId": .object(["type": .string("string")]), "author": .object(["type": .string("string"), "description": .string("did:key")]),
                        "nonce": .object(["type": .string("integer"), "minimum": .int(0)]), "contract": .object(["type": .string("string")]),
                        "action": .object(["type": .string("string")]), "payload": .object(["type": .string("object")]),
                        "signature": .object(["type": .string("string"), "contentEncoding": .string("base64")]),
                    ]),
                ]),
            ])]),
        ])
    }

    /// The pattern of an Ed25519 `did:key`: "z6Mk" and 44 more base58 characters, the fifth one within
    /// the range every 32-byte key gives (so that any string it matches is a key's did).
    public static let didPattern = "^did:key:\(didKeyMultibase)$"
    /// The multibase part of such a did (`z6Mk…`).
    public static let didKeyMultibase = "z6Mk[f-km-v][1-9A-HJ-NP-Za-km-z]{43}"
    public static let hexHashPattern = "^[0-9a-f]{64}$"
    /// The largest height or tree size a parameter may name.
    public static let maxHeight: Int64 = 1 << 53

    public static func string(pattern: String) -> JSONValue { .object(["type": .string("string"), "pattern": .string(pattern)]) }
    public static func string(minLength: Int, maxLength: Int) -> JSONValue {
        .object(["type": .string("string"), "minLength": .int(Int64(minLength)), "maxLength": .int(Int64(maxLength))])
    }
    public static func integer(_ range: ClosedRange<Int64>) -> JSONValue {
        .object(["type": .string("integer"), "minimum": .int(range.lowerBound), "maximum": .int(range.upperBound)])
    }
    public static let base64Pattern = "^[A-Za-z0-9+/]{4,}={0,2}$"
    public static let nonEmpty: JSONValue = .object(["type": .string("string"), "minLength": .int(1)])
    /// An object with these required properties (and optional ones), no others.
    public static func object(required: [String: JSONValue], optional: [String: JSONValue] = [:]) -> JSONValue {
        .object([
            "type": .string("object"), "required": .array(required.keys.sorted().map { .string($0) }),
            "properties": .object(required.merging(optional) { a, _ in a }), "additionalProperties": .bool(false),
        ])
    }
    public static func oneOf(_ values: [String]) -> JSONValue { .object(["type": .string("string"), "enum": .array(values.map { .string($0) })]) }

    /// The schema of a parameter by its name, where the route gives none of its own.
    static func parameterSchema(_ name: String) -> JSONValue {
        switch name {
        case "did": return string(pattern: didPattern)
        case "height", "treeSize", "from", "to": return integer(0...maxHeight)
        case "limit": return integer(1...100)
        default: return .object(["type": .string("string"), "minLength": .int(1)])
        }
    }

    static func operationID(_ method: String, _ path: String) -> String {
        method + path.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "{", with: "").replacingOccurrences(of: "}", with: "").replacingOccurrences(of: ".", with: "_")
    }

    static func responses(_ route: OpenAPIRoute) -> [String: JSONValue] {
        let json = route.responseType == "application/json" || route.responseType == "application/fhir+json"
        // An event stream's schema is that of each event (id, event name, data).
        let schema: JSONValue =
            route.responseType == "text/event-stream"
            ? .object([
                "type": .string("object"),
                "properties": .object(["id": .object(["type": .string("string")]), "event": .object(["type": .string("string")]), "data": .object(["type": .string("string")])]),
            ])
            : .object(["type": .string(json ? "object" : "string")])
        var ok: [String: JSONValue] = [
            "description": .string("OK"),
            "content": .object([route.responseType: .object(["schema": schema])]),
        ]
        if !route.links.isEmpty {
            ok["links"] = .object(Dictionary(uniqueKeysWithValues: route.links.map { link in
                (link.name, JSONValue.object([
                    "operationId": .string(operationID(link.method, link.path)),
                    "parameters": .object(link.parameters.mapValues { .string($0) }),
                ]))
            }))
        }
        // Every error: a JSON error object under /v1, an OperationOutcome under /fhir; the status says
        // what kind (400 bad input, 401/403 who may not, 404, 405 with Allow, 409 conflict, 413, 415,
        // 429 with Retry-After, 503 busy).
        let error: JSONValue =
            route.path.hasPrefix("/fhir")
            ? .object([
                "description": .string("An OperationOutcome saying what went wrong"),
                "content": .object(["application/fhir+json": .object(["schema": .object(["$ref": .string("#/components/schemas/OperationOutcome")])])]),
            ])
            : .object([
                "description": .string("An error with a stable code"),
                "content": .object(["application/json": .object(["schema": .object(["$ref": .string("#/components/schemas/Error")])])]),
            ])
        var r: [String: JSONValue] = ["default": error]
        for status in route.success { r[String(status)] = .object(ok) }
        return r
    }
}
