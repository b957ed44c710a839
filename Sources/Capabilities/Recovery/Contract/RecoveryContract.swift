import ContractKit
import LedgerCore
import Standards

/// `recovery`: a patient's key recovery through guardians, k of n (Shamir), with no node ever
/// holding her private key or the recovery secret in the clear.
///
/// The patient's client makes a random 32-byte recovery secret S, encrypts her key file with S
/// (the "kit", stored in the vault under its salted hash), splits S into n Shamir shares and wraps
/// each share with HPKE for its guardian.
/// - `setup` `{"threshold", "kit": salted hash, "shares": {guardian did: {"x", "enc", "ct"}}}` (the patient);
/// - `request` `{"patient", "encryptionKey"}`: signed by the patient's new key after a loss; opens a request of
///   that key (`recovery/<patient>/request/<requester>`). Any number of keys may have a request open at once: a
///   request holds nobody else's off, and the guardians choose the one whose key they checked with the patient.
///   The same key opening again replaces its own request (new id, no approvals);
/// - `approve` `{"patient", "requester", "request", "x", "enc", "ct"}`: a guardian re-wraps her share for the
///   encryption key of the request she checked (`request` is its id: an approval never lands on another request,
///   nor on one opened before the patient's latest set-up); with `threshold` approvals the request is `ready`, its
///   requester may fetch the kit, and the patient combines the shares on her device;
/// - `complete` `{"patient", "requester"}`: signed by the recovered key itself (the patient's), closes a ready request
///   as `completed`, on chain;
/// - `cancel` `{"patient", "requester", "reason"?}`: the patient (her key is not lost after all), any guardian, or the
///   requester herself closes an open or ready request as `cancelled` — the answer to a request opened by someone else.
public struct RecoveryContract: Contract {
    public let name = "recovery"
    public var privateStatePrefixes: [String] { ["recovery/"] }
    public let actions = ["setup", "request", "approve", "complete", "cancel"]

    public init() {}

    /// A short code of a recovery request (its requester and the key the shares are wrapped for), that
    /// the patient reads out from her new device and her guardians compare before they approve:
    /// ten hexadecimal digits of SHA-256(requester || 0x00 || encryption key), as `xxxxx-xxxxx`.
    public static func checkCode(requester: String, encryptionKey: String) -> String {
        let digest = Hash.sha256(Array(requester.utf8) + [0] + Array(encryptionKey.utf8)).hex
        return "\(digest.prefix(5))-\(digest.dropFirst(5).prefix(5))"
    }

    public static func key(_ patient: String) -> String { "recovery/\(patient)" }
    /// The recovery request of `requester` for `patient`'s keys.
    public static func requestKey(_ patient: String, requester: String) -> String { "\(requestsPrefix(patient))\(requester)" }
    /// The prefix of every recovery request for `patient`'s keys.
    public static func requestsPrefix(_ patient: String) -> String { "recovery/\(patient)/request/" }
    public static func context(patient: String, x: Int64) -> String { "recovery/\(patient)/\(x)" }

    public func validate(action: String, payload: JSONValue) throws(LedgerError) {
        switch action {
        case "setup":
            let p = try Payload(payload, allowed: ["threshold", "kit", "shares"])
            _ = try Hash(hex: try p.string("kit", maxLength: 64))
            guard let shares = p.fields["shares"]?.objectValue, (1...32).contains(shares.count) else {
                throw LedgerError("bad_payload", "shares maps 1 to 32 guardian dids to wrapped shares")
            }
            let threshold = try p.int("threshold")
            guard threshold >= 1, threshold <= shares.count else { throw LedgerError("bad_payload", "need 1 ≤ threshold ≤ guardians") }
            for (did, share) in shares.sorted(by: { $0.key < $1.key }) {
                _ = try PublicKey(did: did)
                guard let x = share["x"]?.intValue, (1...255).contains(x) else { throw LedgerError("bad_payload", "share x is 1...255") }
                _ = try WrappedKey(json: share)
            }
        case "request":
            let p = try Payload(payload, allowed: ["patient", "encryptionKey"])
            _ = try p.did("patient")
            guard try Base64.decode(try p.string("encryptionKey"), field: "encryptionKey").count == 32 else {
                throw LedgerError("bad_payload", "encryptionKey is a base64 X25519 public key")
            }
        case "complete":
            let p = try Payload(payload, allowed: ["patient", "requester"])
            _ = try p.did("patient")
            _ = try p.did("requester")
        case "cancel":
            let p = try Payload(payload, allowed: ["patient", "requester", "reason"])
            _ = try p.did("patient")
            _ = try p.did("requester")
            _ = try p.optionalString("reason", maxLength: 512)
        default:
            let p = try Payload(payload, allowed: ["patient", "requester", "request", "x", "enc", "ct"])
            _ = try p.did("patient")
            _ = try p.did("requester")
            _ = try Hash(hex: try p.string("request", maxLength: 64))
            _ = try p.int("x")
            _ = try WrappedKey(json: payload)
        }
    }

