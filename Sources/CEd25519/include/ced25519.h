#ifndef CED25519_H
#define CED25519_H

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

#endif
