// The Ed25519 verifier's double scalar multiplication (see ced25519.h). Limb bounds follow ref10:
// "tight" elements (products, carried values) have limbs below 2^51 + 2^20, "loose" ones (a sum or
// difference of two tight ones) below 2^54; products take loose inputs.
#include "ced25519.h"

typedef unsigned __int128 u128;
typedef struct { uint64_t v[5]; } fe;
typedef struct { fe x, y, z, t; } point; // extended (X:Y:Z:T), or completed ((X:Z),(Y:T))

#define MASK51 ((uint64_t)0x7ffffffffffff)

static inline fe fe_add(fe a, fe b) {
    fe r;
    for (int i = 0; i < 5; i++) r.v[i] = a.v[i] + b.v[i];
    return r;
}

// a - b for a tight b: 2p is added first so that no limb goes negative.
static inline fe fe_sub(fe a, fe b) {
    fe r;
    r.v[0] = (a.v[0] + 0xfffffffffffdaULL) - b.v[0];
    for (int i = 1; i < 5; i++) r.v[i] = (a.v[i] + 0xffffffffffffeULL) - b.v[i];
    return r;
}

static inline fe fe_reduce(u128 t0, u128 t1, u128 t2, u128 t3, u128 t4) {
    u128 u1 = t1 + (t0 >> 51);
    u128 u2 = t2 + (u1 >> 51);
    u128 u3 = t3 + (u2 >> 51);
    u128 u4 = t4 + (u3 >> 51);
    u128 u0 = (t0 & MASK51) + (u4 >> 51) * 19;
    fe r;
    r.v[0] = (uint64_t)u0 & MASK51;
    r.v[1] = ((uint64_t)u1 & MASK51) + (uint64_t)(u0 >> 51);
    r.v[2] = (uint64_t)u2 & MASK51;
    r.v[3] = (uint64_t)u3 & MASK51;
    r.v[4] = (uint64_t)u4 & MASK51;
    return r;
}

static inline fe fe_carry(fe a) { return fe_reduce(a.v[0], a.v[1], a.v[2], a.v[3], a.v[4]); }

static inline fe fe_mul(fe a, fe b) {
    uint64_t b1 = b.v[1] * 19, b2 = b.v[2] * 19, b3 = b.v[3] * 19, b4 = b.v[4] * 19;
    u128 t0 = (u128)a.v[0] * b.v[0] + (u128)a.v[1] * b4 + (u128)a.v[2] * b3 + (u128)a.v[3] * b2 + (u128)a.v[4] * b1;
    u128 t1 = (u128)a.v[0] * b.v[1] + (u128)a.v[1] * b.v[0] + (u128)a.v[2] * b4 + (u128)a.v[3] * b3 + (u128)a.v[4] * b2;
    u128 t2 = (u128)a.v[0] * b.v[2] + (u128)a.v[1] * b.v[1] + (u128)a.v[2] * b.v[0] + (u128)a.v[3] * b4 + (u128)a.v[4] * b3;
    u128 t3 = (u128)a.v[0] * b.v[3] + (u128)a.v[1] * b.v[2] + (u128)a.v[2] * b.v[1] + (u128)a.v[3] * b.v[0] + (u128)a.v[4] * b4;
    u128 t4 = (u128)a.v[0] * b.v[4] + (u128)a.v[1] * b.v[3] + (u128)a.v[2] * b.v[2] + (u128)a.v[3] * b.v[1] + (u128)a.v[4] * b.v[0];
    return fe_reduce(t0, t1, t2, t3, t4);
}

static inline fe fe_sq(fe a) {
    uint64_t l0 = a.v[0], l1 = a.v[1], l2 = a.v[2], l3 = a.v[3], l4 = a.v[4];
    uint64_t d0 = l0 * 2, d1 = l1 * 2, d4_19 = l4 * 38, l4_19 = l4 * 19, l3_19 = l3 * 19;
    u128 t0 = (u128)l0 * l0 + (u128)d1 * l4_19 + (u128)(l2 * 2) * l3_19;
    u128 t1 = (u128)d0 * l1 + (u128)l2 * d4_19 + (u128)l3 * l3_19;
    u128 t2 = (u128)d0 * l2 + (u128)l1 * l1 + (u128)l3 * d4_19;
    u128 t3 = (u128)d0 * l3 + (u128)d1 * l2 + (u128)l4 * l4_19;
    u128 t4 = (u128)d0 * l4 + (u128)d1 * l3 + (u128)l2 * l2;
    return fe_reduce(t0, t1, t2, t3, t4);
}

