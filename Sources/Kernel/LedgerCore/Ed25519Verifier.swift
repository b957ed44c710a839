import CEd25519
import Crypto
import Synchronization

/// Ed25519 signature verification (RFC 8032 §5.1.7) with per-signer precomputed tables.
///
/// A permissioned ledger sees the same signers again and again. For a key seen often enough this
/// verifier keeps a fixed-base table of its multiples (as BoringSSL does for the base point when it
/// signs), so `[h]A` costs 64 table additions and four doublings instead of 253 doublings; `[S]B`
/// takes 32 additions from a larger table of the base point. The check is BoringSSL's `ED25519_verify`,
/// step for step: the same point decoding (`x25519_ge_frombytes_vartime`), `S < ℓ`, the same hash,
/// and the encoded `[S]B - [h]A` compared byte for byte with `R` — cofactorless, so this verifier
/// accepts exactly what BoringSSL accepts (the tests compare the two on valid, mangled, malleated,
/// small-order and non-canonical inputs). A signature it rejects is checked again by BoringSSL before
/// anyone is told it is bad (`PublicKey.isValidSignature`): a disagreement there only costs time,
/// while accepting what BoringSSL refuses would split the nodes' verdicts, which is what the tests guard.
public enum Ed25519Verifier {
    /// The verdict for a key with a table.
    static func verify(table: SignerTable, signature: [UInt8], message: [UInt8]) -> Bool {
        verify([(table, signature, message)])[0]
    }

