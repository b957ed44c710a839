import ContractKit
import Foundation
import LedgerCore
import Node
import RecordsContract
import Standards
import Synchronization

/// The access log: every read recorded on chain (denied ones aggregated after the first few), and what a patient and a privacy officer see of it.
extension RecordsService {
    /// Records an access event and waits for its commit.
    /// `refusal`: a denial by consent (counted against the reader, see `DeniedReads`), as opposed to a
    /// permitted read that released nothing.
    func recordAccess(
        patient: String, reader: String, records: [String], purpose: String, permitted: Bool, reason: String, extra: [String: JSONValue] = [:],
        refusal: Bool = true
    ) async throws {
        if !permitted, refusal, reader != patient {
            let (admission, closed) = deniedReads.admit(reader: reader, patient: patient, purpose: purpose, now: Int64(node.now))
            if let closed { try await recordDeniedAggregate(closed) }
            if case .suppress(let wait) = admission {
                throw LedgerError(
                    "too_many_denied",
                    "\(deniedReads.recorded) reads of this patient's data were denied in \(deniedReads.windowMillis / 60_000) minutes: retry in \(wait) s")
            }
        }
        var payload: [String: JSONValue] = [
            "patient": .string(patient), "reader": .string(reader), "records": .array(records.map { .string($0) }),
            "purpose": .string(purpose), "outcome": .string(permitted ? "permit" : "deny"), "reason": .string(reason),
        ]
        for (k, v) in extra { payload[k] = v }
        let receipt = try await node.submitAsNode(contract: "audit", action: "access", payload: .object(payload))
        guard receipt.status == .committed else {
            throw LedgerError("audit_failed", "the access event was not recorded: \(receipt.errorCode ?? "")")
        }
    }

    /// Records the aggregate of a closed window of denied reads: one access event with their count and
    /// the times of the first and last.
    func recordDeniedAggregate(_ closed: (reader: String, patient: String, DeniedReads.Window)) async throws {
        let w = closed.2
        let payload: JSONValue = .object([
            "patient": .string(closed.patient), "reader": .string(closed.reader), "records": .array([]), "purpose": .string(w.purpose),
            "outcome": .string("deny"), "reason": .string("\(w.suppressed) further denied attempts, refused without an event of their own"),
            "aggregated": .object(["count": .int(Int64(w.suppressed)), "from": .int(w.first), "to": .int(w.last)]),
        ])
        let receipt = try await node.submitAsNode(contract: "audit", action: "access", payload: payload)
        guard receipt.status == .committed else { throw LedgerError("audit_failed", "the access event was not recorded: \(receipt.errorCode ?? "")") }
    }