static inline fe fe_load(const uint64_t *v) {
    fe r;
    for (int i = 0; i < 5; i++) r.v[i] = v[i];
    return r;
}

// A completed point to extended: (X·T, Y·Z, Z·T, X·Y).
static inline point to_extended(point c) {
    point p = {fe_mul(c.x, c.t), fe_mul(c.y, c.z), fe_mul(c.z, c.t), fe_mul(c.x, c.y)};
    return p;
}

// ref10's ge_madd / ge_msub: p += digit · table[row][|digit| - 1] (nothing for a zero digit).
static inline void add_precomputed(point *p, const ced25519_precomputed *table, int row, int digit, int per_row) {
    if (digit == 0) return;
    int magnitude = digit > 0 ? digit : -digit;
    const ced25519_precomputed *q = &table[row * per_row + magnitude - 1];
    fe plus = fe_load(digit > 0 ? q->yplusx : q->yminusx);
    fe minus = fe_load(digit > 0 ? q->yminusx : q->yplusx);
    fe a = fe_mul(fe_add(p->y, p->x), plus);
    fe b = fe_mul(fe_sub(p->y, p->x), minus);
    fe c = fe_mul(fe_load(q->xy2d), p->t);
    fe d = fe_carry(fe_add(p->z, p->z));
    point r;
    r.x = fe_sub(a, b);
    r.y = fe_add(a, b);
    if (digit > 0) {
        r.z = fe_add(d, c);
        r.t = fe_sub(d, c);
    } else {
        r.z = fe_sub(d, c);
        r.t = fe_add(d, c);
    }
    *p = to_extended(r);
}

// ref10's ge_p2_dbl on (X:Y:Z), as a completed point.
static inline point doubled(fe x, fe y, fe z) {
    fe xx = fe_sq(x), yy = fe_sq(y);
    fe zz = fe_sq(z);
    fe zz2 = fe_carry(fe_add(zz, zz));
    fe t0 = fe_sq(fe_add(x, y));
    fe sum = fe_add(yy, xx), difference = fe_sub(yy, xx);
    point c = {fe_sub(t0, fe_carry(sum)), sum, difference, fe_sub(zz2, fe_carry(difference))};
    return c;
}

// Signed radix-16 digits in [-8, 8] of a scalar below 2^255 (ref10's ge_scalarmult_base).
static void radix16(const uint8_t a[32], int8_t e[64]) {
    for (int i = 0; i < 32; i++) {
        e[2 * i] = a[i] & 15;
        e[2 * i + 1] = (a[i] >> 4) & 15;
    }
    int8_t carry = 0;
    for (int i = 0; i < 63; i++) {
        e[i] += carry;
        carry = (int8_t)((e[i] + 8) >> 4);
        e[i] -= (int8_t)(carry << 4);
    }
    e[63] += carry;
}

// Signed radix-256 digits in [-128, 128] of a scalar below 2^253.
static void radix256(const uint8_t a[32], int16_t e[32]) {
    for (int i = 0; i < 32; i++) e[i] = a[i];
    for (int i = 0; i < 31; i++) {
        int16_t carry = (int16_t)((e[i] + 128) >> 8);
        e[i] -= (int16_t)(carry << 8);
        e[i + 1] += carry;
    }
}

void ced25519_double_scalar_multiply(const uint8_t k[32], const ced25519_precomputed *a_table, const uint8_t s[32],
                                     const ced25519_precomputed *base_table, uint64_t out[15]) {
    int8_t kd[64];
    int16_t sd[32];
    radix16(k, kd);
    radix256(s, sd);
    point p = {{{0}}, {{1}}, {{1}}, {{0}}};
    for (int i = 1; i < 64; i += 2) add_precomputed(&p, a_table, i / 2, kd[i], 8);
    // Four doublings: three to projective (X·T, Y·Z, Z·T), the last to extended.
    point c = doubled(p.x, p.y, p.z);
    for (int i = 0; i < 3; i++) c = doubled(fe_mul(c.x, c.t), fe_mul(c.y, c.z), fe_mul(c.z, c.t));
    point q = to_extended(c);
    for (int i = 0; i < 64; i += 2) add_precomputed(&q, a_table, i / 2, kd[i], 8);
    for (int i = 0; i < 32; i++) add_precomputed(&q, base_table, i, sd[i], 128);
    for (int i = 0; i < 5; i++) {
        out[i] = q.x.v[i];
        out[5 + i] = q.y.v[i];
        out[10 + i] = q.z.v[i];
    }
}

