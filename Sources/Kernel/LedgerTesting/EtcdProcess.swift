import EtcdOrdering
import Foundation

/// A one-member etcd cluster on free loopback ports in a temporary directory, stopped and removed when released.
public final class EtcdProcess: Sendable {
    public let cluster: LocalEtcdCluster

    public init(members: Int = 1) async throws {
        cluster = try await LocalEtcdCluster(members: members, directory: NSTemporaryDirectory() + "careledger-etcd-\(UUID().uuidString)")
    }

    public var url: String { cluster.clientURLs[0] }
    public var client: EtcdClient { cluster.client }

    deinit {
        cluster.stop()
        try? FileManager.default.removeItem(atPath: cluster.directory)
    }
}
