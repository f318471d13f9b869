// The ops of the overfitted per-image codec (nn/overfit.h, `ntc encode --overfit`): bilinear ×2
// upsampling with replicated edges, soft rounding, the autoregressive model's causal context
// gather, and the Laplace rate. The upsampling plane functions are also the decoder's own (one
// implementation, so encoder and decoder compute the same floats).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/overfit_math.h"
#include "lib/alloc.h"
#include "lib/common.h"
#include "lib/flops.h"
#include "lib/ops/ops.h"

namespace ntc {

namespace {

constexpr size_t kElementBlock = 4096;  // elements per block of the element-wise kernels' threads

void check_up_len(int64_t n, int64_t o) {
  NTC_CHECK(n >= 1 && (o == 2 * n || o == 2 * n - 1), "upsample2: ", n, " to ", o);
}

// The bilinear neighbour of output i of an axis of n samples: k − 1 for even i, k + 1 for odd i
// (k = ⌊i/2⌋), clamped to [0, n).
inline int64_t side_of(int64_t i, int64_t n) { return (i & 1) ? std::min((i >> 1) + 1, n - 1) : std::max<int64_t>((i >> 1) - 1, 0); }

// One axis: in[n] → out[o] (o = 2n or 2n − 1), strided access so that rows and columns share it.
// out[2k] = ¾·in[k] + ¼·in[k−1], out[2k+1] = ¾·in[k] + ¼·in[k+1], indexes clamped to [0, n).
inline void up_line(const float* in, int64_t n, int64_t is, float* out, int64_t o, int64_t os) {
  for (int64_t i = 0; i < o; ++i) {
    const int64_t k = i >> 1, nb = side_of(i, n);
    const float a = in[k * is], b = in[nb * is];
    out[i * os] = 0.75f * a + 0.25f * b;  // two products and one sum (no contraction: -ffp-contract=off)
  }
}
// The adjoint of up_line: gin[n] += Aᵀ gout[o].
inline void up_line_adj(const float* gout, int64_t o, int64_t os, float* gin, int64_t n, int64_t is) {
  for (int64_t i = 0; i < o; ++i) {
    const int64_t k = i >> 1, nb = side_of(i, n);
    gin[k * is] += 0.75f * gout[i * os];
    gin[nb * is] += 0.25f * gout[i * os];
  }
}

}  // namespace

// The vertical pass goes a whole row at a time (contiguous, vectorised) rather than column by
// column: every element still gets up_line's two products and one sum, and in the adjoint every
// element of tmp still receives its terms in order of the output row i (the k term before the nb
// term), so the floats are those of the column-wise form.
void upsample2_plane(const float* in, int64_t h, int64_t w, float* out, int64_t oh, int64_t ow, float* tmp) {
  check_up_len(h, oh);
  check_up_len(w, ow);
  for (int64_t r = 0; r < h; ++r) up_line(in + r * w, w, 1, tmp + r * ow, ow, 1);  // rows: [h, ow]
  for (int64_t i = 0; i < oh; ++i) {                                                 // columns
    const int64_t k = i >> 1, nb = side_of(i, h);
    const float *a = tmp + k * ow, *b = tmp + nb * ow;
    float* o = out + i * ow;
    for (int64_t c = 0; c < ow; ++c) o[c] = 0.75f * a[c] + 0.25f * b[c];
  }
}

void upsample2_plane_adj(const float* gout, int64_t oh, int64_t ow, float* gin, int64_t h, int64_t w, float* tmp) {
  check_up_len(h, oh);
  check_up_len(w, ow);
  std::fill(tmp, tmp + h * ow, 0.f);
  for (int64_t i = 0; i < oh; ++i) {
    const int64_t k = i >> 1, nb = side_of(i, h);
    const float* g = gout + i * ow;
    float *a = tmp + k * ow, *b = tmp + nb * ow;
    for (int64_t c = 0; c < ow; ++c) a[c] += 0.75f * g[c];
    for (int64_t c = 0; c < ow; ++c) b[c] += 0.25f * g[c];
  }
  for (int64_t r = 0; r < h; ++r) up_line_adj(tmp + r * ow, ow, 1, gin + r * w, w, 1);
}

// ---- learned ×2 upsampling: four taps per output sample ------------------------------------------

namespace {

// The four inputs output i of an axis of n samples reads, in tap order: its own sample k = ⌊i/2⌋,
// the neighbour on its side (k − 1 for even i, k + 1 for odd), the one on the other side, and the
// one two away on its side; clamped to [0, n) (replicated edges).
struct Taps4 {
  int64_t j[4];
};
inline Taps4 taps_of(int64_t i, int64_t n) {
  const int64_t k = i >> 1, d = (i & 1) ? 1 : -1;
  auto cl = [n](int64_t v) { return std::clamp<int64_t>(v, 0, n - 1); };
  return {{k, side_of(i, n), cl(k - d), cl(k + 2 * d)}};
}
// ((f0·a + f1·b) + f2·c) + f3·d: four products and three sums in this order (no contraction).
inline float tap_sum(const float* f, float a, float b, float c, float d) { return ((f[0] * a + f[1] * b) + f[2] * c) + f[3] * d; }

// Σ g[c]·x[c] in double over c < n, as four sums by c mod 4 added at the end ((s0 + s1) + (s2 + s3)):
// independent chains instead of one, whose latency bounded the taps' backward.
inline double dot4(const float* g, const float* x, int64_t n) {
  double s[4] = {0, 0, 0, 0};
  int64_t c = 0;
  for (; c + 4 <= n; c += 4)
    for (int l = 0; l < 4; ++l) s[l] += double(g[c + l]) * double(x[c + l]);
  for (; c < n; ++c) s[c & 3] += double(g[c]) * double(x[c]);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// taps_of for every output of an axis.
std::vector<Taps4> axis_taps(int64_t o, int64_t n) {
  std::vector<Taps4> t(static_cast<size_t>(o));
  for (int64_t i = 0; i < o; ++i) t[size_t(i)] = taps_of(i, n);
  return t;
}

// The row pass: tmp [h, ow] from in [h, w], a row at a time.
void taps_rows(const float* in, int64_t h, int64_t w, const float* f, float* tmp, int64_t ow) {
  const std::vector<Taps4> ts = axis_taps(ow, w);
  for (int64_t r = 0; r < h; ++r) {
    const float* x = in + r * w;
    float* o = tmp + r * ow;
    for (int64_t i = 0; i < ow; ++i) {
      const Taps4& t = ts[size_t(i)];
      o[i] = tap_sum(f, x[t.j[0]], x[t.j[1]], x[t.j[2]], x[t.j[3]]);
    }
  }
}

}  // namespace

void upsample2_plane(const float* in, int64_t h, int64_t w, const float* f, float* out, int64_t oh, int64_t ow, float* tmp) {
  check_up_len(h, oh);
  check_up_len(w, ow);
  taps_rows(in, h, w, f, tmp, ow);
  for (int64_t i = 0; i < oh; ++i) {  // columns, a whole output row at a time
    const Taps4 t = taps_of(i, h);
    const float *a = tmp + t.j[0] * ow, *b = tmp + t.j[1] * ow, *c = tmp + t.j[2] * ow, *d = tmp + t.j[3] * ow;
    float* o = out + i * ow;
    for (int64_t col = 0; col < ow; ++col) o[col] = tap_sum(f, a[col], b[col], c[col], d[col]);
  }
}

void upsample2_plane_adj(const float* in, int64_t h, int64_t w, const float* f, const float* gout, int64_t oh,
                         int64_t ow, float* gin, double* gf, float* tmp, float* gtmp) {
  check_up_len(h, oh);
  check_up_len(w, ow);
  taps_rows(in, h, w, f, tmp, ow);  // the row pass again: the column pass's input, for gf
  std::fill(gtmp, gtmp + h * ow, 0.f);
  for (int64_t i = 0; i < oh; ++i) {
    const Taps4 t = taps_of(i, h);
    const float* g = gout + i * ow;
    for (int q = 0; q < 4; ++q) {
      float* a = gtmp + t.j[q] * ow;
      const float* x = tmp + t.j[q] * ow;
      for (int64_t col = 0; col < ow; ++col) a[col] += f[q] * g[col];
      if (gf) gf[q] += dot4(g, x, ow);
    }
  }
  const std::vector<Taps4> ts = axis_taps(ow, w);
  for (int64_t r = 0; r < h; ++r) {
    const float* g = gtmp + r * ow;
    const float* x = in + r * w;
    double s[4][4] = {};  // [tap][i mod 4]: four independent sums per tap, added at the row's end
    if (gin) {
      float* gi = gin + r * w;
      for (int64_t i = 0; i < ow; ++i) {
        const Taps4& t = ts[size_t(i)];
        for (int q = 0; q < 4; ++q) {
          gi[t.j[q]] += f[q] * g[i];
          s[q][i & 3] += double(g[i]) * double(x[t.j[q]]);
        }
      }
    } else if (gf) {
      for (int64_t i = 0; i < ow; ++i) {
        const Taps4& t = ts[size_t(i)];
        for (int q = 0; q < 4; ++q) s[q][i & 3] += double(g[i]) * double(x[t.j[q]]);
      }
    }
    if (gf)
      for (int q = 0; q < 4; ++q) gf[q] += (s[q][0] + s[q][1]) + (s[q][2] + s[q][3]);
  }
}

Tensor upsample2(const Tensor& x, int64_t oh, int64_t ow, const Tensor& taps) {
  NTC_CHECK(x.ndim() == 4, "upsample2: ", shape_str(x.shape()));
  NTC_CHECK(taps.numel() == 4, "upsample2: taps ", shape_str(taps.shape()), ", want 4 values");
  const int64_t P = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  check_up_len(h, oh);
  check_up_len(w, ow);
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), oh, ow});
  Buffer tmp(size_t(h * ow));
  for (int64_t p = 0; p < P; ++p)
    upsample2_plane(x.data() + p * h * w, h, w, taps.data(), y.data() + p * oh * ow, oh, ow, tmp.data());
  count_flops("upsample2", 7 * P * (h * ow + oh * ow));
  if (needs_grad({&x, &taps}))
    record(y, "upsample2", {&x, &taps}, [x, taps, P, h, w, oh, ow](const float* gy) {
      Buffer t(size_t(h * ow)), gt(size_t(h * ow));
      double gf[4] = {0, 0, 0, 0};
      for (int64_t p = 0; p < P; ++p) {
        float* gin = x.requires_grad() ? x.grad_acc() + p * h * w : nullptr;  // (null: the taps' gradient only)
        upsample2_plane_adj(x.data() + p * h * w, h, w, taps.data(), gy + p * oh * ow, oh, ow, gin,
                            taps.requires_grad() ? gf : nullptr, t.data(), gt.data());
      }
      if (taps.requires_grad())
        for (int q = 0; q < 4; ++q) taps.grad_acc()[q] += float(gf[q]);
    });
  return y;
}