// ---------------------------------------------------------------------------------------------
// Eight multiplications at once with AVX-512 IFMA: each 64-bit lane of a vector is one item, with
// the same limbs and the same formulas as above. IFMA multiplies the low 52 bits of its operands and
// gives the product's low or high 52 bits: a loose element (limbs up to 2^54) is carried before it
// is multiplied, and the high half of a limb product (weight 2^52 = 2·2^51) counts twice in the
// next column. A zero digit adds the identity (1, 1, 0): the same point, another representation.

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define IFMA_TARGET __attribute__((target("avx512f,avx512ifma,avx512dq")))

typedef struct { __m512i l[5]; } fe8;
typedef struct { fe8 x, y, z, t; } point8;

IFMA_TARGET static inline fe8 fe8_add(fe8 a, fe8 b) {
    fe8 r;
    for (int i = 0; i < 5; i++) r.l[i] = _mm512_add_epi64(a.l[i], b.l[i]);
    return r;
}

IFMA_TARGET static inline fe8 fe8_sub(fe8 a, fe8 b) {
    fe8 r;
    r.l[0] = _mm512_sub_epi64(_mm512_add_epi64(a.l[0], _mm512_set1_epi64(0xfffffffffffdaLL)), b.l[0]);
    for (int i = 1; i < 5; i++) r.l[i] = _mm512_sub_epi64(_mm512_add_epi64(a.l[i], _mm512_set1_epi64(0xffffffffffffeLL)), b.l[i]);
    return r;
}

IFMA_TARGET static inline __m512i times19(__m512i x) {
    return _mm512_add_epi64(_mm512_add_epi64(_mm512_slli_epi64(x, 4), _mm512_slli_epi64(x, 1)), x);
}

// Loose (limbs below 2^62) to tight.
IFMA_TARGET static inline fe8 fe8_carry(fe8 a) {
    const __m512i mask = _mm512_set1_epi64((long long)MASK51);
    __m512i c;
    for (int i = 0; i < 4; i++) {
        c = _mm512_srli_epi64(a.l[i], 51);
        a.l[i] = _mm512_and_si512(a.l[i], mask);
        a.l[i + 1] = _mm512_add_epi64(a.l[i + 1], c);
    }
    c = _mm512_srli_epi64(a.l[4], 51);
    a.l[4] = _mm512_and_si512(a.l[4], mask);
    a.l[0] = _mm512_add_epi64(a.l[0], times19(c));
    c = _mm512_srli_epi64(a.l[0], 51);
    a.l[0] = _mm512_and_si512(a.l[0], mask);
    a.l[1] = _mm512_add_epi64(a.l[1], c);
    return a;
}

// a·b for tight a and b (limbs below 2^52); the result is tight.
IFMA_TARGET static inline fe8 fe8_mul(fe8 a, fe8 b) {
    __m512i lo[9], hi[9];
    for (int k = 0; k < 9; k++) lo[k] = hi[k] = _mm512_setzero_si512();
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < 5; j++) {
            lo[i + j] = _mm512_madd52lo_epu64(lo[i + j], a.l[i], b.l[j]);
            hi[i + j] = _mm512_madd52hi_epu64(hi[i + j], a.l[i], b.l[j]);
        }
    }
    // Column k (weight 2^(51k)) holds lo[k] + 2·hi[k-1]; columns 5..9 wrap around times 19.
    __m512i col[10];
    col[0] = lo[0];
    for (int k = 1; k < 9; k++) col[k] = _mm512_add_epi64(lo[k], _mm512_slli_epi64(hi[k - 1], 1));
    col[9] = _mm512_slli_epi64(hi[8], 1);
    fe8 r;
    for (int k = 0; k < 5; k++) r.l[k] = _mm512_add_epi64(col[k], times19(col[k + 5]));
    return fe8_carry(r);
}

