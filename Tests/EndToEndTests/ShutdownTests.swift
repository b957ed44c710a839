import Foundation
import LedgerCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A node stops within seconds of SIGINT or SIGTERM with event-stream clients connected or gone,
/// and a normal stop logs nothing above info.
@Suite(.serialized) struct ShutdownTests {
    /// An open `GET /v1/events` over a plain socket, read until the stream's first comment line.
    final class EventStream {
        let connection: RawConnection

        init(url: String, token: String) throws {
            connection = try RawConnection(url: url)
            connection.send("GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nAccept: text/event-stream\r\n\r\n")
            var received = ""
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !received.contains(": careledger events for") {
                let n = recv(connection.fd, &buffer, buffer.count, 0)
                guard n > 0 else { throw LedgerError("stream_failed", "the event stream did not open: \(received)") }
                received += String(decoding: buffer[..<n], as: UTF8.self)
            }
        }

        func close() { connection.close() }
    }

    /// Starts `careledger up` (of `binary`), opens an event stream as alice, and answers the node and the stream.
    func nodeWithAStream(_ name: String, binary: String) async throws -> (NodeProcess, EventStream) {
        let data = temporaryPath(name)
        let node = try NodeProcess(data: data, captureLog: true, binary: binary)
        let auth = try CLI.run(["auth", "token", "--node", node.url, "--key", data + "/keys/alice.key", "--json"])
        let token = try #require(try JSONValue.parse(auth.stdout)["token"]?.stringValue)
        return (node, try EventStream(url: node.url, token: token))
    }

    /// Sends `signal` and answers how long the node took to exit (at most `limit`, then it is killed) and its log.
    func stop(_ node: NodeProcess, _ signal: Int32, limit: Double = 10) -> (seconds: Double, status: Int32, log: String) {
        let start = Date()
        kill(node.process.processIdentifier, signal)
        while node.process.isRunning, Date().timeIntervalSince(start) < limit { usleep(20_000) }
        let seconds = Date().timeIntervalSince(start)
        if node.process.isRunning { node.stop(signal: SIGKILL) }
        node.process.waitUntilExit()
        let log = node.log.map { String(decoding: $0.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) } ?? ""
        return (seconds, node.process.terminationStatus, log)
    }

    @Test(arguments: CLI.builds, [SIGTERM, SIGINT]) func aNodeWithAConnectedStreamStops(binary: String, signal: Int32) async throws {
        let (node, stream) = try await nodeWithAStream("shutdown-connected-\(signal)", binary: binary)
        defer { stream.close() }
        let stopped = stop(node, signal)
        #expect(stopped.seconds < 10, "stopped in \(stopped.seconds) s")
        #expect(stopped.status == 0)
        #expect(loudLines(stopped.log).isEmpty, "\(loudLines(stopped.log))")
    }

    @Test(arguments: CLI.builds) func aNodeWhoseStreamClientLeftStops(binary: String) async throws {
        let (node, stream) = try await nodeWithAStream("shutdown-left", binary: binary)
        stream.close()
        try await Task.sleep(for: .seconds(1))
        let stopped = stop(node, SIGINT)
        #expect(stopped.seconds < 10, "stopped in \(stopped.seconds) s")
        #expect(stopped.status == 0)
        #expect(loudLines(stopped.log).isEmpty, "\(loudLines(stopped.log))")
    }

    /// A stop held up by a request in progress (a body arriving slowly: the graceful stop lets requests
    /// finish, here up to the body deadline of 60 s) ends at once on a second signal, with the exit
    /// status of a process ended by that signal (a clean stop exits 0).
    @Test(arguments: CLI.builds) func aSecondSignalDuringASlowStopEndsAtOnce(binary: String) async throws {
        let data = temporaryPath("shutdown-twice")
        let node = try NodeProcess(data: data, captureLog: true, binary: binary)
        let connection = try RawConnection(url: node.url)
        defer { connection.close() }
        connection.send("POST /v1/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"transactions\":[")
        // The node has the request's head once it answers another request on a new connection after it.
        _ = try await HTTP.request("GET", node.url + "/healthz", timeout: 5)
        kill(node.process.processIdentifier, SIGTERM)
        // The stop is under way once the node no longer takes connections (signals sent back to back
        // would reach it as one).
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, let probe = try? RawConnection(url: node.url) {
            probe.close()
            usleep(20_000)
        }
        #expect(node.process.isRunning, "the stop waits for the request in progress")
        let start = Date()
        kill(node.process.processIdentifier, SIGTERM)
        while node.process.isRunning, Date().timeIntervalSince(start) < 10 { usleep(20_000) }
        let seconds = Date().timeIntervalSince(start)
        if node.process.isRunning { node.stop(signal: SIGKILL) }
        #expect(seconds < 5, "ended \(seconds) s after the second signal")
        #expect(node.process.terminationReason == .exit && node.process.terminationStatus == 128 + SIGTERM)
        let log = node.log.map { String(decoding: $0.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) } ?? ""
        #expect(log.contains("second signal: stopping at once"))
        #expect(loudLines(log).isEmpty, "\(loudLines(log))")
    }
}

/// A plain TCP connection to a node, for requests a client library would not send (half a body).
final class RawConnection {
    let fd: Int32

    init(url: String) throws {
        let authority = url.dropFirst("http://".count)
        let colon = authority.lastIndex(of: ":")!
        let port = UInt16(authority[authority.index(after: colon)...])!
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw LedgerError("connect_failed", "cannot connect to \(url)") }
    }

    func send(_ text: String) { _ = text.withCString { Glibc.send(fd, $0, strlen($0), 0) } }

    func close() { _ = Glibc.close(fd) }
}
