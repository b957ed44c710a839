import Hummingbird
import LedgerCore
import Standards
import Synchronization

/// Methods a path is not served with, and what no route answers. The methods of a path are those of
/// the most specific route template matching it (a literal segment before a parameter, as the router
/// and OpenAPI choose): any other method is answered 405 with `Allow` naming them (RFC 9110 §15.5.6)
/// before routing, so that `POST /fhir/metadata` is refused rather than taken for a create of type
/// "metadata". A method served only to refuse it (DELETE of a FHIR record) reaches its handler, which
/// explains why, and gets `Allow` here. A path no template matches: 404 — under `/fhir` an
/// OperationOutcome, elsewhere the router's own answer.
struct Unrouted: RouterMiddleware {
    typealias Context = LedgerRequestContext

    struct Template: Sendable {
        let segments: [Substring]
        var allowed: Set<String> = []
        var refused: Set<String> = []
    }

    /// The route table, filled once every route is registered (the middleware is added first, so that
    /// it wraps every route).
    final class Table: Sendable {
        private let templates = Mutex<[Template]>([])
        var all: [Template] { templates.withLock { $0 } }

        /// `served`: every route of the router (method, path with `{name}` parameters and a final `**`);
        /// `refused`: the (METHOD, OpenAPI path) of those served only to refuse.
        func fill(served: [(method: String, path: String)], refused: Set<String>) {
            let made = Unrouted.templates(served: served, refused: refused)
            templates.withLock { $0 = made }
        }
    }

    let table: Table

    static func templates(served: [(method: String, path: String)], refused: Set<String>) -> [Template] {
        var byPath: [String: Template] = [:]
        for route in served {
            let method = route.method.uppercased()
            var template = byPath[route.path] ?? Template(segments: route.path.split(separator: "/", omittingEmptySubsequences: true))
            if refused.contains("\(method) \(route.path.replacingOccurrences(of: "/**", with: "/{key}"))") {
                template.refused.insert(method)
            } else {
                template.allowed.insert(method)
            }
            byPath[route.path] = template
        }
        return Array(byPath.values)
    }

    /// How a template matches `parts`: nil if not, else per segment 2 for a literal, 1 for a parameter,
    /// 0 for the rest (`**`), compared in order to choose the most specific.
    static func match(_ pattern: [Substring], _ parts: [Substring]) -> [Int]? {
        var score: [Int] = []
        for (i, segment) in pattern.enumerated() {
            if segment == "**" { return parts.count > i ? score + [0] : nil }
            guard i < parts.count else { return nil }
            if segment.hasPrefix(":") || (segment.hasPrefix("{") && segment.hasSuffix("}")) {
                score.append(1)
            } else {
                guard segment == parts[i] else { return nil }
                score.append(2)
            }
        }
        return pattern.count == parts.count ? score : nil
    }

    /// The most specific template serving `path`.
    func template(for path: String) -> Template? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        var best: (Template, [Int])?
        for template in table.all {
            guard let score = Self.match(template.segments, parts) else { continue }
            if best.map({ $0.1.lexicographicallyPrecedes(score) }) ?? true { best = (template, score) }
        }
        return best?.0
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let fhir = path == "/fhir" || path.hasPrefix("/fhir/")
        if let template = template(for: path), !template.allowed.isEmpty {
            let method = request.method.rawValue
            let allow = template.allowed.sorted().joined(separator: ", ")
            if !template.allowed.contains(method) && !template.refused.contains(method) {
                let message = "\(method) is not served at this path; it serves \(allow)"
                var response =
                    fhir
                    ? FHIRHost.respond(
                        FHIRValidator.operationOutcome([FHIRIssue(severity: .error, code: "not-supported", diagnostics: "method_not_allowed: \(message)", expression: "$this")]),
                        status: .methodNotAllowed)
                    : JSONResponse.make(APIError.body(LedgerError("method_not_allowed", message)), status: .methodNotAllowed)
                response.headers[.allow] = allow
                return response
            }
            var response = try await next(request, context)
            if response.status == .methodNotAllowed { response.headers[.allow] = allow }
            return response
        }
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && fhir {
            let issue = FHIRIssue(
                severity: .error, code: "not-supported",
                diagnostics: "not_supported: \(request.method.rawValue) \(path) is not an interaction this server supports (see /fhir/metadata)",
                expression: "$this")
            return FHIRHost.respond(FHIRValidator.operationOutcome([issue]), status: .notFound)
        }
    }
}