IFMA_TARGET static inline point8 to_extended8(point8 c) {
    fe8 x = fe8_carry(c.x), y = fe8_carry(c.y), z = fe8_carry(c.z), t = fe8_carry(c.t);
    point8 p = {fe8_mul(x, t), fe8_mul(y, z), fe8_mul(z, t), fe8_mul(x, y)};
    return p;
}

// The completed point of doubling (X:Y:Z), all tight.
IFMA_TARGET static inline point8 doubled8(fe8 x, fe8 y, fe8 z) {
    fe8 xx = fe8_mul(x, x), yy = fe8_mul(y, y), zz = fe8_mul(z, z);
    fe8 zz2 = fe8_carry(fe8_add(zz, zz));
    fe8 xy = fe8_carry(fe8_add(x, y));
    fe8 t0 = fe8_mul(xy, xy);
    fe8 sum = fe8_add(yy, xx), difference = fe8_sub(yy, xx);
    point8 c = {fe8_sub(t0, fe8_carry(sum)), sum, difference, fe8_sub(zz2, fe8_carry(difference))};
    return c;
}

static const ced25519_precomputed identity_entry = {{1, 0, 0, 0, 0}, {1, 0, 0, 0, 0}, {0, 0, 0, 0, 0}};

// p += the entries at `address` (one per lane), negated in the lanes of `negative`.
IFMA_TARGET static inline void add_precomputed8(point8 *p, __m512i address, __mmask8 negative) {
    fe8 ypx, ymx, xy2d;
    for (int i = 0; i < 5; i++) {
        ypx.l[i] = _mm512_i64gather_epi64(_mm512_add_epi64(address, _mm512_set1_epi64(8 * i)), (const void *)0, 1);
        ymx.l[i] = _mm512_i64gather_epi64(_mm512_add_epi64(address, _mm512_set1_epi64(40 + 8 * i)), (const void *)0, 1);
        xy2d.l[i] = _mm512_i64gather_epi64(_mm512_add_epi64(address, _mm512_set1_epi64(80 + 8 * i)), (const void *)0, 1);
    }
    fe8 plus, minus;
    for (int i = 0; i < 5; i++) {
        plus.l[i] = _mm512_mask_blend_epi64(negative, ypx.l[i], ymx.l[i]);
        minus.l[i] = _mm512_mask_blend_epi64(negative, ymx.l[i], ypx.l[i]);
    }
    fe8 a = fe8_mul(fe8_carry(fe8_add(p->y, p->x)), plus);
    fe8 b = fe8_mul(fe8_carry(fe8_sub(p->y, p->x)), minus);
    fe8 c = fe8_mul(xy2d, p->t);
    fe8 d = fe8_carry(fe8_add(p->z, p->z));
    fe8 dc = fe8_add(d, c), d_c = fe8_sub(d, c);
    point8 r;
    r.x = fe8_sub(a, b);
    r.y = fe8_add(a, b);
    for (int i = 0; i < 5; i++) {
        r.z.l[i] = _mm512_mask_blend_epi64(negative, dc.l[i], d_c.l[i]);
        r.t.l[i] = _mm512_mask_blend_epi64(negative, d_c.l[i], dc.l[i]);
    }
    *p = to_extended8(r);
}

// The addresses and signs of the entries for one digit position of every lane.
static inline void entries8(const ced25519_precomputed *const tables[8], int row, int per_row, const int digits[8], uint64_t address[8],
                            unsigned *negative) {
    unsigned mask = 0;
    for (int lane = 0; lane < 8; lane++) {
        int d = digits[lane];
        if (d == 0) {
            address[lane] = (uint64_t)(uintptr_t)&identity_entry;
            continue;
        }
        int magnitude = d > 0 ? d : -d;
        if (d < 0) mask |= 1u << lane;
        address[lane] = (uint64_t)(uintptr_t)&tables[lane][row * per_row + magnitude - 1];
    }
    *negative = mask;
}

