import Foundation
import LedgerCore
import Standards
import Synchronization

/// The custodian's off-chain store of encrypted record versions: one file per version, named by
/// the salted hash that the chain holds, containing salt (32 bytes) || ciphertext. Files are
/// written to a temporary name, synced, then renamed, before any transaction refers to them.
public struct Vault: Sendable {
    public let path: String
    public static let maxBlobBytes = 16 * 1024 * 1024

    /// The vault directory, open for `openat` (no path walk per blob read).
    private let directory: DirectoryHandle

    /// Recently read ciphertexts (they are encrypted: the cache holds nothing the files do not),
    /// shared by every `Vault` of this directory in the process so that a destroy evicts for all.
    private let cache: CiphertextCache

    /// How many bytes of ciphertext a vault keeps in memory.
    public static let cacheBytes = 64 * 1024 * 1024

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        directory = try DirectoryHandle(path: path)
        cache = CiphertextCache.shared(for: URL(fileURLWithPath: path).standardizedFileURL.path, budget: Self.cacheBytes)
    }

    func file(_ hash: Hash) -> String { "\(path)/\(hash.hex)" }

    /// Stores a blob after checking SHA-256(salt || ciphertext) == `saltedHash`.
    public func put(saltedHash: Hash, blob: [UInt8]) throws {
        try Self.check(saltedHash, blob)
        let target = file(saltedHash)
        if FileManager.default.fileExists(atPath: target) { return }
        guard DurableFile.save(blob, to: target, in: path) else { throw LedgerError("io_error", "cannot write the vault blob") }
    }

    /// A blob's shape and name: a 32-byte salt then an AES-GCM ciphertext, within the size limit, under
    /// SHA-256(salt || ciphertext).
    static func check(_ saltedHash: Hash, _ blob: [UInt8]) throws(LedgerError) {
        guard blob.count > 32 + 28, blob.count <= Self.maxBlobBytes else {
            throw LedgerError("bad_blob", "a vault blob is a 32-byte salt then an AES-GCM ciphertext, at most \(Self.maxBlobBytes) bytes")
        }
        guard Hash.sha256(blob) == saltedHash else { throw LedgerError("hash_mismatch", "SHA-256(salt || ciphertext) is not \(saltedHash.hex)") }
    }

    /// Stores many blobs durably with one sync of the file system instead of one per blob: each is
    /// checked and written to a temporary name, the file system synced once, then each renamed into
    /// place and the directory synced (a crash leaves whole blobs or none, never a partial one).
    public func putMany(_ blobs: [(hash: Hash, blob: [UInt8])]) throws {
        var pending: [(tmp: String, target: String)] = []
        defer { for p in pending { unlink(p.tmp) } }
        for (hash, blob) in blobs {
            try Self.check(hash, blob)
            let target = file(hash)
            if FileManager.default.fileExists(atPath: target) { continue }
            let tmp = target + ".tmp-\(UInt64.random(in: 0..<UInt64.max))"
            let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw LedgerError("io_error", "cannot write a vault blob") }
            pending.append((tmp, target))
            let written = blob.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard written == blob.count else { throw LedgerError("io_error", "short write of a vault blob") }
        }
        guard !pending.isEmpty else { return }
        let dir = open(path, O_RDONLY | O_CLOEXEC)
        guard dir >= 0 else { throw LedgerError("io_error", "cannot open the vault directory") }
        defer { close(dir) }
        guard Self.syncFileSystem(dir) == 0 else { throw LedgerError("io_error", "cannot sync the vault") }
        for p in pending { guard rename(p.tmp, p.target) == 0 else { throw LedgerError("io_error", "cannot rename a vault blob") } }
        pending.removeAll()
        fsync(dir)
    }

    /// Linux's syncfs(2) (the file system holding `fd`), looked up at run time (Glibc's module leaves
    /// out GNU extensions); sync(2) where it is missing.
    static let syncFileSystem: @Sendable (Int32) -> Int32 = {
        typealias SyncFS = @convention(c) (Int32) -> Int32
        guard let symbol = dlsym(nil, "syncfs") else { return { _ in sync(); return 0 } }
        let function = unsafeBitCast(symbol, to: SyncFS.self)
        return { function($0) }
    }()

    /// (salt, ciphertext), or nil when this vault does not hold it (or it was erased).
    public func get(_ saltedHash: Hash) -> (salt: [UInt8], ciphertext: [UInt8])? {
        guard let (fd, size) = openBlob(saltedHash) else { return nil }
        defer { close(fd) }
        var blob = [UInt8](repeating: 0, count: size)
        guard Self.readFully(fd, into: &blob, at: 0) else { return nil }
        return (Array(blob[0..<32]), Array(blob[32...]))
    }

    /// The ciphertext alone (what a read serves), or nil when this vault does not hold it.
    public func ciphertext(_ saltedHash: Hash) -> [UInt8]? {
        if let cached = cache.get(saltedHash) { return cached }
        guard let (fd, size) = openBlob(saltedHash) else { return nil }
        defer { close(fd) }
        var ciphertext = [UInt8](repeating: 0, count: size - 32)
        guard Self.readFully(fd, into: &ciphertext, at: 32) else { return nil }
        cache.put(saltedHash, ciphertext)
        return ciphertext
    }

    /// Plain POSIX calls relative to the open directory: a timeline read opens a thousand blobs,
    /// and Foundation's file reading and full path walks cost several times the system calls.
    private func openBlob(_ saltedHash: Hash) -> (Int32, Int)? {
        let fd = openat(directory.fd, saltedHash.hex, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size > 32, info.st_size <= Self.maxBlobBytes else {
            close(fd)
            return nil
        }
        return (fd, Int(info.st_size))
    }

    private static func readFully(_ fd: Int32, into buffer: inout [UInt8], at offset: Int) -> Bool {
        buffer.withUnsafeMutableBytes { raw in
            var done = 0
            while done < raw.count {
                let n = pread(fd, raw.baseAddress! + done, raw.count - done, off_t(offset + done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                done += n
            }
            return true
        }
    }

    /// Crypto-shredding: overwrites then unlinks the blob (salt and ciphertext). Returns whether it was here.
    @discardableResult
    public func destroy(_ saltedHash: Hash) -> Bool {
        cache.remove(saltedHash)
        let target = file(saltedHash)
        guard let size = (try? FileManager.default.attributesOfItem(atPath: target))?[.size] as? Int else { return false }
        let fd = open(target, O_WRONLY)
        if fd >= 0 {
            let zeros = [UInt8](repeating: 0, count: size)
            _ = zeros.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            fsync(fd)
            close(fd)
        }
        let removed = unlink(target) == 0
        // A read that opened the file before the unlink may have cached it meanwhile: drop it again.
        cache.remove(saltedHash)
        return removed
    }

    public func contains(_ saltedHash: Hash) -> Bool { FileManager.default.fileExists(atPath: file(saltedHash)) }

    /// Whether a read of `saltedHash` finds its ciphertext here (in the files or in memory).
    public func holds(_ saltedHash: Hash) -> Bool { cache.get(saltedHash) != nil || contains(saltedHash) }

    /// Keeps a blob fetched from another node in memory only (a reader's node does not become a holder
    /// on disk); `destroy` evicts it like any cached ciphertext. The blob must match `saltedHash`.
    public func remember(saltedHash: Hash, blob: [UInt8]) throws {
        guard blob.count > 32 + 28, blob.count <= Self.maxBlobBytes, Hash.sha256(blob) == saltedHash else {
            throw LedgerError("hash_mismatch", "SHA-256(salt || ciphertext) is not \(saltedHash.hex)")
        }
        cache.put(saltedHash, Array(blob[32...]))
    }
}

/// A byte-bounded in-memory cache of vault ciphertexts, oldest out first; one per vault directory.
final class CiphertextCache: Sendable {
    private struct State {
        var entries: [Hash: [UInt8]] = [:]
        var order: [Hash] = []
        var head = 0
        var bytes = 0
    }

    private let state = Mutex(State())
    let budget: Int
    private static let registry = Mutex([String: CiphertextCache]())

    init(budget: Int) { self.budget = budget }

    static func shared(for path: String, budget: Int) -> CiphertextCache {
        registry.withLock { all in
            if let cache = all[path] { return cache }
            let cache = CiphertextCache(budget: budget)
            all[path] = cache
            return cache
        }
    }

    func get(_ key: Hash) -> [UInt8]? { state.withLock { $0.entries[key] } }

    func put(_ key: Hash, _ value: [UInt8]) {
        guard value.count <= budget / 16 else { return }
        state.withLock { s in
            guard s.entries.updateValue(value, forKey: key) == nil else { return }
            s.order.append(key)
            s.bytes += value.count
            while s.bytes > budget, s.head < s.order.count {
                if let evicted = s.entries.removeValue(forKey: s.order[s.head]) { s.bytes -= evicted.count }
                s.head += 1
            }
            if s.head > 1024, s.head * 2 > s.order.count {
                s.order.removeFirst(s.head)
                s.head = 0
            }
        }
    }

    func remove(_ key: Hash) {
        state.withLock { s in
            if let removed = s.entries.removeValue(forKey: key) { s.bytes -= removed.count }
        }
    }
}

/// An open directory descriptor, closed with the last vault value that shares it.
final class DirectoryHandle: Sendable {
    let fd: Int32

    init(path: String) throws {
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw LedgerError("io_error", "cannot open the vault directory \(path)") }
    }

    deinit { close(fd) }
}

extension DataDirectory {
    public var vault: String { path + "/vault" }
}

/// A file written so that a crash leaves either none or all of it: to a temporary name, synced,
/// renamed into place, and the directory synced.
public enum DurableFile {
    /// Writes `bytes` to `target` in `directory` (mode 0600); false when any step failed (nothing is left behind).
    public static func save(_ bytes: [UInt8], to target: String, in directory: String) -> Bool {
        let tmp = target + ".tmp-\(UInt64.random(in: 0..<UInt64.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0, rename(tmp, target) == 0 else {
            unlink(tmp)
            return false
        }
        let dir = open(directory, O_RDONLY | O_CLOEXEC)
        if dir >= 0 {
            fsync(dir)
            close(dir)
        }
        return true
    }
}
