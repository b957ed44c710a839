/// Read access to the committed world state (implemented by the store; contracts read through it).
public protocol StateReader: Sendable {
    func value(forKey key: String) throws -> [UInt8]?
}
