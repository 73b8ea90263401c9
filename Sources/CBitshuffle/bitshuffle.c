// Bit transposition for bitshuffle blocks; see include/emc_bitshuffle.h for the layout.
// Each direction is two steps: a byte transposition (n elements of e bytes <-> e byte planes of
// n bytes) and a bit transposition of every plane (n bytes <-> 8 rows of n/8 bytes).
// SSE2: planes -> rows with movemask (16 elements' bit k in one instruction); rows -> planes by
// interleaving the 8 rows into one 64-bit word per 8 elements (unpack), then an 8x8 bit
// transposition in each 64-bit lane (shift/xor/mask). AVX2 does the same 32 bytes at a time.
#include "emc_bitshuffle.h"

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "emc_bitshuffle assumes a little-endian CPU"
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EMC_X86 1
#endif

static inline uint64_t load64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline void store64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/// 8x8 bit matrix in a word: bit c of byte r <-> bit r of byte c.
static inline uint64_t transpose8(uint64_t x) {
    uint64_t t;
    t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAULL;
    x ^= t ^ (t << 7);
    t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCULL;
    x ^= t ^ (t << 14);
    t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ULL;
    x ^= t ^ (t << 28);
    return x;
}

// MARK: portable C

static inline void bytes_to_planes_scalar(const uint8_t *s, uint8_t *d, size_t n, size_t e, size_t from) {
    for (size_t i = from; i < n; i++)
        for (size_t j = 0; j < e; j++) d[j * n + i] = s[i * e + j];
}

static inline void planes_to_bytes_scalar(const uint8_t *s, uint8_t *d, size_t n, size_t e, size_t from) {
    for (size_t i = from; i < n; i++)
        for (size_t j = 0; j < e; j++) d[i * e + j] = s[j * n + i];
}

/// Plane of n bytes -> 8 rows of n/8 bytes (row k at rows + k*n/8), groups of 8 from `g0`.
static inline void plane_to_rows_scalar(const uint8_t *p, uint8_t *rows, size_t n, size_t g0) {
    size_t r = n / 8;
    for (size_t g = g0; g < r; g++) {
        uint64_t x = load64(p + 8 * g);
        if (x) x = transpose8(x);
        for (int k = 0; k < 8; k++) rows[k * r + g] = (uint8_t)(x >> (8 * k));
    }
}

static inline void rows_to_plane_scalar(const uint8_t *rows, uint8_t *p, size_t n, size_t g0) {
    size_t r = n / 8;
    for (size_t g = g0; g < r; g++) {
        uint64_t x = 0;
        for (int k = 0; k < 8; k++) x |= (uint64_t)rows[k * r + g] << (8 * k);
        if (x) x = transpose8(x);
        store64(p + 8 * g, x);
    }
}

/// Portable whole-block paths: per group of 8 elements and byte j, the 8 bytes gathered into a
/// word, transposed and scattered to the 8 rows (no byte-plane pass).
/// Zero groups (most of a sparse frame) cost one test: the output starts zeroed.
static void shuffle_scalar(const uint8_t *s, uint8_t *d, size_t n, size_t e) {
    size_t r = n / 8;
    memset(d, 0, n * e);
    for (size_t g = 0; g < r; g++) {
        const uint8_t *b = s + 8 * g * e;
        uint64_t any = 0;
        for (size_t w = 0; w < e; w++) any |= load64(b + 8 * w);
        if (!any) continue;
        for (size_t j = 0; j < e; j++) {
            uint64_t x = 0;
            for (int m = 0; m < 8; m++) x |= (uint64_t)b[m * e + j] << (8 * m);
            if (!x) continue;
            x = transpose8(x);
            uint8_t *o = d + 8 * j * r + g;
            for (int k = 0; k < 8; k++) o[k * r] = (uint8_t)(x >> (8 * k));
        }
    }
}

