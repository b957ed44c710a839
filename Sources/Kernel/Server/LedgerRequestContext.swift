import Hummingbird
import NIOCore

/// The request context of the node's routes: Hummingbird's basic context plus the address of the
/// client's socket (nil for a request that did not come over a socket, e.g. in-process tests).
public struct LedgerRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The client's IP address, the key of per-client limits.
    public var clientAddress: String? { remoteAddress?.ipAddress }
}
