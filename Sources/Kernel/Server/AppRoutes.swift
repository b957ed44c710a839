import App
import HTTPTypes
import Hummingbird
import LedgerCore
import NIOCore

/// The web app under `/app/`: its files with their MIME types, an entity tag each (a request with
/// `If-None-Match` of the current tag gets 304), `Cache-Control: no-cache` (revalidated on every load,
/// so a new release is seen at once), and the security headers of `AppAssets`. `/` redirects to `/app/`. The app talks to the node only through the documented `/v1` and `/fhir` APIs.
enum AppRoutes {
    /// Serves the kernel's files, each capability's (under its own folder) and the manifest of every page.
    static func register(on router: Router<LedgerRequestContext>, capabilities: [any NodeCapability]) {
        let contributions = capabilities.map(\.appContribution)
        var files = AppAssets.all
        for contribution in contributions { files.merge(contribution.files) { kernel, _ in kernel } }
        files["manifest.json"] = AppAssets.manifest(contributions)
        let table = files
        router.get("/") { _, _ in redirect() }
        router.get("/app/") { request, _ in serve(table["index.html"], "index.html", request) }
        router.get("/app/**") { request, context in
            let path = context.parameters.getCatchAll().joined(separator: "/")
            return serve(table[path], path, request)
        }
    }

    static func headers(_ extra: HTTPFields = [:]) -> HTTPFields {
        var fields = extra
        for (name, value) in AppAssets.securityHeaders { fields[HTTPField.Name(name)!] = value }
        return fields
    }

    static func redirect() -> Response {
        Response(status: .found, headers: headers([.location: "/app/", .cacheControl: "no-cache"]))
    }

    static func serve(_ asset: AppAsset?, _ path: String, _ request: Request) -> Response {
        guard let asset else {
            var response = APIError.response(LedgerError("not_found", "the app has no file /app/\(path)"))
            for (name, value) in AppAssets.securityHeaders { response.headers[HTTPField.Name(name)!] = value }
            return response
        }
        var fields = headers([.eTag: asset.etag, .cacheControl: "no-cache"])
        if request.headers[.ifNoneMatch]?.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == asset.etag }) == true {
            return Response(status: .notModified, headers: fields)
        }
        fields[.contentType] = asset.contentType
        return Response(status: .ok, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes)))
    }
}
