import Foundation
import LedgerCore
import Testing

@Suite struct ParallelTests {
    /// The calling thread's nice value.
    static func niceValue() -> Int32 {
        #if os(Linux)
        getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        #else
        getpriority(PRIO_PROCESS, 0)
        #endif
    }

    @Test func backgroundWorkersRunEveryJobAtALowerPriority() async {
        let base = Self.niceValue()
        let results = await withTaskGroup(of: (Int, Int, Int32).self) { group in
            for i in 0..<64 { group.addTask { await BackgroundWorkers.shared.run { (i, i * i, Self.niceValue()) } } }
            var out: [(Int, Int, Int32)] = []
            for await r in group { out.append(r) }
            return out
        }
        // Each job ran once and its own result came back to its caller.
        #expect(results.map(\.0).sorted() == Array(0..<64))
        #expect(results.allSatisfy { $0.1 == $0.0 * $0.0 })
        #if os(Linux)
        #expect(results.allSatisfy { $0.2 == min(base + 5, 19) }, "the workers run at nice +5")
        #expect(Self.niceValue() == base, "the caller's own priority is unchanged (the nice value is per thread)")
        #endif
    }

    @Test func chunksOnTheWorkersComeBackInOrder() async {
        let items = Array(0..<10_000)
        let doubled = await Parallel.mapChunks(items, minimumChunk: 32, on: .shared) { slice in slice.map { $0 * 2 } }.flatMap { $0 }
        #expect(doubled == items.map { $0 * 2 })
        let small = await Parallel.mapChunks([1, 2, 3], minimumChunk: 32, on: .shared) { slice in slice.reduce(0, +) }
        #expect(small == [6], "below two minimum chunks, one chunk")
    }
}
