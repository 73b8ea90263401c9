// Fast deflate for byte-shuffled chunks; see include/emc_deflate.h. Block formats: RFC 1951
// sections 3.2.3-3.2.7 (stored, fixed and dynamic Huffman blocks); zlib wrapper: RFC 1950.
#include "emc_deflate.h"
#include <libdeflate.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define MAX_SYMS 32768      // symbols per dynamic block (each input byte yields at most one)
#define TRIAL_BYTES 1024    // contiguous piece on which LZ77 is tried
#define SAMPLE_PIECES 32    // strided sample for the order-0 entropy: 32 pieces of 64 bytes
#define SAMPLE_PIECE 64
#define SPARSE_BITS 2.0     // sample entropy (bits/byte) below which a plane is run-length coded untried
#define NOISE_BITS 7.2      // above which (saving under 10%, and LZ77 does not win) it is stored
#define NOISE_BITS_HIGH 7.8 // the same for gzip:2-9 (saving under about 2%)
#define PERIOD_PAYS 0.8     // share of bytes equal to the one a period before from which period matches pay
#define RUN_PAYS 8.0        // mean sampled run (of >= 4 equal bytes) from which distance-1 matches pay
                            // over Huffman literals (a match costs about 8 bits, a literal >= 1)

struct emc_deflate {
    uint16_t syms[MAX_SYMS];  // < 256: literal; else match of length sym - 256 + 3 at distance 1
    struct libdeflate_compressor *lz;      // level 1: trials, LZ77 planes of gzip:1
    struct libdeflate_compressor *lz_high; // the level of the last gzip:2-9 call
    int high_level;
    uint8_t *trial;           // output of the LZ77 trial
    size_t trial_cap;
    size_t stats[5];
    uint8_t len_sym[259];
    uint32_t pair_code[65536]; // literal pairs' codes and lengths (emit_literal_plane)
    uint8_t pair_len[65536];
};