static void unshuffle_scalar(const uint8_t *s, uint8_t *d, size_t n, size_t e) {
    size_t r = n / 8;
    for (size_t g = 0; g < r; g++) {
        uint8_t *b = d + 8 * g * e;
        for (size_t j = 0; j < e; j++) {
            const uint8_t *q = s + 8 * j * r + g;
            uint64_t x = 0;
            for (int k = 0; k < 8; k++) x |= (uint64_t)q[k * r] << (8 * k);
            if (!x) {
                for (int m = 0; m < 8; m++) b[m * e + j] = 0;
                continue;
            }
            x = transpose8(x);
            for (int m = 0; m < 8; m++) b[m * e + j] = (uint8_t)(x >> (8 * m));
        }
    }
}

#ifdef EMC_X86

// MARK: SSE2 (part of x86-64 itself)

static void bytes_to_planes_sse2(const uint8_t *s, uint8_t *d, size_t n, size_t e) {
    const __m128i m = _mm_set1_epi16(0x00FF);
    size_t i = 0;
    if (e == 2) {
        for (; i + 16 <= n; i += 16) {
            __m128i v0 = _mm_loadu_si128((const __m128i *)(s + 2 * i));
            __m128i v1 = _mm_loadu_si128((const __m128i *)(s + 2 * i + 16));
            _mm_storeu_si128((__m128i *)(d + i), _mm_packus_epi16(_mm_and_si128(v0, m), _mm_and_si128(v1, m)));
            _mm_storeu_si128((__m128i *)(d + n + i), _mm_packus_epi16(_mm_srli_epi16(v0, 8), _mm_srli_epi16(v1, 8)));
        }
    } else if (e == 4) {
        for (; i + 16 <= n; i += 16) {
            const uint8_t *q = s + 4 * i;
            __m128i v0 = _mm_loadu_si128((const __m128i *)q), v1 = _mm_loadu_si128((const __m128i *)(q + 16));
            __m128i v2 = _mm_loadu_si128((const __m128i *)(q + 32)), v3 = _mm_loadu_si128((const __m128i *)(q + 48));
            // Bytes 0, 2 and bytes 1, 3 of each element, then each pair split again.
            __m128i l01 = _mm_packus_epi16(_mm_and_si128(v0, m), _mm_and_si128(v1, m));
            __m128i l23 = _mm_packus_epi16(_mm_and_si128(v2, m), _mm_and_si128(v3, m));
            __m128i h01 = _mm_packus_epi16(_mm_srli_epi16(v0, 8), _mm_srli_epi16(v1, 8));
            __m128i h23 = _mm_packus_epi16(_mm_srli_epi16(v2, 8), _mm_srli_epi16(v3, 8));
            _mm_storeu_si128((__m128i *)(d + i), _mm_packus_epi16(_mm_and_si128(l01, m), _mm_and_si128(l23, m)));
            _mm_storeu_si128((__m128i *)(d + 2 * n + i), _mm_packus_epi16(_mm_srli_epi16(l01, 8), _mm_srli_epi16(l23, 8)));
            _mm_storeu_si128((__m128i *)(d + n + i), _mm_packus_epi16(_mm_and_si128(h01, m), _mm_and_si128(h23, m)));
            _mm_storeu_si128((__m128i *)(d + 3 * n + i), _mm_packus_epi16(_mm_srli_epi16(h01, 8), _mm_srli_epi16(h23, 8)));
        }
    }
    bytes_to_planes_scalar(s, d, n, e, i);
}

static void planes_to_bytes_sse2(const uint8_t *s, uint8_t *d, size_t n, size_t e) {
    size_t i = 0;
    if (e == 2) {
        for (; i + 16 <= n; i += 16) {
            __m128i p0 = _mm_loadu_si128((const __m128i *)(s + i)), p1 = _mm_loadu_si128((const __m128i *)(s + n + i));
            _mm_storeu_si128((__m128i *)(d + 2 * i), _mm_unpacklo_epi8(p0, p1));
            _mm_storeu_si128((__m128i *)(d + 2 * i + 16), _mm_unpackhi_epi8(p0, p1));
        }
    } else if (e == 4) {
        for (; i + 16 <= n; i += 16) {
            __m128i p0 = _mm_loadu_si128((const __m128i *)(s + i)), p1 = _mm_loadu_si128((const __m128i *)(s + n + i));
            __m128i p2 = _mm_loadu_si128((const __m128i *)(s + 2 * n + i)), p3 = _mm_loadu_si128((const __m128i *)(s + 3 * n + i));
            __m128i x01l = _mm_unpacklo_epi8(p0, p1), x01h = _mm_unpackhi_epi8(p0, p1);
            __m128i x23l = _mm_unpacklo_epi8(p2, p3), x23h = _mm_unpackhi_epi8(p2, p3);
            uint8_t *q = d + 4 * i;
            _mm_storeu_si128((__m128i *)q, _mm_unpacklo_epi16(x01l, x23l));
            _mm_storeu_si128((__m128i *)(q + 16), _mm_unpackhi_epi16(x01l, x23l));
            _mm_storeu_si128((__m128i *)(q + 32), _mm_unpacklo_epi16(x01h, x23h));
            _mm_storeu_si128((__m128i *)(q + 48), _mm_unpackhi_epi16(x01h, x23h));
        }
    }
    planes_to_bytes_scalar(s, d, n, e, i);
}

