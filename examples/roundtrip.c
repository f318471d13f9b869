/* roundtrip — encode and decode a binary PPM with the default installed ntc model; prints bpp and
 * PSNR. Built out of tree against an installed libntc:
 *   cc roundtrip.c $(pkg-config --cflags --libs ntc) -lm -o roundtrip && ./roundtrip IN.ppm */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ntc/ntc.h>

static unsigned char* read_ppm(const char* path, int* w, int* h) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  int maxval = 0;
  unsigned char* px = NULL;
  if (fscanf(f, "P6 %d %d %d", w, h, &maxval) == 3 && maxval == 255 && fgetc(f) != EOF && *w > 0 && *h > 0) {
    const size_t n = (size_t)*w * (size_t)*h * 3;
    px = malloc(n);
    if (px && fread(px, 1, n, f) != n) {
      free(px);
      px = NULL;
    }
  }
  fclose(f);
  return px;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: roundtrip IN.ppm\n");
    return 2;
  }
  int w = 0, h = 0;
  unsigned char* rgb = read_ppm(argv[1], &w, &h);
  if (!rgb) {
    fprintf(stderr, "roundtrip: cannot read %s as an 8-bit binary PPM\n", argv[1]);
    return 1;
  }
  ntc_model* model = NULL;
  uint8_t *stream = NULL, *out = NULL;
  size_t size = 0;
  int ow = 0, oh = 0;
  if (ntc_model_load(NULL, &model) != NTC_OK || ntc_encode(model, rgb, w, h, (size_t)w * 3, 50, 0, &stream, &size) != NTC_OK ||
      ntc_decode(model, stream, size, &out, &ow, &oh) != NTC_OK) {
    fprintf(stderr, "roundtrip: %s\n", ntc_last_error());
    return 1;
  }
  double se = 0;
  for (size_t i = 0; i < (size_t)w * (size_t)h * 3; ++i) se += ((double)out[i] - rgb[i]) * ((double)out[i] - rgb[i]);
  const double mse = se / ((double)w * h * 3);
  printf("%dx%d: %.4f bpp, PSNR %.2f dB (ntc %s)\n", w, h, 8.0 * (double)size / ((double)w * h),
         10 * log10(255.0 * 255.0 / (mse > 1e-10 ? mse : 1e-10)), ntc_version());
  ntc_free(stream);
  ntc_free(out);
  ntc_model_free(model);
  free(rgb);
  return 0;
}
