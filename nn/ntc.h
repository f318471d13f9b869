/* ntc.h — the C API of libntc (installed as <ntc/ntc.h>; C99 and C++).
 *
 * Opaque handles, plain C types, no exceptions across the boundary: every function that can fail
 * returns an ntc_status and leaves a one-line message for ntc_last_error().
 *
 * Stability: NTC_API_VERSION counts incompatible changes of this header. Within one API version,
 * functions and enum values are only ever added, never changed or removed. The shared library's
 * soname (libntc.so.0) changes with the API version. Streams are specified in codec/BITSTREAM.md
 * (format version 1) and decode only with the model that made them.
 *
 * Thread safety: every function may be called from any thread. One loaded model may be used from
 * several threads at once; calls on the same model are serialised by a lock inside it, so use one
 * model per thread to encode or decode in parallel. ntc_set_threads() and ntc_set_limits() are
 * process-wide settings (set them before starting work). ntc_last_error() is per thread.
 */
#ifndef NTC_NTC_H
#define NTC_NTC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NTC_API_VERSION 1
#define NTC_VERSION_STRING "0.3.0"

typedef struct ntc_model ntc_model;

typedef enum {
  NTC_OK = 0,
  NTC_ERROR_ARGUMENT = 1,      /* a null pointer, a size or stride out of range, a bad quality or λ */
  NTC_ERROR_IO = 2,            /* a file that cannot be read */
  NTC_ERROR_CORRUPT = 3,       /* a malformed stream or model file, or a stream of another model */
  NTC_ERROR_LIMIT = 4,         /* over the pixel limit or the memory budget (ntc_set_limits) */
  NTC_ERROR_OUT_OF_MEMORY = 5,
  NTC_ERROR_INTERNAL = 6
} ntc_status;

int ntc_api_version(void);         /* NTC_API_VERSION of the library actually loaded */
const char* ntc_version(void);     /* "0.3.0" */
const char* ntc_last_error(void);  /* the message of this thread's last failure ("" if none) */

/* Loads a model file; path NULL loads the default model (the two-layer family) from the model
 * directory: $NTC_MODEL_DIR, else the installed share/ntc/models next to the library. */
ntc_status ntc_model_load(const char* path, ntc_model** model);
ntc_status ntc_model_load_memory(const uint8_t* data, size_t size, ntc_model** model);
void ntc_model_free(ntc_model* model); /* NULL is fine */

/* Encodes an 8-bit RGB image (rows of width·3 bytes, `stride` bytes apart; stride ≥ width·3) into
 * a newly allocated stream *out of *out_size bytes (free it with ntc_free). quality 0..100 spreads
 * over a variable-rate model's λ range (log-spaced); lambda > 0 instead picks an exact λ (then
 * quality is ignored). A fixed-rate model takes neither (quality < 0, lambda 0). */
ntc_status ntc_encode(ntc_model* model, const uint8_t* rgb, int width, int height, size_t stride, double quality,
                      double lambda, uint8_t** out, size_t* out_size);

/* Decodes a stream into a newly allocated RGB buffer (rows of width·3 bytes, no padding; free it
 * with ntc_free). Decoding is bit-exact on every x86-64 CPU with AVX2 and any thread count. An
 * overfitted stream (`ntc encode --overfit`) carries its own decoder: model may then be NULL. */
ntc_status ntc_decode(ntc_model* model, const uint8_t* data, size_t size, uint8_t** rgb, int* width, int* height);

void ntc_free(void* p); /* what ntc_encode / ntc_decode allocated; NULL is fine */

/* Process-wide settings. threads ≤ 0: all cores (the default). max_pixels: streams declaring more
 * pixels are refused before decoding (default 100 million); max_memory_mib: the budget for the
 * tensors of one encode or decode (default 8192 MiB; 0: none). */
void ntc_set_threads(int threads);
void ntc_set_limits(int64_t max_pixels, int64_t max_memory_mib);

#ifdef __cplusplus
}
#endif
#endif /* NTC_NTC_H */