// Length symbols 257..285 for match lengths 3..258 (RFC 1951 3.2.5).
static const uint16_t len_base[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                                      35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_bits[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
                                     3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint8_t cl_order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

/// Match length -> length symbol index (0..28); 258 uses symbol 285 (index 28).
static void init_len_sym(uint8_t *len_sym) {
    for (int s = 0; s < 28; s++)
        for (int e = 0; e < (1 << len_bits[s]); e++)
            if (len_base[s] + e <= 257) len_sym[len_base[s] + e] = (uint8_t)s;
    len_sym[258] = 28;
}

emc_deflate *emc_deflate_alloc(void) {
    emc_deflate *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->lz = libdeflate_alloc_compressor(1);
    c->trial_cap = libdeflate_deflate_compress_bound(c->lz, TRIAL_BYTES);
    c->trial = malloc(c->trial_cap);
    if (!c->lz || !c->trial) { emc_deflate_free(c); return NULL; }
    init_len_sym(c->len_sym);
    return c;
}

void emc_deflate_free(emc_deflate *c) {
    if (!c) return;
    if (c->lz) libdeflate_free_compressor(c->lz);
    if (c->lz_high) libdeflate_free_compressor(c->lz_high);
    free(c->trial);
    free(c);
}

void emc_deflate_stats(const emc_deflate *c, size_t counts[5]) {
    for (int i = 0; i < 5; i++) counts[i] = c->stats[i];
}

size_t emc_deflate_bound(emc_deflate *c, size_t n, size_t planes) {
    // Every block costs at most its stored size; a block holds >= MAX_SYMS bytes unless it ends a
    // plane; plus the zlib wrapper, an alignment block, the final block and libdeflate's own bound.
    return libdeflate_zlib_compress_bound(c->lz, n) + 5 * (n / 16384 + 2 * planes + 4) + 16;
}

// ---- bit writer (LSB first) ----

static inline void store64le(uint8_t *p, uint64_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, 8);
}

typedef struct {
    uint8_t *out, *end;
    uint64_t buf;
    unsigned n;
    int overflow;
} bitw;

static inline void put(bitw *w, uint64_t bits, unsigned count) {  // count <= 32
    w->buf |= bits << w->n;
    w->n += count;
    if (w->n >= 32) {
        if (w->end - w->out >= 4) {
            uint32_t v = (uint32_t)w->buf;
            w->out[0] = (uint8_t)v; w->out[1] = (uint8_t)(v >> 8);
            w->out[2] = (uint8_t)(v >> 16); w->out[3] = (uint8_t)(v >> 24);
            w->out += 4;
        } else {
            w->overflow = 1;
        }
        w->buf >>= 32;
        w->n -= 32;
    }
}

/// Writes the pending bits, padding the last byte with zeros.
static void flush_bytes(bitw *w) {
    while (w->n > 0) {
        if (w->out < w->end) *w->out++ = (uint8_t)w->buf; else w->overflow = 1;
        w->buf >>= 8;
        w->n = w->n > 8 ? w->n - 8 : 0;
    }
    w->buf = 0;
}

/// Writes the writer's whole pending bytes, so that fewer than 8 bits wait before 64-bit stores
/// (the caller has checked the room).
static inline void settle(bitw *w) {
    while (w->n >= 8) { *w->out++ = (uint8_t)w->buf; w->buf >>= 8; w->n -= 8; }
}

/// One 64-bit store of the pending bits (k <= 63 of them): the whole bytes advance out, the
/// remaining k & 7 bits stay in buf.
static inline void store_whole_bytes(uint8_t **out, uint64_t *buf, unsigned *k) {
    store64le(*out, *buf);
    *out += *k >> 3;
    *buf >>= *k & ~7u;
    *k &= 7;
}

static void put_bytes(bitw *w, const uint8_t *p, size_t len) {  // byte aligned, nothing pending
    if ((size_t)(w->end - w->out) < len) { w->overflow = 1; return; }
    if (len) memcpy(w->out, p, len);
    w->out += len;
}

/// Non-final stored blocks of at most 65535 bytes each.
static void emit_stored(bitw *w, const uint8_t *p, size_t len) {
    do {
        size_t k = len < 65535 ? len : 65535;
        put(w, 0, 3);  // BFINAL 0, BTYPE 00
        flush_bytes(w);
        uint8_t hdr[4] = {(uint8_t)k, (uint8_t)(k >> 8), (uint8_t)~k, (uint8_t)(~k >> 8)};
        put_bytes(w, hdr, 4);
        put_bytes(w, p, k);
        p += k;
        len -= k;
    } while (len > 0);
}

static size_t stored_bits(size_t len) {
    size_t pieces = len == 0 ? 1 : (len + 65534) / 65535;
    return pieces * (3 + 7 + 32) + 8 * len;  // header, worst-case padding, LEN/NLEN, data
}

// ---- Huffman code lengths (length-limited by halving frequencies until the tree fits) ----

/// Sorts m <= 288 distinct keys ascending: a least-significant-digit radix sort, 8 bits a pass,
/// skipping the digits all keys share (block frequencies take 2-3 passes; qsort's calls were 8%
/// of the encoder's instructions on corrected frames).
static void sort_keys(uint64_t *key, int m) {
    uint64_t tmp[288], *a = key, *b = tmp, any = 0, all = ~(uint64_t)0;
    for (int i = 0; i < m; i++) { any |= key[i]; all &= key[i]; }
    for (unsigned shift = 0; shift < 64; shift += 8) {
        if ((((any ^ all) >> shift) & 0xFF) == 0) continue;
        unsigned count[256] = {0}, pos = 0;
        for (int i = 0; i < m; i++) count[(a[i] >> shift) & 0xFF]++;
        for (int d = 0; d < 256; d++) { unsigned c = count[d]; count[d] = pos; pos += c; }
        for (int i = 0; i < m; i++) b[count[(a[i] >> shift) & 0xFF]++] = a[i];
        uint64_t *t = a; a = b; b = t;
    }
    if (a != key) memcpy(key, a, (size_t)m * sizeof key[0]);
}

/// Lengths of a complete prefix code over n <= 288 symbols, none longer than maxlen. Fewer than
/// two used symbols get dummy partners (inflate rejects incomplete code-length codes).
static void huff_lengths(const uint32_t *freq_in, int n, int maxlen, uint8_t *len) {
    uint32_t f[288];
    memcpy(f, freq_in, (size_t)n * sizeof f[0]);
    int used = 0;
    for (int i = 0; i < n; i++) used += f[i] != 0;
    for (int i = 0; i < n && used < 2; i++)
        if (f[i] == 0) { f[i] = 1; used++; }
    for (;;) {
        uint64_t key[288];
        int m = 0;
        for (int i = 0; i < n; i++)
            if (f[i]) key[m++] = ((uint64_t)f[i] << 9) | (uint64_t)i;
        sort_keys(key, m);
        uint64_t wgt[2 * 288];
        int parent[2 * 288], depth[2 * 288];
        for (int i = 0; i < m; i++) wgt[i] = key[i] >> 9;
        int li = 0, ii = m;
        for (int next = m; next < 2 * m - 1; next++) {
            int pick[2];
            for (int k = 0; k < 2; k++)
                pick[k] = (li < m && (ii >= next || wgt[li] <= wgt[ii])) ? li++ : ii++;
            wgt[next] = wgt[pick[0]] + wgt[pick[1]];
            parent[pick[0]] = parent[pick[1]] = next;
        }
        depth[2 * m - 2] = 0;
        int maxd = 0;
        for (int k = 2 * m - 3; k >= 0; k--) {
            depth[k] = depth[parent[k]] + 1;
            if (k < m && depth[k] > maxd) maxd = depth[k];
        }
        if (maxd <= maxlen) {
            memset(len, 0, (size_t)n);
            for (int i = 0; i < m; i++) len[key[i] & 511] = (uint8_t)depth[i];
            return;
        }
        for (int i = 0; i < n; i++) if (f[i]) f[i] = (f[i] + 1) >> 1;
    }
}

/// Canonical codes (RFC 1951 3.2.2), bit-reversed for the LSB-first writer.
static void gen_codes(const uint8_t *len, int n, uint16_t *code) {
    unsigned count[16] = {0}, next[16];
    for (int i = 0; i < n; i++) count[len[i]]++;
    count[0] = 0;
    unsigned c = 0;
    for (int b = 1; b < 16; b++) { c = (c + count[b - 1]) << 1; next[b] = c; }
    for (int i = 0; i < n; i++) {
        if (!len[i]) { code[i] = 0; continue; }
        unsigned v = next[len[i]]++, r = 0;
        for (int b = 0; b < len[i]; b++) { r = (r << 1) | (v & 1); v >>= 1; }
        code[i] = (uint16_t)r;
    }
}

// ---- run-length scan ----

/// Adds the frequencies of syms[0..ns) (literals; 256 + length - 3 for matches) to freq (286
/// entries). Four interleaved histograms: consecutive equal symbols do not wait on one counter.
static void count_syms(const uint8_t *len_sym, const uint16_t *syms, size_t ns, uint32_t *freq) {
    uint32_t h[4][512];
    memset(h, 0, sizeof h);
    size_t k = 0;
    for (; k + 4 <= ns; k += 4) {
        h[0][syms[k]]++; h[1][syms[k + 1]]++; h[2][syms[k + 2]]++; h[3][syms[k + 3]]++;
    }
    for (; k < ns; k++) h[0][syms[k]]++;
    for (int s = 0; s < 256; s++) freq[s] += h[0][s] + h[1][s] + h[2][s] + h[3][s];
    for (int m = 0; m < 256; m++) {
        uint32_t f = h[0][256 + m] + h[1][256 + m] + h[2][256 + m] + h[3][256 + m];
        if (f) freq[257 + len_sym[m + 3]] += f;
    }
}

/// Symbols for src[pos..end) whose matches are all at distance dist (1..32768): a byte equal to
/// the one dist before it, three in a row, starts a match (src[0..pos) is already in the stream;
/// the first dist bytes of the chunk have nothing to refer to). Stops when MAX_SYMS are made;
/// frequencies into freq. Returns the end. Distance 1: runs of one value (zlib's Z_RLE idea);
/// distance of a frame band: the same pixel of the previous frame in a chunk of stacked frames,
/// which deflate's 32 KiB window reaches when the band is at most 32 KiB. One 16-byte compare
/// finds 16 literals at once when no match starts among them.
static size_t match_scan(const uint8_t *len_sym, const uint8_t *src, size_t pos, size_t end, size_t dist, uint16_t *syms, size_t *nsyms, uint32_t *freq) {
    size_t i = pos, ns = 0;
    while (i < end && i < dist && ns < MAX_SYMS) syms[ns++] = src[i++];
    while (i < end && ns < MAX_SYMS) {
#ifdef __SSE2__
        if (i + 18 <= end && ns + 16 <= MAX_SYMS) {
            const uint8_t *b = src + i, *a = src + i - dist;
            __m128i b0 = _mm_loadu_si128((const __m128i *)b);
            __m128i m = _mm_and_si128(_mm_cmpeq_epi8(b0, _mm_loadu_si128((const __m128i *)a)),
                        _mm_and_si128(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(b + 1)), _mm_loadu_si128((const __m128i *)(a + 1))),
                                      _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(b + 2)), _mm_loadu_si128((const __m128i *)(a + 2)))));
            unsigned mask = (unsigned)_mm_movemask_epi8(m);
            __m128i z = _mm_setzero_si128();
            _mm_storeu_si128((__m128i *)(syms + ns), _mm_unpacklo_epi8(b0, z));
            _mm_storeu_si128((__m128i *)(syms + ns + 8), _mm_unpackhi_epi8(b0, z));
            unsigned lits = mask ? (unsigned)__builtin_ctz(mask) : 16;
            ns += lits;
            i += lits;
            if (lits == 16) continue;
        }
