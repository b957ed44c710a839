import Foundation

/// Data-parallel helpers for the hot paths that are embarrassingly parallel (a timeline's vault
/// reads, serialisation and decryption).
public enum Parallel {
    /// `transform` over `items`, in order, split in one contiguous chunk per core.
    public static func map<T: Sendable, U: Sendable>(_ items: [T], _ transform: @escaping @Sendable (T) -> U) async -> [U] {
        await mapChunks(items) { $0.map(transform) }.flatMap { $0 }
    }

    /// `transform` applied to one contiguous chunk of `items` per core (so each chunk can keep its
    /// own state: a cache, an output buffer); the results in the order of the chunks.
    public static func mapChunks<T: Sendable, U: Sendable>(_ items: [T], _ transform: @escaping @Sendable (ArraySlice<T>) -> U) async -> [U] {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        guard items.count > 1, cores > 1 else { return [transform(items[...])] }
        let chunk = (items.count + cores - 1) / cores
        return await withTaskGroup(of: (Int, U).self) { group in
            for start in stride(from: 0, to: items.count, by: chunk) {
                let slice = items[start..<min(items.count, start + chunk)]
                group.addTask { (start, transform(slice)) }
            }
            var parts: [(Int, U)] = []
            for await part in group { parts.append(part) }
            return parts.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }
}
