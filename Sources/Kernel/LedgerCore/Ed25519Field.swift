/// Arithmetic in GF(2^255 - 19) for the Ed25519 verifier (`Ed25519Verifier`): five 51-bit limbs.
///
/// "Tight" elements (the output of `*`, `squared`, `carried`) have limbs below 2^51 + 2^20; "loose"
/// ones (a sum or difference of two tight ones) below 2^54. Products take loose inputs. The group
/// formulas follow BoringSSL's `curve25519.cc` (ref10), which keeps the same discipline.
struct FieldElement: Sendable {
    var l0: UInt64, l1: UInt64, l2: UInt64, l3: UInt64, l4: UInt64

    static let mask: UInt64 = (1 << 51) - 1
    static let zero = FieldElement(l0: 0, l1: 0, l2: 0, l3: 0, l4: 0)
    static let one = FieldElement(l0: 1, l1: 0, l2: 0, l3: 0, l4: 0)

    /// Little-endian 32 bytes; bit 255 is ignored and values ≥ p are taken mod p (as BoringSSL's `fe_frombytes`).
    init(bytes s: UnsafeRawBufferPointer) {
        let w0 = s.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        let w1 = s.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian
        let w2 = s.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian
        let w3 = s.loadUnaligned(fromByteOffset: 24, as: UInt64.self).littleEndian
        l0 = w0 & Self.mask
        l1 = (w0 >> 51 | w1 << 13) & Self.mask
        l2 = (w1 >> 38 | w2 << 26) & Self.mask
        l3 = (w2 >> 25 | w3 << 39) & Self.mask
        l4 = (w3 >> 12) & Self.mask
    }

    init(l0: UInt64, l1: UInt64, l2: UInt64, l3: UInt64, l4: UInt64) {
        self.l0 = l0
        self.l1 = l1
        self.l2 = l2
        self.l3 = l3
        self.l4 = l4
    }

    init(small value: UInt64) { self.init(l0: value, l1: 0, l2: 0, l3: 0, l4: 0) }

    @inline(__always) static func + (a: FieldElement, b: FieldElement) -> FieldElement {
        FieldElement(l0: a.l0 &+ b.l0, l1: a.l1 &+ b.l1, l2: a.l2 &+ b.l2, l3: a.l3 &+ b.l3, l4: a.l4 &+ b.l4)
    }

    /// a - b for a tight b (adds 2p first, so no limb goes negative).
    @inline(__always) static func - (a: FieldElement, b: FieldElement) -> FieldElement {
        FieldElement(
            l0: (a.l0 &+ 0xF_FFFF_FFFF_FFDA) &- b.l0, l1: (a.l1 &+ 0xF_FFFF_FFFF_FFFE) &- b.l1,
            l2: (a.l2 &+ 0xF_FFFF_FFFF_FFFE) &- b.l2, l3: (a.l3 &+ 0xF_FFFF_FFFF_FFFE) &- b.l3,
            l4: (a.l4 &+ 0xF_FFFF_FFFF_FFFE) &- b.l4)
    }

    @inline(__always) prefix static func - (a: FieldElement) -> FieldElement { zero - a }

    @inline(__always) static func reduce(
        _ t0: UInt128, _ t1: UInt128, _ t2: UInt128, _ t3: UInt128, _ t4: UInt128
    ) -> FieldElement {
        let m = UInt128(mask)
        let u1 = t1 &+ (t0 &>> 51)
        let u2 = t2 &+ (u1 &>> 51)
        let u3 = t3 &+ (u2 &>> 51)
        let u4 = t4 &+ (u3 &>> 51)
        let u0 = (t0 & m) &+ (u4 &>> 51) &* 19
        let r0 = UInt64(truncatingIfNeeded: u0) & mask
        let r1 = UInt64(truncatingIfNeeded: u1 & m) &+ UInt64(truncatingIfNeeded: u0 &>> 51)
        return FieldElement(
            l0: r0, l1: r1, l2: UInt64(truncatingIfNeeded: u2 & m), l3: UInt64(truncatingIfNeeded: u3 & m),
            l4: UInt64(truncatingIfNeeded: u4 & m))
    }

    @inline(__always) static func * (a: FieldElement, b: FieldElement) -> FieldElement {
        @inline(__always) func m(_ x: UInt64, _ y: UInt64) -> UInt128 { UInt128(x) &* UInt128(y) }
        let b1 = b.l1 &* 19, b2 = b.l2 &* 19, b3 = b.l3 &* 19, b4 = b.l4 &* 19
        let t0 = m(a.l0, b.l0) &+ m(a.l1, b4) &+ m(a.l2, b3) &+ m(a.l3, b2) &+ m(a.l4, b1)
        let t1 = m(a.l0, b.l1) &+ m(a.l1, b.l0) &+ m(a.l2, b4) &+ m(a.l3, b3) &+ m(a.l4, b2)
        let t2 = m(a.l0, b.l2) &+ m(a.l1, b.l1) &+ m(a.l2, b.l0) &+ m(a.l3, b4) &+ m(a.l4, b3)
        let t3 = m(a.l0, b.l3) &+ m(a.l1, b.l2) &+ m(a.l2, b.l1) &+ m(a.l3, b.l0) &+ m(a.l4, b4)
        let t4 = m(a.l0, b.l4) &+ m(a.l1, b.l3) &+ m(a.l2, b.l2) &+ m(a.l3, b.l1) &+ m(a.l4, b.l0)
        return reduce(t0, t1, t2, t3, t4)
    }