#endif
        if (i + 3 <= end && src[i] == src[i - dist] && src[i + 1] == src[i + 1 - dist] && src[i + 2] == src[i + 2 - dist]) {
            size_t left = end - i, max = left < 258 ? left : 258, r = 3;
#ifdef __SSE2__
            while (r + 16 <= max) {
                unsigned eq = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(src + i + r)),
                                                                         _mm_loadu_si128((const __m128i *)(src + i + r - dist))));
                if (eq != 0xFFFF) { r += (size_t)__builtin_ctz(~eq); goto matched; }
                r += 16;
            }
#endif
            for (;;) {
                if (r + 8 <= max) {
                    uint64_t x, y;
                    memcpy(&x, src + i + r, 8);
                    memcpy(&y, src + i + r - dist, 8);
                    uint64_t diff = x ^ y;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
                    diff = __builtin_bswap64(diff);
#endif
                    if (diff) { r += (size_t)__builtin_ctzll(diff) >> 3; break; }
                    r += 8;
                } else {
                    while (r < max && src[i + r] == src[i + r - dist]) r++;
                    break;
                }
            }
#ifdef __SSE2__
        matched:
#endif
            syms[ns++] = (uint16_t)(256 + r - 3);
            i += r;
            continue;
        }
        syms[ns++] = src[i++];
    }
    count_syms(len_sym, syms, ns, freq);
    *nsyms = ns;
    return i;
}