    /// Verdicts for many signatures by keys with tables: the multiplications eight at a time where the
    /// CPU has AVX-512 IFMA, the final inversions shared (Montgomery's trick). The same verdicts as
    /// one by one.
    static func verify(_ items: [(table: SignerTable, signature: [UInt8], message: [UInt8])]) -> [Bool] {
        var formed: [Int] = [], k: [UInt8] = [], s: [UInt8] = []
        var tables: [UnsafePointer<ced25519_precomputed>?] = []
        formed.reserveCapacity(items.count)
        k.reserveCapacity(32 * items.count)
        s.reserveCapacity(32 * items.count)
        tables.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard let h = challenge(table: item.table, signature: item.signature, message: item.message) else { continue }
            formed.append(i)
            k += h
            s += item.signature[32..<64]
            tables.append(item.table.entries)
        }
        let points = withExtendedLifetime(items) { multiply(k: k, tables: tables, s: s) }
        var out = [Bool](repeating: false, count: items.count)
        guard let inverses = FieldElement.inverses(points.map(\.z)) else {
            for (i, p) in zip(formed, points) { out[i] = p.encoded == Array(items[i].signature[0..<32]) }
            return out
        }
        for (n, i) in formed.enumerated() {
            out[i] = points[n].encoded(zInverse: inverses[n]) == Array(items[i].signature[0..<32])
        }
        return out
    }

    /// h = SHA-512(R ‖ A ‖ M) mod ℓ for a well-formed signature; nil for one BoringSSL refuses before
    /// any arithmetic (not 64 bytes, S ≥ ℓ or its top bits set).
    static func challenge(table: SignerTable, signature: [UInt8], message: [UInt8]) -> [UInt8]? {
        guard signature.count == 64, signature[63] & 0xE0 == 0, isBelowOrder(signature, from: 32) else { return nil }
        var hasher = SHA512()
        hasher.update(data: signature[0..<32])
        hasher.update(data: table.publicKey)
        hasher.update(data: message)
        return ScalarReduction.reduce(Array(hasher.finalize()))
    }

    /// `[k_i](-A_i) + [s_i]B` for each i (32-byte scalars, tables of live `SignerTable`s): `k` in
    /// signed radix-16 digits over the key's table (odd digits, four doublings, even digits), then
    /// `s` in signed radix-256 digits over the base point's larger table (no doublings), 96 additions
    /// in all, in C (`CEd25519`) with the formulas of this file.
    static func multiply(k: [UInt8], tables: [UnsafePointer<ced25519_precomputed>?], s: [UInt8]) -> [ProjectivePoint] {
        precondition(k.count == 32 * tables.count && s.count == k.count)
        precondition(MemoryLayout<Precomputed>.stride == MemoryLayout<ced25519_precomputed>.stride)
        guard !tables.isEmpty else { return [] }
        var limbs = [UInt64](repeating: 0, count: 15 * tables.count)
        ced25519_double_scalar_multiply_many(tables.count, k, tables, s, BaseTable.entries, &limbs)
        return (0..<tables.count).map { i in
            let o = 15 * i
            return ProjectivePoint(
                x: FieldElement(l0: limbs[o], l1: limbs[o + 1], l2: limbs[o + 2], l3: limbs[o + 3], l4: limbs[o + 4]),
                y: FieldElement(l0: limbs[o + 5], l1: limbs[o + 6], l2: limbs[o + 7], l3: limbs[o + 8], l4: limbs[o + 9]),
                z: FieldElement(l0: limbs[o + 10], l1: limbs[o + 11], l2: limbs[o + 12], l3: limbs[o + 13], l4: limbs[o + 14]))
        }
    }

    /// Whether the eight-lane AVX-512 IFMA code is in use; tests switch it off to compare.
    static var vectorised: Bool {
        get { ced25519_ifma_active() != 0 }
        set { ced25519_use_ifma(newValue ? 1 : 0) }
    }

    /// ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian words.
    static let order: [UInt64] = [0x5812_631A_5CF5_D3ED, 0x14DE_F9DE_A2F7_9CD6, 0, 0x1000_0000_0000_0000]

    static func isBelowOrder(_ bytes: [UInt8], from offset: Int) -> Bool {
        for i in stride(from: 3, through: 0, by: -1) {
            var word: UInt64 = 0
            for j in 0..<8 { word |= UInt64(bytes[offset + i * 8 + j]) << (8 * UInt64(j)) }
            if word > order[i] { return false }
            if word < order[i] { return true }
        }
        return false
    }

    /// A key's table of `-A` multiples, or nil when the bytes are not a point (BoringSSL rejects those too).
    public static func table(for publicKey: [UInt8]) -> SignerTable? {
        guard publicKey.count == 32, let a = ExtendedPoint(decoding: publicKey) else { return nil }
        return SignerTable(publicKey: publicKey, points: precompute(a.negated))
    }

    /// (j+1)·256^i·P for i < 32, j < `perRow`, in affine precomputed form.
    static func precompute(_ point: ExtendedPoint, perRow: Int = 8) -> [Precomputed] {
        var projective: [ExtendedPoint] = []
        projective.reserveCapacity(32 * perRow)
        var row = point
        for _ in 0..<32 {
            let cached = row.cached
            var multiple = row
            projective.append(multiple)
            for _ in 1..<perRow {
                multiple = multiple.adding(cached).extended
                projective.append(multiple)
            }
            var p = row.projective
            for _ in 0..<7 { p = p.doubled.projective }
            row = p.doubled.extended
        }
        // One inversion for all the points (a point's Z is never zero: the formulas are complete).
        let inverses = FieldElement.inverses(projective.map(\.z))!
        let out = zip(projective, inverses).map { p, zInverse in
            let x = p.x * zInverse, y = p.y * zInverse
            return Precomputed(yPlusX: (y + x).carried, yMinusX: (y - x).carried, xy2d: x * y * Curve.d2)
        }
        return out
    }
}

/// A signer's precomputed table (about 30 KiB), at a fixed address for the C code while it lives.
public final class SignerTable: @unchecked Sendable {
    let publicKey: [UInt8]
    /// Written once in `init`, read-only after.
    private let storage: UnsafeMutableBufferPointer<Precomputed>