static void plane_to_rows_sse2(const uint8_t *p, uint8_t *rows, size_t n) {
    size_t r = n / 8, i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
        for (int k = 7; k >= 0; k--) {
            uint16_t b = (uint16_t)_mm_movemask_epi8(v);  // bit 7 of each byte: bit k before k shifts
            memcpy(rows + k * r + i / 8, &b, 2);
            v = _mm_add_epi8(v, v);
        }
    }
    plane_to_rows_scalar(p, rows, n, i / 8);
}

static inline __m128i transpose8_sse2(__m128i x) {
    __m128i t;
    t = _mm_and_si128(_mm_xor_si128(x, _mm_srli_epi64(x, 7)), _mm_set1_epi64x(0x00AA00AA00AA00AALL));
    x = _mm_xor_si128(x, _mm_xor_si128(t, _mm_slli_epi64(t, 7)));
    t = _mm_and_si128(_mm_xor_si128(x, _mm_srli_epi64(x, 14)), _mm_set1_epi64x(0x0000CCCC0000CCCCLL));
    x = _mm_xor_si128(x, _mm_xor_si128(t, _mm_slli_epi64(t, 14)));
    t = _mm_and_si128(_mm_xor_si128(x, _mm_srli_epi64(x, 28)), _mm_set1_epi64x(0x00000000F0F0F0F0LL));
    x = _mm_xor_si128(x, _mm_xor_si128(t, _mm_slli_epi64(t, 28)));
    return x;
}