/// A dynamic block's codes and header, with its exact size in bits.
typedef struct {
    uint8_t llen[286];
    uint16_t lcode[286];
    int nlit;
    uint8_t cl_seq[286 + 30];   // code-length symbols (0..18)
    uint8_t cl_extra[286 + 30]; // their extra-bit values
    int ncl;
    uint8_t cllen[19];
    uint16_t clcode[19];
    int hclen;
    int dsym;                  // the one distance symbol used (0: distance 1)
    size_t dist;               // the one distance of every match
    size_t bits;
} dynblock;

// Distance symbols 0..29 (RFC 1951 3.2.5): base distance and extra bits.
static const uint16_t dist_base[30] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385,
                                       513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_bits[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10,
                                      11, 11, 12, 12, 13, 13};

static int dist_symbol(size_t dist) {
    int s = 29;
    while (s > 0 && dist_base[s] > dist) s--;
    return s;
}

/// Plans a dynamic block for the symbol frequencies freq_in (literal/length symbols 0..285), no
/// literal/length code longer than maxlen (<= 15), every match at distance `dist` (1..32768).
static void plan_dynamic(const uint32_t *freq_in, int maxlen, size_t dist, dynblock *d) {
    uint32_t freq[286];
    memcpy(freq, freq_in, sizeof freq);
    freq[256] = 1;  // end of block
    huff_lengths(freq, 286, maxlen, d->llen);
    gen_codes(d->llen, 286, d->lcode);
    int nlit = 286;
    while (nlit > 257 && d->llen[nlit - 1] == 0) nlit--;
    d->nlit = nlit;

    // Code lengths of the literal/length code then of the distance code: two codes of length 1,
    // symbol 0 and the one used (1 when that is 0), so the code is complete; run-length coded.
    int dsym = dist_symbol(dist);
    d->dsym = dsym;
    d->dist = dist;
    int ndist = dsym == 0 ? 2 : dsym + 1;
    uint8_t all[286 + 30];
    memcpy(all, d->llen, (size_t)nlit);
    memset(all + nlit, 0, (size_t)ndist);
    all[nlit] = 1;
    all[nlit + ndist - 1] = 1;
    int total = nlit + ndist, ncl = 0;
    uint32_t clfreq[19] = {0};
    for (int i = 0; i < total;) {
        uint8_t v = all[i];
        int r = 1;
        while (i + r < total && all[i + r] == v) r++;
        if (v == 0 && r >= 3) {
            int k = r > 138 ? 138 : r;
            if (k >= 11) { d->cl_seq[ncl] = 18; d->cl_extra[ncl++] = (uint8_t)(k - 11); }
            else { d->cl_seq[ncl] = 17; d->cl_extra[ncl++] = (uint8_t)(k - 3); }
            clfreq[d->cl_seq[ncl - 1]]++;
            i += k;
        } else if (v != 0 && r >= 4) {
            d->cl_seq[ncl] = v; d->cl_extra[ncl++] = 0; clfreq[v]++;
            i++;
            for (r--; r >= 3;) {
                int k = r > 6 ? 6 : r;
                d->cl_seq[ncl] = 16; d->cl_extra[ncl++] = (uint8_t)(k - 3); clfreq[16]++;
                i += k;
                r -= k;
            }
        } else {
            d->cl_seq[ncl] = v; d->cl_extra[ncl++] = 0; clfreq[v]++;
            i++;
        }
    }
    d->ncl = ncl;
    huff_lengths(clfreq, 19, 7, d->cllen);
    gen_codes(d->cllen, 19, d->clcode);
    int hclen = 19;
    while (hclen > 4 && d->cllen[cl_order[hclen - 1]] == 0) hclen--;
    d->hclen = hclen;

    size_t bits = 3 + 5 + 5 + 4 + 3 * (size_t)hclen;
    for (int i = 0; i < ncl; i++) {
        uint8_t s = d->cl_seq[i];
        bits += d->cllen[s] + (s == 16 ? 2 : s == 17 ? 3 : s == 18 ? 7 : 0);
    }
    size_t matches = 0;
    for (int s = 0; s < 286; s++) bits += (size_t)freq[s] * d->llen[s];
    for (int s = 257; s < 286; s++) {
        bits += (size_t)freq[s] * len_bits[s - 257];
        matches += freq[s];
    }
    d->bits = bits + matches * (1 + (size_t)dist_bits[dsym]);  // distance code bit and extra bits
}