Tensor upsample2(const Tensor& x, int64_t oh, int64_t ow) {
  NTC_CHECK(x.ndim() == 4, "upsample2: ", shape_str(x.shape()));
  const int64_t P = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  check_up_len(h, oh);
  check_up_len(w, ow);
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), oh, ow});
  Buffer tmp(size_t(h * ow));
  for (int64_t p = 0; p < P; ++p) upsample2_plane(x.data() + p * h * w, h, w, y.data() + p * oh * ow, oh, ow, tmp.data());
  count_flops("upsample2", 3 * P * (h * ow + oh * ow));
  if (needs_grad({&x}))
    record(y, "upsample2", {&x}, [x, P, h, w, oh, ow](const float* gy) {
      Buffer t(size_t(h * ow));
      for (int64_t p = 0; p < P; ++p) upsample2_plane_adj(gy + p * oh * ow, oh, ow, x.grad_acc() + p * h * w, h, w, t.data());
    });
  return y;
}

Tensor soft_round(const Tensor& x, float T) {
  NTC_CHECK(T > 0, "soft_round: temperature ", T);
  const size_t n = size_t(x.numel());
  Tensor y = Tensor::empty(x.shape());
  Buffer d(n);
  // In fp32 (kernels/overfit_math.h: training only, the decoder never soft-rounds), element by
  // element in blocks over the threads: the same values for any thread count.
  const int64_t blocks = int64_t((n + kElementBlock - 1) / kElementBlock);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t j = 0; j < blocks; ++j) {
    const size_t i = size_t(j) * kElementBlock, m = std::min(kElementBlock, n - i);
    k::soft_round(x.data() + i, m, T, y.data() + i, d.data() + i);
  }
  count_flops("soft_round", 8 * int64_t(n));
  if (needs_grad({&x}))
    record(y, "soft_round", {&x}, [x, d, n](const float* gy) { k::mul_acc(gy, d.data(), x.grad_acc(), n); });
  return y;
}

