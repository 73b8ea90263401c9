// HDF5's shuffle filter (byte k of every element to plane k) for the writers, with SSE2 for
// 2- and 4-byte elements. Each 16-element group is a small byte matrix transposed by four rounds
// of byte interleaves (unpacklo/hi_epi8): a round moves the top bit of the byte index within a
// vector to the vector index and the paired vector's index bit to the bottom; after four rounds
// the element number is the byte index and the byte number the vector index.
#include "emc_deflate.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static void shuffle_scalar(const uint8_t *src, uint8_t *dst, size_t from, size_t n, size_t e) {
    for (size_t i = from; i < n; i++)
        for (size_t k = 0; k < e; k++) dst[k * n + i] = src[i * e + k];
}

#ifdef __SSE2__
// One round on the pair (x, y): x <- interleave of their low halves, y <- of their high halves.
#define ROUND(x, y) do { __m128i lo_ = _mm_unpacklo_epi8(x, y); y = _mm_unpackhi_epi8(x, y); x = lo_; } while (0)
#endif

void emc_shuffle(const void *srcv, void *dstv, size_t n, size_t e) {
    const uint8_t *src = srcv;
    uint8_t *dst = dstv;
    size_t i = 0;
#ifdef __SSE2__
    if (e == 2) {
        // Vector v, byte w of 16 elements e3..e0, bytes k: v = e3, w = (e2 e1 e0 k); four rounds
        // on the one pair give v = k, w = (e3 e2 e1 e0).
        for (; i + 16 <= n; i += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(src + 2 * i));
            __m128i b = _mm_loadu_si128((const __m128i *)(src + 2 * i + 16));
            ROUND(a, b); ROUND(a, b); ROUND(a, b); ROUND(a, b);
            _mm_storeu_si128((__m128i *)(dst + i), a);
            _mm_storeu_si128((__m128i *)(dst + n + i), b);
        }
    } else if (e == 4) {
        // v = (e3 e2), w = (e1 e0 k1 k0); rounds pairing on the high then the low vector bit,
        // twice, give v = (k1 k0), w = (e3 e2 e1 e0).
        for (; i + 16 <= n; i += 16) {
            __m128i v0 = _mm_loadu_si128((const __m128i *)(src + 4 * i));
            __m128i v1 = _mm_loadu_si128((const __m128i *)(src + 4 * i + 16));
            __m128i v2 = _mm_loadu_si128((const __m128i *)(src + 4 * i + 32));
            __m128i v3 = _mm_loadu_si128((const __m128i *)(src + 4 * i + 48));
            ROUND(v0, v2); ROUND(v1, v3);  // pair on the high vector bit
            ROUND(v0, v1); ROUND(v2, v3);  // on the low one
            ROUND(v0, v2); ROUND(v1, v3);
            ROUND(v0, v1); ROUND(v2, v3);
            _mm_storeu_si128((__m128i *)(dst + i), v0);
            _mm_storeu_si128((__m128i *)(dst + n + i), v1);
            _mm_storeu_si128((__m128i *)(dst + 2 * n + i), v2);
            _mm_storeu_si128((__m128i *)(dst + 3 * n + i), v3);
        }
    }
#endif
    shuffle_scalar(src, dst, i, n, e);
}