/// A dynamic block's header: BFINAL 0, BTYPE 10, the code counts and the run-length coded code lengths.
static void emit_dynamic_header(bitw *w, const dynblock *d) {
    put(w, 0 | (2 << 1), 3);  // BFINAL 0, BTYPE 10
    put(w, (uint64_t)(d->nlit - 257), 5);
    put(w, (uint64_t)(d->dsym == 0 ? 1 : d->dsym), 5);  // HDIST: distance codes - 1
    put(w, (uint64_t)(d->hclen - 4), 4);
    for (int i = 0; i < d->hclen; i++) put(w, d->cllen[cl_order[i]], 3);
    for (int i = 0; i < d->ncl; i++) {
        uint8_t s = d->cl_seq[i];
        put(w, d->clcode[s], d->cllen[s]);
        if (s == 16) put(w, d->cl_extra[i], 2);
        else if (s == 17) put(w, d->cl_extra[i], 3);
        else if (s == 18) put(w, d->cl_extra[i], 7);
    }
}

static void emit_dynamic(bitw *w, const uint8_t *len_sym, const dynblock *d, const uint16_t *syms, size_t ns) {
    emit_dynamic_header(w, d);
    // One table for literals (0..255) and matches (256 + length - 3): the whole bit string
    // (length code, extra bits, distance code of one bit, its extra bits) and its length: at
    // most 21 bits at distance 1, 34 at the longest distances.
    uint64_t tcode[512];
    uint8_t tlen[512];
    for (int s = 0; s < 256; s++) { tcode[s] = d->lcode[s]; tlen[s] = d->llen[s]; }
    unsigned dcode = d->dsym == 0 ? 0 : 1, dbits = dist_bits[d->dsym];
    uint64_t dextra = (uint64_t)(d->dist - dist_base[d->dsym]);
    for (int m = 0; m < 256; m++) {
        unsigned len = (unsigned)m + 3, k = len_sym[len], sym = 257 + k, l = d->llen[sym], lb = len_bits[k];
        tcode[256 + m] = d->lcode[sym] | ((uint64_t)(len - len_base[k]) << l) | ((uint64_t)dcode << (l + lb))
                         | (dextra << (l + lb + 1));
        tlen[256 + m] = (uint8_t)(l + lb + 1 + dbits);
    }
    // The longest bit string of a symbol in use: two per store when at most 28 bits each.
    unsigned maxbits = 0;
    for (int s = 0; s < 256; s++) if (d->llen[s] && tlen[s] > maxbits) maxbits = tlen[s];
    for (int m = 0; m < 256; m++) if (d->llen[257 + len_sym[m + 3]] && tlen[256 + m] > maxbits) maxbits = tlen[256 + m];
    if (maxbits > 28 && (size_t)(w->end - w->out) >= d->bits / 8 + 16) {
        // Long distances: one symbol (<= 34 bits) per store, after at most 7 pending bits.
        settle(w);
        uint64_t buf = w->buf;
        unsigned n = w->n;
        uint8_t *out = w->out;
        for (size_t i = 0; i < ns; i++) {
            buf |= tcode[syms[i]] << n; n += tlen[syms[i]];
            store_whole_bytes(&out, &buf, &n);
        }
        w->buf = buf; w->n = n; w->out = out;
    } else if (maxbits <= 28 && (size_t)(w->end - w->out) >= d->bits / 8 + 16) {
        // Room for the whole block plus an 8-byte store: no bounds checks, two symbols per store.
        // Up to 31 bits are pending from the header: write the whole bytes first, so that two
        // symbols of up to 28 bits each never take the buffer past 7 + 56 bits.
        settle(w);
        uint64_t buf = w->buf;
        unsigned n = w->n;
        uint8_t *out = w->out;
        size_t i = 0;
        for (; i + 2 <= ns; i += 2) {
            buf |= (uint64_t)tcode[syms[i]] << n; n += tlen[syms[i]];
            buf |= (uint64_t)tcode[syms[i + 1]] << n; n += tlen[syms[i + 1]];
            store_whole_bytes(&out, &buf, &n);
        }
        w->buf = buf; w->n = n; w->out = out;
        for (; i < ns; i++) put(w, tcode[syms[i]], tlen[syms[i]]);
    } else {
        // Near the end of the buffer: put() checks each store (codes of more than 32 bits in two).
        for (size_t i = 0; i < ns; i++) {
            uint64_t code = tcode[syms[i]];
            unsigned len = tlen[syms[i]];
            if (len > 32) { put(w, code & 0xFFFFFFFFu, 32); code >>= 32; len -= 32; }
            put(w, code, len);
        }
    }
    put(w, d->lcode[256], d->llen[256]);
}

