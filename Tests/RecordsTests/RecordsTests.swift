import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Node
import Prometheus
@testable import Records
import RecordsContract
import Standards
import Store
import Testing

@testable import Server

@Suite struct RecordsTests {
    /// Ciphertexts cached after a read are shared by every vault of the directory: a destroy
    /// through one is seen by all (crypto-shredding is not undone by a cache).
    @Test func vaultCacheFollowsDestroy() throws {
        let chain = try TempChain()
        let a = try Vault(path: chain.directory.vault), b = try Vault(path: chain.directory.vault + "/")
        let salt = [UInt8](repeating: 7, count: 32), ciphertext = (0..<100).map { UInt8($0) }
        let hash = Hash.sha256(salt + ciphertext)
        try a.put(saltedHash: hash, blob: salt + ciphertext)
        #expect(a.ciphertext(hash) == ciphertext)
        #expect(b.ciphertext(hash) == ciphertext)
        #expect(a.get(hash)?.salt == salt)
        #expect(b.destroy(hash))
        #expect(a.ciphertext(hash) == nil)
        #expect(b.ciphertext(hash) == nil)
        #expect(!a.contains(hash))
        #expect(throws: LedgerError.code("hash_mismatch")) { try a.put(saltedHash: hash, blob: salt + [1] + ciphertext) }
    }

