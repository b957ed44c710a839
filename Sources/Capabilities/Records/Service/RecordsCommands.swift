import ArgumentParser
import CLIKit
import ContractKit
import Foundation
import LedgerCore
import Node
import NIOHTTP1
import RecordsContract
import Standards
import Store

public struct PatientCommand: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(commandName: "patient", abstract: "Patient actions.", subcommands: [Register.self, Timeline.self])

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register yourself as a patient (your did and encryption key; no personal data).")
        @OptionGroup var options: NodeKeyOptions
        func run() async throws {
            let session = try await Session(node: options.node, keyFile: options.key)
            let receipt = try await session.submit(
                "identity", "register", .object(["role": .string("patient"), "encryptionKey": .string(Base64.encode(try session.requireEncryption().publicKey))]))
            output(receipt, json: options.json) { "registered patient \(session.did)" }
        }
    }

    struct Timeline: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read and decrypt every record of a patient you may see.")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "The patient's did (default: you).") var patient: String?
        @Option(help: "Purpose of use.") var purpose: String = "treatment"
        @Option(help: "Your organisation's key file, when keys are wrapped for it.") var orgKey: String?
        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            let answer = try await session.get("/v1/patients/\(patient ?? session.did)/records?purpose=\(purpose)")
            var resources: [JSONValue] = []
            for read in answer["records"]?.arrayValue ?? [] {
                resources.append(try decrypt(read, session: session, orgKey: orgKey))
            }
            output(.object(["records": .array(resources), "withheld": answer["withheld"] ?? .int(0)]), json: options.json) {
                resources.map(\.canonicalString).joined(separator: "\n") + "\n(\(resources.count) records, \(answer["withheld"]?.intValue ?? 0) withheld)"
            }
        }
    }
}

/// Decrypts a read with the reader's key, or her organisation's when the key was wrapped for it.
func decrypt(_ read: JSONValue, session: Session, orgKey: String?) throws -> JSONValue {
    let holder = read["keyHolder"]?.stringValue
    let key: EncryptionKey
    if holder == session.did {
        key = try session.requireEncryption()
    } else if let orgKey {
        key = try KeyFile.loadEncryption(orgKey)
    } else {
        throw LedgerError("no_key_for_reader", "the key is wrapped for \(holder ?? "?"): pass --org-key with that organisation's key file")
    }
    return try JSONValue.parse(try SealedVersion.open(read: read, with: key))
}