    init(publicKey: [UInt8], points: [Precomputed]) {
        self.publicKey = publicKey
        storage = .allocate(capacity: points.count)
        _ = storage.initialize(from: points)
    }

    deinit { storage.deallocate() }

    var entries: UnsafePointer<ced25519_precomputed> { UnsafeRawPointer(storage.baseAddress!).assumingMemoryBound(to: ced25519_precomputed.self) }
}

/// Curve constants, derived rather than typed in.
enum Curve {
    /// d = -121665/121666.
    static let d: FieldElement = (-FieldElement(small: 121665)).carried * FieldElement(small: 121666).inverse
    static let d2: FieldElement = (d + d).carried
    /// sqrt(-1) = 2^((p-1)/4).
    static let sqrtMinusOne: FieldElement = {
        // (p-1)/4 = 2^253 - 5: 2^(2^253 - 5) = 2^(2^253 - 8) · 2^3, with 2^253 - 8 = 8·(2^250 - 1).
        let two = FieldElement(small: 2)
        var x = two
        for _ in 0..<249 { x = x.squared * two }  // 2^(2^250 - 1)
        return x.squared(times: 3) * FieldElement(small: 8)
    }()
    /// The base point B (y = 4/5, x even).
    static let base: ExtendedPoint = ExtendedPoint(decoding: [0x58] + [UInt8](repeating: 0x66, count: 31))!
}

enum BaseTable {
    /// j·256^i·B for j ≤ 128 (4,096 points, about 480 KiB, built once and kept).
    static let table = SignerTable(publicKey: Curve.base.projective.encoded, points: Ed25519Verifier.precompute(Curve.base, perRow: 128))
    static var entries: UnsafePointer<ced25519_precomputed> { table.entries }
}

/// An affine point as (y+x, y-x, 2dxy): the layout of `ced25519_precomputed`, which reads the tables.
struct Precomputed: Sendable {
    var yPlusX: FieldElement, yMinusX: FieldElement, xy2d: FieldElement
}

/// (Y+X, Y-X, Z, 2dT) of an extended point, for general additions.
struct CachedPoint {
    var yPlusX: FieldElement, yMinusX: FieldElement, z: FieldElement, t2d: FieldElement
}

/// (X:Y:Z) with x = X/Z, y = Y/Z.
struct ProjectivePoint {
    var x: FieldElement, y: FieldElement, z: FieldElement

    /// ref10's `ge_p2_dbl`.
    var doubled: CompletedPoint {
        let xx = x.squared, yy = y.squared
        let zz2 = (z.squared + z.squared).carried
        let t0 = (x + y).squared
        let sum = yy + xx, difference = yy - xx
        return CompletedPoint(x: t0 - sum.carried, y: sum, z: difference, t: zz2 - difference.carried)
    }

    /// ref10's `x25519_ge_tobytes`.
    var encoded: [UInt8] { encoded(zInverse: z.inverse) }

    func encoded(zInverse recip: FieldElement) -> [UInt8] {
        var s = (y * recip).bytes
        if (x * recip).isNegative { s[31] ^= 0x80 }
        return s
    }
}

/// ((X:Z), (Y:T)) with x = X/Z, y = Y/T: the result of an addition or doubling.
struct CompletedPoint {
    var x: FieldElement, y: FieldElement, z: FieldElement, t: FieldElement
    var projective: ProjectivePoint { ProjectivePoint(x: x * t, y: y * z, z: z * t) }
    var extended: ExtendedPoint { ExtendedPoint(x: x * t, y: y * z, z: z * t, t: x * y) }
}

/// (X:Y:Z:T) with x = X/Z, y = Y/Z, xy = T/Z.
struct ExtendedPoint {
    var x: FieldElement, y: FieldElement, z: FieldElement, t: FieldElement

    static let identity = ExtendedPoint(x: .zero, y: .one, z: .one, t: .zero)

    init(x: FieldElement, y: FieldElement, z: FieldElement, t: FieldElement) {
        self.x = x
        self.y = y
        self.z = z
        self.t = t
    }

