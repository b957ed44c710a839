import LedgerCore

/// A registered principal as the chain knows it (no personal data: ids, role, keys, affiliation).
public struct Principal: Sendable, Hashable {
    public enum Role: String, Sendable, CaseIterable { case patient, practitioner, organisation, device, careteam }
    public let did: String
    public let role: Role
    /// Raw X25519 public key used to wrap content keys for this principal.
    public let encryptionKey: [UInt8]
    /// The organisation a practitioner, device or care team belongs to.
    public let organisation: String?
    public let name: String?
    /// For a practitioner or device: the care teams it is a member of. For a care team: its members.
    public var careTeams: [String] = []
    public var members: [String] = []
    /// For a care team: practitioners of other organisations it invited, who are members only once
    /// they (or their organisation) join.
    public var invited: [String] = []
    /// For a practitioner: the duties her organisation gave her (`privacy-officer`).
    public var duties: [String] = []
    /// The key that signs for the principal now: her did's own key until her first rotation.
    public var signingKey: String
    /// The height from which her current keys are hers (0 until her first rotation).
    public var keysFrom: Int64 = 0
    /// The freeze on her key (who, when, why), while two organisations hold it frozen.
    public var frozen: JSONValue?

    /// Who the principal acts as part of, for consent: its organisation and its care teams.
    public var groups: [String] { (organisation.map { [$0] } ?? []) + careTeams }

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "did": .string(did), "role": .string(role.rawValue), "encryptionKey": .string(Base64.encode(encryptionKey)),
        ]
        if let organisation { o["organisation"] = .string(organisation) }
        if let name { o["name"] = .string(name) }
        if !careTeams.isEmpty { o["careTeams"] = .array(careTeams.map { .string($0) }) }
        if role == .careteam { o["members"] = .array(members.map { .string($0) }) }
        if !invited.isEmpty { o["invited"] = .array(invited.map { .string($0) }) }
        if !duties.isEmpty { o["duties"] = .array(duties.map { .string($0) }) }
        if signingKey != did { o["signingKey"] = .string(signingKey) }
        if keysFrom > 0 { o["keysFrom"] = .int(keysFrom) }
        if let frozen { o["frozen"] = frozen }
        return .object(o)
    }

    public init(did: String, role: Role, encryptionKey: [UInt8], organisation: String?, name: String?) {
        self.did = did
        self.role = role
        self.encryptionKey = encryptionKey
        self.organisation = organisation
        self.name = name
        signingKey = did
    }

    public init(json: JSONValue) throws(LedgerError) {
        guard let did = json["did"]?.stringValue, let role = json["role"]?.stringValue.flatMap(Role.init(rawValue:)),
            let key = json["encryptionKey"]?.stringValue
        else { throw LedgerError("corrupt_state", "bad principal record") }
        self.init(
            did: did, role: role, encryptionKey: try Base64.decode(key), organisation: json["organisation"]?.stringValue,
            name: json["name"]?.stringValue)
        careTeams = json["careTeams"]?.arrayValue?.compactMap(\.stringValue) ?? []
        members = json["members"]?.arrayValue?.compactMap(\.stringValue) ?? []
        invited = json["invited"]?.arrayValue?.compactMap(\.stringValue) ?? []
        duties = json["duties"]?.arrayValue?.compactMap(\.stringValue) ?? []
        signingKey = json["signingKey"]?.stringValue ?? did
        keysFrom = json["keysFrom"]?.intValue ?? 0
        frozen = json["frozen"].flatMap { $0 == .null ? nil : $0 }
    }

    /// The duties an organisation may give its practitioners.
    public static let knownDuties: Set<String> = ["privacy-officer"]

    public static func key(_ did: String) -> String { "identity/\(did)" }

    /// Reads a principal from state.
    public static func load(_ did: String, from context: ExecutionContext) throws(LedgerError) -> Principal? {
        guard let json = try context.json(forKey: key(did)) else { return nil }
        return try Principal(json: json)
    }
}

/// `identity`: registration of patients, organisations, practitioners and devices, each with an
/// X25519 encryption key published on chain.
///
/// Action `register`, payload `{"role", "encryptionKey": base64 X25519, "subject"?: did, "name"?: string}`:
/// - a patient registers herself (subject omitted), or a registered organisation registers her;
/// - an organisation is registered by a consortium operator (until governance votes arrive);
/// - a practitioner or device is registered (vouched for) by its organisation, the author;
/// - a care team (FHIR CareTeam; a consent grantee like a practitioner) is registered by its organisation,
///   which holds its keys; action `members` `{"team", "add"?: [did], "remove"?: [did]}` by that
///   organisation changes who is in it (registered practitioners, at most 256). A practitioner of
///   another organisation is only invited: she becomes a member when she, or her organisation,
///   accepts with action `join` `{"team", "member"?: did}` (`member`: when her organisation signs);
///   `remove` also withdraws an invitation.
/// - action `duties` `{"subject", "add"?: [duty], "remove"?: [duty]}` by a practitioner's organisation gives or
///   takes a duty (`privacy-officer`: reviews the organisation's break-the-glass accesses).
/// - action `rotate` `{"signingKey": did:key, "encryptionKey", "proof", "reason"?}` by the principal (with her current
///   key) makes new keys hers from this transaction on, her did unchanged (`KeyRotation.swift`, `Signers`); `proof` is the
///   new key's signature of `rotationMessage`. With `subject`, by two organisations for a frozen patient seen in person.
/// - actions `freeze` / `unfreeze` `{"subject", "reason"?}`: an organisation proposes, a second one confirms; a frozen
///   key signs nothing and receives no new wrapped key until a rotation (or the lifting).
public struct IdentityContract: Contract {
    public let name = "identity"
    public let actions = ["register", "members", "duties", "join", "rotate", "freeze", "unfreeze"]
    /// Keys allowed to admit organisations.
    public let operators: OperatorSet