public struct ConsentCommand: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(commandName: "consent", abstract: "Grant, revoke and list consent.", subcommands: [Grant.self, Revoke.self, List.self])

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Grant access to your records (and share the keys of the versions you hold with the grantee).")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "Grantee did (practitioner, organisation or caregiver).") var grantee: String
        @Option(help: "Purposes, comma-separated: treatment, payment, research, emergency.") var purpose: String = "treatment"
        @Option(help: "Resource types, comma-separated, or * for all (the default when no --categories).") var types: String?
        @Option(help: "Categories, comma-separated: clinical, medications, immunizations, laboratory, imaging, financial, demographics, devices.")
        var categories: String?
        @Option(help: "End of the period, ms since the epoch.") var until: Int64?
        @Flag(help: "A deny rule instead of a permit.") var deny = false
        @Flag(help: "The grantee may act for you (caregiver) within the grant's types, purposes and period.") var delegate = false
        @Option(
            help: """
                With --delegate, the rights the caregiver has beyond reading and writing, comma-separated: grant, revoke, erase, \
                delegate (none by default).
                """)
        var actions: String?
        @Option(help: "The patient you act for as her delegate (default: you).") var patient: String?

        func validate() throws {
            let list = (actions ?? "").split(separator: ",").map(String.init)
            if !list.isEmpty, !delegate { throw ValidationError("--actions names the rights of a delegation: add --delegate") }
            for a in list where !ConsentGrant.delegateActions.contains(a) {
                throw ValidationError("unknown action \(a) in --actions: one of \(ConsentGrant.delegateActions.sorted().joined(separator: ", "))")
            }
        }

        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            var payload: [String: JSONValue] = [
                "grantee": .string(grantee), "purposes": .array(purpose.split(separator: ",").map { .string(String($0)) }),
                "decision": .string(deny ? "deny" : "permit"),
            ]
            let typeList = (types ?? (categories == nil ? "*" : "")).split(separator: ",").map(String.init)
            let categoryList = (categories ?? "").split(separator: ",").map(String.init)
            if !typeList.isEmpty { payload["resourceTypes"] = .array(typeList.map { .string($0) }) }
            if !categoryList.isEmpty { payload["categories"] = .array(categoryList.map { .string($0) }) }
            if let until { payload["end"] = .int(until) }
            if delegate { payload["delegate"] = .bool(true) }
            if let actions, !actions.isEmpty { payload["actions"] = .array(actions.split(separator: ",").map { .string(String($0)) }) }
            if let patient { payload["patient"] = .string(patient) }
            let receipt = try await session.submit("consent", "grant", .object(payload))
            var shared = 0
            if !deny {
                let granteeKey = try Base64.decode(try await API.json(.GET, session.base + "/v1/principals/" + grantee)["encryptionKey"]?.stringValue ?? "")
                let encryption = try session.requireEncryption()
                let timeline = try await session.get("/v1/patients/\(patient ?? session.did)/records")
                let wanted = Set(typeList).union(categoryList.flatMap { ConsentGrant.categoryTypes[$0] ?? [] })
                for read in timeline["records"]?.arrayValue ?? [] {
                    guard wanted.contains("*") || wanted.contains(read["resourceType"]?.stringValue ?? ""),
                        let id = read["recordId"]?.stringValue, let version = read["version"]?.intValue, let context = read["context"]?.stringValue
                    else { continue }
                    // A version whose key the grantee already has is left alone (a share never replaces a key).
                    let entry = try await session.get("/v1/state/records/\(id)")["value"]
                    let current = entry?["versions"]?.arrayValue?.first { $0["version"]?.intValue == version }
                    if current?["recipients"]?.arrayValue?.contains(.string(grantee)) == true { continue }
                    let keys = try SealedVersion.rewrap(try WrappedKey(json: read["wrappedKey"]!), with: encryption, context: context, for: [grantee: granteeKey])
                    let envelope = KeyEnvelope(keys: keys)
                    try await session.putBlob(envelope.hash, envelope.blob)
                    // A refused share ends the command with its error (`submit` throws).
                    _ = try await session.submit("records", "share", .object([
                        "recordId": .string(id), "version": .int(version), "recipients": .array(keys.keys.sorted().map { .string($0) }),
                        "keys": .string(envelope.hash.hex),
                    ]))
                    shared += 1
                }
            }
            let id = receipt["result"]?["id"]?.stringValue ?? "?"
            output(.object(["grant": .string(id), "shared": .int(Int64(shared))]), json: options.json) { "consent \(id) granted to \(grantee); keys of \(shared) records shared" }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a consent (effective at the block that commits it).")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "The consent id.") var grant: String
        @Option(help: "The patient you act for as her delegate (default: you).") var patient: String?
        func run() async throws {
            let session = try await Session(node: options.node, keyFile: options.key)
            var payload: [String: JSONValue] = ["grant": .string(grant)]
            if let patient { payload["patient"] = .string(patient) }
            let receipt = try await session.submit("consent", "revoke", .object(payload))
            output(receipt, json: options.json) { "consent \(grant) revoked at height \(receipt["height"]?.intValue ?? -1)" }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your consents.")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "The patient (default: you; a delegate may list for her).") var patient: String?
        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            let answer = try await session.get("/v1/patients/\(patient ?? session.did)/consents")
            output(answer, json: options.json) {
                (answer["consents"]?.arrayValue ?? []).map { c in
                    "\(c["id"]?.stringValue ?? "") \(c["status"]?.stringValue ?? "") \(c["decision"]?.stringValue ?? "") \(c["grantee"]?.stringValue ?? "") purposes=\(c["purposes"]?.canonicalString ?? "") types=\(c["resourceTypes"]?.canonicalString ?? "")"
                }.joined(separator: "\n")
            }
        }
    }
}