    @inline(__always) var squared: FieldElement {
        @inline(__always) func m(_ x: UInt64, _ y: UInt64) -> UInt128 { UInt128(x) &* UInt128(y) }
        let d0 = l0 &* 2, d1 = l1 &* 2
        let d4_19 = l4 &* 38, l4_19 = l4 &* 19, l3_19 = l3 &* 19
        let t0 = m(l0, l0) &+ m(d1, l4_19) &+ m(l2 &* 2, l3_19)
        let t1 = m(d0, l1) &+ m(l2, d4_19) &+ m(l3, l3_19)
        let t2 = m(d0, l2) &+ m(l1, l1) &+ m(l3, d4_19)
        let t3 = m(d0, l3) &+ m(d1, l2) &+ m(l4, l4_19)
        let t4 = m(d0, l4) &+ m(d1, l3) &+ m(l2, l2)
        return Self.reduce(t0, t1, t2, t3, t4)
    }

    /// self^(2^n).
    @inline(__always) func squared(times n: Int) -> FieldElement {
        var x = self
        for _ in 0..<n { x = x.squared }
        return x
    }

    /// Loose → tight.
    @inline(__always) var carried: FieldElement {
        Self.reduce(UInt128(l0), UInt128(l1), UInt128(l2), UInt128(l3), UInt128(l4))
    }

    /// The canonical 32-byte little-endian encoding, fully reduced mod p (curve25519-donna's `fcontract`).
    var bytes: [UInt8] {
        var t = (l0, l1, l2, l3, l4)
        func carryFull() {
            t.1 &+= t.0 >> 51; t.0 &= Self.mask
            t.2 &+= t.1 >> 51; t.1 &= Self.mask
            t.3 &+= t.2 >> 51; t.2 &= Self.mask
            t.4 &+= t.3 >> 51; t.3 &= Self.mask
            t.0 &+= 19 &* (t.4 >> 51); t.4 &= Self.mask
        }
        carryFull()
        carryFull()
        // Now 0 ≤ t < 2^255, carried. Add 19 and carry: t + 19 ≥ 2^255 exactly when t ≥ p.
        t.0 &+= 19
        carryFull()
        // Offset by 2^255 - 19 (in limbs) so that dropping bit 255 leaves t mod p.
        t.0 &+= Self.mask + 1 - 19
        t.1 &+= Self.mask
        t.2 &+= Self.mask
        t.3 &+= Self.mask
        t.4 &+= Self.mask
        t.1 &+= t.0 >> 51; t.0 &= Self.mask
        t.2 &+= t.1 >> 51; t.1 &= Self.mask
        t.3 &+= t.2 >> 51; t.2 &= Self.mask
        t.4 &+= t.3 >> 51; t.3 &= Self.mask
        t.4 &= Self.mask
        let words = [t.0 | t.1 << 51, t.1 >> 13 | t.2 << 38, t.2 >> 26 | t.3 << 25, t.3 >> 39 | t.4 << 12]
        var out = [UInt8](repeating: 0, count: 32)
        for (i, w) in words.enumerated() {
            for j in 0..<8 { out[i * 8 + j] = UInt8(truncatingIfNeeded: w >> (8 * UInt64(j))) }
        }
        return out
    }

    var isZero: Bool { bytes.allSatisfy { $0 == 0 } }
    /// The low bit of the canonical encoding (RFC 8032's "negative" x).
    var isNegative: Bool { bytes[0] & 1 == 1 }

    /// z^(2^250 - 1) and z^11, the common start of `inverse` and `pow22523` (ref10's addition chain).
    private var chain: (z2_250_1: FieldElement, z11: FieldElement) {
        let z2 = squared
        let z9 = self * z2.squared(times: 2)
        let z11 = z2 * z9
        let z2_5_0 = z9 * z11.squared
        let z2_10_0 = z2_5_0.squared(times: 5) * z2_5_0
        let z2_20_0 = z2_10_0.squared(times: 10) * z2_10_0
        let z2_40_0 = z2_20_0.squared(times: 20) * z2_20_0
        let z2_50_0 = z2_40_0.squared(times: 10) * z2_10_0
        let z2_100_0 = z2_50_0.squared(times: 50) * z2_50_0
        let z2_200_0 = z2_100_0.squared(times: 100) * z2_100_0
        let z2_250_0 = z2_200_0.squared(times: 50) * z2_50_0
        return (z2_250_0, z11)
    }

    /// self^(p-2) = 1/self (0 for 0).
    var inverse: FieldElement {
        let (z2_250_1, z11) = chain
        return z2_250_1.squared(times: 5) * z11
    }

    /// The inverses of `elements` with one field inversion (Montgomery's trick); nil when one is zero.
    static func inverses(_ elements: [FieldElement]) -> [FieldElement]? {
        var prefix = [FieldElement](repeating: .one, count: elements.count)
        var acc = FieldElement.one
        for (i, e) in elements.enumerated() {
            prefix[i] = acc
            acc = acc * e
        }
        if acc.isZero { return nil }
        var inverse = acc.inverse
        var out = prefix
        for i in stride(from: elements.count - 1, through: 0, by: -1) {
            out[i] = inverse * prefix[i]
            inverse = inverse * elements[i]
        }
        return out
    }

    /// self^((p-5)/8), for square roots.
    var pow22523: FieldElement { chain.z2_250_1.squared(times: 2) * self }
}