    /// Records the aggregates of every window of denied reads closed by now (run periodically).
    public func flushDeniedReads() async {
        for closed in deniedReads.closed(by: Int64(node.now)) {
            do {
                try await recordDeniedAggregate(closed)
            } catch {
                node.logger.error("denied reads aggregate not recorded", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Every access event about the patient's data (the patient or her delegate only).
    public func accessLog(patient: String, requesterDID: String) throws(LedgerError) -> [JSONValue] {
        guard ConsentPolicy.mayActFor(patient: patient, actor: requesterDID, grants: try grants(patient: patient), time: Int64(node.now)) else {
            throw LedgerError("forbidden", "only the patient or her delegate reads her access log")
        }
        let count = try json(AuditContract.countKey(patient: patient))?["count"]?.intValue ?? 0
        var events: [JSONValue] = []
        for i in 0..<count {
            if let e = try json(AuditContract.eventKey(patient: patient, index: i)) { events.append(e) }
        }
        // What happened to her keys (rotations, freezes and their lifting), in time order with the accesses.
        let keyEvents = (try json(Principal.key(patient))?["keyEvents"]?.arrayValue ?? []).compactMap { e -> JSONValue? in
            guard var o = e.objectValue else { return nil }
            o["kind"] = .string("key")
            return .object(o)
        }
        guard !keyEvents.isEmpty else { return events }
        return (events + keyEvents).enumerated().sorted { a, b in
            let (ta, tb) = (a.element["time"]?.intValue ?? 0, b.element["time"]?.intValue ?? 0)
            return ta != tb ? ta < tb : a.offset < b.offset
        }.map(\.element)
    }

    /// The HIPAA-style accounting of disclosures (45 CFR 164.528): every access that released her
    /// data — date, recipient (with role and organisation), purpose, what (record ids and types),
    /// break-the-glass and its reason — newest first. Refused attempts are in the access log, not here.
    public func disclosures(patient: String, requesterDID: String) throws(LedgerError) -> [JSONValue] {
        let events = try accessLog(patient: patient, requesterDID: requesterDID)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var out: [JSONValue] = []
        // A permitted access that released no record (an empty timeline) disclosed nothing, her own reads
        // are not disclosures, and neither are reads of metadata only.
        for e in events.reversed()
        where e["outcome"]?.stringValue == "permit" && e["records"]?.arrayValue?.isEmpty == false && e["reader"]?.stringValue != patient
            && e["scope"]?.stringValue != "metadata"
        {
            guard let readerDID = e["reader"]?.stringValue else { continue }
            let reader = try principal(readerDID)
            var recipient: [String: JSONValue] = ["did": .string(readerDID), "role": reader.map { .string($0.role.rawValue) } ?? .null]
            if let org = reader?.organisation {
                recipient["organisation"] = .string(org)
                recipient["organisationName"] = (try principal(org))?.name.map { .string($0) } ?? .null
            }
            var what: [JSONValue] = []
            for id in (e["records"]?.arrayValue ?? []).compactMap(\.stringValue) {
                what.append(.object(["recordId": .string(id), "resourceType": (try record(id)).map { .string($0.resourceType) } ?? .null]))
            }
            let time = e["time"]?.intValue ?? 0
            var item: [String: JSONValue] = [
                "date": .string(formatter.string(from: Date(timeIntervalSince1970: Double(time) / 1000))), "time": .int(time),
                "recipient": .object(recipient), "purpose": e["purpose"] ?? .null, "what": .array(what),
                "height": e["height"] ?? .null, "index": e["index"] ?? .null, "recordedBy": e["recordedBy"] ?? .null,
            ]
            if e["breakGlass"]?.boolValue == true {
                item["breakGlass"] = .bool(true)
                item["reason"] = e["reason"] ?? .null
                // Where its review stands: pending, justified or unjustified.
                if let index = (e["reviewIndex"] ?? e["index"])?.intValue {
                    item["review"] = (try json(AuditContract.reviewKey(patient: patient, index: index)))?["status"] ?? .null
                }
            }
            out.append(.object(item))
        }
        return out
    }

    /// The break-the-glass accesses by `organisation`'s people, for its privacy officers to review:
    /// patient, access index, reader, reason, records, when, and the review status (pending first).
    public func breakGlassReviews(organisation: String, requesterDID: String, pendingOnly: Bool) throws -> [JSONValue] {
        guard try isPrivacyOfficer(requesterDID, of: organisation) else {
            throw LedgerError("forbidden", "break-the-glass reviews are for the organisation and its privacy officers")
        }
        var out: [JSONValue] = []
        for key in try node.store.stateKeys(prefix: "audit/review/", limit: 100_000) {
            guard let review = try json(key), let reader = review["reader"]?.stringValue,
                try principal(reader)?.organisation == organisation
            else { continue }
            let status = review["status"]?.stringValue ?? "pending"
            if pendingOnly && status != "pending" { continue }
            // audit/review/<patient>/<index>
            let parts = key.split(separator: "/").map(String.init)
            guard parts.count == 4, let index = Int64(parts[3]) else { continue }
            let event = try json(AuditContract.eventKey(patient: parts[2], index: index))
            var o: [String: JSONValue] = [
                "patient": .string(parts[2]), "index": .int(index), "reader": .string(reader), "status": .string(status),
                "reason": event?["reason"] ?? .null, "records": event?["records"] ?? .array([]), "time": event?["time"] ?? .null,
                "until": event?["until"] ?? .null,
            ]
            if status != "pending" {
                o["reviewedBy"] = review["reviewedBy"] ?? .null
                o["note"] = review["note"] ?? .null
            }
            out.append(.object(o))
        }
        return out.sorted { ($0["status"] == .string("pending") ? 0 : 1, $0["time"]?.intValue ?? 0) < ($1["status"] == .string("pending") ? 0 : 1, $1["time"]?.intValue ?? 0) }
    }
}

extension RecordsService {
    /// A practitioner's patients: those with a consent in force that lets her (or one of her groups:
    /// her organisation, her care teams) treat them; for the practitioner herself only.
    public func patients(of practitioner: String, requesterDID: String) throws -> [JSONValue] {
        guard requesterDID == practitioner else { throw LedgerError("forbidden", "a practitioner lists her own patients") }
        guard let principal = try principal(practitioner) else { throw LedgerError("unknown_principal", "\(practitioner) is not registered") }
        let actors = Set([practitioner] + principal.groups)
        let now = Int64(node.now)
        var out: [JSONValue] = []
        for key in try node.store.stateKeys(prefix: "consent/did:", limit: 1_000_000) where key.split(separator: "/").count == 2 {
            let patient = String(key.dropFirst("consent/".count))
            let covering = try grants(patient: patient).filter { g in
                g.permit && g.active && actors.contains(g.grantee) && g.purposes.contains("treatment")
                    && (g.start ?? 0) <= now && (g.end.map { $0 > now } ?? true)
            }
            guard !covering.isEmpty else { continue }
            out.append(.object([
                "patient": .string(patient),
                "grants": .array(covering.map { g in
                    .object([
                        "id": .string(g.id), "grantee": .string(g.grantee), "resourceTypes": .array(g.resourceTypes.map { .string($0) }),
                        "categories": .array(g.categories.map { .string($0) }), "end": g.end.map { .int($0) } ?? .null,
                    ])
                }),
            ]))
        }
        return out
    }
}

extension RecordsService {
    /// The record versions waiting for `practitioner`'s endorsement (she is a required party and has not
    /// endorsed yet; e.g. the ordering practitioner of a lab's DiagnosticReport); for herself only.
    public func pendingEndorsements(of practitioner: String, requesterDID: String) throws -> [JSONValue] {
        guard requesterDID == practitioner else { throw LedgerError("forbidden", "a practitioner lists her own endorsements") }
        var out: [JSONValue] = []
        for key in try node.store.stateKeys(prefix: "records/", limit: 1_000_000) {
            let id = key.dropFirst("records/".count)
            guard !id.contains("/"), let entry = try record(String(id)), entry.erasedAtHeight == nil else { continue }
            for version in entry.versions where version.status == .pending && version.required.contains(practitioner) && !version.endorsements.contains(practitioner) {
                out.append(.object([
                    "recordId": .string(entry.id), "version": .int(version.version), "resourceType": .string(entry.resourceType),
                    "patient": .string(entry.patient), "author": .string(version.author), "time": .int(version.time),
                    "endorsements": .array(version.endorsements.map { .string($0) }), "required": .array(version.required.map { .string($0) }),
                ]))
            }
        }
        return out
    }
}
