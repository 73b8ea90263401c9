#ifndef EMCONV_CTIFF_SHIM_H
#define EMCONV_CTIFF_SHIM_H
#include <tiffio.h>
#include <stdarg.h>
#include <stdio.h>

/* TIFFSetField/TIFFGetField are variadic (not callable from Swift): typed wrappers. */
static inline int emc_tiff_set_u16(TIFF *t, uint32_t tag, uint16_t v) { return TIFFSetField(t, tag, v); }
static inline int emc_tiff_set_u32(TIFF *t, uint32_t tag, uint32_t v) { return TIFFSetField(t, tag, v); }
static inline int emc_tiff_set_int(TIFF *t, uint32_t tag, int v) { return TIFFSetField(t, tag, v); }
static inline int emc_tiff_set_double(TIFF *t, uint32_t tag, double v) { return TIFFSetField(t, tag, v); }
static inline int emc_tiff_set_string(TIFF *t, uint32_t tag, const char *v) { return TIFFSetField(t, tag, v); }
static inline int emc_tiff_set_extrasamples(TIFF *t, uint16_t n, const uint16_t *v) { return TIFFSetField(t, TIFFTAG_EXTRASAMPLES, n, v); }
static inline int emc_tiff_get_u16(TIFF *t, uint32_t tag, uint16_t *v) { return TIFFGetField(t, tag, v); }
static inline int emc_tiff_get_u32(TIFF *t, uint32_t tag, uint32_t *v) { return TIFFGetField(t, tag, v); }
static inline int emc_tiff_get_float(TIFF *t, uint32_t tag, float *v) { return TIFFGetField(t, tag, v); }
static inline int emc_tiff_get_string(TIFF *t, uint32_t tag, const char **v) { return TIFFGetField(t, tag, v); }

/* Silence libtiff's default stderr handlers (errors are reported through emconv). */
static void emc_tiff_quiet_handler(const char *m, const char *f, va_list ap) { (void)m; (void)f; (void)ap; }
static inline void emc_tiff_silence(void) {
    TIFFSetWarningHandler(emc_tiff_quiet_handler);
    TIFFSetErrorHandler(emc_tiff_quiet_handler);
}
/* Reading: defaulted getters, and a handle whose errors go to its own buffer (thread-safe, no
   global handler), with libtiff's single-allocation limit set. */
static inline int emc_tiff_getd_u16(TIFF *t, uint32_t tag, uint16_t *v) { return TIFFGetFieldDefaulted(t, tag, v); }
static inline int emc_tiff_getd_u32(TIFF *t, uint32_t tag, uint32_t *v) { return TIFFGetFieldDefaulted(t, tag, v); }
typedef struct { char msg[512]; } emc_tiff_errbuf;
static int emc_tiff_error_ext(TIFF *t, void *ud, const char *module, const char *fmt, va_list ap) {
    (void)t; (void)module;
    if (ud) vsnprintf(((emc_tiff_errbuf *)ud)->msg, sizeof(((emc_tiff_errbuf *)ud)->msg), fmt, ap);
    return 1;
}
static int emc_tiff_warning_ext(TIFF *t, void *ud, const char *module, const char *fmt, va_list ap) {
    (void)t; (void)ud; (void)module; (void)fmt; (void)ap;
    return 1;
}
static inline TIFF *emc_tiff_open_read(const char *path, emc_tiff_errbuf *eb, tmsize_t max_alloc) {
    TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
    if (!o) return NULL;
    TIFFOpenOptionsSetMaxSingleMemAlloc(o, max_alloc);
    TIFFOpenOptionsSetErrorHandlerExtR(o, emc_tiff_error_ext, eb);
    TIFFOpenOptionsSetWarningHandlerExtR(o, emc_tiff_warning_ext, NULL);
    TIFF *t = TIFFOpenExt(path, "rm", o);
    TIFFOpenOptionsFree(o);
    return t;
}
#endif