public struct RecordCommand: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "record", abstract: "Write, read and inspect encrypted FHIR records.",
        subcommands: [Put.self, Get.self, History.self, Erase.self, ErasureReceipt.self])

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encrypt a FHIR R4 resource for the patient and her current grantees, store it in the custodian's vault and record it on chain.")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "The patient's did.") var patient: String
        @Option(help: "FHIR JSON file of the resource.") var file: String
        @Option(help: "Custodian organisation did (the organisation whose node holds the content).") var custodian: String
        @Option(help: "Record id (default: the resource's id).") var recordId: String?
        @Option(help: "Endorsing parties, role=did, e.g. performer=did:key:…") var party: [String] = []

        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            let resource = try JSONValue.parse(try readInputFile(file))
            guard let type = resource["resourceType"]?.stringValue else { throw LedgerError("bad_resource", "the file has no resourceType") }
            guard let id = recordId ?? resource["id"]?.stringValue else { throw LedgerError("bad_resource", "give --record-id or an id in the resource") }
            var version: Int64 = 1
            do {
                let history = try await session.get("/v1/records/\(id)/history")
                version = Int64(history["versions"]?.arrayValue?.count ?? 0) + 1
            } catch let error as LedgerError where error.code == "not_found" {
                version = 1
            }
            var recipients: [String: [UInt8]] = [:]
            for r in try await session.get("/v1/patients/\(patient)/recipients?resourceType=\(type)&custodian=\(custodian)")["recipients"]?.arrayValue ?? [] {
                recipients[r["did"]?.stringValue ?? ""] = try Base64.decode(r["encryptionKey"]?.stringValue ?? "")
            }
            let sealed = try SealedVersion(resource: resource.canonicalBytes, recordID: id, version: version, recipients: recipients)
            for (hash, blob) in sealed.uploads { try await session.putBlob(hash, blob) }
            var parties: [String: String] = [:]
            for p in party {
                let kv = p.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { throw ValidationError("--party is role=did") }
                parties[kv[0]] = kv[1]
            }
            let receipt = try await session.submit("records", "put", sealed.putPayload(recordID: id, patient: patient, resourceType: type, version: version, custodian: custodian, parties: parties))
            output(receipt, json: options.json) {
                "record \(id) version \(version): \(receipt["result"]?["status"]?.stringValue ?? "?") (keys wrapped for \(recipients.count) readers)"
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read a record (consent-checked and audited) and decrypt it locally.")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "Record id.") var id: String
        @Option(help: "Purpose of use: treatment (default), payment, research, emergency.") var purpose: String?
        @Option(
            help: ArgumentHelp(
                "Break the glass: why you read without consent (10 characters or more). Opens the emergency window (purpose emergency); the patient and your organisation's privacy officers see the access and its reason."
            )) var reason: String?
        @Option(help: "Your organisation's key file, when the key is wrapped for it.") var orgKey: String?
        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            let purpose = self.purpose ?? (reason == nil ? "treatment" : "emergency")
            var query = "purpose=\(Query.encode(purpose))"
            if let reason { query += "&reason=\(Query.encode(reason))" }
            let read = try await session.get("/v1/records/\(Query.encode(id))?\(query)")
            let resource = try decrypt(read, session: session, orgKey: orgKey)
            print(resource.canonicalString)
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A record's versions: salted hashes, authors, endorsements, status.")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "Record id.") var id: String
        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            let history = try await session.get("/v1/records/\(id)/history")
            output(history, json: options.json) {
                (history["versions"]?.arrayValue ?? []).map { v in
                    "v\(v["version"]?.intValue ?? 0) \(v["status"]?.stringValue ?? "") by \(v["author"]?.stringValue ?? "") at height \(v["height"]?.intValue ?? 0), readers \(v["recipients"]?.arrayValue?.count ?? 0)"
                }.joined(separator: "\n")
            }
        }
    }
}

public struct AccessLogCommand: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(commandName: "access-log", abstract: "Every access to your data (HIPAA-style accounting of disclosures).")
    @OptionGroup var options: NodeKeyOptions
    @Option(help: "The patient (default: you).") var patient: String?
    @Flag(help: "The accounting of disclosures only: accesses that released data, with recipient, purpose and what.") var disclosures = false
    public func run() async throws {
        var session = try await Session(node: options.node, keyFile: options.key)
        if disclosures {
            let answer = try await session.get("/v1/patients/\(patient ?? session.did)/disclosures")
            output(answer, json: options.json) {
                (answer["disclosures"]?.arrayValue ?? []).map { d in
                    let what = (d["what"]?.arrayValue ?? []).map { "\($0["resourceType"]?.stringValue ?? "?")/\($0["recordId"]?.stringValue ?? "")" }
                    let recipient = d["recipient"]?["did"]?.stringValue ?? ""
                    let org = d["recipient"]?["organisationName"]?.stringValue.map { " (\($0))" } ?? ""
                    return "\(d["date"]?.stringValue ?? "") \(recipient)\(org) purpose=\(d["purpose"]?.stringValue ?? "") \(d["breakGlass"] == .bool(true) ? "BREAK-THE-GLASS " : "")\(what.joined(separator: ","))"
                }.joined(separator: "\n")
            }
            return
        }
        let answer = try await session.get("/v1/patients/\(patient ?? session.did)/access-log")
        output(answer, json: options.json) {
            (answer["events"]?.arrayValue ?? []).map { e in
                let when = Date(timeIntervalSince1970: Double(e["time"]?.intValue ?? 0) / 1000)
                if e["kind"]?.stringValue == "key" {
                    let by = (e["by"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ",")
                    return "\(ISO8601DateFormatter().string(from: when)) key \(e["event"]?.stringValue ?? "") by=\(by)\(e["reason"]?.stringValue.map { " reason=\($0)" } ?? "")"
                }
                return "\(ISO8601DateFormatter().string(from: when)) \(e["outcome"]?.stringValue ?? "") \(e["reader"]?.stringValue ?? "") purpose=\(e["purpose"]?.stringValue ?? "") records=\(e["records"]?.canonicalString ?? "")"
            }.joined(separator: "\n")
        }
    }
}

