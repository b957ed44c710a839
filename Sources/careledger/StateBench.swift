import ArgumentParser
import CLIKit
import Foundation
import LedgerCore

/// `careledger bench state`: the authenticated state tree alone. Loads a tree, then applies blocks of
/// writes (new keys and updates of existing ones, the shape of a block of commissioning events) and
/// reports the time and CPU per write, single-threaded, as a block producer spends it.
struct StateBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "state", abstract: "State tree writes per second (sparse Merkle tree, batched per block).")
    @Option(help: "Keys in the tree before the timed blocks.") var keys: Int = 300_000
    @Option(help: "Timed blocks.") var blocks: Int = 200
    @Option(help: "Writes per block.") var writes: Int = 1_500
    @Option(help: "Share of a block's writes that update existing keys (the rest add keys).") var updates: Double = 0.33
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard keys >= 1, blocks >= 1, writes >= 1, (0...1).contains(updates) else { throw ValidationError("counts must be positive; --updates is 0 to 1") }
    }

    func run() async throws {
        var rng = SplitMix64(seed: UInt64.random(in: 0...UInt64.max))
        func value() -> [UInt8] { (0..<48).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        var tree = SparseMerkleTree()
        var loaded = 0
        while loaded < keys {
            let n = min(10_000, keys - loaded)
            tree.set(batch: (loaded..<(loaded + n)).map { (key: "bench/key/\($0)", value: value()) })
            loaded += n
        }
        var next = keys
        // Built before the clock starts.
        let batches: [[(key: String, value: [UInt8]?)]] = (0..<blocks).map { _ in
            (0..<writes).map { _ in
                if Double.random(in: 0..<1, using: &rng) < updates { return (key: "bench/key/\(Int.random(in: 0..<next, using: &rng))", value: value()) }
                next += 1
                return (key: "bench/key/\(next - 1)", value: value())
            }
        }
        let cpu0 = processCPUSeconds()
        let start = DispatchTime.now()
        var previous = tree
        for batch in batches {
            tree.set(batch: batch)
            // The node keeps the previous version until the block is committed, then drops it.
            previous = tree
        }
        _ = previous.root
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        let cpu = processCPUSeconds() - cpu0
        let total = blocks * writes
        let perWrite = seconds / Double(total) * 1e6
        if json {
            print(JSONValue.object([
                "keys": .int(Int64(tree.count)), "writes": .int(Int64(total)), "microsPerWrite": .double(perWrite),
                "cpuMicrosPerWrite": .double(cpuMicros(cpu, per: total)), "writesPerSecond": .int(Int64(Double(total) / seconds)),
            ]).canonicalString)
        } else {
            print("careledger bench state (one thread)")
            print(String(format: "  %d writes in %d blocks over %d keys: %.2f µs per write (CPU %.2f µs), %.0f writes/s; %d keys at the end",
                         total, blocks, keys, perWrite, cpuMicros(cpu, per: total), Double(total) / seconds, tree.count))
        }
    }
}
