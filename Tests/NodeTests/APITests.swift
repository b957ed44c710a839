import Composition
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Node
import Prometheus
import Standards
import Testing

@testable import Server

@Suite struct APITests {
    func withAPI(maxBody: Int = 8 * 1024 * 1024, _ body: @Sendable (any TestClientProtocol, LedgerNode) async throws -> Void) async throws {
        let chain = try TempChain()
        var c = NodeConfiguration()
        c.blockInterval = .milliseconds(5)
        let registry = PrometheusCollectorRegistry()
        let node = try LedgerNode(directory: chain.directory, contracts: .careLedger, configuration: c, metrics: PrometheusMetricsFactory(registry: registry))
        var sc = ServerConfiguration()
        sc.maxBodyBytes = maxBody
        let api = try LedgerAPI(
            node: node, configuration: sc, registry: registry, vault: try Vault(path: chain.directory.vault),
            acting: ActingOrganisation(signing: SigningKey(), encryption: EncryptionKey()), capabilities: HostedCapabilities.careLedger)
        let app = Application(router: api.router())
        try await withRunningNode(node) {
            try await app.test(.router) { client in try await body(client, node) }
        }
    }

    func json(_ response: TestResponse) throws -> JSONValue { try JSONValue.parse(Array(response.body.readableBytesView)) }

    func post(_ client: any TestClientProtocol, _ body: JSONValue) async throws -> TestResponse {
        try await client.execute(
            uri: "/v1/transactions", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(bytes: body.canonicalBytes))
    }