Tensor causal_context(const Tensor& x, const std::vector<std::pair<int, int>>& offsets) {
  NTC_CHECK(x.ndim() == 4 && x.dim(0) == 1 && x.dim(1) == 1, "causal_context: ", shape_str(x.shape()));
  const int64_t h = x.dim(2), w = x.dim(3), K = int64_t(offsets.size());
  for (auto [dy, dx] : offsets) NTC_CHECK(dy < 0 || (dy == 0 && dx < 0), "causal_context: offset (", dy, ",", dx, ") is not causal");
  Tensor y = Tensor::empty({1, K, h, w});
  // Plane j is x shifted by offset j: rows r >= −dy, columns c with 0 <= c + dx < w; zero elsewhere.
  // Planes in parallel (each written by one thread); in the backward, rows of the gradient in
  // parallel, each element still receiving its planes' terms in plane order.
  const bool big = K * h * w > 65536;
#pragma omp parallel for schedule(static) if (big)
  for (int64_t j = 0; j < K; ++j) {
    const int dy = offsets[size_t(j)].first, dx = offsets[size_t(j)].second;
    const int64_t c0 = std::max<int64_t>(0, -dx), c1 = std::max(c0, std::min<int64_t>(w, w - dx));
    for (int64_t r = 0; r < h; ++r) {
      float* row = y.data() + (j * h + r) * w;
      if (r < -dy || c0 == c1) {
        std::fill(row, row + w, 0.f);
        continue;
      }
      std::fill(row, row + c0, 0.f);
      std::memcpy(row + c0, x.data() + (r + dy) * w + c0 + dx, size_t(c1 - c0) * sizeof(float));
      std::fill(row + c1, row + w, 0.f);
    }
  }
  count_flops("causal_context", 0);
  if (needs_grad({&x}))
    record(y, "causal_context", {&x}, [x, offsets, h, w, big](const float* gy) {
      float* gx = x.grad_acc();
#pragma omp parallel for schedule(static) if (big)
      for (int64_t q = 0; q < h; ++q)  // gradient row q = r + dy of plane j's row r
        for (size_t j = 0; j < offsets.size(); ++j) {
          const int dy = offsets[j].first, dx = offsets[j].second;
          const int64_t r = q - dy, c0 = std::max<int64_t>(0, -dx), c1 = std::min<int64_t>(w, w - dx);
          if (r >= h || c0 >= c1) continue;
          float* g = gx + q * w + c0 + dx;
          k::add(g, gy + (int64_t(j) * h + r) * w + c0, g, size_t(c1 - c0));
        }
    });
  return y;
}

