#ifndef EMCONV_CTIFF_SHIM_H
#define EMCONV_CTIFF_SHIM_H
#include <tiffio.h>

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
#endif
