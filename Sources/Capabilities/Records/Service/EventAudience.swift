import ContractKit
import Foundation
import LedgerCore
import Node
import RecordsContract
import Standards
import Synchronization

/// Who sees a committed event on the server-sent event streams.
extension RecordsService {
    /// Whether a committed event concerns `did`: her records, her consents (as patient or grantee),
    /// accesses to her data and break-the-glass alerts — for the patient and her delegates; a new
    /// record also for the grantees whose consent covers its type; a break-the-glass alert also for
    /// the reader's organisation and its privacy officers.
    public func concerns(_ event: JSONValue, did: String) -> Bool {
        if event["type"]?.stringValue == "break-glass", let reader = event["reader"]?.stringValue,
            let organisation = (try? principal(reader))??.organisation, (try? isPrivacyOfficer(did, of: organisation)) == true
        {
            return true
        }
        if event["grantee"]?.stringValue == did || event["did"]?.stringValue == did || event["prescriber"]?.stringValue == did { return true }
        guard let patient = event["patient"]?.stringValue else { return false }
        if patient == did { return true }
        guard let grants = try? grants(patient: patient) else { return false }
        let now = Int64(node.now)
        // A delegate: the patient's events, those about a record only within her delegation's types.
        if ConsentPolicy.mayActFor(patient: patient, actor: did, grants: grants, time: now, resourceType: event["resourceType"]?.stringValue) { return true }
        // A new record of a type her consent lets a grantee read (for treatment) is news to the grantee too.
        if event["type"]?.stringValue == "record.written", let type = event["resourceType"]?.stringValue {
            let groups = (try? principal(did))??.groups ?? []
            return ConsentPolicy.evaluate(grants: grants, patient: patient, reader: did, readerGroups: groups, purpose: "treatment", resourceType: type, time: now).permitted
        }
        return false
    }
}
