// A fast deflate encoder for byte-shuffled chunks (emconv's `gzip:1`). The output is one standard
// zlib stream (RFC 1950/1951) that any inflate decodes. Each byte plane of the shuffled chunk is
// classified on a small sample and coded as stored blocks (noise), run-length matches at distance 1
// with dynamic Huffman codes (sparse/zero-dominated planes with long runs), Huffman-coded literals
// (low-entropy planes in short runs, e.g. float exponents), or, from the
// first plane where LZ77 clearly wins, libdeflate level 1 for the rest of the chunk. Levels 2-9
// store near-random planes only and give the rest to libdeflate at that level.
#ifndef EMC_DEFLATE_H
#define EMC_DEFLATE_H
#include <stddef.h>
#include <stdint.h>

typedef struct emc_deflate emc_deflate;

/// Plane coding modes, as counted in emc_deflate_stats.
enum { EMC_DEFLATE_STORED = 0, EMC_DEFLATE_RLE = 1, EMC_DEFLATE_LZ = 2, EMC_DEFLATE_LITERAL = 3, EMC_DEFLATE_PERIOD = 4 };

/// A compressor with its scratch memory (about 400 KiB); NULL when out of memory. One per thread.
emc_deflate *emc_deflate_alloc(void);
void emc_deflate_free(emc_deflate *c);

/// The largest output of emc_deflate_zlib for n bytes in `planes` planes.
size_t emc_deflate_bound(emc_deflate *c, size_t n, size_t planes);

/// Compresses n bytes, seen as `planes` equal planes (the last also takes the n % planes tail
/// bytes), into one zlib stream at dst. Returns its size, or 0 when it does not fit in capacity.
size_t emc_deflate_zlib(emc_deflate *c, const void *src, size_t n, size_t planes, void *dst, size_t capacity);

/// The same for deflate level 2-9: noise planes are stored, and from the first other plane on the
/// chunk is libdeflate at that level (exactly its output when the first plane is not noise).
size_t emc_deflate_zlib_level(emc_deflate *c, const void *src, size_t n, size_t planes, int level, void *dst, size_t capacity);

/// emc_deflate_zlib for a chunk of stacked frames whose bands hold `period` elements each (at most
/// 32768: deflate's window): planes that mostly repeat the byte one period before (the same pixel
/// of the previous frame: sparse detectors after a dark/gain correction) are coded as matches at
/// that distance. period 0: emc_deflate_zlib.
size_t emc_deflate_zlib_period(emc_deflate *c, const void *src, size_t n, size_t planes, size_t period, void *dst, size_t capacity);

/// How many planes the last emc_deflate_zlib call coded in each mode (index: EMC_DEFLATE_*).
void emc_deflate_stats(const emc_deflate *c, size_t counts[5]);

#endif