IFMA_TARGET static void double_scalar_multiply8(const uint8_t *k[8], const ced25519_precomputed *const a_tables[8], const uint8_t *s[8],
                                                const ced25519_precomputed *base_table, uint64_t *out[8]) {
    int8_t kd[8][64];
    int16_t sd[8][32];
    for (int lane = 0; lane < 8; lane++) {
        radix16(k[lane], kd[lane]);
        radix256(s[lane], sd[lane]);
    }
    const ced25519_precomputed *base_tables[8];
    for (int lane = 0; lane < 8; lane++) base_tables[lane] = base_table;
    point8 p;
    for (int i = 0; i < 5; i++) {
        p.x.l[i] = p.t.l[i] = _mm512_setzero_si512();
        p.y.l[i] = p.z.l[i] = _mm512_set1_epi64(i == 0 ? 1 : 0);
    }
    uint64_t address[8] __attribute__((aligned(64)));
    int digits[8];
    unsigned negative;
    for (int i = 1; i < 64; i += 2) {
        for (int lane = 0; lane < 8; lane++) digits[lane] = kd[lane][i];
        entries8(a_tables, i / 2, 8, digits, address, &negative);
        add_precomputed8(&p, _mm512_load_si512(address), (__mmask8)negative);
    }
    point8 c = doubled8(p.x, p.y, p.z);
    for (int i = 0; i < 3; i++) {
        fe8 x = fe8_carry(c.x), y = fe8_carry(c.y), z = fe8_carry(c.z), t = fe8_carry(c.t);
        c = doubled8(fe8_mul(x, t), fe8_mul(y, z), fe8_mul(z, t));
    }
    point8 q = to_extended8(c);
    for (int i = 0; i < 64; i += 2) {
        for (int lane = 0; lane < 8; lane++) digits[lane] = kd[lane][i];
        entries8(a_tables, i / 2, 8, digits, address, &negative);
        add_precomputed8(&q, _mm512_load_si512(address), (__mmask8)negative);
    }
    for (int i = 0; i < 32; i++) {
        for (int lane = 0; lane < 8; lane++) digits[lane] = sd[lane][i];
        entries8(base_tables, i, 128, digits, address, &negative);
        add_precomputed8(&q, _mm512_load_si512(address), (__mmask8)negative);
    }
    uint64_t limbs[15][8] __attribute__((aligned(64)));
    for (int i = 0; i < 5; i++) {
        _mm512_store_si512(limbs[i], q.x.l[i]);
        _mm512_store_si512(limbs[5 + i], q.y.l[i]);
        _mm512_store_si512(limbs[10 + i], q.z.l[i]);
    }
    for (int lane = 0; lane < 8; lane++)
        for (int i = 0; i < 15; i++) out[lane][i] = limbs[i][lane];
}

static int ifma_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma") && __builtin_cpu_supports("avx512dq");
}
#else
static int ifma_supported(void) { return 0; }
#endif

static int ifma_state = -1; // -1: not probed yet; a race only probes twice

int ced25519_ifma_active(void) {
    if (ifma_state < 0) ifma_state = ifma_supported();
    return ifma_state;
}

void ced25519_use_ifma(int on) { ifma_state = on ? ifma_supported() : 0; }

void ced25519_double_scalar_multiply_many(size_t n, const uint8_t *k, const ced25519_precomputed *const *a_tables, const uint8_t *s,
                                          const ced25519_precomputed *base_table, uint64_t *out) {
    size_t i = 0;
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    if (n >= 4 && ced25519_ifma_active()) {
        uint64_t spare[8][15];
        for (; i < n; i += 8) {
            const uint8_t *ks[8], *ss[8];
            const ced25519_precomputed *tables[8];
            uint64_t *outs[8];
            for (int lane = 0; lane < 8; lane++) {
                size_t item = i + (size_t)lane < n ? i + (size_t)lane : n - 1; // a short last group repeats its last item
                ks[lane] = k + 32 * item;
                ss[lane] = s + 32 * item;
                tables[lane] = a_tables[item];
                outs[lane] = i + (size_t)lane < n ? out + 15 * item : spare[lane];
            }
            double_scalar_multiply8(ks, tables, ss, base_table, outs);
        }
        return;
    }
#endif
    for (; i < n; i++) ced25519_double_scalar_multiply(k + 32 * i, a_tables[i], s + 32 * i, base_table, out + 15 * i);
}
