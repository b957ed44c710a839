import Foundation
import LedgerCore

/// One file of the web app: its bytes, MIME type and entity tag (a SHA-256 of the bytes).
public struct AppAsset: Sendable {
    public let path: String
    public let bytes: [UInt8]
    public let contentType: String
    public let etag: String
}

/// The web app's files (`Web/`: hand-written HTML, CSS and ES modules, no build step), read once from
/// the target's resources. The node serves them under `/app/` (`Server/AppRoutes.swift`).
public enum AppAssets {
    /// Every file by its path under `Web/` (`index.html`, `js/api.js`, …).
    public static let all: [String: AppAsset] = load()

    /// The headers of every app response: a strict Content-Security-Policy (no inline script or style,
    /// no eval, nothing from elsewhere, never framed), no MIME sniffing, no referrer.
    public static let securityHeaders: [(String, String)] = [
        ("Content-Security-Policy",
         "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; "
            + "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]

    /// The total size of the app's JavaScript and CSS (the budget: 150 KB).
    public static var scriptAndStyleBytes: Int {
        all.values.filter { $0.path.hasSuffix(".js") || $0.path.hasSuffix(".css") }.reduce(0) { $0 + $1.bytes.count }
    }

    static func contentType(_ path: String) -> String {
        switch (path as NSString).pathExtension {
        case "html": return "text/html; charset=utf-8"
        case "js": return "text/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "json": return "application/json"
        case "ico": return "image/x-icon"
        default: return "application/octet-stream"
        }
    }

    static func load() -> [String: AppAsset] {
        guard let root = Bundle.module.resourceURL?.appendingPathComponent("Web") else { return [:] }
        return load(root: root)
    }

    /// Every regular file under `root`, by its path relative to it.
    static func load(root: URL) -> [String: AppAsset] {
        let root = root.standardizedFileURL
        var out: [String: AppAsset] = [:]
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) else { return [:] }
        for case let url as URL in walker {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true, let data = FileManager.default.contents(atPath: url.path) else { continue }
            let path = String(url.standardizedFileURL.path.dropFirst(root.path.count + 1))
            let bytes = Array(data)
            out[path] = AppAsset(path: path, bytes: bytes, contentType: contentType(path), etag: "\"\(Hash.sha256(bytes).hex.prefix(32))\"")
        }
        return out
    }
}

/// A page of the web app, contributed by the kernel or a capability: listed in `/app/manifest.json`,
/// shown in the navigation to the roles named (`*`: everyone, signed in or not; `signed-in`; a principal's
/// role: `patient`, `practitioner`, `organisation`, …; a duty: `privacy-officer`), its module exporting
/// `render(main, context)`.
public struct AppPage: Sendable {
    public let id: String
    public let title: String
    public let roles: [String]
    /// The module's URL path, e.g. `/app/records/records.js`.
    public let module: String
    public let summary: String
    /// The page a principal with these roles lands on after signing in.
    public let home: Bool

    public init(id: String, title: String, roles: [String], module: String, summary: String, home: Bool = false) {
        self.id = id
        self.title = title
        self.roles = roles
        self.module = module
        self.summary = summary
        self.home = home
    }

    public var json: JSONValue {
        .object([
            "id": .string(id), "title": .string(title), "roles": .array(roles.map { .string($0) }), "module": .string(module),
            "summary": .string(summary), "home": .bool(home),
        ])
    }
}

/// What a capability adds to the web app: its pages and the files they load (by path under `/app/`).
public struct AppContribution: Sendable {
    public let pages: [AppPage]
    public let files: [String: AppAsset]

    public init(pages: [AppPage], files: [String: AppAsset]) {
        self.pages = pages
        self.files = files
    }

    public static let none = AppContribution(pages: [], files: [:])

    /// The files of `folder` in `bundle` (a capability's `Bundle.module`), served under `/app/<prefix>/`.
    public static func files(in bundle: Bundle, folder: String = "Web", prefix: String) -> [String: AppAsset] {
        guard let root = bundle.resourceURL?.appendingPathComponent(folder) else { return [:] }
        return AppAssets.load(root: root).reduce(into: [:]) { out, entry in
            let path = "\(prefix)/\(entry.key)"
            out[path] = AppAsset(path: path, bytes: entry.value.bytes, contentType: entry.value.contentType, etag: entry.value.etag)
        }
    }
}

extension AppAssets {
    /// The kernel's own pages: the ledger explorer and receipt check, for everyone.
    public static let kernelPages: [AppPage] = [
        AppPage(id: "ledger", title: "Ledger", roles: ["*"], module: "/app/js/pages/ledger.js",
                summary: "blocks, transactions, checkpoints and finality; check a receipt's proof in your browser"),
        AppPage(id: "freeze", title: "Key theft", roles: ["organisation"], module: "/app/js/pages/freeze.js",
                summary: "freeze a patient's key you suspect stolen, lift the freeze, or give her new device's keys (with a second organisation)"),
    ]

    /// The manifest of every page, kernel's first, then each capability's in the order given.
    public static func manifest(_ contributions: [AppContribution]) -> AppAsset {
        let pages = kernelPages + contributions.flatMap(\.pages)
        let bytes = JSONValue.object(["pages": .array(pages.map(\.json))]).canonicalBytes
        return AppAsset(path: "manifest.json", bytes: bytes, contentType: contentType("manifest.json"), etag: "\"\(Hash.sha256(bytes).hex.prefix(32))\"")
    }
}
