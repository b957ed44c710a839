#ifndef CSHA256_H
#define CSHA256_H

#include <stddef.h>
#include <stdint.h>

/// SHA-256 (FIPS 180-4) for the ledger's many small hashes: Merkle nodes, keys, ids. Uses the x86
/// SHA extensions when the CPU has them, portable C otherwise. No allocation.
typedef struct {
    uint32_t state[8];
    uint64_t length;   // bytes hashed so far
    uint8_t buffer[64];
    uint32_t buffered; // bytes in buffer
} csha256_ctx;

void csha256_init(csha256_ctx *ctx);
void csha256_update(csha256_ctx *ctx, const void *data, size_t length);
void csha256_final(csha256_ctx *ctx, uint8_t digest[32]);
void csha256(const void *data, size_t length, uint8_t digest[32]);
/// SHA-256(prefix || a || b) with a and b 32 bytes each: a Merkle node.
void csha256_node(uint8_t prefix, const uint8_t a[32], const uint8_t b[32], uint8_t digest[32]);

/// 1 when the SHA extensions are in use. `csha256_use_extensions(0)` forces the portable code
/// (tests compare both); 1 goes back to the extensions when the CPU has them.
int csha256_extensions_active(void);
void csha256_use_extensions(int on);

#endif