/// 16 groups of 8 elements at a time: the 8 rows' bytes of a group interleaved into one word
/// (byte k = row k), then each word's bits transposed: byte m is element m.
static void rows_to_plane_sse2(const uint8_t *rows, uint8_t *p, size_t n, size_t g0) {
    size_t r = n / 8, g = g0;
    const __m128i zero = _mm_setzero_si128();
    for (; g + 16 <= r; g += 16) {
        const uint8_t *q = rows + g;
        __m128i r0 = _mm_loadu_si128((const __m128i *)q), r1 = _mm_loadu_si128((const __m128i *)(q + r));
        __m128i r2 = _mm_loadu_si128((const __m128i *)(q + 2 * r)), r3 = _mm_loadu_si128((const __m128i *)(q + 3 * r));
        __m128i r4 = _mm_loadu_si128((const __m128i *)(q + 4 * r)), r5 = _mm_loadu_si128((const __m128i *)(q + 5 * r));
        __m128i r6 = _mm_loadu_si128((const __m128i *)(q + 6 * r)), r7 = _mm_loadu_si128((const __m128i *)(q + 7 * r));
        uint8_t *o = p + 8 * g;
        __m128i any = _mm_or_si128(_mm_or_si128(_mm_or_si128(r0, r1), _mm_or_si128(r2, r3)),
                                   _mm_or_si128(_mm_or_si128(r4, r5), _mm_or_si128(r6, r7)));
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(any, zero)) == 0xFFFF) {
            memset(o, 0, 128);
            continue;
        }
        __m128i a01l = _mm_unpacklo_epi8(r0, r1), a01h = _mm_unpackhi_epi8(r0, r1);
        __m128i a23l = _mm_unpacklo_epi8(r2, r3), a23h = _mm_unpackhi_epi8(r2, r3);
        __m128i a45l = _mm_unpacklo_epi8(r4, r5), a45h = _mm_unpackhi_epi8(r4, r5);
        __m128i a67l = _mm_unpacklo_epi8(r6, r7), a67h = _mm_unpackhi_epi8(r6, r7);
        __m128i b03a = _mm_unpacklo_epi16(a01l, a23l), b03b = _mm_unpackhi_epi16(a01l, a23l);
        __m128i b03c = _mm_unpacklo_epi16(a01h, a23h), b03d = _mm_unpackhi_epi16(a01h, a23h);
        __m128i b47a = _mm_unpacklo_epi16(a45l, a67l), b47b = _mm_unpackhi_epi16(a45l, a67l);
        __m128i b47c = _mm_unpacklo_epi16(a45h, a67h), b47d = _mm_unpackhi_epi16(a45h, a67h);
        _mm_storeu_si128((__m128i *)o, transpose8_sse2(_mm_unpacklo_epi32(b03a, b47a)));
        _mm_storeu_si128((__m128i *)(o + 16), transpose8_sse2(_mm_unpackhi_epi32(b03a, b47a)));
        _mm_storeu_si128((__m128i *)(o + 32), transpose8_sse2(_mm_unpacklo_epi32(b03b, b47b)));
        _mm_storeu_si128((__m128i *)(o + 48), transpose8_sse2(_mm_unpackhi_epi32(b03b, b47b)));
        _mm_storeu_si128((__m128i *)(o + 64), transpose8_sse2(_mm_unpacklo_epi32(b03c, b47c)));
        _mm_storeu_si128((__m128i *)(o + 80), transpose8_sse2(_mm_unpackhi_epi32(b03c, b47c)));
        _mm_storeu_si128((__m128i *)(o + 96), transpose8_sse2(_mm_unpacklo_epi32(b03d, b47d)));
        _mm_storeu_si128((__m128i *)(o + 112), transpose8_sse2(_mm_unpackhi_epi32(b03d, b47d)));
    }
    rows_to_plane_scalar(rows, p, n, g);
}

// MARK: AVX2 (chosen at run time: not every x86-64 CPU has it)

#define EMC_AVX2 __attribute__((target("avx2")))

EMC_AVX2 static void plane_to_rows_avx2(const uint8_t *p, uint8_t *rows, size_t n) {
    size_t r = n / 8, i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(p + i));
        for (int k = 7; k >= 0; k--) {
            uint32_t b = (uint32_t)_mm256_movemask_epi8(v);
            memcpy(rows + k * r + i / 8, &b, 4);
            v = _mm256_add_epi8(v, v);
        }
    }
    plane_to_rows_scalar(p, rows, n, i / 8);
}

EMC_AVX2 static inline __m256i transpose8_avx2(__m256i x) {
    __m256i t;
    t = _mm256_and_si256(_mm256_xor_si256(x, _mm256_srli_epi64(x, 7)), _mm256_set1_epi64x(0x00AA00AA00AA00AALL));
    x = _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_slli_epi64(t, 7)));
    t = _mm256_and_si256(_mm256_xor_si256(x, _mm256_srli_epi64(x, 14)), _mm256_set1_epi64x(0x0000CCCC0000CCCCLL));
    x = _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_slli_epi64(t, 14)));
    t = _mm256_and_si256(_mm256_xor_si256(x, _mm256_srli_epi64(x, 28)), _mm256_set1_epi64x(0x00000000F0F0F0F0LL));
    x = _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_slli_epi64(t, 28)));
    return x;
}

