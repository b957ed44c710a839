import LedgerCore

/// `governance`: the consortium's members and validator set change only by proposals approved by a
/// configurable share of the current active members (default: more than half).
///
/// Actions:
/// - `propose` `{"kind", "subject", "key"?, "reason"?}` by an active member; the proposer's approval counts.
///   Kinds: `admit_member`, `suspend_member`, `reinstate_member`, `remove_member`, `rotate_member_key`
///   (subject → key), `add_validator`, `remove_validator`, `rotate_validator_key` (subject → key).
/// - `approve` `{"proposal": "<proposal id>"}` by another active member.
/// - `reject` `{"proposal", "reason"?}` by an active member who has not voted: a vote against. Once the
///   approvals still possible (every active member who has not rejected) can no longer pass the
///   threshold, the proposal closes as `rejected`.
/// - `withdraw` `{"proposal", "reason"?}` by its proposer: the open proposal closes as `withdrawn`.
/// A proposal is applied in the transaction whose approval reaches the threshold (counted over the
/// members active at that moment); the change takes effect from the next block. Proposals expire
/// after `expiryBlocks` blocks. The sets never become empty, and a validator set never shrinks below
/// one.
///
/// State: `governance/members` → `[{"did","status"}]`, `governance/validators` → `[did]` (absent until the
/// first change: the genesis values apply), `governance/proposals/<id>` → the proposal and its approvals,
/// `governance/revoked/<did>` → the keys removed or rotated out (until admitted or added again).
public struct GovernanceContract: Contract {
    public static let membersKey = "governance/members"
    public static let validatorsKey = "governance/validators"
    public static let kinds: Set<String> = [
        "admit_member", "suspend_member", "reinstate_member", "remove_member", "rotate_member_key", "add_validator", "remove_validator",
        "rotate_validator_key",
    ]

    let initialMembers: [String]
    let initialValidators: [String]
    /// Approvals needed: more than `numerator / denominator` of the active members.
    let numerator: Int
    let denominator: Int
    let expiryBlocks: UInt64

    public init(members: [String], validators: [String], threshold: (numerator: Int, denominator: Int) = (1, 2), expiryBlocks: UInt64 = 100_000) {
        initialMembers = members
        initialValidators = validators
        numerator = threshold.numerator
        denominator = threshold.denominator
        self.expiryBlocks = expiryBlocks
    }

    public let name = "governance"
    public let actions = ["propose", "approve", "reject", "withdraw"]

    public func validate(action: String, payload: JSONValue) throws(LedgerError) {
        switch action {
        case "propose":
            let p = try Payload(payload, allowed: ["kind", "subject", "key", "reason"])
            let kind = try p.string("kind")
            guard Self.kinds.contains(kind) else {
                throw LedgerError("bad_payload", "kind must be one of \(Self.kinds.sorted().joined(separator: ", "))")
            }
            _ = try p.did("subject")
            let key = try p.optionalDID("key")
            if kind.hasPrefix("rotate_") && key == nil { throw LedgerError("bad_payload", "\(kind) needs the new key (a did)") }
            if !kind.hasPrefix("rotate_") && key != nil { throw LedgerError("bad_payload", "only a rotation takes a key") }
            _ = try p.optionalString("reason", maxLength: 1024)
        default:
            let p = try Payload(payload, allowed: action == "approve" ? ["proposal"] : ["proposal", "reason"])
            let id = try p.string("proposal")
            guard (try? Hash(hex: id)) != nil else { throw LedgerError("bad_payload", "proposal is a transaction id (64 hex digits)") }
            if action != "approve" { _ = try p.optionalString("reason", maxLength: 1024) }
        }
    }

    /// The members and their status (`active` or `suspended`) as of `state`.
    public static func members(in state: (String) throws(LedgerError) -> [UInt8]?, initial: [String]) throws(LedgerError) -> [(did: String, status: String)] {
        guard let bytes = try state(membersKey) else { return initial.map { ($0, "active") } }
        return try JSONValue.parse(bytes).arrayValue?.compactMap { m in
            guard let did = m["did"]?.stringValue, let status = m["status"]?.stringValue else { return nil }
            return (did, status)
        } ?? []
    }

