import Foundation
import LedgerCore
import Standards
import Testing

@Suite struct EPCISTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/vectors/epcis")

    static func lines(_ name: String) -> [String]? {
        guard let data = FileManager.default.contents(atPath: root.appendingPathComponent(name).path) else { return nil }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    /// Every document of shared/vectors/epcis: each event's hash id equals the reference's; where the
    /// reference's pre-hash file is consistent with its hash file, the pre-hash strings are equal too.
    @Test func sharedVectors() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.root.path).filter { $0.hasSuffix(".jsonld") }.sorted()
        #expect(files.count >= 20)
        var events = 0
        for file in files {
            let name = String(file.dropLast(".jsonld".count))
            let document = try JSONValue.parse(Array(try Data(contentsOf: Self.root.appendingPathComponent(file))))
            let expected = try #require(Self.lines(name + ".hashes"), "\(name).hashes")
            let ids = try EPCISEventHash.hashIDs(document: document)
            #expect(ids == expected, "\(name)")
            if let preHashes = Self.lines(name + ".prehashes") {
                let ours = try EPCISEventHash.preHashes(document: document)
                for (i, line) in preHashes.enumerated() where i < ours.count && EPCISEventHash.hashID(preHash: line) == expected[i] {
                    #expect(ours[i] == line, "\(name) event \(i)")
                }
            }
            events += ids.count
        }
        #expect(events >= 40)
    }
}
