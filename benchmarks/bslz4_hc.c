// Block-codec comparison for bitshuffle chunks (issue 13), one core: for frames of counting data,
// the stored size, encode and decode speed of bitshuffle + LZ4 (fast and HC levels, several block
// sizes), bitshuffle + zstd and emconv's zstd:1 (byte shuffle + zstd level 1 over the whole chunk).
// One frame per chunk, the chunk layout of HDF5 filter 32008 (12-byte header, 4-byte size per
// block, N mod 8 trailing elements stored), so sizes equal what an HDF5 file stores per chunk.
// Build and run: benchmarks/bslz4_hc.sh (generates the data sets with bslz4_sizes.py's generators).
// Usage: bslz4_hc FILE.raw ELEMENT_SIZE FRAME_BYTES LABEL
#include <lz4.h>
#include <math.h>
#include <lz4hc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>
#include "emc_bitshuffle.h"

enum { LZ4F, LZ4HC, ZSTDB, SHUFZSTD };
typedef struct { const char *name; int kind, level, blockBytes; } Codec;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

// Encodes one chunk; returns its size.
static size_t enc(const Codec *c, const uint8_t *src, size_t bytes, size_t e, uint8_t *dst, uint8_t *blk, uint8_t *tmp, void *hcstate, ZSTD_CCtx *zc) {
    if (c->kind == SHUFZSTD) {  // byte shuffle of the whole chunk, then one zstd frame
        size_t n = bytes / e;
        for (size_t i = 0; i < n; i++) for (size_t j = 0; j < e; j++) blk[j * n + i] = src[i * e + j];
        return ZSTD_compressCCtx(zc, dst, ZSTD_compressBound(bytes), blk, bytes, c->level);
    }
    size_t n = bytes / e, b = c->blockBytes / e, i = 0, o = 12;
    memset(dst, 0, 12);
    for (int k = 0; k < 8; k++) dst[k] = (uint8_t)((uint64_t)bytes >> (56 - 8 * k));
    put32(dst + 8, (uint32_t)(b * e));
    while (i + 8 <= n) {
        size_t m = b < (n - i) / 8 * 8 ? b : (n - i) / 8 * 8;
        emc_bitshuffle(src + i * e, blk, m, e, tmp, 0);
        int r;
        if (c->kind == LZ4F) r = LZ4_compress_default((char *)blk, (char *)dst + o + 4, (int)(m * e), LZ4_compressBound((int)(m * e)));
        else if (c->kind == LZ4HC) r = LZ4_compress_HC_extStateHC(hcstate, (char *)blk, (char *)dst + o + 4, (int)(m * e), LZ4_compressBound((int)(m * e)), c->level);
        else r = (int)ZSTD_compressCCtx(zc, dst + o + 4, ZSTD_compressBound(m * e), blk, m * e, c->level);
        put32(dst + o, (uint32_t)r);
        o += 4 + r; i += m;
    }
    memcpy(dst + o, src + i * e, bytes - i * e);
    return o + bytes - i * e;
}