    /// BoringSSL's `x25519_ge_frombytes_vartime`: y taken mod p, x from the sign bit (a zero x with the
    /// sign bit set is accepted, as there).
    init?(decoding s: [UInt8]) {
        let y = s.withUnsafeBytes { FieldElement(bytes: $0) }
        let yy = y.squared
        let u = (yy - .one).carried
        let v = yy * Curve.d + .one
        var x = u * (u * v).pow22523
        let vxx = x.squared * v
        if !(vxx - u).carried.isZero {
            guard (vxx + u).carried.isZero else { return nil }
            x = x * Curve.sqrtMinusOne
        }
        if x.isNegative != (s[31] >> 7 == 1) { x = (-x).carried }
        self.init(x: x, y: y, z: .one, t: x * y)
    }

    var negated: ExtendedPoint { ExtendedPoint(x: (-x).carried, y: y, z: z, t: (-t).carried) }
    var projective: ProjectivePoint { ProjectivePoint(x: x, y: y, z: z) }
    var cached: CachedPoint { CachedPoint(yPlusX: y + x, yMinusX: y - x, z: z, t2d: t * Curve.d2) }

    /// ref10's `x25519_ge_add`.
    func adding(_ q: CachedPoint) -> CompletedPoint {
        let a = (y + x) * q.yPlusX, b = (y - x) * q.yMinusX
        let c = q.t2d * t
        let zz = z * q.z
        let d = (zz + zz).carried
        return CompletedPoint(x: a - b, y: a + b, z: d + c, t: d - c)
    }
}

/// Keys' tables, built once a key has signed `threshold` times and kept for the `capacity` most
/// recently used keys (a table is about 30 KiB).
public final class SignerTableCache: Sendable {
    public static let shared = SignerTableCache()

    /// Tables are used where swift-crypto's Ed25519 is BoringSSL (Linux), the verifier they replicate
    /// and fall back on. On Apple platforms swift-crypto hands verification to CryptoKit, whose edge
    /// cases (small-order or non-canonical keys) were not compared, so every check goes there.
    #if os(Linux)
        public static let enabled = true
    #else
        public static let enabled = false
    #endif

    private struct State {
        var tables: [[UInt8]: (table: SignerTable, used: UInt64)] = [:]
        var sightings: [[UInt8]: Int] = [:]
        var clock: UInt64 = 0
    }

    private let state = Mutex(State())
    public let capacity: Int
    public let threshold: Int

    public init(capacity: Int = 1024, threshold: Int = 2) {
        self.capacity = capacity
        self.threshold = threshold
    }

    /// The key's table, building it when the key has now been seen `threshold` times.
    public func table(for publicKey: [UInt8]) -> SignerTable? {
        enum Found { case table(SignerTable), seen(Int) }
        let found: Found = state.withLock { s in
            s.clock += 1
            if let entry = s.tables[publicKey] {
                s.tables[publicKey] = (entry.table, s.clock)
                return .table(entry.table)
            }
            let n = (s.sightings[publicKey] ?? 0) + 1
            if s.sightings.count > 4 * capacity { s.sightings.removeAll(keepingCapacity: true) }
            s.sightings[publicKey] = n
            return .seen(n)
        }
        if case .table(let table) = found { return table }
        guard case .seen(let seen) = found, seen >= threshold, let table = Ed25519Verifier.table(for: publicKey) else { return nil }
        state.withLock { s in
            s.sightings[publicKey] = nil
            if s.tables[publicKey] != nil { return }  // built meanwhile by another thread
            if s.tables.count >= capacity, let oldest = s.tables.min(by: { $0.value.used < $1.value.used })?.key {
                s.tables[oldest] = nil
            }
            s.tables[publicKey] = (table, s.clock)
        }
        return table
    }

    public var count: Int { state.withLock { $0.tables.count } }
}