    @Test func consentGovernsReadsAndEveryReadIsAudited() async throws {
        let network = try TestNetwork(contracts: .records, capabilities: recordsAlone)
        let node = network.node, chain = network.chain, operatorParty = network.operatorParty
        let hospitalA = Party(), hospitalB = Party(), lab = Party(), drA = Party(), drB = Party(), patient = Party(), stranger = Party()

        try await network.run { client in
                var rc = RecordsClient(client: client)
                func register(_ author: Party, _ subject: Party, _ role: String, name: String? = nil) async throws -> JSONValue {
                    try await rc.register(author, subject, role, name: name)
                }
                // Organisations are admitted by the operator only.
                #expect(try await register(hospitalA, hospitalA, "organisation", name: "A")["error"]?["code"] == .string("forbidden"))
                #expect(try await register(operatorParty, hospitalA, "organisation", name: "Hospital A")["status"] == .string("committed"))
                #expect(try await register(operatorParty, hospitalB, "organisation", name: "Hospital B")["status"] == .string("committed"))
                #expect(try await register(operatorParty, lab, "organisation", name: "Lab")["status"] == .string("committed"))
                #expect(try await register(hospitalA, drA, "practitioner")["status"] == .string("committed"))
                #expect(try await register(hospitalB, drB, "practitioner")["status"] == .string("committed"))
                #expect(try await register(drA, stranger, "practitioner")["error"]?["code"] == .string("forbidden"))
                #expect(try await register(patient, patient, "patient")["status"] == .string("committed"))
                #expect(try await register(patient, patient, "patient")["error"]?["code"] == .string("already_registered"))

                // Dr A may not write before the patient consents; then she may.
                let condition: JSONValue = .object(["resourceType": .string("Condition"), "id": .string("c1"), "code": .object(["text": .string("Asthma")])])
                #expect(try await rc.put(drA, patient: patient, recordID: "c1", version: 1, resource: condition, custodian: hospitalA)["error"]?["code"] == .string("consent_denied"))
                let grantA = try await rc.submit(patient, "consent", "grant", .object([
                    "grantee": .string(drA.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("*")]),
                ]))
                #expect(grantA["status"] == .string("committed"))
                #expect(try await rc.put(drA, patient: patient, recordID: "c1", version: 1, resource: condition, custodian: hospitalA)["result"]?["status"] == .string("current"))

                // Dr A reads and decrypts; no health data on chain: the state holds a salted hash only.
                let readA = try await rc.get("/v1/records/c1", as: drA)
                #expect(readA.status == .ok)
                // The same read authenticated by an RFC 9421 HTTP message signature instead of a token.
                let message = HTTPMessageSignature.Request(method: "GET", scheme: "http", authority: "localhost", path: "/v1/records/c1", query: "", headers: [:])
                let (input, signature) = try HTTPMessageSignature.sign(request: message, key: drA.key, created: Int64(Date().timeIntervalSince1970))
                let signed = try await client.execute(
                    uri: "/v1/records/c1", method: .get,
                    headers: [HTTPField.Name("Signature-Input")!: input, HTTPField.Name("Signature")!: signature])
                #expect(signed.status == .ok, "\(String(buffer: signed.body))")
                let tampered = try await client.execute(
                    uri: "/v1/records/c2", method: .get,
                    headers: [HTTPField.Name("Signature-Input")!: input, HTTPField.Name("Signature")!: signature])
                #expect(tampered.status == .unauthorized)
                // A signed request with a body must cover its Content-Digest (RFC 9530), which the node checks.
                func signedPut(_ blob: [UInt8], digestOf digested: [UInt8]?, components: [String]) async throws -> TestResponse {
                    let hash = Hash.sha256(blob)
                    var fields: [String: [String]] = [:]
                    if let digested { fields["content-digest"] = [ContentDigest.field(for: digested)] }
                    let message = HTTPMessageSignature.Request(method: "PUT", scheme: "http", authority: "localhost", path: "/v1/vault/\(hash.hex)", query: "", headers: fields)
                    let (input, signature) = try HTTPMessageSignature.sign(request: message, key: drA.key, components: components, created: Int64(Date().timeIntervalSince1970))
                    var headers: HTTPFields = [HTTPField.Name("Signature-Input")!: input, HTTPField.Name("Signature")!: signature, .contentType: "application/octet-stream"]
                    if let digested { headers[HTTPField.Name("Content-Digest")!] = ContentDigest.field(for: digested) }
                    return try await client.execute(uri: "/v1/vault/\(hash.hex)", method: .put, headers: headers, body: ByteBuffer(bytes: blob))
                }
                let blob = [UInt8](repeating: 7, count: 32) + (0..<48).map { UInt8($0) }
                let covered = ["@method", "@authority", "@path", "content-digest"]
                #expect(try await signedPut(blob, digestOf: nil, components: ["@method", "@authority", "@path"]).status == .unauthorized, "digest not covered")
                let swapped = try await signedPut(blob, digestOf: blob.reversed(), components: covered)
                #expect(swapped.status == .badRequest)
                #expect(try rc.json(swapped)["error"]?["code"] == .string("digest_mismatch"))
                let stored = try await signedPut(blob, digestOf: blob, components: covered)
                #expect(stored.status == .created, "\(String(buffer: stored.body))")
                #expect(try SealedVersion.open(read: try rc.json(readA), with: drA.encryption) == condition.canonicalBytes)
                let onChain = String(decoding: node.stateValue(forKey: RecordEntry.key("c1")) ?? [], as: UTF8.self)
                #expect(!onChain.contains("Asthma"))

                // Dr B at hospital B cannot read: 403, and the denied attempt is on the ledger.
                let denied = try await rc.get("/v1/records/c1", as: drB)
                #expect(denied.status == .forbidden)
                #expect(try rc.json(denied)["error"]?["code"] == .string("consent_denied"))
                let anonymous = try await client.execute(uri: "/v1/records/c1", method: .get)
                #expect(anonymous.status == .unauthorized)
                #expect(try rc.json(anonymous)["error"]?["code"] == .string("unauthenticated"), "the standard error body")
                #expect(try await client.execute(uri: "/v1/records/c1", method: .get, headers: [.authorization: "Bearer forged.1.x"]).status == .unauthorized)
                // A bearer token is did.until.mac: the genuine one reads; one with an extra part, a changed
                // expiry or a changed MAC is refused.
                let genuine = try await rc.token(drA)
                func withToken(_ token: String) async throws -> HTTPResponse.Status {
                    try await client.execute(uri: "/v1/records/c1", method: .get, headers: [.authorization: "Bearer \(token)"]).status
                }
                #expect(try await withToken(genuine) == .ok)
                let parts = genuine.split(separator: ".").map(String.init)
                #expect(parts.count == 3)
                #expect(try await withToken(genuine + ".x") == .unauthorized)
                #expect(try await withToken([parts[0], parts[1] + "0", parts[2]].joined(separator: ".")) == .unauthorized)
                #expect(try await withToken([parts[0], parts[1], String(parts[2].reversed())].joined(separator: ".")) == .unauthorized)
                #expect(try await withToken([parts[0], parts[1]].joined(separator: ".")) == .unauthorized)

                // The patient grants hospital B (the organisation) and shares the key of the existing version.
                let grantB = try await rc.submit(patient, "consent", "grant", .object([
                    "grantee": .string(hospitalB.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("Condition")]),
                ]))
                let grantBID = try #require(grantB["result"]?["id"]?.stringValue)
                let mine = try WrappedKey(json: try rc.json(try await rc.get("/v1/records/c1", as: patient))["wrappedKey"]!)
                let forB = KeyEnvelope(keys: try SealedVersion.rewrap(mine, with: patient.encryption, context: "c1/1", for: [hospitalB.did: hospitalB.encryption.publicKey]))
                try await rc.upload(forB.blob, hash: forB.hash, as: patient)
                #expect(try await rc.submit(patient, "records", "share", .object([
                    "recordId": .string("c1"), "version": .int(1), "recipients": .array([.string(hospitalB.did)]), "keys": .string(forB.hash.hex),
                ]))["status"] == .string("committed"))
                let readB = try await rc.get("/v1/records/c1", as: drB)
                #expect(readB.status == .ok)
                #expect(try rc.json(readB)["keyHolder"] == .string(hospitalB.did))
                #expect(try SealedVersion.open(read: try rc.json(readB), with: hospitalB.encryption) == condition.canonicalBytes)
                #expect(throws: LedgerError.self) { try SealedVersion.open(read: try rc.json(readB), with: drB.encryption) }

                // A share adds keys, never replaces one: hospital B again is refused; an envelope that slips in a
                // key for the patient beside the one it lists changes nothing for her; a blob of another record
                // (here the ciphertext of c1) cannot be claimed as an envelope.
                func share(_ envelope: KeyEnvelope, listing: [Party]) async throws -> JSONValue {
                    try await rc.upload(envelope.blob, hash: envelope.hash, as: patient)
                    return try await rc.submit(patient, "records", "share", .object([
                        "recordId": .string("c1"), "version": .int(1), "recipients": .array(listing.map { .string($0.did) }), "keys": .string(envelope.hash.hex),
                    ]))
                }
                #expect(try await share(KeyEnvelope(keys: forB.keys), listing: [hospitalB])["error"]?["code"] == .string("already_shared"))
                let decoy = try KeyWrap.wrap(ContentCipher.newKey(), for: patient.encryption.publicKey, context: "c1/1")
                var sneaky = try SealedVersion.rewrap(mine, with: patient.encryption, context: "c1/1", for: [drB.did: drB.encryption.publicKey])
                sneaky[patient.did] = decoy
                #expect(try await share(KeyEnvelope(keys: sneaky), listing: [drB])["status"] == .string("committed"))
                #expect(try SealedVersion.open(read: try rc.json(try await rc.get("/v1/records/c1", as: patient)), with: patient.encryption) == condition.canonicalBytes)
                let c1Ciphertext = try #require(try rc.json(try await rc.get("/v1/records/c1/history", as: patient))["versions"]?[0]?["saltedHash"]?.stringValue)
                let nurseB = Party()
                try await rc.registerAll([(hospitalB, nurseB, "practitioner", nil)])
                let claimed = try await rc.submit(patient, "records", "share", .object([
                    "recordId": .string("c1"), "version": .int(1), "recipients": .array([.string(nurseB.did)]), "keys": .string(c1Ciphertext),
                ]))
                #expect(claimed["error"]?["code"] == .string("blob_claimed"), "\(claimed)")

                // The patient sees every access, denied ones too; others may not see her log.
                let log = try rc.json(try await rc.get("/v1/patients/\(patient.did)/access-log", as: patient))["events"]!.arrayValue!
                let byB = log.filter { $0["reader"] == .string(drB.did) }
                #expect(byB.map { $0["outcome"] } == [.string("deny"), .string("permit")])
                #expect(try await rc.get("/v1/patients/\(patient.did)/access-log", as: drB).status == .forbidden)

                // A Condition is authored by a practitioner (or the patient): hospital B's own key, with its treatment
                // permit, may not file one without naming its practitioner.
                let diagnosis: JSONValue = .object(["resourceType": .string("Condition"), "id": .string("c8"), "code": .object(["text": .string("Migraine")])])
                let byOrganisation = try await rc.put(hospitalB, patient: patient, recordID: "c8", version: 1, resource: diagnosis, custodian: hospitalB)
                #expect(byOrganisation["error"]?["code"] == .string("bad_author"), "\(byOrganisation)")

                // Revocation takes effect at its block: B is denied, and the next version is not wrapped for B.
                #expect(try await rc.submit(patient, "consent", "revoke", .object(["grant": .string(grantBID)]))["status"] == .string("committed"))
                #expect(try await rc.get("/v1/records/c1", as: drB).status == .forbidden)
                let v2: JSONValue = .object(["resourceType": .string("Condition"), "id": .string("c1"), "code": .object(["text": .string("Asthma, controlled")])])
                #expect(try await rc.put(drA, patient: patient, recordID: "c1", version: 2, resource: v2, custodian: hospitalA)["result"]?["status"] == .string("current"))
                let history2 = try rc.json(try await rc.get("/v1/records/c1/history", as: drA))["versions"]!.arrayValue!
                #expect(history2[1]["recipients"]?.arrayValue?.contains(.string(hospitalB.did)) == false)
                #expect(history2[0]["recipients"]?.arrayValue?.contains(.string(hospitalB.did)) == true)
                #expect(history2[0]["status"] == .string("superseded"))
                #expect(try await rc.put(drA, patient: patient, recordID: "c1", version: 2, resource: v2, custodian: hospitalA)["error"]?["code"] == .string("version_conflict"))

                // A lab report needs the lab and the ordering practitioner: pending until both endorse.
                _ = try await rc.submit(patient, "consent", "grant", .object([
                    "grantee": .string(lab.did), "purposes": .array([.string("treatment")]), "resourceTypes": .array([.string("DiagnosticReport")]),
                ]))
                let report: JSONValue = .object(["resourceType": .string("DiagnosticReport"), "id": .string("r1"), "status": .string("final")])
                // The parties are checked: the performer is an organisation, the requester a registered practitioner.
                #expect(try await rc.put(lab, patient: patient, recordID: "r1", version: 1, resource: report, custodian: lab, parties: ["performer": drB.did, "requester": drA.did])["error"]?["code"] == .string("bad_party"))
                #expect(try await rc.put(lab, patient: patient, recordID: "r1", version: 1, resource: report, custodian: lab, parties: ["performer": lab.did, "requester": Party().did])["error"]?["code"] == .string("bad_party"))
                let put = try await rc.put(lab, patient: patient, recordID: "r1", version: 1, resource: report, custodian: lab, parties: ["performer": lab.did, "requester": drA.did])
                #expect(put["result"]?["status"] == .string("pending"))
                #expect(try rc.json(try await rc.get("/v1/records/r1", as: patient))["error"]?["code"] == .string("no_current_version"))
                #expect(try await rc.submit(drB, "records", "endorse", .object(["recordId": .string("r1"), "version": .int(1)]))["error"]?["code"] == .string("forbidden"))
                #expect(try await rc.submit(drA, "records", "endorse", .object(["recordId": .string("r1"), "version": .int(1)]))["result"]?["status"] == .string("current"))
                #expect(try await rc.get("/v1/records/r1", as: patient).status == .ok)

                // The timeline: the patient sees both records.
                let timelineResponse = try await rc.get("/v1/patients/\(patient.did)/records", as: patient)
                let timeline = try rc.json(timelineResponse)
                #expect(timeline["records"]?.arrayValue?.count == 2)
                // The timeline is written directly (no dictionaries): it is still canonical JSON, and
                // each entry is what `RecordRead.json` says.
                #expect(Array(timelineResponse.body.readableBytesView) == timeline.canonicalBytes + [0x0a])
                let direct = try await RecordsService(node: node, vault: network.vault).timeline(patient: patient.did, readerDID: patient.did, purpose: "treatment")
                #expect(timeline["records"]?.arrayValue?.map(\.canonicalBytes).sorted { $0.lexicographicallyPrecedes($1) }
                    == direct.reads.map(\.json.canonicalBytes).sorted { $0.lexicographicallyPrecedes($1) })
                for read in direct.reads {
                    var written: [UInt8] = []
                    read.write(into: &written)
                    #expect(written == read.json.canonicalBytes)
                    written = []
                    read.wrappedKey.write(into: &written)
                    #expect(written == read.wrappedKey.json.canonicalBytes)
                }

                // Erasure: only the patient; the vault blobs are destroyed, reads answer 410, the record cannot be rewritten.
                let versions = try rc.json(try await rc.get("/v1/records/c1/history", as: patient))["versions"]!.arrayValue!
                let hashes = try versions.map { try Hash(hex: $0["saltedHash"]!.stringValue!) }
                let envelopes = try versions.flatMap { try ($0["keyEnvelopes"]?.arrayValue ?? []).map { try Hash(hex: $0["hash"]!.stringValue!) } }
                let vault = try Vault(path: chain.directory.vault)
                #expect(hashes.allSatisfy { vault.contains($0) } && envelopes.allSatisfy { vault.contains($0) })
                // Every wrapped key the clients uploaded, read from the key envelopes in the vault before the erasure
                // destroys c1's: the envelopes c1 and r1 name on chain, and those of refused puts and shares.
                var vaultEnvelopes: Set<Hash> = []
                var wrappedInVault: [WrappedKey] = []
                for name in try FileManager.default.contentsOfDirectory(atPath: chain.directory.vault).sorted() {
                    guard let hash = try? Hash(hex: name), let blob = vault.get(hash), let keys = try? KeyEnvelope.keys(content: blob.ciphertext)
                    else { continue }
                    vaultEnvelopes.insert(hash)
                    wrappedInVault += keys.values
                }
                let r1Entry = try RecordEntry(json: try JSONValue.parse(try #require(node.stateValue(forKey: RecordEntry.key("r1")))))
                let onChainEnvelopes = try envelopes + r1Entry.versions.flatMap { try $0.keyEnvelopes.map { try Hash(hex: $0.hash) } }
                #expect(onChainEnvelopes.count >= envelopes.count + 1 && onChainEnvelopes.allSatisfy { vaultEnvelopes.contains($0) })
                #expect(wrappedInVault.count >= onChainEnvelopes.count)
                #expect(try await rc.submit(drA, "records", "erase", .object(["recordId": .string("c1")]))["error"]?["code"] == .string("forbidden"))
                let erased = try await rc.submit(patient, "records", "erase", .object(["recordId": .string("c1")]))
                #expect(erased["status"] == .string("committed"))
                #expect(hashes.allSatisfy { !vault.contains($0) })
                let gone = try await rc.get("/v1/records/c1", as: patient)
                #expect(gone.status == .gone)
                #expect(try rc.json(gone)["error"]?["code"] == .string("erased"))
                #expect(try await rc.get("/v1/records/c1/history", as: patient).status == .gone)
                let state = try #require(node.stateValue(forKey: RecordEntry.key("c1")))
                #expect(try RecordEntry(json: try JSONValue.parse(state)).versions.allSatisfy { $0.recipients.isEmpty })
                // The key envelopes (the wrapped keys) were in the vaults only, and are destroyed with the ciphertexts.
                #expect(envelopes.count >= 3 && envelopes.allSatisfy { !vault.contains($0) })
                // No transaction in the log carries a wrapped key: every payload, decoded and walked, holds no object shaped
                // like one and no map of keys; and no wrapped key of the vault's envelopes (its enc or ct, in base64 or raw)
                // is anywhere in a transaction's bytes.
                var transactions: [Transaction] = []
                try node.store.forEachTransaction { _, _, raw in transactions.append(try Transaction(encoded: raw)) }
                var scan = WrappedKeyScan()
                var putsSeen = 0
                for tx in transactions {
                    scan.walk(tx.payload, path: "\(tx.contract).\(tx.action)")
                    if tx.contract == "records" && (tx.action == "put" || tx.action == "share") {
                        let namesEnvelope = (try? Hash(hex: tx.payload["keys"]?.stringValue ?? "")) != nil
                        #expect(namesEnvelope, "records.\(tx.action) names its key envelope by hash")
                        if tx.action == "put" { putsSeen += 1 }
                    }
                }
                #expect(!transactions.isEmpty && putsSeen >= 3 && scan.objects >= transactions.count, "the walk saw the records.put payloads")
                #expect(scan.suspects.isEmpty, "wrapped keys in the log at \(scan.suspects)")
                var fragments: [[UInt8]] = []
                for wrapped in wrappedInVault {
                    fragments += [wrapped.enc, wrapped.ciphertext, Array(Base64.encode(wrapped.enc).utf8), Array(Base64.encode(wrapped.ciphertext).utf8)]
                }
                let leaked = fragments.filter { fragment in transactions.contains { bytesOccur(fragment, in: $0.encoded) } }
                #expect(!fragments.isEmpty && leaked.isEmpty, "\(leaked.count) of \(fragments.count) wrapped-key fragments are in the log")
                // The byte search finds what is there: each envelope's hash is in the transaction that named it.
                let named = onChainEnvelopes.filter { hash in transactions.contains { bytesOccur(Array(hash.hex.utf8), in: $0.encoded) } }
                #expect(named.count == onChainEnvelopes.count)
                #expect(try rc.json(try await rc.get("/v1/patients/\(patient.did)/records", as: patient))["records"]?.arrayValue?.count == 1)

                // The node attests its shredding on chain; the patient gets a signed erasure receipt naming it.
                let erasureKey = AuditContract.erasureKey(patient: patient.did, recordID: "c1")
                try await eventually("the node attests the shredding", seconds: 10) { node.stateValue(forKey: erasureKey) != nil }
                let attestation = try #require(try JSONValue.parse(node.stateValue(forKey: erasureKey)!)["attestations"]?[0])
                #expect(attestation["node"] == .string(operatorParty.did))
                #expect(attestation["destroyed"] == .int(Int64(hashes.count + envelopes.count)))
                #expect(try await rc.submit(operatorParty, "audit", "shredded", .object([
                    "patient": .string(patient.did), "recordId": .string("c1"), "destroyed": .int(0),
                ]))["error"]?["code"] == .string("already_attested"))
                #expect(try await rc.submit(drA, "audit", "shredded", .object([
                    "patient": .string(patient.did), "recordId": .string("c1"), "destroyed": .int(0),
                ]))["error"]?["code"] == .string("forbidden"))
                let answer = try await rc.get("/v1/records/c1/erasure", as: patient)
                #expect(answer.status == .ok)
                let signedReceipt = try rc.json(answer)
                let receipt = try #require(signedReceipt["receipt"])
                #expect(receipt["erasureTransaction"] == erased["id"])
                #expect(receipt["saltedHashes"]?.arrayValue?.count == hashes.count)
                #expect(receipt["keyEnvelopes"]?.arrayValue?.count == envelopes.count)
                #expect(receipt["attestations"]?[0] == attestation)
                #expect(signedReceipt["signer"] == .string(operatorParty.did))
                let receiptSignature = try Base64.decode(signedReceipt["signature"]!.stringValue!)
                #expect(operatorParty.key.publicKey.isValidSignature(receiptSignature, for: receipt.canonicalBytes))
                var forged = receipt.objectValue!
                forged["erasedAtHeight"] = .int(1)
                #expect(!operatorParty.key.publicKey.isValidSignature(receiptSignature, for: JSONValue.object(forged).canonicalBytes))
                #expect(try await rc.get("/v1/records/c1/erasure", as: drA).status == .forbidden)
                #expect(try rc.json(try await rc.get("/v1/records/r1/erasure", as: patient))["error"]?["code"] == .string("not_erased"))
        }
        // A node stopped between an erasure's commit and the deletion of its blobs deletes them when it starts again.
        let leftover = try #require(try network.node.store.events(containing: #""type":"record.erased""#).first?["saltedHashes"]?[0]?.stringValue)
        let leftoverPath = chain.directory.vault + "/" + leftover
        #expect(FileManager.default.createFile(atPath: leftoverPath, contents: Data(repeating: 1, count: 100)))
        _ = try LedgerAPI(node: node, configuration: ServerConfiguration(), registry: PrometheusCollectorRegistry(), vault: network.vault, capabilities: recordsAlone)
        #expect(!FileManager.default.fileExists(atPath: leftoverPath))
        // Everything, access events included, passes the offline audit.
        let report = try ChainAuditor.audit(directory: chain.directory, contracts: .records)
        #expect(report.transactions > 20)
    }
}