    public func execute(action: String, payload: JSONValue, context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        switch action {
        case "setup":
            guard try Principal.load(context.author, from: context)?.role == .patient else {
                throw LedgerError("forbidden", "a registered patient sets up her own recovery")
            }
            for did in payload["shares"]!.objectValue!.keys.sorted() where try Principal.load(did, from: context) == nil {
                throw LedgerError("unknown_principal", "guardian \(did) is not registered")
            }
            var o = payload.objectValue!
            o["patient"] = .string(context.author)
            o["height"] = .int(Int64(context.height))
            context.set(Self.key(context.author), .object(o))
            return .object(["patient": .string(context.author), "guardians": .int(Int64(o["shares"]!.objectValue!.count)), "threshold": o["threshold"]!])
        case "request":
            let patient = payload["patient"]!.stringValue!
            guard let setup = try context.json(forKey: Self.key(patient)) else { throw LedgerError("not_found", "\(patient) has no recovery set up") }
            let request: JSONValue = .object([
                "id": .string(context.transaction.id.hex),
                "patient": .string(patient), "requester": .string(context.author), "encryptionKey": payload["encryptionKey"]!,
                "approvals": .object([:]), "status": .string("open"), "height": .int(Int64(context.height)),
                "timeMillis": .int(Int64(context.timeMillis)), "setupHeight": setup["height"] ?? .null,
            ])
            context.set(Self.requestKey(patient, requester: context.author), request)
            context.emit(.object(["type": .string("recovery.requested"), "patient": .string(patient), "requester": .string(context.author)]))
            return request
        case "cancel":
            let patient = payload["patient"]!.stringValue!
            guard let setup = try context.json(forKey: Self.key(patient)) else { throw LedgerError("not_found", "\(patient) has no recovery set up") }
            let requester = payload["requester"]!.stringValue!
            guard context.author == patient || context.author == requester || setup["shares"]?[context.author] != nil else {
                throw LedgerError("forbidden", "the patient, one of her guardians or the requester cancels a recovery request")
            }
            guard var request = try context.json(forKey: Self.requestKey(patient, requester: requester))?.objectValue,
                ["open", "ready"].contains(request["status"]?.stringValue ?? "")
            else { throw LedgerError("no_open_request", "no open recovery request of \(requester) for \(patient)") }
            request["status"] = .string("cancelled")
            request["cancelledBy"] = .string(context.author)
            request["cancelledAtHeight"] = .int(Int64(context.height))
            request["approvals"] = .object([:])
            if let reason = payload["reason"] { request["cancelReason"] = reason }
            context.set(Self.requestKey(patient, requester: requester), .object(request))
            context.emit(.object([
                "type": .string("recovery.cancelled"), "patient": .string(patient), "requester": .string(requester), "by": .string(context.author),
            ]))
            return .object(request)
        case "complete":
            let patient = payload["patient"]!.stringValue!
            guard context.author == patient else {
                throw LedgerError("forbidden", "a recovery is completed with the recovered key itself (the patient's)")
            }
            let requester = payload["requester"]!.stringValue!
            guard var request = try context.json(forKey: Self.requestKey(patient, requester: requester))?.objectValue, request["status"] == .string("ready")
            else { throw LedgerError("not_ready", "the recovery request of \(requester) for \(patient) is not ready") }
            request["status"] = .string("completed")
            request["completedAtHeight"] = .int(Int64(context.height))
            context.set(Self.requestKey(patient, requester: requester), .object(request))
            context.emit(.object(["type": .string("recovery.completed"), "patient": .string(patient), "requester": request["requester"] ?? .null]))
            return .object(request)
        default:
            let patient = payload["patient"]!.stringValue!
            guard let setup = try context.json(forKey: Self.key(patient)), let threshold = setup["threshold"]?.intValue else {
                throw LedgerError("not_found", "\(patient) has no recovery set up")
            }
            guard let guardianShare = setup["shares"]?[context.author] else { throw LedgerError("forbidden", "the author is not a guardian") }
            guard guardianShare["x"]?.intValue == payload["x"]?.intValue else { throw LedgerError("bad_payload", "x is not this guardian's share") }
            let requester = payload["requester"]!.stringValue!
            guard var request = try context.json(forKey: Self.requestKey(patient, requester: requester))?.objectValue, request["status"] == .string("open")
            else { throw LedgerError("no_open_request", "no open recovery request of \(requester) for \(patient)") }
            guard request["id"] == payload["request"] else {
                throw LedgerError("request_mismatch", "the approval is for another recovery request than the open one")
            }
            guard request["setupHeight"] == setup["height"] else {
                throw LedgerError("no_open_request", "the request was opened before \(patient) set up her recovery again")
            }
            var approvals = request["approvals"]?.objectValue ?? [:]
            approvals[context.author] = .object(["x": payload["x"]!, "enc": payload["enc"]!, "ct": payload["ct"]!])
            request["approvals"] = .object(approvals)
            if Int64(approvals.count) >= threshold {
                request["status"] = .string("ready")
                context.emit(.object(["type": .string("recovery.ready"), "patient": .string(patient), "requester": .string(requester)]))
            }
            context.set(Self.requestKey(patient, requester: requester), .object(request))
            return .object(["patient": .string(patient), "requester": .string(requester), "approvals": .int(Int64(approvals.count)), "status": request["status"]!])
        }
    }
}

extension ContractSet {
    /// The key-recovery capability's contract.
    public static let recovery = ContractSet { _ in [RecoveryContract()] }
}
