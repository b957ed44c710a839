import ContractKit
import LedgerCore
import Standards

/// `recovery`: a patient's key recovery through guardians, k of n. Recovery never rebuilds a lost key:
/// k guardians' approvals make the new device's keys her current keys (a rotation, `IdentityContract.rotate`),
/// so a stolen old key is locked out by the same act that lets her back in. No node, and no guardian, ever
/// holds a secret of hers.
/// - `setup` `{"threshold", "guardians": [did]}` (the patient, 1 to 32 registered guardians);
/// - `request` `{"patient", "encryptionKey"}`: signed by the new device's signing key (a key no principal has
///   used) after a loss; opens a request of that key (`recovery/<patient>/request/<requester>`). Any number of
///   keys may have a request open at once: a request holds nobody else's off, and the guardians choose the one
///   whose key they checked with the patient (its `checkCode`). The same key opening again replaces its own request;
/// - `approve` `{"patient", "requester", "request"}`: a guardian approves the request she checked (`request` is its
///   id: an approval never lands on another request, nor on one opened before the patient's latest set-up); the
///   k-th approval rotates the patient's keys to the requester's signing key and the request's encryption key and
///   closes it as `completed` (k−1 approvals change nothing);
/// - `cancel` `{"patient", "requester", "reason"?}`: one of her guardians, or the requester herself, closes an open
///   request as `cancelled` (not the patient's current key: it may be the stolen one).
public struct RecoveryContract: Contract {
    public let name = "recovery"
    public var privateStatePrefixes: [String] { ["recovery/"] }
    public let actions = ["setup", "request", "approve", "cancel"]

    public init() {}

    /// A short code of a recovery request (its requester and the key it asks for), that the patient reads
    /// out from her new device and her guardians compare before they approve: ten hexadecimal digits of
    /// SHA-256(requester || 0x00 || encryption key), as `xxxxx-xxxxx`.
    public static func checkCode(requester: String, encryptionKey: String) -> String {
        let digest = Hash.sha256(Array(requester.utf8) + [0] + Array(encryptionKey.utf8)).hex
        return "\(digest.prefix(5))-\(digest.dropFirst(5).prefix(5))"
    }

    public static func key(_ patient: String) -> String { "recovery/\(patient)" }
    /// The recovery request of `requester` for `patient`'s keys.
    public static func requestKey(_ patient: String, requester: String) -> String { "\(requestsPrefix(patient))\(requester)" }
    /// The prefix of every recovery request for `patient`'s keys.
    public static func requestsPrefix(_ patient: String) -> String { "recovery/\(patient)/request/" }

    /// The guardians of a set-up.
    public static func guardians(_ setup: JSONValue?) -> [String] { setup?["guardians"]?.arrayValue?.compactMap(\.stringValue) ?? [] }

    public func validate(action: String, payload: JSONValue) throws(LedgerError) {
        switch action {
        case "setup":
            if payload["shares"] != nil || payload["kit"] != nil {
                throw LedgerError("bad_payload", "recovery holds no key material any more: set up with {\"threshold\", \"guardians\": [did]}")
            }
            let p = try Payload(payload, allowed: ["threshold", "guardians"])
            let guardians = try p.optionalStrings("guardians")
            guard (1...32).contains(guardians.count), Set(guardians).count == guardians.count else {
                throw LedgerError("bad_payload", "guardians lists 1 to 32 distinct dids")
            }
            for did in guardians { _ = try PublicKey(did: did) }
            let threshold = try p.int("threshold")
            guard threshold >= 1, threshold <= guardians.count else { throw LedgerError("bad_payload", "need 1 ≤ threshold ≤ guardians") }
        case "request":
            let p = try Payload(payload, allowed: ["patient", "encryptionKey"])
            _ = try p.did("patient")
            guard try Base64.decode(try p.string("encryptionKey"), field: "encryptionKey").count == 32 else {
                throw LedgerError("bad_payload", "encryptionKey is a base64 X25519 public key")
            }
        case "cancel":
            let p = try Payload(payload, allowed: ["patient", "requester", "reason"])
            _ = try p.did("patient")
            _ = try p.did("requester")
            _ = try p.optionalString("reason", maxLength: 512)
        default:
            let p = try Payload(payload, allowed: ["patient", "requester", "request"])
            _ = try p.did("patient")
            _ = try p.did("requester")
            _ = try Hash(hex: try p.string("request", maxLength: 64))
        }
    }