/// src[start..end) as dynamic blocks of literals and matches at distance dist, each of at most
/// MAX_SYMS symbols, stored instead when that is smaller.
static void emit_matches(emc_deflate *c, bitw *w, const uint8_t *src, size_t start, size_t end, size_t dist) {
    for (size_t pos = start; pos < end && !w->overflow;) {
        uint32_t freq[286] = {0};
        size_t ns;
        size_t stop = match_scan(c->len_sym, src, pos, end, dist, c->syms, &ns, freq);
        dynblock d;
        plan_dynamic(freq, 15, dist, &d);
        if (d.bits < stored_bits(stop - pos)) emit_dynamic(w, c->len_sym, &d, c->syms, ns);
        else emit_stored(w, src + pos, stop - pos);
        pos = stop;
    }
}

/// The literals src[i..n) one at a time and the end-of-block code.
static void end_literal_block(bitw *w, const dynblock *d, const uint8_t *src, size_t i, size_t n) {
    for (; i < n; i++) put(w, d->lcode[src[i]], d->llen[src[i]]);
    put(w, d->lcode[256], d->llen[256]);
}

/// Plane src[0..n) as one dynamic block of literals only (or stored blocks when not smaller): for
/// planes of few distinct values in short runs, where distance-1 matches cost more than they save
/// and the per-symbol scan of the run-length coder is the expense. Two passes: a histogram, then
/// the codes of byte pairs from a table (filled for the pairs of used values only), with codes
/// of at most 14 bits so that two pairs (56 bits) and 7 pending bits fit one 64-bit store.
static void emit_literal_plane(emc_deflate *c, bitw *w, const uint8_t *src, size_t n) {
    // Eight interleaved histograms: a dominant value does not wait on one counter's increments.
    uint32_t h[8][256];
    memset(h, 0, sizeof h);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        h[0][src[i]]++; h[1][src[i + 1]]++; h[2][src[i + 2]]++; h[3][src[i + 3]]++;
        h[4][src[i + 4]]++; h[5][src[i + 5]]++; h[6][src[i + 6]]++; h[7][src[i + 7]]++;
    }
    for (; i < n; i++) h[0][src[i]]++;
    uint32_t freq[286] = {0};
    uint8_t used[256];
    int nused = 0;
    for (int s = 0; s < 256; s++) {
        for (int t = 0; t < 8; t++) freq[s] += h[t][s];
        if (freq[s]) used[nused++] = (uint8_t)s;
    }
    dynblock d;
    plan_dynamic(freq, 14, 1, &d);
    if (d.bits >= stored_bits(n) || (size_t)(w->end - w->out) < d.bits / 8 + 16) {
        emit_stored(w, src, n);  // also when the block would not fit: emit_stored flags the overflow
        return;
    }
    emit_dynamic_header(w, &d);
    if ((size_t)nused * (size_t)nused * 4 > n) {
        // Too few bytes to repay filling the pair table: four literals (<= 14 bits) per store.
        settle(w);
        uint64_t buf = w->buf;
        unsigned k = w->n;
        uint8_t *out = w->out;
        for (i = 0; i + 4 <= n; i += 4) {
            for (int j = 0; j < 4; j++) { buf |= (uint64_t)d.lcode[src[i + j]] << k; k += d.llen[src[i + j]]; }
            store_whole_bytes(&out, &buf, &k);
        }
        w->buf = buf; w->n = k; w->out = out;
        end_literal_block(w, &d, src, i, n);
        return;
    }
    // Pair (a, b) at index a | b << 8 (the little-endian 16-bit load of a then b).
    uint32_t *pcode = c->pair_code;
    uint8_t *plen = c->pair_len;
    for (int x = 0; x < nused; x++)
        for (int y = 0; y < nused; y++) {
            unsigned a = used[x], b = used[y];
            pcode[a | b << 8] = (uint32_t)d.lcode[a] | (uint32_t)d.lcode[b] << d.llen[a];
            plen[a | b << 8] = (uint8_t)(d.llen[a] + d.llen[b]);
        }
    settle(w);
    uint64_t buf = w->buf;
    unsigned k = w->n;
    uint8_t *out = w->out;
    for (i = 0; i + 4 <= n; i += 4) {
        uint32_t v;
        memcpy(&v, src + i, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        v = __builtin_bswap32(v);
#endif
        unsigned p0 = v & 0xFFFF, p1 = v >> 16;
        buf |= (uint64_t)pcode[p0] << k; k += plen[p0];
        buf |= (uint64_t)pcode[p1] << k; k += plen[p1];
        store_whole_bytes(&out, &buf, &k);
    }
    w->buf = buf; w->n = k; w->out = out;
    end_literal_block(w, &d, src, i, n);
}

