import LedgerCore
import Prometheus
import Synchronization

/// The open event streams (`GET /v1/events`), counted per principal and in all: a principal may hold
/// `perPrincipal` at once and the node `total`; a stream gives its slot back when it ends, which a
/// heartbeat makes sure of when its client has gone. Exported as `careledger_event_streams`.
final class EventStreamSlots: Sendable {
    let perPrincipal: Int
    let total: Int
    private let open = Mutex<[String: Int]>([:])
    private let gauge: Gauge

    init(perPrincipal: Int, total: Int, registry: PrometheusCollectorRegistry) {
        self.perPrincipal = perPrincipal
        self.total = total
        gauge = registry.makeGauge(descriptor: .init(namespace: "careledger", metricName: "event", unitName: "streams", helpText: "Event streams (GET /v1/events) open now"))
    }

    /// Takes a slot for `did`, or throws `too_many_streams`.
    func take(_ did: String) throws(LedgerError) {
        let refusal = open.withLock { open -> LedgerError? in
            if open.values.reduce(0, +) >= total { return LedgerError("too_many_streams", "the node serves \(total) event streams at most; retry later") }
            if open[did, default: 0] >= perPrincipal {
                return LedgerError("too_many_streams", "\(perPrincipal) event streams are open for \(did): close one first")
            }
            open[did, default: 0] += 1
            gauge.set(Int64(open.values.reduce(0, +)))
            return nil
        }
        if let refusal { throw refusal }
    }

    func give(_ did: String) {
        open.withLock { open in
            open[did, default: 1] -= 1
            if open[did] == 0 { open[did] = nil }
            gauge.set(Int64(open.values.reduce(0, +)))
        }
    }

    var count: Int { open.withLock { $0.values.reduce(0, +) } }

    /// A slot taken: given back once, when released or at the latest when the lease is dropped (an
    /// answer whose body never ran, e.g. its client left before the head was written).
    final class Lease: Sendable {
        let slots: EventStreamSlots
        let did: String
        private let held = Mutex(true)

        init(_ slots: EventStreamSlots, did: String) throws(LedgerError) {
            try slots.take(did)
            self.slots = slots
            self.did = did
        }

        func release() {
            if held.withLock({ h in defer { h = false }; return h }) { slots.give(did) }
        }

        deinit { release() }
    }
}