/// As rows_to_plane_sse2 with 32 groups: the unpacks stay within 128-bit lanes, so the low lanes
/// hold groups 0-15 and the high lanes groups 16-31, stored 128 bytes apart.
EMC_AVX2 static void rows_to_plane_avx2(const uint8_t *rows, uint8_t *p, size_t n) {
    size_t r = n / 8, g = 0;
    for (; g + 32 <= r; g += 32) {
        const uint8_t *q = rows + g;
        __m256i r0 = _mm256_loadu_si256((const __m256i *)q), r1 = _mm256_loadu_si256((const __m256i *)(q + r));
        __m256i r2 = _mm256_loadu_si256((const __m256i *)(q + 2 * r)), r3 = _mm256_loadu_si256((const __m256i *)(q + 3 * r));
        __m256i r4 = _mm256_loadu_si256((const __m256i *)(q + 4 * r)), r5 = _mm256_loadu_si256((const __m256i *)(q + 5 * r));
        __m256i r6 = _mm256_loadu_si256((const __m256i *)(q + 6 * r)), r7 = _mm256_loadu_si256((const __m256i *)(q + 7 * r));
        uint8_t *o = p + 8 * g;
        __m256i any = _mm256_or_si256(_mm256_or_si256(_mm256_or_si256(r0, r1), _mm256_or_si256(r2, r3)),
                                      _mm256_or_si256(_mm256_or_si256(r4, r5), _mm256_or_si256(r6, r7)));
        if (_mm256_testz_si256(any, any)) {
            memset(o, 0, 256);
            continue;
        }
        __m256i a01l = _mm256_unpacklo_epi8(r0, r1), a01h = _mm256_unpackhi_epi8(r0, r1);
        __m256i a23l = _mm256_unpacklo_epi8(r2, r3), a23h = _mm256_unpackhi_epi8(r2, r3);
        __m256i a45l = _mm256_unpacklo_epi8(r4, r5), a45h = _mm256_unpackhi_epi8(r4, r5);
        __m256i a67l = _mm256_unpacklo_epi8(r6, r7), a67h = _mm256_unpackhi_epi8(r6, r7);
        __m256i b03a = _mm256_unpacklo_epi16(a01l, a23l), b03b = _mm256_unpackhi_epi16(a01l, a23l);
        __m256i b03c = _mm256_unpacklo_epi16(a01h, a23h), b03d = _mm256_unpackhi_epi16(a01h, a23h);
        __m256i b47a = _mm256_unpacklo_epi16(a45l, a67l), b47b = _mm256_unpackhi_epi16(a45l, a67l);
        __m256i b47c = _mm256_unpacklo_epi16(a45h, a67h), b47d = _mm256_unpackhi_epi16(a45h, a67h);
        __m256i w0 = transpose8_avx2(_mm256_unpacklo_epi32(b03a, b47a));  // groups 0,1 | 16,17
        __m256i w1 = transpose8_avx2(_mm256_unpackhi_epi32(b03a, b47a));  // 2,3 | 18,19
        __m256i w2 = transpose8_avx2(_mm256_unpacklo_epi32(b03b, b47b));
        __m256i w3 = transpose8_avx2(_mm256_unpackhi_epi32(b03b, b47b));
        __m256i w4 = transpose8_avx2(_mm256_unpacklo_epi32(b03c, b47c));
        __m256i w5 = transpose8_avx2(_mm256_unpackhi_epi32(b03c, b47c));
        __m256i w6 = transpose8_avx2(_mm256_unpacklo_epi32(b03d, b47d));
        __m256i w7 = transpose8_avx2(_mm256_unpackhi_epi32(b03d, b47d));
        _mm256_storeu_si256((__m256i *)o, _mm256_permute2x128_si256(w0, w1, 0x20));
        _mm256_storeu_si256((__m256i *)(o + 32), _mm256_permute2x128_si256(w2, w3, 0x20));
        _mm256_storeu_si256((__m256i *)(o + 64), _mm256_permute2x128_si256(w4, w5, 0x20));
        _mm256_storeu_si256((__m256i *)(o + 96), _mm256_permute2x128_si256(w6, w7, 0x20));
        _mm256_storeu_si256((__m256i *)(o + 128), _mm256_permute2x128_si256(w0, w1, 0x31));
        _mm256_storeu_si256((__m256i *)(o + 160), _mm256_permute2x128_si256(w2, w3, 0x31));
        _mm256_storeu_si256((__m256i *)(o + 192), _mm256_permute2x128_si256(w4, w5, 0x31));
        _mm256_storeu_si256((__m256i *)(o + 224), _mm256_permute2x128_si256(w6, w7, 0x31));
    }
    rows_to_plane_sse2(rows, p, n, g);  // fewer than 32 groups left
}

