import LedgerCore

/// One finding of FHIR validation, in OperationOutcome terms.
public struct FHIRIssue: Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable { case fatal, error, warning, information }
    public let severity: Severity
    /// The OperationOutcome issue type (http://hl7.org/fhir/issue-type): required, value, invalid, structure, not-supported.
    public let code: String
    public let diagnostics: String
    /// FHIRPath of the element concerned.
    public let expression: String

    public var description: String { "\(severity.rawValue) \(code) at \(expression): \(diagnostics)" }

    public init(severity: Severity, code: String, diagnostics: String, expression: String) {
        self.severity = severity
        self.code = code
        self.diagnostics = diagnostics
        self.expression = expression
    }

    public var json: JSONValue {
        .object([
            "severity": .string(severity.rawValue), "code": .string(code), "diagnostics": .string(diagnostics),
            "expression": .array([.string(expression)]),
        ])
    }
}

/// Structural validation of FHIR R4 (4.0.1) JSON resources, to the depth CareLedger relies on:
/// the resource type, the id, the elements the specification makes mandatory (cardinality 1..)
/// for the supported types, required code values for their status elements, choice elements
/// ([x]), date and instant formats, and every Reference (format and, where the element allows
/// only some types, the target type). Unknown resource types are refused.
public enum FHIRValidator {
    /// The resource types CareLedger stores as records (and the types the FHIR facade reads).
    public static let supported: Set<String> = [
        "Patient", "Observation", "Condition", "MedicationRequest", "MedicationDispense", "DiagnosticReport", "Immunization",
        "AllergyIntolerance", "Encounter", "Procedure", "Consent", "AuditEvent", "Provenance", "CarePlan", "Claim",
        "ExplanationOfBenefit", "ImagingStudy", "Organization", "Practitioner", "Specimen", "Device", "Bundle",
    ]

    /// Mandatory elements per type (R4 cardinality min 1). `x` marks a choice element.
    static let required: [String: [String]] = [
        "Observation": ["status", "code"],
        "Condition": ["subject"],
        "MedicationRequest": ["status", "intent", "medication[x]", "subject"],
        "MedicationDispense": ["status", "medication[x]"],
        "DiagnosticReport": ["status", "code"],
        "Immunization": ["status", "vaccineCode", "patient", "occurrence[x]"],
        "AllergyIntolerance": ["patient"],
        "Encounter": ["status", "class"],
        "Procedure": ["status", "subject"],
        "Consent": ["status", "scope", "category"],
        "AuditEvent": ["type", "recorded", "agent", "source"],
        "Provenance": ["target", "recorded", "agent"],
        "CarePlan": ["status", "intent", "subject"],
        "Claim": ["status", "type", "use", "patient", "created", "provider", "priority", "insurance"],
        "ExplanationOfBenefit": ["status", "type", "use", "patient", "created", "insurer", "provider", "outcome", "insurance"],
        "ImagingStudy": ["status", "subject"],
        "Specimen": [],
        "Device": [],
        "Bundle": ["type"],
    ]

    /// Required value sets of status-like elements.
    static let codes: [String: [String: Set<String>]] = [
        "Observation": ["status": ["registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"]],
        "DiagnosticReport": ["status": ["registered", "partial", "preliminary", "final", "amended", "corrected", "appended", "cancelled", "entered-in-error", "unknown"]],
        "MedicationRequest": [
            "status": ["active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown"],
            "intent": ["proposal", "plan", "order", "original-order", "reflex-order", "filler-order", "instance-order", "option"],
        ],
        "MedicationDispense": ["status": ["preparation", "in-progress", "cancelled", "on-hold", "completed", "entered-in-error", "stopped", "declined", "unknown"]],
        "Immunization": ["status": ["completed", "entered-in-error", "not-done"]],
        "Encounter": ["status": ["planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled", "entered-in-error", "unknown"]],
        "Procedure": ["status": ["preparation", "in-progress", "not-done", "on-hold", "stopped", "completed", "entered-in-error", "unknown"]],
        "Consent": ["status": ["draft", "proposed", "active", "rejected", "inactive", "entered-in-error"]],
        "Patient": ["gender": ["male", "female", "other", "unknown"]],
        "Bundle": ["type": ["document", "message", "transaction", "transaction-response", "batch", "batch-response", "history", "searchset", "collection"]],
    ]

