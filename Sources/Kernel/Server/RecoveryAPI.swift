import ContractKit
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import Node
import RecoveryContract

/// Key recovery: the requests of a patient, and the encrypted kit for an approved request.
struct RecoveryAPI: Sendable {
    let api: LedgerAPI
    var records: RecordsService { api.records }
    var auth: AuthService { api.auth }

    func register(on router: Router<LedgerRequestContext>) {
        router.get("/v1/recovery/:did/requests") { request, context in
            await api.handle {
                let reader = try auth.authenticate(request)
                let patient = context.parameters.get("did") ?? ""
                let setup = records.node.stateValue(forKey: RecoveryContract.key(patient)).flatMap { try? JSONValue.parse($0) }
                let everyone = reader == patient || setup?["shares"]?[reader] != nil
                var list: [JSONValue] = []
                let keys = everyone
                    ? try records.node.store.stateKeys(prefix: RecoveryContract.requestsPrefix(patient), limit: 1000)
                    : [RecoveryContract.requestKey(patient, requester: reader)]
                for key in keys {
                    guard let bytes = records.node.stateValue(forKey: key), var r = try JSONValue.parse(bytes).objectValue else { continue }
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
        router.get("/v1/recovery/:did/kit") { request, context in
            await api.handle {
                let requester = try auth.authenticate(request)
                let patient = context.parameters.get("did") ?? ""
                guard let bytes = records.node.stateValue(forKey: RecoveryContract.requestKey(patient, requester: requester)),
                    let request = try? JSONValue.parse(bytes), request["status"]?.stringValue == "ready"
                else {
                    throw LedgerError("forbidden", "only the key whose recovery request the guardians approved (status ready) fetches the kit")
                }
                guard let setupBytes = records.node.stateValue(forKey: RecoveryContract.key(patient)),
                    let kit = try JSONValue.parse(setupBytes)["kit"]?.stringValue, let blob = records.vault.get(try Hash(hex: kit))
                else { throw LedgerError("not_in_vault", "this node does not hold the recovery kit") }
                return JSONResponse.make(.object(["salt": .string(Base64.encode(blob.salt)), "ciphertext": .string(Base64.encode(blob.ciphertext))]))
            }
        }
    }
}