/// Patient records' commands: patients, consent, records, the access log, break-the-glass reviews.
public enum RecordsCommands: CommandCapability {
    public static let commandGroup = CommandGroup(
        name: "Patient records", subcommands: [PatientCommand.self, ConsentCommand.self, RecordCommand.self, AccessLogCommand.self, BreakGlassCommand.self])
}

/// A query parameter's value, percent-encoded.
enum Query {
    static func encode(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }
}

extension RecordCommand {
    struct Erase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Erase one of your records: every version's key is destroyed on every node (crypto-shredding); the chain keeps that it existed and was erased.")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "Record id.") var id: String
        func run() async throws {
            let session = try await Session(node: options.node, keyFile: options.key)
            let receipt = try await session.submit("records", "erase", .object(["recordId": .string(id)]))
            output(receipt, json: options.json) { "record \(id) erased at height \(receipt["height"]?.intValue ?? -1); its receipt: careledger record erasure-receipt --id \(id)" }
        }
    }

    struct ErasureReceipt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "erasure-receipt", abstract: "The signed erasure receipt of an erased record, with every node's attestation that it destroyed the keys.")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "Record id.") var id: String
        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            let receipt = try await session.get("/v1/records/\(Query.encode(id))/erasure")
            output(receipt, json: options.json) {
                let body = receipt["receipt"]
                let attestations = body?["attestations"]?.arrayValue ?? []
                return "record \(id) erased at height \(body?["erasedAtHeight"]?.intValue ?? -1); \(attestations.count) node attestation(s) of the keys' destruction; receipt signed by \(receipt["signer"]?.stringValue ?? "?")"
            }
        }
    }
}

/// Break-the-glass accesses, for an organisation's privacy officers.
public struct BreakGlassCommand: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "break-glass", abstract: "Emergency accesses by your organisation's people, and their review (privacy officers).",
        subcommands: [List.self, Review.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Break-the-glass accesses to review (or all of them).")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "The organisation (default: yours).") var org: String?
        @Flag(help: "Reviewed ones too.") var all = false
        func run() async throws {
            var session = try await Session(node: options.node, keyFile: options.key)
            var organisation = org
            if organisation == nil {
                let me = try await session.get("/v1/principals/\(session.did)")
                organisation = me["role"]?.stringValue == "organisation" ? session.did : me["organisation"]?.stringValue
            }
            guard let organisation else { throw LedgerError("bad_parameter", "you belong to no organisation: give --org") }
            let answer = try await session.get("/v1/organisations/\(organisation)/break-glass?status=\(all ? "all" : "pending")")
            output(answer, json: options.json) {
                (answer["accesses"]?.arrayValue ?? []).map { a in
                    let when = Date(timeIntervalSince1970: Double(a["time"]?.intValue ?? 0) / 1000)
                    return "\(a["status"]?.stringValue ?? "") patient=\(a["patient"]?.stringValue ?? "") index=\(a["index"]?.intValue ?? -1) reader=\(a["reader"]?.stringValue ?? "") at \(ISO8601DateFormatter().string(from: when)) reason=\(a["reason"]?.canonicalString ?? "null")"
                }.joined(separator: "\n")
            }
        }
    }

    struct Review: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record your review of a break-the-glass access (as listed: its patient and index).")
        @OptionGroup var options: NodeKeyOptions
        @Option(help: "The patient whose record was read.") var patient: String
        @Option(help: "The access's index in her access log (break-glass list shows it).") var index: Int64
        @Option(help: "justified or unjustified.") var outcome: String
        @Option(help: "A note for the record (up to 1024 characters).") var note: String?
        func validate() throws {
            guard ["justified", "unjustified"].contains(outcome) else { throw ValidationError("--outcome is justified or unjustified") }
        }
        func run() async throws {
            let session = try await Session(node: options.node, keyFile: options.key)
            var payload: [String: JSONValue] = ["patient": .string(patient), "index": .int(index), "outcome": .string(outcome)]
            if let note { payload["note"] = .string(note) }
            let receipt = try await session.submit("audit", "review", .object(payload))
            output(receipt, json: options.json) { "access \(index) of \(patient) reviewed: \(outcome), at height \(receipt["height"]?.intValue ?? -1)" }
        }
    }
}
