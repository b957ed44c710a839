import Foundation
import LedgerCore
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The checkout's root (README.md, docs/, CHANGELOG.md).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A log's lines above info (warning, error, critical): a normal start and stop has none.
func loudLines(_ log: String) -> [Substring] {
    log.split(separator: "\n").filter { $0.contains(" warning ") || $0.contains(" error ") || $0.contains(" critical ") }
}

/// Runs the real `careledger` binary built next to the test bundle.
enum CLI {
    static let binary: String = {
        if let override = ProcessInfo.processInfo.environment["CARELEDGER_BIN"] { return override }
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = testBinary.deletingLastPathComponent()
        // swift-testing runs the .xctest bundle binary; the executable sits beside the bundle.
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("careledger").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return repositoryRoot.appendingPathComponent(".build/debug/careledger").path
    }()

    /// The binaries the signal tests run: this build's, and the release build's when the test command
    /// built one (`CARELEDGER_RELEASE_BIN`, set by `scripts/test`), since the optimiser changes what a
    /// process does with its signal handlers.
    static let builds: [String] = [binary] + (ProcessInfo.processInfo.environment["CARELEDGER_RELEASE_BIN"].map { [$0] } ?? [])

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static func run(_ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }
}

extension CLI {
    /// The did of a key file, as `careledger key show` prints it.
    static func did(keyFile: String) throws -> String {
        try run(["key", "show", "--key", keyFile]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `careledger tx submit` of a notary record, with `--wait --json` when `wait`.
    static func notarize(node: String, key: String, hash: String, label: String, wait: Bool = false) throws -> Result {
        try run(
            ["tx", "submit", "--node", node, "--key", key, "--contract", "notary", "--action", "record", "--payload", #"{"hash":"\#(hash)","label":"\#(label)"}"#]
                + (wait ? ["--wait", "--json"] : []))
    }

    /// The walk-through's first step through the CLI: alice timestamps the SHA-256 of "discharge letter"
    /// (committed); dr-bob's copy of the same hash is refused by the contract (exit 2, one stderr line
    /// naming `already_notarized`). Answers the hash and alice's transaction id.
    static func notarizeDischargeLetter(node: String, keys: String) throws -> (hash: String, id: String) {
        let hash = Hash.sha256(Array("discharge letter".utf8)).hex
        let submitted = try notarize(node: node, key: "\(keys)/alice.key", hash: hash, label: "discharge letter", wait: true)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let receipt = try JSONValue.parse(submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(receipt["status"] == .string("committed"))
        let id = try #require(receipt["id"]?.stringValue)
        let again = try notarize(node: node, key: "\(keys)/dr-bob.key", hash: hash, label: "copy")
        #expect(again.status == 2)
        #expect(again.stderr.contains("already_notarized"))
        #expect(again.stderr.split(separator: "\n").count == 1)
        return (hash, id)
    }
}

/// A `careledger` process started for a test; `start` returns once its output shows it is ready.
class CLIProcess: @unchecked Sendable {
    let process = Process()
    let output = Pipe()
    /// Where its standard error goes: the null device unless a test reads the log (`captureLog()` before `start`).
    private(set) var log: Pipe?

    func captureLog() { log = Pipe() }

    /// Runs `careledger arguments` and reads its standard output until `ready` finds what it waits for
    /// (at most 120 s); answers that, or throws with what was printed.
    func start<T>(_ arguments: [String], binary: String = CLI.binary, ready: (String) -> T?) throws -> T {
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = output
        if let log { process.standardError = log } else { process.standardError = FileHandle.nullDevice }
        try process.run()
        var buffer = ""
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffer += String(decoding: chunk, as: UTF8.self)
            if let found = ready(buffer) { return found }
        }
        stop(signal: SIGKILL)
        throw LedgerError("did_not_start", "careledger \(arguments.first ?? "") did not get ready: \(buffer)")
    }

    func stop(signal: Int32 = SIGTERM) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
    }
}

/// A node process on a free loopback port; always stopped by `stop()` or deinit.
final class NodeProcess: CLIProcess, @unchecked Sendable {
    let data: String
    private(set) var url = ""
    /// What the node printed up to its banner's last line.
    private(set) var banner = ""

    init(data: String, command: String = "up", extra: [String] = [], captureLog: Bool = false, binary: String = CLI.binary) throws {
        self.data = data
        super.init()
        if captureLog { self.captureLog() }
        // Ready at the banner's end, which follows the line with the API address.
        (url, banner) = try start([command, "--data", data, "--http", "127.0.0.1:0"] + extra, binary: binary) { buffer in
            guard buffer.contains("Stop with Ctrl-C.") else { return nil }
            return buffer.split(separator: "\n").first(where: { $0.hasPrefix("API:") })?.split(separator: " ").first(where: { $0.hasPrefix("http://") })
                .map { (String($0), buffer) }
        }
    }

    /// The banner's value for `label` (e.g. "Checkpoint key:").
    func bannerValue(_ label: String) -> String? {
        banner.split(separator: "\n").first(where: { $0.hasPrefix(label) }).map { $0.dropFirst(label.count).trimmingCharacters(in: .whitespaces) }
    }

    /// Sends `signal` and answers the exit status.
    func stopAndWait(signal: Int32) -> Int32 {
        stop(signal: signal)
        return process.terminationStatus
    }

    deinit { stop(signal: SIGKILL) }
}

/// A tiny blocking HTTP client for tests.
enum HTTP {
    struct Response {
        let status: Int
        let body: [UInt8]
        var json: JSONValue { (try? JSONValue.parse(body)) ?? .null }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    static func request(_ method: String, _ url: String, body: [UInt8]? = nil, timeout: TimeInterval = 60) async throws -> Response {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.timeoutInterval = timeout
        if let body {
            request.httpBody = Data(body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        return Response(status: (response as! HTTPURLResponse).statusCode, body: Array(data))
    }
}

func temporaryPath(_ name: String) -> String {
    NSTemporaryDirectory() + "careledger-e2e-\(name)-\(UUID().uuidString)"
}