#endif

// MARK: dispatch

static int resolve(int isa) {
#ifdef EMC_X86
    if (isa == EMC_BS_BEST || (isa == EMC_BS_AVX2 && !emc_bitshuffle_isa_available(EMC_BS_AVX2)))
        return emc_bitshuffle_isa_available(EMC_BS_AVX2) ? EMC_BS_AVX2 : EMC_BS_SSE2;
    return isa;
#else
    (void)isa;
    return EMC_BS_SCALAR;
#endif
}

int emc_bitshuffle_isa_available(int isa) {
    switch (isa) {
    case EMC_BS_BEST:
    case EMC_BS_SCALAR:
        return 1;
#ifdef EMC_X86
    case EMC_BS_SSE2:
        return 1;
    case EMC_BS_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
    default:
        return 0;
    }
}

const char *emc_bitshuffle_isa(void) {
    switch (resolve(EMC_BS_BEST)) {
    case EMC_BS_AVX2: return "avx2";
    case EMC_BS_SSE2: return "sse2";
    default: return "scalar";
    }
}

void emc_bitshuffle(const void *src, void *dst, size_t n, size_t e, void *tmp, int isa) {
    const uint8_t *s = (const uint8_t *)src;
    uint8_t *d = (uint8_t *)dst;
    isa = resolve(isa);
    if (isa == EMC_BS_SCALAR) {
        shuffle_scalar(s, d, n, e);
        return;
    }
    const uint8_t *planes = s;
    if (e > 1) {
#ifdef EMC_X86
        if (isa != EMC_BS_SCALAR) bytes_to_planes_sse2(s, (uint8_t *)tmp, n, e);
        else
#endif
            bytes_to_planes_scalar(s, (uint8_t *)tmp, n, e, 0);
        planes = (const uint8_t *)tmp;
    }
    for (size_t j = 0; j < e; j++) {
        switch (isa) {
#ifdef EMC_X86
        case EMC_BS_AVX2: plane_to_rows_avx2(planes + j * n, d + j * n, n); break;
        case EMC_BS_SSE2: plane_to_rows_sse2(planes + j * n, d + j * n, n); break;
#endif
        default: plane_to_rows_scalar(planes + j * n, d + j * n, n, 0); break;
        }
    }
}

void emc_bitunshuffle(const void *src, void *dst, size_t n, size_t e, void *tmp, int isa) {
    const uint8_t *s = (const uint8_t *)src;
    uint8_t *d = (uint8_t *)dst;
    isa = resolve(isa);
    if (isa == EMC_BS_SCALAR) {
        unshuffle_scalar(s, d, n, e);
        return;
    }
    uint8_t *planes = e > 1 ? (uint8_t *)tmp : d;
    for (size_t j = 0; j < e; j++) {
        switch (isa) {
#ifdef EMC_X86
        case EMC_BS_AVX2: rows_to_plane_avx2(s + j * n, planes + j * n, n); break;
        case EMC_BS_SSE2: rows_to_plane_sse2(s + j * n, planes + j * n, n, 0); break;
#endif
        default: rows_to_plane_scalar(s + j * n, planes + j * n, n, 0); break;
        }
    }
    if (e > 1) {
#ifdef EMC_X86
        if (isa != EMC_BS_SCALAR) planes_to_bytes_sse2(planes, d, n, e);
        else
#endif
            planes_to_bytes_scalar(planes, d, n, e, 0);
    }
}

void emc_byte_shuffle(const void *src, void *dst, size_t n, size_t e) {
#ifdef EMC_X86
    bytes_to_planes_sse2((const uint8_t *)src, (uint8_t *)dst, n, e);
#else
    bytes_to_planes_scalar((const uint8_t *)src, (uint8_t *)dst, n, e, 0);
#endif
}

void emc_byte_unshuffle(const void *src, void *dst, size_t n, size_t e) {
#ifdef EMC_X86
    planes_to_bytes_sse2((const uint8_t *)src, (uint8_t *)dst, n, e);
#else
    planes_to_bytes_scalar((const uint8_t *)src, (uint8_t *)dst, n, e, 0);
#endif
}
