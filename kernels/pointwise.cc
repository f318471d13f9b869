#include "kernels/pointwise.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/kernels.h"

namespace ntc::k {
namespace {

constexpr int kLanes = 16;  // pixels per step (two AVX2 vectors); lanes of the weight gradient's sums
constexpr int kRows = 4;    // output rows formed together from one load of the inputs

// Lanes of one (o, i) pair added up in order: the fold of every weight-gradient partial sum.
float fold(const float* lanes) {
  float s = 0.f;
  for (int l = 0; l < kLanes; ++l) s += lanes[l];
  return s;
}

// Weights as rows of 4: wp[(r0 / 4)·n·4 + c·4 + r] = wt(r0 + r, c), zero past `rows`; wt(r, c) =
// w[r·ld + c] or, transposed, w[c·ld + r]. One broadcast per (row, column) in the inner loops.
const float* rows_of_4(const float* w, int rows, int cols, int ld, bool transposed) {
  thread_local std::vector<float> wp;
  const int blocks = (rows + kRows - 1) / kRows;
  wp.assign(size_t(blocks) * cols * kRows, 0.f);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      wp[(size_t(r / kRows) * cols + c) * kRows + r % kRows] = transposed ? w[c * ld + r] : w[r * ld + c];
  return wp.data();
}

// How rows_step and rows_pixel store a sum s: out = s, out = out + s, or out = 0 + s (what
// kAdd gives on a zeroed out, without reading it).
enum Store { kSet, kAdd, kZeroPlus };

// out[r][0:16] (r < nr, row stride ldo) = init(r) + Σ_c wp[c·4 + r]·in[c][0:16] (c ascending, one FMA
// each), or for kAdd / kZeroPlus the sum from 0 stored as above. in: `cols` rows of stride ldi.
inline void rows_step(const float* in, int64_t ldi, int cols, const float* wp, const float* init, Store store,
                      float* out, int64_t ldo, int nr) {
  __m256 a[kRows][2];
  for (int r = 0; r < kRows; ++r) a[r][0] = a[r][1] = _mm256_set1_ps(init && r < nr ? init[r] : 0.f);
  for (int c = 0; c < cols; ++c) {
    const __m256 x0 = _mm256_loadu_ps(in + c * ldi), x1 = _mm256_loadu_ps(in + c * ldi + 8);
    for (int r = 0; r < kRows; ++r) {
      const __m256 wv = _mm256_broadcast_ss(wp + c * kRows + r);
      a[r][0] = _mm256_fmadd_ps(wv, x0, a[r][0]);
      a[r][1] = _mm256_fmadd_ps(wv, x1, a[r][1]);
    }
  }
  for (int r = 0; r < nr; ++r) {
    float* o = out + r * ldo;
    if (store != kSet) {
      const __m256 o0 = store == kAdd ? _mm256_loadu_ps(o) : _mm256_setzero_ps();
      const __m256 o1 = store == kAdd ? _mm256_loadu_ps(o + 8) : _mm256_setzero_ps();
      _mm256_storeu_ps(o, _mm256_add_ps(o0, a[r][0]));
      _mm256_storeu_ps(o + 8, _mm256_add_ps(o1, a[r][1]));
    } else {
      _mm256_storeu_ps(o, a[r][0]);
      _mm256_storeu_ps(o + 8, a[r][1]);
    }
  }
}

// The same for one pixel (the last m < 16 of a row): the scalar form of one lane.
inline void rows_pixel(const float* in, int64_t ldi, int cols, const float* wp, const float* init, Store store,
                       float* out, int64_t ldo, int nr) {
  for (int r = 0; r < nr; ++r) {
    float a = init ? init[r] : 0.f;
    for (int c = 0; c < cols; ++c) a = std::fma(wp[c * kRows + r], in[c * ldi], a);
    out[r * ldo] = store == kSet ? a : (store == kAdd ? out[r * ldo] : 0.f) + a;
  }
}

}  // namespace

void pointwise_fwd(const float* x, int64_t ldx, int Cin, const float* w, const float* b, int Cout, float* y, int64_t ldy,
                   int64_t P) {
  if (use_reference_kernels()) return ref::pointwise_fwd(x, ldx, Cin, w, b, Cout, y, ldy, P);
  const float* wp = rows_of_4(w, Cout, Cin, Cin, false);
  for (int o0 = 0; o0 < Cout; o0 += kRows) {
    const int nr = std::min(kRows, Cout - o0);
    const float* wb = wp + size_t(o0 / kRows) * Cin * kRows;
    const float* init = b ? b + o0 : nullptr;
    int64_t p = 0;
    for (; p + kLanes <= P; p += kLanes) rows_step(x + p, ldx, Cin, wb, init, kSet, y + o0 * ldy + p, ldy, nr);
    for (; p < P; ++p) rows_pixel(x + p, ldx, Cin, wb, init, kSet, y + o0 * ldy + p, ldy, nr);
  }
}

void pointwise_bwd(const float* x, int64_t ldx, int Cin, const float* w, const float* dy, int64_t ldy, int Cout,
                   float* dx, int64_t lddx, float* gw, float* gb, int64_t P, bool dx_write) {
  if (use_reference_kernels()) return ref::pointwise_bwd(x, ldx, Cin, w, dy, ldy, Cout, dx, lddx, gw, gb, P, dx_write);
  if (dx) {  // dx[i] += Σ_o w[o][i]·dy[o]: the forward's form with wᵀ
    const Store store = dx_write ? kZeroPlus : kAdd;
    const float* wp = rows_of_4(w, Cin, Cout, Cin, true);
    for (int i0 = 0; i0 < Cin; i0 += kRows) {
      const int nr = std::min(kRows, Cin - i0);
      const float* wb = wp + size_t(i0 / kRows) * Cout * kRows;
      int64_t p = 0;
      for (; p + kLanes <= P; p += kLanes) rows_step(dy + p, ldy, Cout, wb, nullptr, store, dx + i0 * lddx + p, lddx, nr);
      for (; p < P; ++p) rows_pixel(dy + p, ldy, Cout, wb, nullptr, store, dx + i0 * lddx + p, lddx, nr);
    }
  }
  const int64_t full = P / kLanes * kLanes;
  alignas(32) float lanes[kRows][kLanes];
  if (gw)  // lane l of (o, i) adds dy[o][p]·x[i][p] over p ≡ l (mod 16), p ascending; 4 inputs at a time
    for (int o = 0; o < Cout; ++o)
      for (int i0 = 0; i0 < Cin; i0 += kRows) {
        const int nr = std::min(kRows, Cin - i0);
        __m256 a[kRows][2];
        for (int r = 0; r < kRows; ++r) a[r][0] = a[r][1] = _mm256_setzero_ps();
        const float* g = dy + o * ldy;
        for (int64_t p = 0; p < full; p += kLanes) {
          const __m256 g0 = _mm256_loadu_ps(g + p), g1 = _mm256_loadu_ps(g + p + 8);
          for (int r = 0; r < nr; ++r) {
            const float* xi = x + (i0 + r) * ldx + p;
            a[r][0] = _mm256_fmadd_ps(g0, _mm256_loadu_ps(xi), a[r][0]);
            a[r][1] = _mm256_fmadd_ps(g1, _mm256_loadu_ps(xi + 8), a[r][1]);
          }
        }
        for (int r = 0; r < nr; ++r) {
          _mm256_store_ps(lanes[r], a[r][0]);
          _mm256_store_ps(lanes[r] + 8, a[r][1]);
          for (int64_t p = full; p < P; ++p)
            lanes[r][p - full] = std::fma(g[p], x[(i0 + r) * ldx + p], lanes[r][p - full]);
          gw[o * Cin + i0 + r] = fold(lanes[r]);
        }
      }
  if (gb)  // lane l of o adds dy[o][p] over p ≡ l (mod 16)
    for (int o = 0; o < Cout; ++o) {
      const float* g = dy + o * ldy;
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      for (int64_t p = 0; p < full; p += kLanes) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(g + p));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(g + p + 8));
      }
      _mm256_store_ps(lanes[0], a0);
      _mm256_store_ps(lanes[0] + 8, a1);
      for (int64_t p = full; p < P; ++p) lanes[0][p - full] += g[p];
      gb[o] = fold(lanes[0]);
    }
}

