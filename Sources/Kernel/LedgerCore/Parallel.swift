import Foundation
import Synchronization

/// Data-parallel helpers for the hot paths that are embarrassingly parallel (a timeline's vault
/// reads, serialisation and decryption).
public enum Parallel {
    /// `transform` over `items`, in order, split in one contiguous chunk per core.
    public static func map<T: Sendable, U: Sendable>(_ items: [T], _ transform: @escaping @Sendable (T) -> U) async -> [U] {
        await mapChunks(items) { $0.map(transform) }.flatMap { $0 }
    }

    /// `transform` applied to one contiguous chunk of `items` per core (so each chunk can keep its
    /// own state: a cache, an output buffer); the results in the order of the chunks.
    /// `on`: workers to run the chunks on (the cooperative pool when nil).
    public static func mapChunks<T: Sendable, U: Sendable>(
        _ items: [T], minimumChunk: Int = 1, on workers: BackgroundWorkers? = nil, _ transform: @escaping @Sendable (ArraySlice<T>) -> U
    ) async -> [U] {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        guard items.count > 1, cores > 1, items.count >= 2 * minimumChunk else {
            if let workers { return [await workers.run { transform(items[...]) }] }
            return [transform(items[...])]
        }
        let chunk = (items.count + cores - 1) / cores
        return await withTaskGroup(of: (Int, U).self) { group in
            for start in stride(from: 0, to: items.count, by: chunk) {
                let slice = items[start..<min(items.count, start + chunk)]
                if let workers {
                    group.addTask { (start, await workers.run { transform(slice) }) }
                } else {
                    group.addTask { (start, transform(slice)) }
                }
            }
            var parts: [(Int, U)] = []
            for await part in group { parts.append(part) }
            return parts.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }
}

/// Worker threads at a lower scheduling priority (a higher nice value), one per core, for bulk CPU
/// work that must not hold back a serial stage running beside it: a node checks the signatures of
/// incoming transactions here, so that the block producer and the committer, which every waiting
/// transaction depends on, get the cores first when both want them, and the checks take every
/// cycle they leave.
public final class BackgroundWorkers: Sendable {
    public static let shared = BackgroundWorkers(threads: ProcessInfo.processInfo.activeProcessorCount, nice: 5)

    private let jobs = Mutex<[@Sendable () -> Void]>([])
    private let available = DispatchSemaphore(value: 0)

    init(threads: Int, nice: Int32) {
        for i in 0..<max(1, threads) {
            let thread = Thread { [self] in
                #if os(Linux)
                // On Linux the nice value is per thread: `who` 0 is the calling thread (elsewhere it
                // would be the whole process, so the workers keep the default priority there).
                // The value is relative to the priority the thread was created with, so that a node
                // started with `nice` keeps its checks below its own serial stages.
                let which = __priority_which_t(PRIO_PROCESS.rawValue)
                _ = setpriority(which, 0, min(getpriority(which, 0) + nice, 19))
                #endif
                while true {
                    available.wait()
                    let job = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
                    job?()
                }
            }
            thread.name = "careledger.background-\(i)"
            thread.start()
        }
    }

    /// Runs `body` on a worker and returns its result.
    public func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
            jobs.withLock { $0.append { c.resume(returning: body()) } }
            available.signal()
        }
    }
}
