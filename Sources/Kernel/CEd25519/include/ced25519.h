#ifndef CED25519_H
#define CED25519_H

#include <stddef.h>
#include <stdint.h>

/// The inner loop of the ledger's Ed25519 verifier (`Ed25519Verifier` in LedgerCore): GF(2^255-19)
/// in five 51-bit limbs and the group formulas of ref10 (BoringSSL's curve25519.c), the same steps
/// as the Swift code that builds the tables. Variable time: it only ever sees public data.

/// An affine point as (y+x, y-x, 2dxy), 15 limbs: the layout of LedgerCore's `Precomputed`.
typedef struct {
    uint64_t yplusx[5], yminusx[5], xy2d[5];
} ced25519_precomputed;

/// [k]A' + [s]B as projective (X, Y, Z) in `out` (15 limbs), where `a_table` holds
/// (j+1)·256^i·A' for i < 32, j < 8 and `base_table` (j+1)·256^i·B for i < 32, j < 128.
/// k < 2^255 and s < 2^253, both 32 bytes little-endian.
void ced25519_double_scalar_multiply(const uint8_t k[32], const ced25519_precomputed *a_table, const uint8_t s[32],
                                     const ced25519_precomputed *base_table, uint64_t out[15]);

/// The same for `n` items: item i multiplies k + 32i by a_tables[i] and s + 32i, into out + 15i.
/// With AVX-512 IFMA (checked at run time) eight items go at once, one per 64-bit lane.
void ced25519_double_scalar_multiply_many(size_t n, const uint8_t *k, const ced25519_precomputed *const *a_tables, const uint8_t *s,
                                          const ced25519_precomputed *base_table, uint64_t *out);

/// 1 when the AVX-512 IFMA code is in use. `ced25519_use_ifma(0)` forces the portable code (tests
/// compare both); 1 goes back to IFMA when the CPU has it.
int ced25519_ifma_active(void);
void ced25519_use_ifma(int on);

#endif