    public init(operators: Set<String>) { self.operators = OperatorSet(operators) }

    static let fields: Set<String> = ["role", "encryptionKey", "subject", "name"]

    public func validate(action: String, payload: JSONValue) throws(LedgerError) {
        if ["rotate", "freeze", "unfreeze"].contains(action) { return try validateKeyAction(action, payload) }
        if action == "duties" {
            let p = try Payload(payload, allowed: ["subject", "add", "remove"])
            _ = try p.did("subject")
            let changes = try p.optionalStrings("add") + p.optionalStrings("remove")
            guard !changes.isEmpty, changes.allSatisfy(Principal.knownDuties.contains) else {
                throw LedgerError("bad_payload", "add or remove duties among \(Principal.knownDuties.sorted().joined(separator: ", "))")
            }
            return
        }
        if action == "join" {
            let p = try Payload(payload, allowed: ["team", "member"])
            _ = try p.did("team")
            _ = try p.optionalDID("member")
            return
        }
        if action == "members" {
            let p = try Payload(payload, allowed: ["team", "add", "remove"])
            _ = try p.did("team")
            for did in try p.optionalStrings("add") + p.optionalStrings("remove") { _ = try PublicKey(did: did) }
            return
        }
        let p = try Payload(payload, allowed: Self.fields)
        guard Principal.Role(rawValue: try p.string("role")) != nil else {
            throw LedgerError("bad_payload", "role must be patient, practitioner, organisation, device or careteam")
        }
        guard try Base64.decode(try p.string("encryptionKey"), field: "encryptionKey").count == 32 else {
            throw LedgerError("bad_payload", "encryptionKey must be a base64 32-byte X25519 public key")
        }
        _ = try p.optionalDID("subject")
        _ = try p.optionalString("name", maxLength: 128)
    }

    public func execute(action: String, payload: JSONValue, context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        if action == "members" { return try members(payload, &context) }
        if action == "duties" { return try duties(payload, &context) }
        if action == "join" { return try join(payload, &context) }
        if ["rotate", "freeze", "unfreeze"].contains(action) { return try executeKeyAction(action, payload, &context) }
        let p = try Payload(payload, allowed: Self.fields)
        let role = Principal.Role(rawValue: try p.string("role"))!
        let subject = try p.optionalDID("subject") ?? context.author
        let author = context.author
        var organisation: String?
        switch role {
        case .patient:
            if subject != author {
                guard try Principal.load(author, from: context)?.role == .organisation else {
                    throw LedgerError("forbidden", "only the patient herself or a registered organisation registers a patient")
                }
            }
        case .organisation:
            guard try operators.contains(author, in: context) else { throw LedgerError("forbidden", "organisations are admitted by a consortium operator") }
            guard try p.optionalString("name", maxLength: 128) != nil else { throw LedgerError("bad_payload", "an organisation needs a name") }
        case .careteam:
            guard try Principal.load(author, from: context)?.role == .organisation else {
                throw LedgerError("forbidden", "a care team is registered by its organisation")
            }
            guard subject != author else { throw LedgerError("bad_payload", "subject must be the care team's did") }
            guard try p.optionalString("name", maxLength: 128) != nil else { throw LedgerError("bad_payload", "a care team needs a name") }
            organisation = author
        case .practitioner, .device:
            guard try Principal.load(author, from: context)?.role == .organisation else {
                throw LedgerError("forbidden", "a \(role.rawValue) is registered by its organisation")
            }
            guard subject != author else { throw LedgerError("bad_payload", "subject must be the \(role.rawValue)'s did") }
            organisation = author
        }
        if try Principal.load(subject, from: context) != nil {
            throw LedgerError("already_registered", "\(subject) is already registered")
        }
        if try context.value(forKey: Signers.key(subject)) != nil {
            throw LedgerError("key_in_use", "\(subject) is, or was, another principal's signing key")
        }
        let principal = Principal(
            did: subject, role: role, encryptionKey: try Base64.decode(try p.string("encryptionKey")), organisation: organisation,
            name: role == .organisation || role == .careteam ? try p.optionalString("name", maxLength: 128) : nil)
        var record = principal.json.objectValue!
        record["registeredBy"] = .string(author)
        record["height"] = .int(Int64(context.height))
        context.set(Principal.key(subject), .object(record))
        context.emit(.object(["type": .string("identity.registered"), "did": .string(subject), "role": .string(role.rawValue)]))
        return .object(record)
    }

