// Bit transposition of one bitshuffle block (HDF5 filter 32008), vectorized: SSE2 (always on
// x86-64), AVX2 when the CPU has it (chosen at run time), and portable C elsewhere.
// Layout: a block of n elements (n a multiple of 8) of e bytes becomes 8*e rows of n/8 bytes;
// bit k of byte j of element i is bit (i mod 8) of byte (i div 8) of row 8*j + k.
#ifndef EMC_BITSHUFFLE_H
#define EMC_BITSHUFFLE_H
#include <stddef.h>

/// Implementations; EMC_BS_BEST is the fastest the CPU runs.
enum { EMC_BS_BEST = 0, EMC_BS_SCALAR = 1, EMC_BS_SSE2 = 2, EMC_BS_AVX2 = 3 };

/// The implementation EMC_BS_BEST selects on this CPU ("avx2", "sse2" or "scalar").
const char *emc_bitshuffle_isa(void);
/// Whether `isa` can run on this CPU.
int emc_bitshuffle_isa_available(int isa);

/// Transposes n elements of e bytes at src into dst (n*e bytes). tmp: n*e bytes of scratch.
/// Buffers must not overlap. n must be a multiple of 8.
void emc_bitshuffle(const void *src, void *dst, size_t n, size_t e, void *tmp, int isa);
/// The inverse of emc_bitshuffle.
void emc_bitunshuffle(const void *src, void *dst, size_t n, size_t e, void *tmp, int isa);

/// The byte transposition alone (HDF5's shuffle filter, numcodecs Shuffle): byte j of element i
/// goes to dst[j * n + i]; SSE2 for e = 2 and 4 on x86-64. Bytes after n * e are the caller's.
void emc_byte_shuffle(const void *src, void *dst, size_t n, size_t e);
/// Its inverse.
void emc_byte_unshuffle(const void *src, void *dst, size_t n, size_t e);

#endif