static void dec(const Codec *c, const uint8_t *src, size_t csize, size_t bytes, size_t e, uint8_t *dst, uint8_t *blk, uint8_t *tmp, ZSTD_DCtx *zd) {
    if (c->kind == SHUFZSTD) {
        size_t n = bytes / e;
        ZSTD_decompressDCtx(zd, blk, bytes, src, csize);
        for (size_t i = 0; i < n; i++) for (size_t j = 0; j < e; j++) dst[i * e + j] = blk[j * n + i];
        return;
    }
    size_t n = bytes / e, b = get32(src + 8) / e, i = 0, o = 12;
    while (i + 8 <= n) {
        size_t m = b < (n - i) / 8 * 8 ? b : (n - i) / 8 * 8;
        uint32_t s = get32(src + o);
        if (c->kind == ZSTDB) ZSTD_decompressDCtx(zd, blk, m * e, src + o + 4, s);
        else LZ4_decompress_safe((const char *)src + o + 4, (char *)blk, (int)s, (int)(m * e));
        emc_bitunshuffle(blk, dst + i * e, m, e, tmp, 0);
        o += 4 + s; i += m;
    }
    memcpy(dst + i * e, src + o, bytes - i * e);
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: bslz4_hc FILE.raw ELEMENT_SIZE FRAME_BYTES LABEL\n"); return 2; }
    size_t e = strtoul(argv[2], 0, 10), fb = strtoul(argv[3], 0, 10);
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    fseek(f, 0, SEEK_END); size_t total = ftell(f); fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(total);
    if (fread(data, 1, total, f) != total) return 1;
    fclose(f);
    size_t frames = total / fb;
    int def = (int)(8192 / e / 8 * 8 * e);
    Codec cs[] = {
        {"shuffle + zstd:1 (emconv zstd:1)", SHUFZSTD, 1, 0},
        {"bitshuffle-lz4 (default block)", LZ4F, 0, def},
        {"bitshuffle-lz4 block 64 KiB", LZ4F, 0, 65536},
        {"bitshuffle-lz4hc:3", LZ4HC, 3, def},
        {"bitshuffle-lz4hc:9", LZ4HC, 9, def},
        {"bitshuffle-lz4hc:12", LZ4HC, 12, def},
        {"bitshuffle-lz4hc:9 block 64 KiB", LZ4HC, 9, 65536},
        {"bitshuffle-lz4hc:12 block 64 KiB", LZ4HC, 12, 65536},
        {"bitshuffle-lz4hc:12 whole frame", LZ4HC, 12, (int)(fb / e / 8 * 8 * e)},
        {"bitshuffle-zstd:1 (default block)", ZSTDB, 1, def},
        {"bitshuffle-zstd:3 (default block)", ZSTDB, 3, def},
        {"bitshuffle-zstd:1 block 64 KiB", ZSTDB, 1, 65536},
    };
    size_t cap = ZSTD_compressBound(fb) + LZ4_compressBound((int)fb) + 4096 + fb / 8;
    uint8_t *out = malloc(cap * frames), *blk = malloc(fb + 64), *tmp = malloc(fb + 64), *back = malloc(fb);
    size_t *sz = malloc(frames * sizeof(size_t));
    void *hc = malloc(LZ4_sizeofStateHC());
    ZSTD_CCtx *zc = ZSTD_createCCtx(); ZSTD_DCtx *zd = ZSTD_createDCtx();
    size_t zref = 0;
    {   // Why LZ4 stays bigger: in the bit-transposed default blocks, LZ4 stores every nonzero byte that
        // it cannot match as a literal (>= 1 byte, plus a token and a 2-byte offset to resume the zero
        // run), while an entropy coder pays about H(p) bits per bit of a plane whose bits are 1 with
        // probability p. Printed: nonzero transposed bytes, and that order-0 per-plane entropy in bytes.
        size_t b = def / e, nz = 0; double bits = 0;
        for (size_t fr = 0; fr < frames; fr++) {
            size_t n = fb / e, i = 0;
            while (i + 8 <= n) {
                size_t m = b < (n - i) / 8 * 8 ? b : (n - i) / 8 * 8, row = m / 8;
                emc_bitshuffle(data + fr * fb + i * e, blk, m, e, tmp, 0);
                for (size_t r = 0; r < 8 * e; r++) {
                    size_t ones = 0;
                    for (size_t k = 0; k < row; k++) { uint8_t v = blk[r * row + k]; nz += v != 0; ones += __builtin_popcount(v); }
                    double q = (double)ones / m;
                    if (q > 0 && q < 1) bits += m * (-q * log2(q) - (1 - q) * log2(1 - q));
                }
                i += m;
            }
        }
        printf("%-34s %-36s %10zu nonzero bit-transposed bytes; per-plane entropy %.0f bytes\n", argv[4], "(data)", nz, bits / 8);
    }
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        Codec *c = &cs[k];
        if (c->kind != SHUFZSTD && c->blockBytes > (int)fb) continue;
        size_t stored = 0; int reps = 0; double t0 = now(), te;
        do {  // encode all frames, repeated until 0.3 s have passed
            stored = 0;
            for (size_t i = 0; i < frames; i++) { sz[i] = enc(c, data + i * fb, fb, e, out + i * cap, blk, tmp, hc, zc); stored += sz[i]; }
            reps++; te = now() - t0;
        } while (te < 0.3);
        double encMBs = (double)fb * frames * reps / te / 1e6;
        int dreps = 0; double t1 = now(), td;
        do {
            for (size_t i = 0; i < frames; i++) dec(c, out + i * cap, sz[i], fb, e, back, blk, tmp, zd);
            dreps++; td = now() - t1;
        } while (td < 0.3);
        double decMBs = (double)fb * frames * dreps / td / 1e6;
        for (size_t i = 0; i < frames; i++) {  // round trip check
            dec(c, out + i * cap, sz[i], fb, e, back, blk, tmp, zd);
            if (memcmp(back, data + i * fb, fb)) { fprintf(stderr, "%s: frame %zu does not round-trip\n", c->name, i); return 1; }
        }
        if (k == 0) zref = stored;
        printf("%-34s %-36s %10zu %7.1fx %8.2fx %9.0f %9.0f\n", argv[4], c->name, stored, (double)total / stored,
               (double)stored / zref, encMBs, decMBs);
    }
    return 0;
}