namespace ref {

void pointwise_fwd(const float* x, int64_t ldx, int Cin, const float* w, const float* b, int Cout, float* y, int64_t ldy,
                   int64_t P) {
  for (int o = 0; o < Cout; ++o)
    for (int64_t p = 0; p < P; ++p) {
      float a = b ? b[o] : 0.f;
      for (int i = 0; i < Cin; ++i) a = std::fma(w[o * Cin + i], x[i * ldx + p], a);
      y[o * ldy + p] = a;
    }
}

void pointwise_bwd(const float* x, int64_t ldx, int Cin, const float* w, const float* dy, int64_t ldy, int Cout,
                   float* dx, int64_t lddx, float* gw, float* gb, int64_t P, bool dx_write) {
  if (dx)
    for (int i = 0; i < Cin; ++i)
      for (int64_t p = 0; p < P; ++p) {
        float a = 0.f;
        for (int o = 0; o < Cout; ++o) a = std::fma(w[o * Cin + i], dy[o * ldy + p], a);
        dx[i * lddx + p] = (dx_write ? 0.f : dx[i * lddx + p]) + a;
      }
  float lanes[kLanes];
  if (gw)
    for (int o = 0; o < Cout; ++o)
      for (int i = 0; i < Cin; ++i) {
        std::fill(lanes, lanes + kLanes, 0.f);
        for (int64_t p = 0; p < P; ++p) lanes[p % kLanes] = std::fma(dy[o * ldy + p], x[i * ldx + p], lanes[p % kLanes]);
        gw[o * Cin + i] = fold(lanes);
      }
  if (gb)
    for (int o = 0; o < Cout; ++o) {
      std::fill(lanes, lanes + kLanes, 0.f);
      for (int64_t p = 0; p < P; ++p) lanes[p % kLanes] += dy[o * ldy + p];
      gb[o] = fold(lanes);
    }
}

}  // namespace ref
}  // namespace ntc::k