// ---- plane classification ----

static double sample_entropy(const uint8_t *p, size_t n) {
    uint32_t h[256] = {0};
    size_t total = 0;
    if (n <= SAMPLE_PIECES * SAMPLE_PIECE) {
        for (size_t i = 0; i < n; i++) h[p[i]]++;
        total = n;
    } else {
        size_t stride = (n - SAMPLE_PIECE) / (SAMPLE_PIECES - 1);
        for (size_t k = 0; k < SAMPLE_PIECES; k++) {
            const uint8_t *q = p + k * stride;
            for (size_t i = 0; i < SAMPLE_PIECE; i++) h[q[i]]++;
        }
        total = SAMPLE_PIECES * SAMPLE_PIECE;
    }
    double e = 0;
    int distinct = 0;
    for (int i = 0; i < 256; i++)
        if (h[i]) { double q = (double)h[i] / (double)total; e -= q * log2(q); distinct++; }
    // The plug-in estimate is low by about (distinct - 1) / (2 N ln 2) bits (Miller-Madow): 0.09
    // bits for 256 values in 2048 bytes, enough to take a plane saving 9% for one saving 12%.
    return e + (double)(distinct - 1) / (2.0 * (double)total * 0.6931471805599453);
}

/// Mean length of the runs of >= 4 equal bytes in the same strided sample (0 when none).
static double sample_mean_run(const uint8_t *p, size_t n) {
    size_t pieces = n <= SAMPLE_PIECES * SAMPLE_PIECE ? 1 : SAMPLE_PIECES;
    size_t len = pieces == 1 ? n : SAMPLE_PIECE;
    size_t stride = pieces == 1 ? 0 : (n - SAMPLE_PIECE) / (SAMPLE_PIECES - 1);
    size_t covered = 0, runs = 0;
    for (size_t k = 0; k < pieces; k++) {
        const uint8_t *q = p + k * stride;
        for (size_t i = 0; i < len;) {
            size_t r = 1;
            while (i + r < len && q[i + r] == q[i]) r++;
            if (r >= 4) { covered += r; runs++; }
            i += r;
        }
    }
    return runs ? (double)covered / (double)runs : 0.0;
}

/// Fraction of sampled bytes of plane p[0..n) equal to the byte `period` before them (32 pieces of
/// 64 bytes over p[period..n)); 0 when the plane is shorter than two periods.
static double sample_period_equal(const uint8_t *p, size_t n, size_t period) {
    if (n < 2 * period) return 0.0;
    size_t span = n - period;
    size_t pieces = span <= SAMPLE_PIECES * SAMPLE_PIECE ? 1 : SAMPLE_PIECES;
    size_t len = pieces == 1 ? span : SAMPLE_PIECE;
    size_t stride = pieces == 1 ? 0 : (span - SAMPLE_PIECE) / (SAMPLE_PIECES - 1);
    size_t eq = 0;
    for (size_t k = 0; k < pieces; k++) {
        const uint8_t *q = p + k * stride;
        for (size_t i = 0; i < len; i++) eq += q[i + period] == q[i];
    }
    return (double)eq / (double)(pieces * len);
}

/// Chooses the coding of plane src[start..end) from a strided sample: its order-0 entropy, the
/// mean length of its runs and, given a period (the elements of one frame band in a chunk of
/// stacked frames), how often a byte repeats the one a period before. Sparse planes with long
/// runs are distance-1 matches; planes that mostly repeat the previous frame are matches at the
/// period; other sparse planes Huffman-coded literals; the rest get an LZ77 trial on a
/// contiguous piece, chosen when it beats the entropy bound by 15% (ramps, repeats); near-random
/// planes are stored.
static int classify(emc_deflate *c, const uint8_t *src, size_t start, size_t end, size_t period) {
    size_t n = end - start;
    if (n < 1024) return EMC_DEFLATE_RLE;  // the per-block choice stores it when that is smaller
    double h = sample_entropy(src + start, n);
    int huffman = sample_mean_run(src + start, n) >= RUN_PAYS ? EMC_DEFLATE_RLE : EMC_DEFLATE_LITERAL;
    if (h < SPARSE_BITS && huffman == EMC_DEFLATE_RLE) return huffman;
    if (period >= 2 && period <= 32768 && sample_period_equal(src + start, n, period) >= PERIOD_PAYS) return EMC_DEFLATE_PERIOD;
    if (h < SPARSE_BITS) return huffman;
    size_t t = n < TRIAL_BYTES ? n : TRIAL_BYTES;
    size_t lz = libdeflate_deflate_compress(c->lz, src + start + (n - t) / 2, t, c->trial, c->trial_cap);
    if (lz == 0) lz = t;
    if ((double)lz < 0.85 * (double)t * h / 8.0) return EMC_DEFLATE_LZ;
    return h > NOISE_BITS ? EMC_DEFLATE_STORED : huffman;
}

