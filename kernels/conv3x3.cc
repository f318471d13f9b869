#include "kernels/conv3x3.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/kernels.h"

namespace ntc::k {
namespace ref {
// Columns [c0, W) of rows [r0, r1) (the kernel's column tail).
void conv3x3_rows(const float* xp, int Cin, int H, int W, const float* w, const float* b, int Cout, bool accumulate,
                  float* y, int r0, int r1, int c0);
}  // namespace ref
namespace {

constexpr int kLanes = 16;
constexpr int kMax = kConv3x3MaxChannels;

float fold(const float* lanes) {
  float s = 0.f;
  for (int l = 0; l < kLanes; ++l) s += lanes[l];
  return s;
}

}  // namespace

void conv3x3_pad(const float* x, int C, int H, int W, float* xp) {
  const int64_t wp = W + 2, plane = int64_t(H + 2) * wp;
  for (int c = 0; c < C; ++c) {
    float* p = xp + c * plane;
    std::fill(p, p + wp, 0.f);
    for (int r = 0; r < H; ++r) {
      float* row = p + (r + 1) * wp;
      row[0] = 0.f;
      std::memcpy(row + 1, x + (int64_t(c) * H + r) * W, size_t(W) * sizeof(float));
      row[W + 1] = 0.f;
    }
    std::fill(p + (H + 1) * wp, p + plane, 0.f);
  }
}

void conv3x3_flip(const float* w, int Cout, int Cin, float* wt) {
  for (int o = 0; o < Cout; ++o)
    for (int i = 0; i < Cin; ++i)
      for (int ky = 0; ky < 3; ++ky)
        for (int kx = 0; kx < 3; ++kx) wt[((i * Cout + o) * 3 + ky) * 3 + kx] = w[((o * Cin + i) * 3 + 2 - ky) * 3 + 2 - kx];
}

void conv3x3_rows(const float* xp, int Cin, int H, int W, const float* w, const float* b, int Cout, bool accumulate,
                  float* y, int r0, int r1) {
  if (use_reference_kernels()) return ref::conv3x3_rows(xp, Cin, H, W, w, b, Cout, accumulate, y, r0, r1);
  const int64_t wp = W + 2, plane = int64_t(H + 2) * wp;
  const int full = W / kLanes * kLanes;
  for (int r = r0; r < r1; ++r) {
    for (int c = 0; c < full; c += kLanes) {
      __m256 a[kMax][2];
      for (int o = 0; o < kMax; ++o) a[o][0] = a[o][1] = _mm256_set1_ps(o < Cout && b && !accumulate ? b[o] : 0.f);
      for (int i = 0; i < Cin; ++i)
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) {
            const float* s = xp + i * plane + (r + ky) * wp + c + kx;
            const __m256 x0 = _mm256_loadu_ps(s), x1 = _mm256_loadu_ps(s + 8);
            for (int o = 0; o < kMax; ++o) {
              if (o >= Cout) break;
              const __m256 wv = _mm256_broadcast_ss(w + ((o * Cin + i) * 3 + ky) * 3 + kx);
              a[o][0] = _mm256_fmadd_ps(wv, x0, a[o][0]);
              a[o][1] = _mm256_fmadd_ps(wv, x1, a[o][1]);
            }
          }
      for (int o = 0; o < Cout; ++o) {
        float* out = y + (int64_t(o) * H + r) * W + c;
        if (accumulate) {
          _mm256_storeu_ps(out, _mm256_add_ps(_mm256_loadu_ps(out), a[o][0]));
          _mm256_storeu_ps(out + 8, _mm256_add_ps(_mm256_loadu_ps(out + 8), a[o][1]));
        } else {
          _mm256_storeu_ps(out, a[o][0]);
          _mm256_storeu_ps(out + 8, a[o][1]);
        }
      }
    }
    if (full < W) ref::conv3x3_rows(xp, Cin, H, W, w, b, Cout, accumulate, y, r, r + 1, full);
  }
}

