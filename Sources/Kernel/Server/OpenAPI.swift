import LedgerCore

/// The OpenAPI 3.1 document, generated from `KernelRoutes.all` and the capabilities' `openAPIRoutes`.
enum OpenAPIDocument {
    /// `vaultOwners`: the kinds of vault blob owner the capabilities answer for, query parameters of `/v1/sync/vault/{hash}`.
    static func make(version: String, capabilities: [OpenAPIRoute] = [], vaultOwners: [(kind: String, description: String)] = []) -> JSONValue {
        var paths: [String: JSONValue] = [:]
        let kernel = KernelRoutes.all.map { route in
            guard route.path == KernelRoutes.syncVault else { return route }
            return OpenAPIRoute(
                method: route.method, path: route.path, summary: route.summary, parameters: route.parameters + vaultOwners.map { ($0.kind, "query", false, $0.description) },
                responseType: route.responseType, hasBody: route.hasBody)
        }
        for route in kernel + capabilities {
            var operation: [String: JSONValue] = [
                "summary": .string(route.summary),
                "operationId": .string(route.method + route.path.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "{", with: "").replacingOccurrences(of: "}", with: "").replacingOccurrences(of: ".", with: "_")),
                "responses": .object(responses(route)),
            ]
            if !route.parameters.isEmpty {
                operation["parameters"] = .array(
                    route.parameters.map { p in
                        .object([
                            "name": .string(p.name), "in": .string(p.in), "required": .bool(p.required),
                            "description": .string(p.description), "schema": .object(["type": .string(p.name == "height" || p.name == "treeSize" || p.name == "from" || p.name == "to" || p.name == "limit" ? "integer" : "string")]),
                        ])
                    })
            }
            if route.hasBody && route.path.hasPrefix("/v1/vault") {
                operation["requestBody"] = .object([
                    "required": .bool(true),
                    "content": .object(["application/octet-stream": .object(["schema": .object(["type": .string("string"), "contentEncoding": .string("binary")])])]),
                ])
            } else if route.hasBody && route.path != "/v1/transactions" {
                operation["requestBody"] = .object([
                    "required": .bool(true), "content": .object(["application/json": .object(["schema": .object(["type": .string("object")])])]),
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
            "components": .object(["schemas": .object([
                "Error": .object([
                    "type": .string("object"), "required": .array([.string("error")]),
                    "properties": .object(["error": .object([
                        "type": .string("object"), "required": .array([.string("code"), .string("message")]),
                        "properties": .object(["code": .object(["type": .string("string")]), "message": .object(["type": .string("string")])]),
                    ])]),
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

    static func responses(_ route: OpenAPIRoute) -> [String: JSONValue] {
        let ok: JSONValue = .object([
            "description": .string("OK"),
            "content": .object([route.responseType: .object(["schema": .object(["type": .string(route.responseType == "application/json" ? "object" : "string")])])]),
        ])
        let error: JSONValue = .object([
            "description": .string("Error"),
            "content": .object(["application/json": .object(["schema": .object(["$ref": .string("#/components/schemas/Error")])])]),
        ])
        var r: [String: JSONValue] = ["200": ok]
        if !route.parameters.isEmpty || route.hasBody { r["400"] = error }
        if route.path.contains("{") || route.path.contains("proofs") { r["404"] = error }
        if route.hasBody { r["409"] = error; r["413"] = error; r["415"] = error }
        if route.path == "/v1/transactions" { r["503"] = error }  // mempool_full: retry later
        if route.summary.hasPrefix("Refused with 405") { r["405"] = error }
        if route.summary.contains("authenticated") { r["401"] = error; r["403"] = error }
        return r
    }
}