    /// Elements whose Reference may only point at some types.
    static let referenceTargets: [String: [String: Set<String>]] = [
        "Observation": ["subject": ["Patient", "Group", "Device", "Location"]],
        "Condition": ["subject": ["Patient", "Group"]],
        "MedicationRequest": ["subject": ["Patient", "Group"]],
        "MedicationDispense": ["subject": ["Patient", "Group"]],
        "DiagnosticReport": ["subject": ["Patient", "Group", "Device", "Location"]],
        "Immunization": ["patient": ["Patient"]],
        "AllergyIntolerance": ["patient": ["Patient"]],
        "Encounter": ["subject": ["Patient", "Group"]],
        "Procedure": ["subject": ["Patient", "Group"]],
        "Consent": ["patient": ["Patient"]],
        "CarePlan": ["subject": ["Patient", "Group"]],
        "Claim": ["patient": ["Patient"]],
        "ExplanationOfBenefit": ["patient": ["Patient"]],
        "ImagingStudy": ["subject": ["Patient", "Device", "Group"]],
    ]

    static let dateElements: Set<String> = ["birthDate", "recordedDate", "authoredOn", "onsetDateTime", "effectiveDateTime", "occurrenceDateTime", "abatementDateTime", "performedDateTime", "deceasedDateTime", "created", "start", "end", "dateTime"]
    static let instantElements: Set<String> = ["issued", "recorded", "lastUpdated"]

    /// Validates one resource; an empty answer means valid.
    public static func validate(_ resource: JSONValue) -> [FHIRIssue] {
        var issues: [FHIRIssue] = []
        guard let o = resource.objectValue else {
            return [FHIRIssue(severity: .fatal, code: "structure", diagnostics: "a resource is a JSON object", expression: "$this")]
        }
        guard let type = o["resourceType"]?.stringValue else {
            return [FHIRIssue(severity: .fatal, code: "required", diagnostics: "resourceType is missing", expression: "resourceType")]
        }
        guard supported.contains(type) else {
            return [FHIRIssue(severity: .error, code: "not-supported", diagnostics: "resource type \(type) is not supported", expression: "resourceType")]
        }
        if let id = o["id"] {
            if let text = id.stringValue, isID(text) {} else {
                issues.append(FHIRIssue(severity: .error, code: "value", diagnostics: "id must be 1-64 of A-Z a-z 0-9 - .", expression: "\(type).id"))
            }
        }
        for element in required[type] ?? [] {
            if element.hasSuffix("[x]") {
                let stem = String(element.dropLast(3))
                if !o.keys.contains(where: { $0.hasPrefix(stem) && $0.count > stem.count && $0[$0.index($0.startIndex, offsetBy: stem.count)].isUppercase }) {
                    issues.append(FHIRIssue(severity: .error, code: "required", diagnostics: "\(type).\(element) is required (1..1)", expression: "\(type).\(element)"))
                }
            } else if o[element] == nil || o[element] == .null || o[element] == .array([]) {
                issues.append(FHIRIssue(severity: .error, code: "required", diagnostics: "\(type).\(element) is required", expression: "\(type).\(element)"))
            }
        }
        for (element, allowed) in codes[type] ?? [:] {
            guard let v = o[element] else { continue }
            if let code = v.stringValue, allowed.contains(code) { continue }
            issues.append(FHIRIssue(severity: .error, code: "code-invalid", diagnostics: "\(type).\(element) must be one of \(allowed.sorted().joined(separator: ", "))", expression: "\(type).\(element)"))
        }
        for (element, targets) in referenceTargets[type] ?? [:] {
            if let reference = o[element]?["reference"]?.stringValue, let target = referenceType(reference), !targets.contains(target) {
                issues.append(FHIRIssue(severity: .error, code: "invalid", diagnostics: "\(type).\(element) may not refer to a \(target)", expression: "\(type).\(element)"))
            }
        }
        if type == "Bundle" {
            for (i, entry) in (o["entry"]?.arrayValue ?? []).enumerated() {
                if let r = entry["resource"] {
                    for issue in validate(r) {
                        issues.append(FHIRIssue(severity: issue.severity, code: issue.code, diagnostics: issue.diagnostics, expression: "Bundle.entry[\(i)].resource.\(issue.expression)"))
                    }
                }
            }
        }
        walk(resource, path: type, skipBundleResources: type == "Bundle", issues: &issues)
        return issues
    }

    static func isID(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count) && text.utf8.allSatisfy { (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 45 || $0 == 46 }
    }

    /// The type named by a reference, nil for urn:uuid, contained (#) and absolute URLs we cannot type.
    static func referenceType(_ reference: String) -> String? {
        if reference.hasPrefix("urn:") || reference.hasPrefix("#") { return nil }
        let parts = reference.split(separator: "/")
        guard parts.count >= 2 else { return nil }
        if reference.hasPrefix("http://") || reference.hasPrefix("https://") {
            return parts.count >= 4 ? String(parts[parts.count - 2]) : nil
        }
        return String(parts[0])
    }