void conv3x3_grads(const float* xp, int Cin, int H, int W, const float* dy, int Cout, float* gw, float* gb, int r0, int r1) {
  if (use_reference_kernels()) return ref::conv3x3_grads(xp, Cin, H, W, dy, Cout, gw, gb, r0, r1);
  const int64_t wp = W + 2, plane = int64_t(H + 2) * wp;
  const int full = W / kLanes * kLanes;
  alignas(32) float lanes[kLanes];
  for (int o = 0; o < Cout; ++o) {
    const float* g = dy + int64_t(o) * H * W;
    if (gw)
      for (int i = 0; i < Cin; ++i)
        for (int ky = 0; ky < 3; ++ky) {
          // the three kx taps of (o, i, ky) together: one load of dy, three of xp
          __m256 a[3][2];
          for (int kx = 0; kx < 3; ++kx) a[kx][0] = a[kx][1] = _mm256_setzero_ps();
          float tail[3][kLanes] = {};
          for (int r = r0; r < r1; ++r) {
            const float* gr = g + int64_t(r) * W;
            const float* s = xp + i * plane + (r + ky) * wp;
            for (int c = 0; c < full; c += kLanes) {
              const __m256 g0 = _mm256_loadu_ps(gr + c), g1 = _mm256_loadu_ps(gr + c + 8);
              for (int kx = 0; kx < 3; ++kx) {
                a[kx][0] = _mm256_fmadd_ps(g0, _mm256_loadu_ps(s + c + kx), a[kx][0]);
                a[kx][1] = _mm256_fmadd_ps(g1, _mm256_loadu_ps(s + c + kx + 8), a[kx][1]);
              }
            }
            for (int c = full; c < W; ++c)
              for (int kx = 0; kx < 3; ++kx) tail[kx][c - full] = std::fma(gr[c], s[c + kx], tail[kx][c - full]);
          }
          // Lane l holds columns c ≡ l (mod 16) of the full steps; the short tail's columns (all of
          // them ≡ their own lane) were summed apart and join their lanes at the end, after the
          // full columns of every row: the twin adds in the same order.
          for (int kx = 0; kx < 3; ++kx) {
            _mm256_store_ps(lanes, a[kx][0]);
            _mm256_store_ps(lanes + 8, a[kx][1]);
            for (int l = 0; l < W - full; ++l) lanes[l] += tail[kx][l];
            gw[((o * Cin + i) * 3 + ky) * 3 + kx] = fold(lanes);
          }
        }
    if (gb) {
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      float tail[kLanes] = {};
      for (int r = r0; r < r1; ++r) {
        const float* gr = g + int64_t(r) * W;
        for (int c = 0; c < full; c += kLanes) {
          a0 = _mm256_add_ps(a0, _mm256_loadu_ps(gr + c));
          a1 = _mm256_add_ps(a1, _mm256_loadu_ps(gr + c + 8));
        }
        for (int c = full; c < W; ++c) tail[c - full] += gr[c];
      }
      _mm256_store_ps(lanes, a0);
      _mm256_store_ps(lanes + 8, a1);
      for (int l = 0; l < W - full; ++l) lanes[l] += tail[l];
      gb[o] = fold(lanes);
    }
  }
}

namespace ref {

// Each output one FMA chain over (i, ky, kx).
void conv3x3_rows(const float* xp, int Cin, int H, int W, const float* w, const float* b, int Cout, bool accumulate,
                  float* y, int r0, int r1, int c0) {
  const int64_t wp = W + 2, plane = int64_t(H + 2) * wp;
  for (int o = 0; o < Cout; ++o)
    for (int r = r0; r < r1; ++r)
      for (int c = c0; c < W; ++c) {
        float a = b && !accumulate ? b[o] : 0.f;
        for (int i = 0; i < Cin; ++i)
          for (int ky = 0; ky < 3; ++ky)
            for (int kx = 0; kx < 3; ++kx)
              a = std::fma(w[((o * Cin + i) * 3 + ky) * 3 + kx], xp[i * plane + (r + ky) * wp + c + kx], a);
        float& out = y[(int64_t(o) * H + r) * W + c];
        out = accumulate ? out + a : a;
      }
}

void conv3x3_rows(const float* xp, int Cin, int H, int W, const float* w, const float* b, int Cout, bool accumulate,
                  float* y, int r0, int r1) {
  conv3x3_rows(xp, Cin, H, W, w, b, Cout, accumulate, y, r0, r1, 0);
}

void conv3x3_grads(const float* xp, int Cin, int H, int W, const float* dy, int Cout, float* gw, float* gb, int r0, int r1) {
  const int64_t wp = W + 2, plane = int64_t(H + 2) * wp;
  const int full = W / kLanes * kLanes;
  float lanes[kLanes], tail[kLanes];
  // The order of the kernel: per lane, the full columns of every row, then the tail columns'
  // separate sums.
  auto sum = [&](auto term) {
    std::fill(lanes, lanes + kLanes, 0.f);
    std::fill(tail, tail + kLanes, 0.f);
    for (int r = r0; r < r1; ++r) {
      for (int c = 0; c < full; ++c) lanes[c % kLanes] = term(r, c, lanes[c % kLanes]);
      for (int c = full; c < W; ++c) tail[c - full] = term(r, c, tail[c - full]);
    }
    for (int l = 0; l < W - full; ++l) lanes[l] += tail[l];
    return fold(lanes);
  };
  for (int o = 0; o < Cout; ++o) {
    const float* g = dy + int64_t(o) * H * W;
    if (gw)
      for (int i = 0; i < Cin; ++i)
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx)
            gw[((o * Cin + i) * 3 + ky) * 3 + kx] = sum([&](int r, int c, float acc) {
              return std::fma(g[int64_t(r) * W + c], xp[i * plane + (r + ky) * wp + c + kx], acc);
            });
    if (gb) gb[o] = sum([&](int r, int c, float acc) { return acc + g[int64_t(r) * W + c]; });
  }
}

}  // namespace ref
}  // namespace ntc::k