    @Test func transactionsAndErrors() async throws {
        try await withAPI { client, node in
            let alice = SigningKey()
            let tx = try notaryTx(alice, nonce: 1, document: "api")
            let ok = try await post(client, .object(["raw": .string(Base64.encode(tx.encoded))]))
            #expect(ok.status == .ok)
            #expect(try json(ok)["status"] == .string("committed"))

            // Field form, batch form.
            let tx2 = try notaryTx(alice, nonce: 2, document: "api2")
            let tx3 = try notaryTx(alice, nonce: 3, document: "api3")
            let batch = try await post(client, .object(["transactions": .array([tx2.jsonView, .object(["raw": .string(Base64.encode(tx3.encoded))])])]))
            #expect(batch.status == .ok)
            let results = try json(batch)["results"]?.arrayValue ?? []
            #expect(results.map { $0["id"] } == [.string(tx2.id.hex), .string(tx3.id.hex)])

            let got = try await client.execute(uri: "/v1/transactions/\(tx.id.hex)", method: .get)
            #expect(got.status == .ok)
            let view = try json(got)
            #expect(view["raw"] == .string(Base64.encode(tx.encoded)))
            #expect(view["leafIndex"] == .int(0))
            #expect(view["transaction"]?["contract"] == .string("notary"))

            // Every error is a 4xx with a stable code, and nothing is written.
            let before = node.logSize
            func expectError(_ response: TestResponse, _ status: HTTPResponse.Status, _ code: String) throws {
                #expect(response.status == status, "\(code)")
                #expect(try json(response)["error"]?["code"] == .string(code))
            }
            try expectError(
                try await client.execute(uri: "/v1/transactions", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: "{nope")),
                .badRequest, "malformed_json")
            var wrongType = tx.jsonView.objectValue!
            wrongType["nonce"] = .string("1")
            try expectError(try await post(client, .object(wrongType)), .badRequest, "bad_transaction")
            try expectError(try await post(client, .object(["raw": .string(Base64.encode(tx.encoded))])), .conflict, "replayed_nonce")
            var badSig = tx2.jsonView.objectValue!
            badSig["nonce"] = .int(99)
            try expectError(try await post(client, .object(badSig)), .badRequest, "bad_signature")
            let otherChain = try notaryTx(alice, nonce: 50, document: "c", chain: "elsewhere")
            try expectError(try await post(client, otherChain.jsonView), .badRequest, "wrong_chain")
            let unknown = try Transaction(chainID: "test-chain", signer: alice, nonce: 51, contract: "ghost", action: "x", payload: .object([:]))
            try expectError(try await post(client, unknown.jsonView), .badRequest, "unknown_contract")
            let unknownAction = try Transaction(chainID: "test-chain", signer: alice, nonce: 52, contract: "notary", action: "x", payload: .object([:]))
            try expectError(try await post(client, unknownAction.jsonView), .badRequest, "unknown_action")
            let good = try notaryTx(alice, nonce: 60, document: "atomic")
            let mixed = try await post(client, .object(["transactions": .array([good.jsonView, unknown.jsonView])]))
            try expectError(mixed, .badRequest, "unknown_contract")
            #expect(try json(mixed)["results"]?.arrayValue?.count == 2)
            try expectError(try await client.execute(uri: "/v1/transactions/\(good.id.hex)", method: .get), .notFound, "not_found")
            try expectError(try await client.execute(uri: "/v1/transactions/xyz", method: .get), .badRequest, "bad_id")
            try expectError(try await client.execute(uri: "/v1/proofs/inclusion", method: .get), .badRequest, "missing_parameter")
            try expectError(try await client.execute(uri: "/v1/proofs/consistency?from=0&to=1", method: .get), .badRequest, "bad_tree_sizes")
            try expectError(try await client.execute(uri: "/v1/blocks/999", method: .get), .notFound, "not_found")
            try expectError(try await client.execute(uri: "/v1/blocks?limit=1000", method: .get), .badRequest, "bad_parameter")
            // The consensus routes refuse bad parameters too; a bad `wait` is refused before anything is submitted.
            let waitBad = try notaryTx(alice, nonce: 70, document: "wait")
            try expectError(
                try await client.execute(
                    uri: "/v1/transactions?wait=forever", method: .post, headers: [.contentType: "application/json"],
                    body: ByteBuffer(bytes: waitBad.jsonView.canonicalBytes)), .badRequest, "bad_parameter")
            try expectError(try await client.execute(uri: "/v1/transactions/\(waitBad.id.hex)", method: .get), .notFound, "not_found")
            try expectError(try await client.execute(uri: "/v1/sync/blocks?from=1", method: .get), .unauthorized, "unauthenticated")
            for (uri, code) in [("/v1/sync/blocks", "missing_parameter"), ("/v1/sync/blocks?from=1&limit=0", "bad_parameter")] {
                var headers = HTTPFields()
                for (name, value) in try node.peerCredentials.headers(url: "http://localhost" + uri) { headers[HTTPField.Name(name)!] = value }
                try expectError(try await client.execute(uri: uri, method: .get, headers: headers), .badRequest, code)
            }
            try expectError(try await client.execute(uri: "/v1/checkpoint?final=maybe", method: .get), .badRequest, "bad_parameter")
            #expect(node.logSize == before)

            // Solo: each block is final at once (the node's own vote certifies it), and says so.
            let finalTx = try notaryTx(alice, nonce: 71, document: "final")
            let finalReceipt = try json(
                try await client.execute(
                    uri: "/v1/transactions?wait=final", method: .post, headers: [.contentType: "application/json"],
                    body: ByteBuffer(bytes: finalTx.jsonView.canonicalBytes)))
            #expect(finalReceipt["final"] == .bool(true))
            let blockView = try json(try await client.execute(uri: "/v1/blocks/\(finalReceipt["height"]!.intValue!)", method: .get))
            #expect(blockView["final"] == .bool(true) && blockView["certificate"]?["votes"]?.arrayValue?.count == 1)
            let consensus = try json(try await client.execute(uri: "/v1/consensus", method: .get))
            #expect(consensus["ordering"] == .string("solo") && consensus["quorum"] == .int(1))
            let finalNote = String(buffer: try await client.execute(uri: "/v1/checkpoint?final=true", method: .get).body)
            let vkeys = try (consensus["vkeys"]?.arrayValue ?? []).map { try NoteVerifier(vkey: $0.stringValue ?? "") }
            #expect(try SignedNote(finalNote).verify(quorum: 1, of: vkeys) == 1)
        }
    }

    @Test func oversizedBodyIsRefused() async throws {
        try await withAPI(maxBody: 2048) { client, node in
            let big = JSONValue.object(["raw": .string(String(repeating: "A", count: 4000))])
            let response = try await post(client, big)
            #expect(response.status == .contentTooLarge)
            #expect(try json(response)["error"]?["code"] == .string("body_too_large"))
            #expect(node.logSize == 0)
        }
    }

    @Test func proofsCheckpointAndState() async throws {
        try await withAPI { client, node in
            let alice = SigningKey()
            var ids: [Hash] = []
            for i in 0..<5 {
                let tx = try notaryTx(alice, nonce: UInt64(i), document: "p\(i)")
                ids.append(tx.id)
                #expect(try await post(client, tx.jsonView).status == .ok)
            }
            let vkey = String(buffer: try await client.execute(uri: "/v1/checkpoint/key", method: .get).body)
            let verifier = try NoteVerifier(vkey: vkey.trimmingCharacters(in: .whitespacesAndNewlines))
            let note = try await client.execute(uri: "/v1/checkpoint", method: .get)
            #expect(note.headers[.contentType]?.hasPrefix("text/plain") == true)
            // A solo node's block is final once committed (its single vote is the quorum); the header says so.
            #expect(note.headers[HTTPField.Name("CareLedger-Final")!] == "true")
            #expect(note.headers[HTTPField.Name("CareLedger-Height")!].flatMap { UInt64($0) } == node.height)
            let checkpoint = try Checkpoint.verify(note: String(buffer: note.body), verifier: verifier)
            #expect(checkpoint.size == 5)
            let inclusion = try json(try await client.execute(uri: "/v1/proofs/inclusion?id=\(ids[2].hex)", method: .get))
            try MerkleProof.verifyInclusion(
                leafHash: try Base64.decode(inclusion["leafHash"]!.stringValue!), leafIndex: 2, treeSize: checkpoint.size,
                proof: inclusion["hashes"]!.arrayValue!.map { try Base64.decode($0.stringValue!) }, root: checkpoint.rootHash.bytes)
            let consistency = try json(try await client.execute(uri: "/v1/proofs/consistency?from=2&to=5", method: .get))
            try MerkleProof.verifyConsistency(
                size1: 2, size2: 5, root1: try Base64.decode(consistency["fromRoot"]!.stringValue!), root2: checkpoint.rootHash.bytes,
                proof: consistency["hashes"]!.arrayValue!.map { try Base64.decode($0.stringValue!) })
            let key = "notary/\(Hash.sha256(Array("p1".utf8)).hex)"
            let state = try json(try await client.execute(uri: "/v1/state/\(key)", method: .get))
            #expect(state["present"] == .bool(true))
            let proof = try StateProof(json: state["proof"]!)
            try proof.verify(root: try Hash(hex: state["stateRoot"]!.stringValue!), key: Array(key.utf8), value: try Base64.decode(state["valueRaw"]!.stringValue!))
            let blocks = try json(try await client.execute(uri: "/v1/blocks?from=0&limit=3", method: .get))
            #expect(blocks["blocks"]?.arrayValue?.count == 3)
            let block1 = try json(try await client.execute(uri: "/v1/blocks/1", method: .get))
            #expect(block1["header"]?["height"] == .int(1))
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            #expect(metrics.contains("careledger_transactions_committed_total 5"))
            #expect(try json(try await client.execute(uri: "/healthz", method: .get))["status"] == .string("ok"))
        }
    }

    @Test func openAPIMatchesRoutes() async throws {
        try await withAPI { client, node in
            let doc = try json(try await client.execute(uri: "/openapi.json", method: .get))
            #expect(doc["openapi"] == .string("3.1.0"))
            let paths = try #require(doc["paths"]?.objectValue)
            #expect(!paths.isEmpty)
            // Every `{name}` of a path is a required path parameter of each of its operations, and every path
            // parameter an operation declares is in its path; every operation answers some 2xx and has an
            // operationId of its own; every `$ref` names a schema of the document's components.
            var operationIDs: [String] = []
            for (path, item) in paths {
                let placeholders = Set(path.split(separator: "/").filter { $0.hasPrefix("{") && $0.hasSuffix("}") }.map { String($0.dropFirst().dropLast()) })
                let operations = try #require(item.objectValue, "\(path)")
                #expect(!operations.isEmpty, "\(path) has no operation")
                for (method, operation) in operations {
                    #expect(["get", "put", "post", "delete", "patch"].contains(method), "\(method) \(path)")
                    let parameters = operation["parameters"]?.arrayValue ?? []
                    for name in placeholders {
                        let declared = parameters.contains(where: { $0["name"]?.stringValue == name && $0["in"]?.stringValue == "path" && $0["required"]?.boolValue == true })
                        #expect(declared, "\(method) \(path): {\(name)} is not a required path parameter")
                    }
                    for parameter in parameters {
                        let name = parameter["name"]?.stringValue ?? ""
                        let location = parameter["in"]?.stringValue ?? ""
                        #expect(["path", "query", "header"].contains(location), "\(method) \(path): \(name) in \(location)")
                        if location == "path" { #expect(placeholders.contains(name), "\(method) \(path): path parameter \(name) is not in the path") }
                    }
                    let statuses = Array((operation["responses"]?.objectValue ?? [:]).keys)
                    #expect(statuses.contains(where: { $0.count == 3 && $0.hasPrefix("2") && Int($0) != nil }), "\(method) \(path) answers no 2xx")
                    operationIDs.append(operation["operationId"]?.stringValue ?? "")
                }
            }
            #expect(!operationIDs.contains(""), "every operation has an operationId")
            #expect(Set(operationIDs).count == operationIDs.count, "operationIds are unique")
            func references(_ value: JSONValue) -> [String] {
                var found: [String] = []
                for (key, child) in value.objectValue ?? [:] {
                    if key == "$ref", let target = child.stringValue { found.append(target) } else { found += references(child) }
                }
                for child in value.arrayValue ?? [] { found += references(child) }
                return found
            }
            let schemas = doc["components"]?["schemas"]?.objectValue ?? [:]
            let refs = references(doc)
            #expect(!refs.isEmpty)
            for target in refs {
                let prefix = "#/components/schemas/"
                #expect(target.hasPrefix(prefix) && schemas[String(target.dropFirst(prefix.count))] != nil, "\(target) names no schema")
            }
            // The served document both ways against the router itself: every documented (method, path) is
            // registered and every registered one documented. `/v1/state/**` is documented as `/v1/state/{key}`.
            // Methods served only to refuse them (405 with an explanation) are listed under x-refused.
            let refused = (doc["x-refused"]?.arrayValue ?? []).map { "\(($0["method"]?.stringValue ?? "").uppercased()) \($0["path"]?.stringValue ?? "")" }
            #expect(!refused.isEmpty)
            let documented = Set(paths.flatMap { path, item in (item.objectValue ?? [:]).keys.map { "\($0.uppercased()) \(path)" } } + refused)
            let api = try LedgerAPI(
                node: node, configuration: ServerConfiguration(), registry: PrometheusCollectorRegistry(),
                vault: try Vault(path: NSTemporaryDirectory() + "careledger-openapi-\(UUID().uuidString)"),
                acting: ActingOrganisation(signing: SigningKey(), encryption: EncryptionKey()), capabilities: HostedCapabilities.careLedger)
            let served = Set(api.router().routes.map { "\($0.method.rawValue) \($0.path.description.replacingOccurrences(of: "/**", with: "/{key}"))" })
            #expect(served.subtracting(documented).sorted() == [], "served but not in /openapi.json")
            #expect(documented.subtracting(served).sorted() == [], "in /openapi.json but not served")
            // An answer as a comparable line: status, error code (or OperationOutcome issue code) and message
            // (or diagnostics), with the requested path elided so that two unrouted paths answer alike.
            func answer(_ uri: String) async throws -> String {
                let response = try await client.execute(uri: uri, method: .get)
                let body = try? json(response)
                let code = body?["error"]?["code"]?.stringValue ?? body?["issue"]?[0]?["code"]?.stringValue ?? "-"
                let message = body?["error"]?["message"]?.stringValue ?? body?["issue"]?[0]?["diagnostics"]?.stringValue ?? ""
                return "\(response.status.code) \(code) \(message.replacingOccurrences(of: uri, with: "<path>"))"
            }
            // What the router answers where no route matches: under /fhir an OperationOutcome (not-supported),
            // elsewhere its bare 404.
            let noRoute = try await answer("/v1/nosuch")
            let noFHIRRoute = try await answer("/fhir/NoSuchThing/x/_history/1/extra")
            #expect(noRoute.hasPrefix("404 "), "\(noRoute)")
            #expect(noFHIRRoute.hasPrefix("404 not-supported "), "\(noFHIRRoute)")
            #expect(try await answer("/v1/no/such/route") == noRoute)
            // A method a served path is not served with: 405, with Allow naming the methods it is (RFC 9110).
            for (method, uri, allow) in [(HTTPRequest.Method.delete, "/v1/transactions", "POST"), (.post, "/v1/blocks/3", "GET"), (.put, "/v1/state/notary/x/y", "GET")] {
                let response = try await client.execute(uri: uri, method: method)
                #expect(response.status == .methodNotAllowed, "\(method) \(uri)")
                #expect(response.headers[.allow] == allow, "\(method) \(uri)")
                #expect(try json(response)["error"]?["code"] == .string("method_not_allowed"))
            }
            #expect(try await answer("/nosuch") == noRoute)
            #expect(try await answer("/fhir/Observation/x/_history/1/extra") == noFHIRRoute)
            // Every documented GET path is served: whatever it answers (even a 404 for a record it does not
            // know), it is not the router's answer for a path it does not serve.
            for path in paths.keys.sorted() where paths[path]?["get"] != nil {
                let uri = path.replacingOccurrences(of: "{id}", with: String(repeating: "0", count: 64))
                    .replacingOccurrences(of: "{hash}", with: String(repeating: "0", count: 64))
                    .replacingOccurrences(of: "{height}", with: "0").replacingOccurrences(of: "{key}", with: "notary/x")
                    .replacingOccurrences(of: "{did}", with: "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp")
                    .replacingOccurrences(of: "{type}", with: "Observation").replacingOccurrences(of: "{vid}", with: "1")
                #expect(!uri.contains("{"), "\(path): a placeholder left in \(uri)")
                let got = try await answer(uri)
                #expect(got != (path.hasPrefix("/fhir") ? noFHIRRoute : noRoute), "\(path) is not routed: \(got)")
            }
        }
    }
}