    static func validReference(_ reference: String) -> Bool {
        if reference.hasPrefix("urn:uuid:") || reference.hasPrefix("urn:oid:") { return reference.count > 9 }
        if reference.hasPrefix("#") { return true }
        if reference.hasPrefix("http://") || reference.hasPrefix("https://") { return !reference.contains(" ") }
        let parts = reference.split(separator: "/", omittingEmptySubsequences: false)
        // Type/id or Type/id/_history/vid, optionally with a search (conditional references are not stored).
        guard parts.count == 2 || (parts.count == 4 && parts[2] == "_history") else { return false }
        guard let first = parts[0].first, first.isUppercase, parts[0].allSatisfy({ $0.isLetter }) else { return false }
        return isID(String(parts[1]))
    }

    static func walk(_ value: JSONValue, path: String, skipBundleResources: Bool, issues: inout [FHIRIssue]) {
        switch value {
        case .object(let o):
            for (key, child) in o {
                if skipBundleResources && key == "resource" { continue }
                let childPath = "\(path).\(key)"
                if key == "reference", let r = child.stringValue, !validReference(r) {
                    issues.append(FHIRIssue(severity: .error, code: "invalid", diagnostics: "reference \(r) is not Type/id, urn:uuid, #contained or a URL", expression: childPath))
                }
                if dateElements.contains(key), let d = child.stringValue, !isDateTime(d) {
                    issues.append(FHIRIssue(severity: .error, code: "value", diagnostics: "\(d) is not a FHIR date/dateTime", expression: childPath))
                }
                if instantElements.contains(key), let d = child.stringValue, !isInstant(d) {
                    issues.append(FHIRIssue(severity: .error, code: "value", diagnostics: "\(d) is not a FHIR instant", expression: childPath))
                }
                if case .string(let s) = child, s.isEmpty {
                    issues.append(FHIRIssue(severity: .error, code: "value", diagnostics: "strings may not be empty", expression: childPath))
                }
                walk(child, path: childPath, skipBundleResources: skipBundleResources && path.hasPrefix("Bundle") && key == "entry", issues: &issues)
            }
        case .array(let a):
            if a.isEmpty { issues.append(FHIRIssue(severity: .error, code: "structure", diagnostics: "arrays may not be empty", expression: path)) }
            for (i, child) in a.enumerated() { walk(child, path: "\(path)[\(i)]", skipBundleResources: skipBundleResources, issues: &issues) }
        default: break
        }
    }

    /// YYYY, YYYY-MM, YYYY-MM-DD, or a dateTime with hh:mm:ss(.sss) and a zone.
    static func isDateTime(_ s: String) -> Bool {
        let c = Array(s.utf8)
        func digits(_ r: Range<Int>) -> Bool { r.upperBound <= c.count && c[r].allSatisfy { (48...57).contains($0) } }
        guard digits(0..<4) else { return false }
        if c.count == 4 { return true }
        guard c.count >= 7, c[4] == 45, digits(5..<7) else { return false }
        if c.count == 7 { return true }
        guard c.count >= 10, c[7] == 45, digits(8..<10) else { return false }
        if c.count == 10 { return true }
        return isInstant(s)
    }

    /// YYYY-MM-DDThh:mm:ss(.sss)(Z|±hh:mm).
    static func isInstant(_ s: String) -> Bool {
        let c = Array(s.utf8)
        func digits(_ r: Range<Int>) -> Bool { r.upperBound <= c.count && c[r].allSatisfy { (48...57).contains($0) } }
        guard c.count >= 20, digits(0..<4), c[4] == 45, digits(5..<7), c[7] == 45, digits(8..<10), c[10] == 84,
            digits(11..<13), c[13] == 58, digits(14..<16), c[16] == 58, digits(17..<19)
        else { return false }
        var i = 19
        if c[i] == 46 {
            i += 1
            let start = i
            while i < c.count, (48...57).contains(c[i]) { i += 1 }
            guard i > start else { return false }
        }
        guard i < c.count else { return false }
        if c[i] == 90 { return i == c.count - 1 }
        guard c[i] == 43 || c[i] == 45, c.count == i + 6, digits(i + 1..<i + 3), c[i + 3] == 58, digits(i + 4..<i + 6) else { return false }
        return true
    }

    /// An OperationOutcome for `issues`.
    public static func operationOutcome(_ issues: [FHIRIssue]) -> JSONValue {
        .object(["resourceType": .string("OperationOutcome"), "issue": .array(issues.map(\.json))])
    }
}
