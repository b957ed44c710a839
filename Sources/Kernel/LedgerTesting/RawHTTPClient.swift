import Foundation
import LedgerCore

#if canImport(Glibc)
    import Glibc
#endif

/// A minimal HTTP/1.1 client over one keep-alive connection from a chosen loopback address (the
/// test's second client: URLSession cannot choose its source address). Its blocking socket calls
/// run on a Dispatch thread, never on the concurrency pool the server under test runs on.
public final class RawHTTPClient: @unchecked Sendable {
    public let fd: Int32
    var buffer: [UInt8] = []

    public init(from source: String, to port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LedgerError("socket", "socket() failed") }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, source, &local.sin_addr)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr)
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let connected = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, connected == 0 else {
            close(fd)
            throw LedgerError("socket", "cannot connect from \(source)")
        }
    }

    deinit { close(fd) }

    public typealias Answer = (status: Int, headers: [String: String], body: [UInt8])

    /// Sends a request and reads the whole answer (`Host: 127.0.0.1` unless `headers` name another).
    public func request(_ method: String, _ path: String, headers extra: [(String, String)] = [], body: [UInt8] = []) async throws -> Answer {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Answer, any Error>) in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try self.blockingRequest(method, path, headers: extra, body: body) })
            }
        }
    }

    private func blockingRequest(_ method: String, _ path: String, headers extra: [(String, String)], body: [UInt8]) throws -> Answer {
        var text = "\(method) \(path) HTTP/1.1\r\n"
        if !extra.contains(where: { $0.0.lowercased() == "host" }) { text += "Host: 127.0.0.1\r\n" }
        for (name, value) in extra { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(body.count)\r\n\r\n"
        let bytes = Array(text.utf8) + body
        let sent = bytes.withUnsafeBufferPointer { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.count else { throw LedgerError("socket", "short write") }
        return try blockingAnswer()
    }

    /// Reads the status line and headers of the next answer (its body, e.g. an event stream, left unread).
    public func readHead() async throws -> (status: Int, headers: [String: String]) {
        try await offPool {
            let end: [UInt8] = [13, 10, 13, 10]
            while self.buffer.firstRange(of: end) == nil { try self.fill() }
            let range = self.buffer.firstRange(of: end)!
            let head = String(decoding: self.buffer[..<range.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
            self.buffer.removeFirst(range.upperBound)
            var headers: [String: String] = [:]
            for line in head.dropFirst() {
                if let colon = line.firstIndex(of: ":") { headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
            }
            return (Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0, headers)
        }
    }

    /// Closes the connection from this side (a browser tab closed).
    public func hangUp() { shutdown(fd, Int32(SHUT_RDWR)) }

    /// Reads the next whole answer.
    public func readAnswer() async throws -> Answer {
        try await offPool { try self.blockingAnswer() }
    }

    private func blockingAnswer() throws -> Answer {
        let end: [UInt8] = [13, 10, 13, 10]
        while true {
            if let range = buffer.firstRange(of: end) {
                let head = String(decoding: buffer[..<range.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
                var headers: [String: String] = [:]
                for line in head.dropFirst() {
                    if let colon = line.firstIndex(of: ":") {
                        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                    }
                }
                let length = Int(headers["content-length"] ?? "0") ?? 0
                while buffer.count < range.upperBound + length { try fill() }
                let body = Array(buffer[range.upperBound..<(range.upperBound + length)])
                buffer.removeFirst(range.upperBound + length)
                let status = Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
                return (status, headers, body)
            }
            try fill()
        }
    }

    /// Sends raw bytes as they are (a request cut short, a body never finished).
    public func send(raw text: String) async throws {
        let bytes = Array(text.utf8)
        try await offPool {
            let sent = bytes.withUnsafeBufferPointer { Glibc.send(self.fd, $0.baseAddress, $0.count, 0) }
            guard sent == bytes.count else { throw LedgerError("socket", "short write") }
        }
    }

    /// Whether the server closes the connection within `seconds` (any answer bytes before are skipped).
    public func closedByServer(within seconds: Int) async throws -> Bool {
        try await offPool {
            var timeout = timeval(tv_sec: seconds, tv_usec: 0)
            setsockopt(self.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = recv(self.fd, &chunk, chunk.count, 0)
                if n == 0 { return true }
                if n < 0 { return errno == ECONNRESET }
            }
        }
    }

    private func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        guard n > 0 else { throw LedgerError("socket", "connection closed") }
        buffer += chunk[..<n]
    }
}
