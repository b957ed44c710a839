import App
import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import Node
import RecoveryContract
import Server

/// What key recovery adds to a node: its route (a patient's requests), who may read its private entries
/// and transactions (the patient, her guardians, and a requester her own request while it is open), and
/// who is told of its events (the requester and the guardians).
public struct RecoveryCapability: NodeCapability {
    public init() {}

    /// The guardians' page of the web app (`Service/Web`, served under `/app/recovery/`).
    public var appContribution: AppContribution {
        AppContribution(
            pages: [
                AppPage(id: "guardians", title: "Guardians", roles: ["patient", "practitioner"], module: "/app/recovery/guardians.js",
                        summary: "name your guardians; approve the recovery of someone you guard"),
                AppPage(id: "recover", title: "Lost keys", roles: ["visitor"], module: "/app/recovery/recover.js",
                        summary: "on a new device: ask your guardians to make its keys yours"),
            ],
            files: Self.webFiles)
    }

    static let webFiles = AppContribution.files(in: .module, prefix: "recovery")

    public var openAPIRoutes: [OpenAPIRoute] {
        [
            OpenAPIRoute(method: "get", path: "/v1/recovery/{did}/requests", summary: "The patient's recovery requests, newest first, each with its status, approvals and checkCode (the code the patient reads out from her new device for her guardians to compare): all of them for the patient and her guardians, her own for a requester (authenticated)",
                parameters: [("did", "path", true, "the patient's did:key")], responseType: "application/json", hasBody: false),
        ]
    }

    /// The guardians of the patient's key recovery, and `requester` while her request is in progress
    /// (anyone may open one, and a closed one gives nothing).
    static func parties(_ patient: String, requester: String?, node: LedgerNode) throws -> Set<String> {
        var out = Set(RecoveryContract.guardians(try node.stateJSON(RecoveryContract.key(patient))))
        if let requester, let request = try node.stateJSON(RecoveryContract.requestKey(patient, requester: requester)),
            request["status"]?.stringValue != "cancelled"
        {
            out.insert(requester)
        }
        return out
    }

    public func audience(ofStateKey key: String, value: JSONValue?, node: LedgerNode) throws -> Audience? {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts[0] == "recovery" else { return nil }
        // A request key (`recovery/<patient>/request/<requester>`) is also its requester's, while in progress.
        let requester = parts.count == 4 && parts[2] == "request" ? parts[3] : nil
        return Audience(patients: [parts[1]], parties: try Self.parties(parts[1], requester: requester, node: node))
    }

    /// A recovery transaction concerns the patient it names (her own set-up names none: its author).
    public func audience(ofTransaction tx: Transaction, node: LedgerNode) throws -> Audience? {
        guard tx.contract == RecoveryContract().name else { return nil }
        let author = node.principal(everSignedBy: tx.author.did)
        let patient = tx.payload["patient"]?.stringValue ?? author
        let requester = tx.payload["requester"]?.stringValue ?? author
        return Audience(patients: [patient], parties: try Self.parties(patient, requester: requester, node: node))
    }

    /// A key recovery's news goes to its requester and to the patient's guardians (and, as every
    /// patient's event, to her and her delegates: the records capability's rule).
    public func concerns(_ event: JSONValue, did: String, node: LedgerNode) -> Bool {
        guard event["type"]?.stringValue?.hasPrefix("recovery.") == true, let patient = event["patient"]?.stringValue else { return false }
        if event["requester"]?.stringValue == did { return true }
        return RecoveryContract.guardians((try? node.stateJSON(RecoveryContract.key(patient))) ?? nil).contains(did)
    }

    public func addRoutes(to router: Router<LedgerRequestContext>, api: LedgerAPI) {
        let auth = api.auth, node = api.node
        router.get("/v1/recovery/:did/requests") { request, context in
            await api.handle {
                let reader = try auth.authenticate(request)
                let patient = context.parameters.get("did") ?? ""
                let setup = try node.stateJSON(RecoveryContract.key(patient))
                let everyone = reader == patient || RecoveryContract.guardians(setup).contains(reader)
                var list: [JSONValue] = []
                let keys = everyone
                    ? try node.store.stateKeys(prefix: RecoveryContract.requestsPrefix(patient), limit: 1000)
                    : [RecoveryContract.requestKey(patient, requester: reader)]
                for key in keys {
                    guard var r = try node.stateJSON(key)?.objectValue else { continue }
                    r["checkCode"] = .string(RecoveryContract.checkCode(requester: r["requester"]?.stringValue ?? "", encryptionKey: r["encryptionKey"]?.stringValue ?? ""))
                    r["current"] = .bool(r["setupHeight"] == setup?["height"])
                    list.append(.object(r))
                }
                guard everyone || !list.isEmpty else {
                    throw LedgerError("forbidden", "the recovery requests of \(patient) are served to her, her guardians, and each requester her own")
                }
                list.sort { ($0["timeMillis"]?.intValue ?? 0, $0["id"]?.stringValue ?? "") > ($1["timeMillis"]?.intValue ?? 0, $1["id"]?.stringValue ?? "") }
                return JSONResponse.make(.object(["requests": .array(list)]))
            }
        }
    }
}
