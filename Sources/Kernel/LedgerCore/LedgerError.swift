/// The one error type of the ledger: a stable snake_case `code` (what the API puts in
/// `{"error":{"code":…}}` and the CLI prints) and a human `message`. Equality compares the code only,
/// so tests assert the code (modelled on swift-certificates' `CertificateError`).
public struct LedgerError: Error, Hashable, Sendable, CustomStringConvertible {
    public let code: String
    public let message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public static func == (lhs: LedgerError, rhs: LedgerError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String { "\(code): \(message)" }

    /// A value to compare against in tests and `catch` clauses: `error == .code("bad_signature")`.
    public static func code(_ code: String) -> LedgerError { LedgerError(code, "") }
}
