#include "kernels/im2col.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/gemm.h"

namespace ntc::k {
namespace {

// Range [lo, hi) of output positions o whose image position o·s + off lies in [0, n).
inline void valid_range(int off, int s, int n, int count, int* lo, int* hi) {
  // o·s + off >= 0  <=>  o >= ceil(-off / s)
  int a = off >= 0 ? 0 : (-off + s - 1) / s;
  // o·s + off <= n-1  <=>  o <= floor((n-1-off)/s)
  int b = (n - 1 - off) < 0 ? -1 : (n - 1 - off) / s;
  *lo = std::min(a, count);
  *hi = std::max(*lo, std::min(b + 1, count));
}

// col2im of one image row for stride 2: the row is split into its even and odd columns, each
// (ky, kx) term then adds a contiguous run of col into one of them (vectorisable, unlike the
// stride-2 scatter), and the halves are interleaved back. Every element still receives its terms
// in (ky, kx) order after its old value: the same bits as the scatter.
void col2im_row_s2(const ConvGeom& g, const float* col, int64_t plane, int oy_end, int c, int iy, float* xr) {
  thread_local std::vector<float> half;
  const int we = (g.W + 1) / 2, wo = g.W / 2;
  if (half.size() < size_t(we + wo)) half.resize(size_t(we + wo));
  float* ph[2] = {half.data(), half.data() + we};
  for (int i = 0; i < wo; ++i) {
    ph[0][i] = xr[2 * i];
    ph[1][i] = xr[2 * i + 1];
  }
  if (we > wo) ph[0][wo] = xr[2 * wo];
  for (int ky = 0; ky < g.kh; ++ky) {
    const int t = iy + g.pad_t - ky;  // = oy·2
    if (t < 0 || (t & 1)) continue;
    const int oy = t / 2;
    if (oy < g.oy0 || oy >= oy_end) continue;
    for (int kx = 0; kx < g.kw; ++kx) {
      const float* cr = col + (int64_t(c * g.kh + ky) * g.kw + kx) * plane + int64_t(oy - g.oy0) * g.Wo;
      int ox0, ox1;
      valid_range(kx - g.pad_l, 2, g.W, g.Wo, &ox0, &ox1);
      const int off = kx - g.pad_l, p = off & 1;  // ix = 2·ox + off = 2·(ox + (off − p)/2) + p
      float* o = ph[p] + (off - p) / 2;
      for (int ox = ox0; ox < ox1; ++ox) o[ox] += cr[ox];
    }
  }
  for (int i = 0; i < wo; ++i) {
    xr[2 * i] = ph[0][i];
    xr[2 * i + 1] = ph[1][i];
  }
  if (we > wo) xr[2 * wo] = ph[0][wo];
}

}  // namespace

void im2col(const ConvGeom& g, const float* x, float* col) {
  const int rows = g.C * g.kh * g.kw;
  const int64_t plane = g.col_ld();
  const int oy_end = g.band_end();
#pragma omp parallel for schedule(static) if (int64_t(rows) * plane > 32768)
  for (int r = 0; r < rows; ++r) {
    const int kx = r % g.kw, ky = (r / g.kw) % g.kh, c = r / (g.kw * g.kh);
    const float* xc = x + int64_t(c) * g.H * g.W;
    float* out = col + int64_t(r) * plane;
    int ox0, ox1;
    valid_range(kx - g.pad_l, g.stride, g.W, g.Wo, &ox0, &ox1);
    for (int oy = g.oy0; oy < oy_end; ++oy) {
      float* o = out + int64_t(oy - g.oy0) * g.Wo;
      const int iy = oy * g.stride + ky - g.pad_t;
      if (iy < 0 || iy >= g.H) {
        std::memset(o, 0, sizeof(float) * size_t(g.Wo));
        continue;
      }
      const float* xr = xc + int64_t(iy) * g.W + kx - g.pad_l;
      for (int ox = 0; ox < ox0; ++ox) o[ox] = 0.f;
      if (g.stride == 1) {
        std::memcpy(o + ox0, xr + ox0, sizeof(float) * size_t(ox1 - ox0));
      } else {
        for (int ox = ox0; ox < ox1; ++ox) o[ox] = xr[ox * g.stride];
      }
      for (int ox = ox1; ox < g.Wo; ++ox) o[ox] = 0.f;
    }
  }
}

void col2im(const ConvGeom& g, const float* col, float* x) {
  const int64_t plane = g.col_ld();
  const int oy_end = g.band_end();
  // Image rows reached from the band: oy·s + ky − pad_t for oy in the band, ky in [0, kh).
  const int iy0 = std::max(0, g.oy0 * g.stride - g.pad_t);
  const int iy1 = std::min(g.H, (oy_end - 1) * g.stride + g.kh - g.pad_t);
  const int span = std::max(0, iy1 - iy0), rows = g.C * span;
#pragma omp parallel for schedule(static) if (int64_t(g.C) * g.kh * g.kw * plane > 32768)
  for (int r = 0; r < rows; ++r) {  // one row of x per iteration: (c, iy)
    const int c = r / span, iy = iy0 + r % span;
    float* xr = x + int64_t(c) * g.H * g.W + int64_t(iy) * g.W;
    if (g.stride == 2) {
      col2im_row_s2(g, col, plane, oy_end, c, iy, xr);
      continue;
    }
    for (int ky = 0; ky < g.kh; ++ky) {
      const int t = iy + g.pad_t - ky;  // = oy·s
      if (t < 0 || t % g.stride) continue;
      const int oy = t / g.stride;
      if (oy < g.oy0 || oy >= oy_end) continue;
      for (int kx = 0; kx < g.kw; ++kx) {
        const float* cr =
            col + (int64_t(c * g.kh + ky) * g.kw + kx) * plane + int64_t(oy - g.oy0) * g.Wo;
        int ox0, ox1;
        valid_range(kx - g.pad_l, g.stride, g.W, g.Wo, &ox0, &ox1);
        float* xo = xr + kx - g.pad_l;
        if (g.stride == 1) {
          for (int ox = ox0; ox < ox1; ++ox) xo[ox] += cr[ox];
        } else {
          for (int ox = ox0; ox < ox1; ++ox) xo[ox * g.stride] += cr[ox];
        }
      }
    }
  }
}

void im2col_row(const Im2colSource& s, int r, int64_t j0, int64_t n, float* out) {
  const ConvGeom& g = s.g;
  const int K = g.C * g.kh * g.kw;
  if (r >= K) {
    std::fill(out, out + n, r < K + s.ones ? 1.f : 0.f);
    return;
  }
  const int kx = r % g.kw, ky = (r / g.kw) % g.kh, c = r / (g.kw * g.kh);
  int lo, hi;  // output columns whose input column is inside the image
  valid_range(kx - g.pad_l, g.stride, g.W, g.Wo, &lo, &hi);
  const int64_t bc = g.band_cols();
  const int oy_end = g.band_end();
  const int64_t i0 = j0 / bc, local = j0 - i0 * bc;
  int oy = g.oy0 + int(local / g.Wo), ox = int(local % g.Wo);
  const float* xc = s.x + i0 * s.x_stride + int64_t(c) * g.H * g.W + kx - g.pad_l;  // image i, channel c
  for (float *o = out, *end = out + n; o < end;) {
    const int len = int(std::min<int64_t>(g.Wo - ox, end - o));
    const int iy = oy * g.stride + ky - g.pad_t;
    if (iy < 0 || iy >= g.H) {
      std::fill(o, o + len, 0.f);
    } else {
      const float* xr = xc + int64_t(iy) * g.W;
      const int a = std::clamp(lo, ox, ox + len), b = std::clamp(hi, a, ox + len);
      float* oo = o - ox;  // oo[t] is output column t of this row
      std::fill(o, oo + a, 0.f);
      if (g.stride == 1) {
        std::memcpy(oo + a, xr + a, sizeof(float) * size_t(b - a));
      } else if (g.stride == 2) {
        for (int t = a; t < b; ++t) oo[t] = xr[2 * t];
      } else {
        for (int t = a; t < b; ++t) oo[t] = xr[int64_t(t) * g.stride];
      }
      std::fill(oo + b, o + len, 0.f);
    }
    o += len;
    ox = 0;
    if (++oy == oy_end) {  // the next image of the group
      oy = g.oy0;
      xc += s.x_stride;
    }
  }
}

const float* im2col_panels(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr, float* scratch) {
  const auto& s = *static_cast<const Im2colSource*>(ctx);
  thread_local std::vector<float> row;
  const size_t width = (nc + nr - 1) / nr * nr;
  if (row.size() < width) row.resize(width);
  std::fill(row.begin() + nc, row.begin() + width, 0.f);  // the padding of the last panel
  for (size_t k = 0; k < kc; ++k) {
    im2col_row(s, int(k0 + k), int64_t(j0), int64_t(nc), row.data());
    float* o = scratch + k * nr;
    for (size_t q = 0; q < width; q += nr) std::memcpy(o + q * kc, row.data() + q, nr * sizeof(float));
  }
  return scratch;
}

const float* im2col_panels_t(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr, float* scratch) {
  const auto& s = *static_cast<const Im2colSource*>(ctx);
  thread_local std::vector<float> rows;
  if (rows.size() < nr * kc) rows.resize(nr * kc);
  for (size_t q = 0; q < nc; q += nr) {
    const size_t n = std::min(nr, nc - q);
    for (size_t t = 0; t < n; ++t) im2col_row(s, int(j0 + q + t), int64_t(k0), int64_t(kc), rows.data() + t * kc);
    pack_panels(true, rows.data(), kc, kc, n, scratch + q * kc);
  }
  return scratch;
}

namespace {

// Whether column-matrix rows r and r + 1 read neighbouring inputs: stride 2, and kx, kx + 1 of
// one channel and kernel row. Then the pair of output column t is x[2t + kx − pad_l] and the
// value after it, so pair words are rounded straight from the input row, 32 values at a time.
bool adjacent_pair(const ConvGeom& g, int r) {
  return g.stride == 2 && r + 1 < g.C * g.kh * g.kw && r % g.kw + 1 < g.kw;
}

// out[0 : n] = the pair words of rows r, r + 1 (adjacent_pair), columns [j0, j0 + n): the same
// words as im2col_row of both rows and bf16_pair_rows, with no fp32 rows in between.
void pair_row_s2(const Im2colSource& s, int r, int64_t j0, int64_t n, uint32_t* out) {
  const ConvGeom& g = s.g;
  const int kx = r % g.kw, ky = (r / g.kw) % g.kh, c = r / (g.kw * g.kh), off = kx - g.pad_l;
  int alo, ahi, blo, bhi;  // output columns whose first / second value is inside the image
  valid_range(off, 2, g.W, g.Wo, &alo, &ahi);
  valid_range(off + 1, 2, g.W, g.Wo, &blo, &bhi);
  const int vlo = std::max(alo, blo), vhi = std::min(ahi, bhi);  // both inside: the vector run
  const int64_t bc = g.band_cols();
  const int oy_end = g.band_end();
  const int64_t i0 = j0 / bc, local = j0 - i0 * bc;
  int oy = g.oy0 + int(local / g.Wo), ox = int(local % g.Wo);
  const float* xc = s.x + i0 * s.x_stride + int64_t(c) * g.H * g.W;  // image i, channel c
  for (uint32_t *o = out, *end = out + n; o < end;) {
    const int len = int(std::min<int64_t>(g.Wo - ox, end - o));
    const int iy = oy * 2 + ky - g.pad_t;
    if (iy < 0 || iy >= g.H) {
      std::fill(o, o + len, 0u);
    } else {
      const float* xr = xc + int64_t(iy) * g.W;
      uint32_t* oo = o - ox;  // oo[t] is output column t of this row
      const int a = std::clamp(vlo, ox, ox + len), b = std::clamp(vhi, a, ox + len);
      auto edge = [&](int t) {  // a column with at most one value inside
        const uint32_t lo = t >= alo && t < ahi ? to_bf16(xr[2 * t + off]) : 0u;
        const uint32_t hi = t >= blo && t < bhi ? to_bf16(xr[2 * t + off + 1]) : 0u;
        oo[t] = lo | hi << 16;
      };
      for (int t = ox; t < a; ++t) edge(t);
      if (b > a) bf16_pairs_contiguous(xr + 2 * a + off, size_t(2 * (b - a)), oo + a);
      for (int t = b; t < ox + len; ++t) edge(t);
    }
    o += len;
    ox = 0;
    if (++oy == oy_end) {  // the next image of the group
      oy = g.oy0;
      xc += s.x_stride;
    }
  }
}

}  // namespace

const uint32_t* im2col_pairs(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, uint32_t* scratch) {
  const auto& s = *static_cast<const Im2colSource*>(ctx);
  const size_t kc2 = (kc + 1) / 2, nr = sgemm_bf16_nr(), width = (nc + nr - 1) / nr * nr;
  thread_local std::vector<float> lo, hi;
  thread_local std::vector<uint32_t> words;
  if (lo.size() < nc) lo.resize(nc), hi.resize(nc);
  if (words.size() < width) words.resize(width);
  std::fill(words.begin() + std::ptrdiff_t(nc), words.begin() + std::ptrdiff_t(width), 0u);  // the last panel's padding
  for (size_t t = 0; t < kc2; ++t) {
    const int r = int(k0 + 2 * t);
    const bool pair = 2 * t + 1 < kc;
    if (pair && s.ones == 0 && adjacent_pair(s.g, r)) {
      pair_row_s2(s, r, int64_t(j0), int64_t(nc), words.data());
      for (size_t q = 0; q < width; q += nr) std::memcpy(scratch + q * kc2 + t * nr, words.data() + q, nr * sizeof(uint32_t));
      continue;
    }
    im2col_row(s, r, int64_t(j0), int64_t(nc), lo.data());
    if (pair) im2col_row(s, r + 1, int64_t(j0), int64_t(nc), hi.data());
    bf16_pair_rows(lo.data(), pair ? hi.data() : nullptr, nc, kc2 * nr, scratch + t * nr);
  }
  return scratch;
}

const uint32_t* im2col_pairs_t(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, uint32_t* scratch) {
  const auto& s = *static_cast<const Im2colSource*>(ctx);
  const size_t kc2 = (kc + 1) / 2, nr = sgemm_bf16_nr();
  // The panels' columns are column-matrix rows and their k the matrix's columns, so the pairs are
  // neighbours within a row: each of a panel's nr rows is rounded into kc2 contiguous pair words
  // (bf16_pairs_contiguous), and the words are transposed into the panel by the fp32 kernel's
  // panel packer, which only moves 32-bit values (its panels are nr wide on the AVX-512 target,
  // the only one bf16 products run on).
  if (sgemm_nr() != nr) std::abort();
  thread_local std::vector<float> row, words;  // words: pair words, kept in float storage for pack_panels
  if (row.size() < kc) row.resize(kc);
  if (words.size() < nr * kc2) words.resize(nr * kc2);
  for (size_t q = 0; q < nc; q += nr) {
    const size_t n = std::min(nr, nc - q);
    for (size_t c = 0; c < n; ++c) {
      im2col_row(s, int(j0 + q + c), int64_t(k0), int64_t(kc), row.data());
      bf16_pairs_contiguous(row.data(), kc, reinterpret_cast<uint32_t*>(words.data() + c * kc2));
    }
    pack_panels(true, words.data(), kc2, kc2, n, reinterpret_cast<float*>(scratch + q * kc2));
  }
  return scratch;
}

namespace ref {

void im2col(const ConvGeom& g, const float* x, float* col) {
  const int64_t plane = g.col_ld();
  for (int c = 0; c < g.C; ++c)
    for (int ky = 0; ky < g.kh; ++ky)
      for (int kx = 0; kx < g.kw; ++kx)
        for (int oy = g.oy0; oy < g.band_end(); ++oy)
          for (int ox = 0; ox < g.Wo; ++ox) {
            int iy = oy * g.stride + ky - g.pad_t, ix = ox * g.stride + kx - g.pad_l;
            bool in = iy >= 0 && iy < g.H && ix >= 0 && ix < g.W;
            col[((int64_t(c) * g.kh + ky) * g.kw + kx) * plane + (oy - g.oy0) * g.Wo + ox] =
                in ? x[(int64_t(c) * g.H + iy) * g.W + ix] : 0.f;
          }
}

void col2im(const ConvGeom& g, const float* col, float* x) {
  const int64_t plane = g.col_ld();
  for (int c = 0; c < g.C; ++c)
    for (int ky = 0; ky < g.kh; ++ky)
      for (int kx = 0; kx < g.kw; ++kx)
        for (int oy = g.oy0; oy < g.band_end(); ++oy)
          for (int ox = 0; ox < g.Wo; ++ox) {
            int iy = oy * g.stride + ky - g.pad_t, ix = ox * g.stride + kx - g.pad_l;
            if (iy >= 0 && iy < g.H && ix >= 0 && ix < g.W)
              x[(int64_t(c) * g.H + iy) * g.W + ix] +=
                  col[((int64_t(c) * g.kh + ky) * g.kw + kx) * plane + (oy - g.oy0) * g.Wo + ox];
          }
}

}  // namespace ref
}  // namespace ntc::k
