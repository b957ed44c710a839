import Foundation
import LedgerCore
@testable import Standards
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

    /// Numbers are written in their shortest form, integers exactly even beyond 64 bits (Python's str(int(x))).
    @Test func numberCanonicalisation() {
        #expect(EPCISCanonicalValue.number("452.0") == "452")
        #expect(EPCISCanonicalValue.number("0.50") == "0.5")
        #expect(EPCISCanonicalValue.number("+007") == "7")
        #expect(EPCISCanonicalValue.number("1e3") == "1000")
        #expect(EPCISCanonicalValue.number("1.9e19") == "19000000000000000000")
        #expect(EPCISCanonicalValue.number("18446744073709551616") == "18446744073709551616")
        #expect(EPCISCanonicalValue.number("1e22") == "10000000000000000000000")
        #expect(EPCISCanonicalValue.number("-2.5e20") == "-250000000000000000000")
        #expect(EPCISCanonicalValue.number("LOT42") == "LOT42")
    }
}