// ---- the stream ----

size_t emc_deflate_zlib(emc_deflate *c, const void *srcv, size_t n, size_t planes, void *dstv, size_t capacity) {
    return emc_deflate_zlib_level(c, srcv, n, planes, 1, dstv, capacity);
}

static size_t deflate_planes(emc_deflate *c, const void *srcv, size_t n, size_t planes, int level, size_t period, void *dstv, size_t capacity);

size_t emc_deflate_zlib_level(emc_deflate *c, const void *srcv, size_t n, size_t planes, int level, void *dstv, size_t capacity) {
    return deflate_planes(c, srcv, n, planes, level, 0, dstv, capacity);
}

size_t emc_deflate_zlib_period(emc_deflate *c, const void *srcv, size_t n, size_t planes, size_t period, void *dstv, size_t capacity) {
    return deflate_planes(c, srcv, n, planes, 1, period, dstv, capacity);
}

static size_t deflate_planes(emc_deflate *c, const void *srcv, size_t n, size_t planes, int level, size_t period, void *dstv, size_t capacity) {
    const uint8_t *src = srcv;
    uint8_t *dst = dstv;
    memset(c->stats, 0, sizeof c->stats);
    if (capacity < 2) return 0;
    struct libdeflate_compressor *lz = c->lz;
    if (level > 1) {
        if (!c->lz_high || c->high_level != level) {
            if (c->lz_high) libdeflate_free_compressor(c->lz_high);
            c->lz_high = libdeflate_alloc_compressor(level);
            c->high_level = level;
            if (!c->lz_high) return 0;
        }
        lz = c->lz_high;
    }
    if (planes == 0 || n / planes == 0) planes = 1;
    size_t plane = n / planes;
    dst[0] = 0x78;  // deflate, 32 KiB window
    dst[1] = 0x01;  // fastest, check bits
    bitw w = {dst + 2, dst + capacity, 0, 0, 0};
    size_t lz_from = n;
    for (size_t k = 0; k < planes && !w.overflow; k++) {
        size_t start = k * plane, end = k + 1 == planes ? n : start + plane;
        int mode = classify(c, src, start, end, level == 1 ? period : 0);
        if (level > 1 && mode != EMC_DEFLATE_LZ)  // higher levels: only near-random planes are stored
            mode = sample_entropy(src + start, end - start) > NOISE_BITS_HIGH ? EMC_DEFLATE_STORED : EMC_DEFLATE_LZ;
        c->stats[mode]++;
        if (mode == EMC_DEFLATE_LZ) {
            c->stats[EMC_DEFLATE_LZ] += planes - k - 1;
            lz_from = start;
            break;
        }
        if (mode == EMC_DEFLATE_STORED) {
            emit_stored(&w, src + start, end - start);
            continue;
        }
        if (mode == EMC_DEFLATE_PERIOD) {
            // The plane's first band has no band before it in the plane: stored when it is noise
            // (the mantissa bytes), Huffman-coded literals otherwise, then matches at the period.
            size_t head = period < end - start ? period : end - start;
            if (sample_entropy(src + start, head) > NOISE_BITS) emit_stored(&w, src + start, head);
            else emit_literal_plane(c, &w, src + start, head);
            emit_matches(c, &w, src, start + head, end, period);
            continue;
        }
        if (mode == EMC_DEFLATE_LITERAL) {
            emit_literal_plane(c, &w, src + start, end - start);
            continue;
        }
        emit_matches(c, &w, src, start, end, 1);
    }
    if (w.overflow) return 0;
    if (lz_from == 0) {
        size_t r = libdeflate_zlib_compress(lz, src, n, dst, capacity);
        return r;
    }
    if (lz_from < n) {
        // libdeflate's raw stream (ending with the final block) must start on a byte boundary.
        if (w.n % 8 != 0) {
            put(&w, 0, 3);
            flush_bytes(&w);
            static const uint8_t empty[4] = {0, 0, 0xff, 0xff};
            put_bytes(&w, empty, 4);
        } else {
            flush_bytes(&w);
        }
        if (w.overflow) return 0;
        size_t r = libdeflate_deflate_compress(lz, src + lz_from, n - lz_from, w.out, (size_t)(w.end - w.out));
        if (r == 0) return 0;
        w.out += r;
    } else {
        put(&w, 1 | (1 << 1), 3);  // BFINAL 1, BTYPE 01 (fixed codes)
        put(&w, 0, 7);             // end of block: code 0000000
        flush_bytes(&w);
    }
    uint32_t a = libdeflate_adler32(1, src, n);
    uint8_t tail[4] = {(uint8_t)(a >> 24), (uint8_t)(a >> 16), (uint8_t)(a >> 8), (uint8_t)a};
    put_bytes(&w, tail, 4);
    if (w.overflow) return 0;
    return (size_t)(w.out - dst);
}