    /// Adds and removes care team members; each member's principal lists its teams (consent reads it).
    func members(_ payload: JSONValue, _ context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        let p = try Payload(payload, allowed: ["team", "add", "remove"])
        let teamDID = try p.did("team")
        var team = try Self.managed(teamDID, role: .careteam, by: context, what: "care team", change: "members are managed")
        for did in try p.optionalStrings("add") where !team.members.contains(did) {
            guard var member = try Principal.load(did, from: context), member.role == .practitioner else {
                throw LedgerError("unknown_principal", "\(did) is not a registered practitioner")
            }
            // Another organisation's practitioner joins only with her own or her organisation's consent.
            guard member.organisation == team.organisation else {
                if !team.invited.contains(did) { team.invited.append(did) }
                continue
            }
            team.members.append(did)
            member.careTeams.append(teamDID)
            try Self.save(member, &context)
        }
        for did in try p.optionalStrings("remove") {
            team.invited.removeAll { $0 == did }
            guard team.members.contains(did) else { continue }
            team.members.removeAll { $0 == did }
            if var member = try Principal.load(did, from: context) {
                member.careTeams.removeAll { $0 == teamDID }
                try Self.save(member, &context)
            }
        }
        guard team.members.count + team.invited.count <= 256 else {
            throw LedgerError("bad_payload", "a care team has at most 256 members and invitations")
        }
        try Self.save(team, &context)
        context.emit(.object(["type": .string("identity.careteam"), "did": .string(teamDID), "members": .array(team.members.map { .string($0) })]))
        return team.json
    }

    /// An invited practitioner joins a care team of another organisation: she signs, or her organisation does.
    func join(_ payload: JSONValue, _ context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        let p = try Payload(payload, allowed: ["team", "member"])
        let teamDID = try p.did("team")
        let did = try p.optionalDID("member") ?? context.author
        guard var team = try Principal.load(teamDID, from: context), team.role == .careteam else {
            throw LedgerError("not_found", "\(teamDID) is not a registered care team")
        }
        guard var member = try Principal.load(did, from: context), member.role == .practitioner else {
            throw LedgerError("unknown_principal", "\(did) is not a registered practitioner")
        }
        guard context.author == did || context.author == member.organisation else {
            throw LedgerError("forbidden", "a practitioner joins a care team herself or through her organisation")
        }
        guard team.invited.contains(did) else { throw LedgerError("not_invited", "\(did) is not invited to \(teamDID)") }
        team.invited.removeAll { $0 == did }
        team.members.append(did)
        member.careTeams.append(teamDID)
        try Self.save(member, &context)
        try Self.save(team, &context)
        context.emit(.object(["type": .string("identity.careteam"), "did": .string(teamDID), "members": .array(team.members.map { .string($0) })]))
        return team.json
    }

    /// Gives or takes a practitioner's duties; only her organisation does.
    func duties(_ payload: JSONValue, _ context: inout ExecutionContext) throws(LedgerError) -> JSONValue {
        let p = try Payload(payload, allowed: ["subject", "add", "remove"])
        let subject = try p.did("subject")
        var principal = try Self.managed(subject, role: .practitioner, by: context, what: "practitioner", change: "duties are given")
        for duty in try p.optionalStrings("add") where !principal.duties.contains(duty) { principal.duties.append(duty) }
        let removed = Set(try p.optionalStrings("remove"))
        principal.duties.removeAll { removed.contains($0) }
        principal.duties.sort()
        try Self.save(principal, &context)
        context.emit(.object(["type": .string("identity.duties"), "did": .string(subject), "duties": .array(principal.duties.map { .string($0) })]))
        return principal.json
    }

    /// A principal of `role` that the author's organisation manages (it registered it), or the error.
    static func managed(_ did: String, role: Principal.Role, by context: ExecutionContext, what: String, change: String) throws(LedgerError) -> Principal {
        guard let principal = try Principal.load(did, from: context), principal.role == role else {
            throw LedgerError("not_found", "\(did) is not a registered \(what)")
        }
        guard principal.organisation == context.author else { throw LedgerError("forbidden", "a \(what)'s \(change) by its organisation") }
        return principal
    }

    /// Rewrites a principal, keeping who registered it and when.
    static func save(_ principal: Principal, _ context: inout ExecutionContext) throws(LedgerError) {
        var record = try context.json(forKey: Principal.key(principal.did))?.objectValue ?? [:]
        for (k, v) in principal.json.objectValue! { record[k] = v }
        if principal.careTeams.isEmpty { record["careTeams"] = nil }
        if principal.invited.isEmpty { record["invited"] = nil }
        if principal.duties.isEmpty { record["duties"] = nil }
        context.set(Principal.key(principal.did), .object(record))
    }
}