    /// The validator dids as of `state` (the genesis set until governance changes it).
    public static func validators(in state: (String) throws(LedgerError) -> [UInt8]?, initial: [String]) throws(LedgerError) -> [String] {
        guard let bytes = try state(validatorsKey) else { return initial }
        return try JSONValue.parse(bytes).arrayValue?.compactMap(\.stringValue) ?? []
    }

    public func execute(action: String, payload: JSONValue, context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        let ctx = context
        let read: (String) throws(LedgerError) -> [UInt8]? = { (key: String) throws(LedgerError) -> [UInt8]? in try ctx.value(forKey: key) }
        let members = try Self.members(in: read, initial: initialMembers)
        let active = members.filter { $0.status == "active" }.map(\.did)
        let author = context.transaction.author.did
        guard active.contains(author) else { throw LedgerError("not_a_member", "\(author) is not an active member of the consortium") }
        let id: String
        var proposal: [String: JSONValue]
        if action == "propose" {
            id = context.transaction.id.hex
            proposal = [
                "id": .string(id), "kind": payload["kind"]!, "subject": payload["subject"]!, "proposer": .string(author),
                "approvals": .array([.string(author)]), "status": .string("open"), "height": .int(Int64(context.height)),
            ]
            if let key = payload["key"], key != .null { proposal["key"] = key }
            if let reason = payload["reason"], reason != .null { proposal["reason"] = reason }
            // Check now that the change could apply, so a proposal that can never pass is refused at once.
            _ = try apply(proposal, members: members, context: context, dryRun: true)
        } else {
            id = payload["proposal"]!.stringValue!
            guard let existing = try context.json(forKey: "governance/proposals/\(id)")?.objectValue else {
                throw LedgerError("unknown_proposal", "no proposal \(id)")
            }
            proposal = existing
            guard proposal["status"]?.stringValue == "open" else {
                throw LedgerError("proposal_closed", "proposal \(id) is \(proposal["status"]?.stringValue ?? "closed")")
            }
            if UInt64(proposal["height"]?.intValue ?? 0) + expiryBlocks < context.height {
                proposal["status"] = .string("expired")
                context.set("governance/proposals/\(id)", .object(proposal))
                return .object(proposal)
            }
            var approvals = proposal["approvals"]?.arrayValue?.compactMap(\.stringValue) ?? []
            var rejections = proposal["rejections"]?.arrayValue?.compactMap(\.stringValue) ?? []
            switch action {
            case "withdraw":
                guard proposal["proposer"]?.stringValue == author else {
                    throw LedgerError("forbidden", "only the proposer withdraws proposal \(id)")
                }
                proposal["status"] = .string("withdrawn")
                proposal["closedHeight"] = .int(Int64(context.height))
                if let reason = payload["reason"], reason != .null { proposal["closeReason"] = reason }
                context.emit(.object(["type": .string("governance.withdrawn"), "proposal": .string(id), "kind": proposal["kind"]!, "subject": proposal["subject"]!]))
                context.set("governance/proposals/\(id)", .object(proposal))
                return .object(proposal)
            case "reject":
                guard !approvals.contains(author), !rejections.contains(author) else {
                    throw LedgerError("already_voted", "\(author) already voted on proposal \(id)")
                }
                rejections.append(author)
                proposal["rejections"] = .array(rejections.map { .string($0) })
                // Closed once even every active member who has not rejected could not pass it.
                let possible = active.filter { !rejections.contains($0) }.count
                if possible * denominator <= active.count * numerator {
                    proposal["status"] = .string("rejected")
                    proposal["closedHeight"] = .int(Int64(context.height))
                    context.emit(.object(["type": .string("governance.rejected"), "proposal": .string(id), "kind": proposal["kind"]!, "subject": proposal["subject"]!]))
                }
                context.set("governance/proposals/\(id)", .object(proposal))
                return .object(proposal)
            default:
                guard !approvals.contains(author) else { throw LedgerError("already_approved", "\(author) already approved proposal \(id)") }
                guard !rejections.contains(author) else { throw LedgerError("already_voted", "\(author) rejected proposal \(id)") }
                approvals.append(author)
                proposal["approvals"] = .array(approvals.map { .string($0) })
            }
        }
        let approvals = (proposal["approvals"]?.arrayValue?.compactMap(\.stringValue) ?? []).filter { active.contains($0) }
        // More than numerator/denominator of the active members.
        if approvals.count * denominator > active.count * numerator {
            try apply(proposal, members: members, context: &context)
            proposal["status"] = .string("applied")
            proposal["appliedHeight"] = .int(Int64(context.height))
            context.emit(
                .object([
                    "type": .string("governance.applied"), "proposal": .string(id), "kind": proposal["kind"]!, "subject": proposal["subject"]!,
                ]))
        }
        context.set("governance/proposals/\(id)", .object(proposal))
        return .object(proposal)
    }