    public func execute(action: String, payload: JSONValue, context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        switch action {
        case "setup":
            guard try Principal.load(context.author, from: context)?.role == .patient else {
                throw LedgerError("forbidden", "a registered patient sets up her own recovery")
            }
            let guardians = Self.guardians(payload)
            for did in guardians where try Principal.load(did, from: context) == nil {
                throw LedgerError("unknown_principal", "guardian \(did) is not registered")
            }
            guard !guardians.contains(context.author) else { throw LedgerError("bad_payload", "a patient is not her own guardian") }
            let o: JSONValue = .object([
                "patient": .string(context.author), "threshold": payload["threshold"]!, "guardians": .array(guardians.sorted().map { .string($0) }),
                "height": .int(Int64(context.height)),
            ])
            context.set(Self.key(context.author), o)
            return .object(["patient": .string(context.author), "guardians": .int(Int64(guardians.count)), "threshold": payload["threshold"]!])
        case "request":
            let patient = payload["patient"]!.stringValue!
            guard let setup = try context.json(forKey: Self.key(patient)) else { throw LedgerError("not_found", "\(patient) has no recovery set up") }
            guard try Principal.load(context.author, from: context) == nil else {
                throw LedgerError("key_in_use", "a recovery request is signed by a new device's key, not a registered principal's")
            }
            let request: JSONValue = .object([
                "id": .string(context.transaction.id.hex),
                "patient": .string(patient), "requester": .string(context.author), "encryptionKey": payload["encryptionKey"]!,
                "approvals": .array([]), "status": .string("open"), "height": .int(Int64(context.height)),
                "timeMillis": .int(Int64(context.timeMillis)), "setupHeight": setup["height"] ?? .null,
            ])
            context.set(Self.requestKey(patient, requester: context.author), request)
            context.emit(.object(["type": .string("recovery.requested"), "patient": .string(patient), "requester": .string(context.author)]))
            return request
        case "cancel":
            let patient = payload["patient"]!.stringValue!
            guard let setup = try context.json(forKey: Self.key(patient)) else { throw LedgerError("not_found", "\(patient) has no recovery set up") }
            let requester = payload["requester"]!.stringValue!
            guard context.author == requester || Self.guardians(setup).contains(context.author) else {
                throw LedgerError("forbidden", "one of the patient's guardians, or the requester, cancels a recovery request")
            }
            guard var request = try context.json(forKey: Self.requestKey(patient, requester: requester))?.objectValue, request["status"] == .string("open")
            else { throw LedgerError("no_open_request", "no open recovery request of \(requester) for \(patient)") }
            request["status"] = .string("cancelled")
            request["cancelledBy"] = .string(context.author)
            request["cancelledAtHeight"] = .int(Int64(context.height))
            request["approvals"] = .array([])
            if let reason = payload["reason"] { request["cancelReason"] = reason }
            context.set(Self.requestKey(patient, requester: requester), .object(request))
            context.emit(.object([
                "type": .string("recovery.cancelled"), "patient": .string(patient), "requester": .string(requester), "by": .string(context.author),
            ]))
            return .object(request)
        default:
            let patient = payload["patient"]!.stringValue!
            guard let setup = try context.json(forKey: Self.key(patient)), let threshold = setup["threshold"]?.intValue else {
                throw LedgerError("not_found", "\(patient) has no recovery set up")
            }
            guard Self.guardians(setup).contains(context.author) else { throw LedgerError("not_a_guardian", "\(context.author) is not a guardian of \(patient)") }
            let requester = payload["requester"]!.stringValue!
            guard var request = try context.json(forKey: Self.requestKey(patient, requester: requester))?.objectValue, request["status"] == .string("open")
            else { throw LedgerError("no_open_request", "no open recovery request of \(requester) for \(patient)") }
            guard request["id"] == payload["request"] else {
                throw LedgerError("request_mismatch", "the approval is for another recovery request than the open one")
            }
            guard request["setupHeight"] == setup["height"] else {
                throw LedgerError("no_open_request", "the request was opened before \(patient) set up her recovery again")
            }
            var approvals = (request["approvals"]?.arrayValue ?? []).compactMap(\.stringValue)
            guard !approvals.contains(context.author) else { throw LedgerError("already_approved", "\(context.author) already approved this request") }
            approvals.append(context.author)
            request["approvals"] = .array(approvals.map { .string($0) })
            if Int64(approvals.count) >= threshold {
                guard let key = request["encryptionKey"]?.stringValue else { throw LedgerError("corrupt_state", "a request without its key") }
                _ = try IdentityContract.rotate(
                    patient, signingKey: requester, encryptionKey: try Base64.decode(key), reason: "recovery", by: approvals.sorted(), context: &context)
                request["status"] = .string("completed")
                request["completedAtHeight"] = .int(Int64(context.height))
                context.emit(.object(["type": .string("recovery.completed"), "patient": .string(patient), "requester": .string(requester)]))
            }
            context.set(Self.requestKey(patient, requester: requester), .object(request))
            return .object([
                "patient": .string(patient), "requester": .string(requester), "approvals": .int(Int64(approvals.count)), "status": request["status"]!,
            ])
        }
    }
}

extension ContractSet {
    /// The key-recovery capability's contract.
    public static let recovery = ContractSet { _ in [RecoveryContract()] }
}