Tensor laplace_bits(const Tensor& y, const Tensor& mu, const Tensor& logb, float logb_min, float logb_max) {
  const size_t n = size_t(y.numel());
  NTC_CHECK(mu.numel() == y.numel() && logb.numel() == y.numel(), "laplace_bits: ", shape_str(y.shape()), " ",
            shape_str(mu.shape()), " ", shape_str(logb.shape()));
  NTC_CHECK(logb_min < logb_max, "laplace_bits: log-scale range");
  Tensor bits = Tensor::empty(y.shape());
  Buffer gy(n), gmu(n), gl(n);  // ∂bits/∂y, ∂bits/∂μ, ∂bits/∂log b
  // In fp32 with the probability floored at 1e-9 (kernels/overfit_math.h), element by element in
  // blocks over the threads.
  const int64_t blocks = int64_t((n + kElementBlock - 1) / kElementBlock);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t j = 0; j < blocks; ++j) {
    const size_t i = size_t(j) * kElementBlock, m = std::min(kElementBlock, n - i);
    k::laplace_bits(y.data() + i, mu.data() + i, logb.data() + i, m, logb_min, logb_max, bits.data() + i,
                    gy.data() + i, gmu.data() + i, gl.data() + i);
  }
  count_flops("laplace_bits", 30 * int64_t(n));
  if (needs_grad({&y, &mu, &logb}))
    record(bits, "laplace_bits", {&y, &mu, &logb}, [y, mu, logb, gy, gmu, gl, n](const float* g) {
      if (y.requires_grad()) k::mul_acc(g, gy.data(), y.grad_acc(), n);
      if (mu.requires_grad()) k::mul_acc(g, gmu.data(), mu.grad_acc(), n);
      if (logb.requires_grad()) k::mul_acc(g, gl.data(), logb.grad_acc(), n);
    });
  return bits;
}

}  // namespace ntc
