import App
import Composition
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerTesting
import Node
import Testing
@testable import Server

/// The web app as the node serves it: `/` redirects to `/app/`; every file with its MIME type, an ETag
/// that a revalidation answers with 304, no-cache, and the security headers; the capabilities' pages in
/// the manifest; an unknown file 404 as JSON; JavaScript and CSS within the 150 KB budget.
@Suite struct AppShellTests {
    @Test func theAppIsServedWithItsHeaders() async throws {
        let network = try TestNetwork(contracts: .careLedger, capabilities: HostedCapabilities.careLedger)
        try await network.run { client in
            func security(_ response: TestResponse) {
                #expect(response.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("default-src 'self'") == true)
                #expect(response.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("frame-ancestors 'none'") == true)
                #expect(response.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("unsafe") == false, "no unsafe-inline, no unsafe-eval")
                #expect(response.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
                #expect(response.headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer")
            }
            let root = try await client.execute(uri: "/", method: .get)
            #expect(root.status == .found && root.headers[.location] == "/app/")
            security(root)
            let index = try await client.execute(uri: "/app/", method: .get)
            #expect(index.status == .ok && index.headers[.contentType] == "text/html; charset=utf-8")
            security(index)
            let html = String(buffer: index.body)
            #expect(html.contains(#"<script type="module" src="/app/js/app.js"></script>"#))
            #expect(!html.contains("<script>") && !html.contains("style="), "no inline script or style")
            let etag = try #require(index.headers[.eTag])
            #expect(index.headers[.cacheControl] == "no-cache")
            let again = try await client.execute(uri: "/app/", method: .get, headers: [.ifNoneMatch: etag])
            #expect(again.status == .notModified && again.body.readableBytes == 0)
            let script = try await client.execute(uri: "/app/js/transaction.js", method: .get)
            #expect(script.status == .ok && script.headers[.contentType] == "text/javascript; charset=utf-8")
            #expect(try await client.execute(uri: "/app/app.css", method: .get).headers[.contentType] == "text/css; charset=utf-8")
            let page = try await client.execute(uri: "/app/records/records.js", method: .get)
            #expect(page.status == .ok && page.headers[.contentType] == "text/javascript; charset=utf-8", "a capability's page")
            let missing = try await client.execute(uri: "/app/js/nothing.js", method: .get)
            #expect(missing.status == .notFound && String(buffer: missing.body).contains("not_found"))
            security(missing)
            let manifest = try JSONValue.parse(Array(try await client.execute(uri: "/app/manifest.json", method: .get).body.readableBytesView))
            let ids = (manifest["pages"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
            #expect(ids.first == "ledger" && ids.contains("timeline") && ids.contains("consents") && ids.contains("access-log"))
        }
        #expect(AppAssets.scriptAndStyleBytes + CapabilityWebFiles.bytes <= 150 * 1024, "the app's JavaScript and CSS within 150 KB")
    }
}

/// Every capability's web files (`Sources/Capabilities/*/Service/Web`), counted against the app's budget.
enum CapabilityWebFiles {
    static var bytes: Int {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources/Capabilities").standardizedFileURL
        var total = 0
        for capability in (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? [] {
            let folder = root.appendingPathComponent("\(capability)/Service/Web")
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] {
                total += (try? FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(name).path)[.size] as? Int) ?? 0
            }
        }
        return total
    }
}
