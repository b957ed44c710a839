import Foundation

/// The small FHIR R4 formats several capabilities write: a patient's reference, an `instant`.
public enum FHIRFormat {
    /// `Patient/<multibase>` for `did:key:<multibase>`: how CareLedger names a patient in FHIR.
    public static func patientReference(_ did: String) -> String { "Patient/" + did.dropFirst("did:key:".count) }

    /// An `instant` (ISO 8601 with milliseconds, UTC) for milliseconds since the Unix epoch.
    public static func instant(_ millis: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }
}