/// A walk over transaction payloads: how many JSON objects it saw, and every place a wrapped content key
/// could be: an object with `enc` and `ct` members (the shape of `WrappedKey.json`), or a `keys`,
/// `wrappedKeys` or `wrappedKey` member holding an object or an array (on chain, `keys` is an envelope's hash).
private struct WrappedKeyScan {
    var objects = 0
    var suspects: [String] = []

    mutating func walk(_ value: JSONValue, path: String) {
        switch value {
        case .object(let members):
            objects += 1
            if members["enc"] != nil && members["ct"] != nil { suspects.append(path) }
            for (name, member) in members {
                if name == "keys" || name == "wrappedKeys" || name == "wrappedKey" {
                    switch member {
                    case .object, .array: suspects.append("\(path).\(name)")
                    default: break
                    }
                }
                walk(member, path: "\(path).\(name)")
            }
        case .array(let items):
            for (index, item) in items.enumerated() { walk(item, path: "\(path)[\(index)]") }
        default:
            break
        }
    }
}

/// Whether `needle` occurs as a contiguous run of bytes in `haystack`.
private func bytesOccur(_ needle: [UInt8], in haystack: [UInt8]) -> Bool {
    guard !needle.isEmpty, needle.count <= haystack.count else { return false }
    for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
        if haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
    }
    return false
}
