import Foundation
import LedgerCore

/// Prints a JSON value (canonical, one line) or text.
public func output(_ value: JSONValue, json: Bool, text: () -> String) {
    if json {
        print(value.canonicalString)
    } else {
        print(text())
    }
}

public func readInputFile(_ path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
        throw LedgerError("no_file", "cannot read \(path)")
    }
    return text
}
