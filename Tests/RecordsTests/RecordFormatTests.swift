import ContractKit
import Foundation
import LedgerCore
import RecordsContract
import Standards
import Testing

/// Key envelopes and receipts held to the fixed bytes of `Tests/LedgerCoreTests/Vectors/chain-formats.json`
/// (made by an independent implementation; see the README beside it), both ways.
@Suite struct RecordFormatTests {
    let vectors: JSONValue

    init() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("LedgerCoreTests/Vectors/chain-formats.json")
        vectors = try JSONValue.parse(Array(try Data(contentsOf: file)))
    }

    func hex(_ v: JSONValue?) throws -> [UInt8] {
        let text = try #require(v?.stringValue)
        return try #require(Hex.decode(text))
    }

    @Test func keyEnvelopes() throws {
        let all = try #require(vectors["keyEnvelopes"]?.arrayValue)
        try #require(all.count >= 2)
        for v in all {
            let name = v["name"]?.stringValue ?? ""
            var keys: [String: WrappedKey] = [:]
            for (did, w) in try #require(v["keys"]?.objectValue) { keys[did] = try WrappedKey(json: w) }
            let envelope = KeyEnvelope(salt: try hex(v["salt"]), keys: keys)
            let blob = try hex(v["blob"])
            #expect(envelope.blob == blob, "\(name): blob")
            #expect(envelope.hash.hex == v["hash"]?.stringValue, "\(name): hash")
            #expect(try KeyEnvelope.keys(content: Array(blob.dropFirst(32))) == keys, "\(name): decoded")
            #expect(keys.values.contains { $0.exported } == (name == "export-mode"))
        }
    }

    @Test func receipts() throws {
        let all = try #require(vectors["receipts"]?.arrayValue)
        try #require(all.count >= 2)
        for v in all {
            let name = v["name"]?.stringValue ?? ""
            let committed = v["status"]?.stringValue == "committed"
            let receipt = Receipt(
                transactionID: try Hash(try hex(v["transactionId"])), status: committed ? .committed : .failed,
                height: UInt64(try #require(v["height"]?.intValue)), leafIndex: UInt64(try #require(v["leafIndex"]?.intValue)),
                result: committed ? try #require(v["result"]) : .null, errorCode: v["errorCode"]?.stringValue, errorMessage: v["errorMessage"]?.stringValue)
            let canonical = try #require(v["canonical"]?.stringValue)
            #expect(receipt.json.canonicalString == canonical, "\(name): canonical JSON")
            #expect(Hash.sha256(Array(canonical.utf8)).hex == v["sha256"]?.stringValue, "\(name): hash")
            #expect(try JSONValue.parse(canonical) == receipt.json, "\(name): decoded")
        }
    }
}
