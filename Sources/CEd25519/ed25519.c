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