    private func apply(_ proposal: [String: JSONValue], members: [(did: String, status: String)], context: inout ExecutionContext) throws(LedgerError) {
        let (newMembers, newValidators) = try apply(proposal, members: members, context: context, dryRun: false)
        if let newMembers {
            context.set(Self.membersKey, .array(newMembers.map { .object(["did": .string($0.did), "status": .string($0.status)]) }))
        }
        if let newValidators { context.set(Self.validatorsKey, .array(newValidators.map { .string($0) })) }
        // A key the consortium stops trusting (a removed member or validator, a rotated-out key) is
        // refused from then on for whole-ledger reads, even with the consortium secret it still holds.
        let kind = proposal["kind"]!.stringValue!, subject = proposal["subject"]!.stringValue!
        switch kind {
        case "remove_member", "rotate_member_key", "remove_validator", "rotate_validator_key":
            context.set(Self.revokedKey(subject), .object(["kind": .string(kind), "height": .int(Int64(context.height))]))
            // The key rotated in is trusted again, whatever it was before.
            if let key = proposal["key"]?.stringValue { context.set(Self.revokedKey(key), nil) }
        case "admit_member", "add_validator":
            context.set(Self.revokedKey(subject), nil)
        default: break
        }
    }

    /// `governance/revoked/<did>`: a key removed or rotated out by governance.
    public static func revokedKey(_ did: String) -> String { "governance/revoked/\(did)" }

    /// The member list and validator set after the change (nil: unchanged); throws when it cannot apply.
    private func apply(_ proposal: [String: JSONValue], members: [(did: String, status: String)], context: ExecutionContext, dryRun: Bool)
        throws(LedgerError) -> ([(did: String, status: String)]?, [String]?)
    {
        let kind = proposal["kind"]!.stringValue!, subject = proposal["subject"]!.stringValue!
        let key = proposal["key"]?.stringValue
        let ctx = context
        let read: (String) throws(LedgerError) -> [UInt8]? = { (k: String) throws(LedgerError) -> [UInt8]? in try ctx.value(forKey: k) }
        var list = members
        let index = list.firstIndex { $0.did == subject }
        switch kind {
        case "admit_member":
            guard index == nil else { throw LedgerError("already_member", "\(subject) is already a member") }
            list.append((subject, "active"))
            return (list, nil)
        case "suspend_member", "reinstate_member", "remove_member", "rotate_member_key":
            guard let i = index else { throw LedgerError("not_a_member", "\(subject) is not a member") }
            switch kind {
            case "suspend_member":
                guard list[i].status == "active" else { throw LedgerError("not_active", "\(subject) is already suspended") }
                list[i].status = "suspended"
            case "reinstate_member":
                guard list[i].status == "suspended" else { throw LedgerError("not_suspended", "\(subject) is not suspended") }
                list[i].status = "active"
            case "remove_member": list.remove(at: i)
            default:
                guard !list.contains(where: { $0.did == key! }) else { throw LedgerError("already_member", "\(key!) is already a member") }
                list[i].did = key!
            }
            guard list.contains(where: { $0.status == "active" }) else {
                throw LedgerError("last_member", "the consortium cannot be left without an active member")
            }
            return (list, nil)
        default:
            var validators = try Self.validators(in: read, initial: initialValidators)
            let v = validators.firstIndex(of: subject)
            switch kind {
            case "add_validator":
                guard v == nil else { throw LedgerError("already_validator", "\(subject) is already a validator") }
                validators.append(subject)
            case "remove_validator":
                guard let v else { throw LedgerError("not_a_validator", "\(subject) is not a validator") }
                guard validators.count > 1 else { throw LedgerError("last_validator", "the last validator cannot be removed") }
                validators.remove(at: v)
            default:
                guard let v else { throw LedgerError("not_a_validator", "\(subject) is not a validator") }
                guard !validators.contains(key!) else { throw LedgerError("already_validator", "\(key!) is already a validator") }
                validators[v] = key!
            }
            return (nil, validators)
        }
    }
}
