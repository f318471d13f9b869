#include "kernels/winograd.h"

#include <algorithm>
#include <vector>

#include "kernels/gemm.h"

namespace ntc::k {
namespace {

// Bᵀ·d and Aᵀ·m for 4-vectors (the matrices in winograd.h).
inline void bt4(const float d[4], float o[4]) {
  o[0] = d[0] - d[2];
  o[1] = d[1] + d[2];
  o[2] = d[2] - d[1];
  o[3] = d[1] - d[3];
}
inline void at4(const float m[4], float o[2]) {
  o[0] = m[0] + m[1] + m[2];
  o[1] = m[1] - m[2] - m[3];
}

// Kernels are transformed 8 input channels at a time, lane by lane (plain loops over a fixed lane
// count that the compiler vectorises), and stored as 8 contiguous floats per ξ plane.
// U = G g Gᵀ for L kernels side by side (g[i][l]: tap i of kernel l): t = G g by columns, then
// U = t Gᵀ by rows, u[i][j][l]. One fixed sequence of operations per value (part of the portable
// form's definition, codec/BITSTREAM.md), in plain loops over the lanes that the compiler vectorises.
template <int L>
inline void kernel_transform(const float (&g)[9][L], float (&u)[4][4][L]) {
  float t[4][3][L];
  for (int j = 0; j < 3; ++j)  // columns: t = G g
    for (int l = 0; l < L; ++l) {
      const float a = g[j][l], b = g[3 + j][l], c = g[6 + j][l];
      t[0][j][l] = a;
      t[1][j][l] = 0.5f * (a + b + c);
      t[2][j][l] = 0.5f * (a - b + c);
      t[3][j][l] = c;
    }
  for (int i = 0; i < 4; ++i)  // rows: U = t Gᵀ
    for (int l = 0; l < L; ++l) {
      const float a = t[i][0][l], b = t[i][1][l], c = t[i][2][l];
      u[i][0][l] = a;
      u[i][1][l] = 0.5f * (a + b + c);
      u[i][2][l] = 0.5f * (a - b + c);
      u[i][3][l] = c;
    }
}

template <typename Src, typename Store>  // Src(o, c) -> pointer to that 3×3 kernel; Store(e, o, c, value)
void weights_blocked(int Cout, int Cin, Src src, bool flip, Store store) {
  constexpr int L = 8;
  const int64_t stride = int64_t(Cout) * Cin;
  const int cb = (Cin + L - 1) / L;
#pragma omp parallel for schedule(static) if (stride > 4096)
  for (int blk = 0; blk < Cout * cb; ++blk) {
    const int o = blk / cb, c0 = (blk % cb) * L, lanes = std::min(L, Cin - c0);
    float g[9][L] = {}, u[4][4][L];
    for (int l = 0; l < lanes; ++l) {
      const float* k = src(o, c0 + l);
      for (int i = 0; i < 9; ++i) g[i][l] = flip ? k[8 - i] : k[i];
    }
    kernel_transform(g, u);
    for (int e = 0; e < 16; ++e)
      for (int l = 0; l < lanes; ++l) store(e, o, c0 + l, u[e / 4][e % 4][l]);
  }
}

}  // namespace

void winograd_weights(const float* w, int Cout, int Cin, float* U) {
  const int64_t stride = int64_t(Cout) * Cin;
  weights_blocked(Cout, Cin, [&](int o, int c) { return w + (int64_t(o) * Cin + c) * 9; }, false,
                  [&](int e, int o, int c, float v) { U[e * stride + int64_t(o) * Cin + c] = v; });
}

void winograd_weights_transposed(const float* w, int Cin, int Cout, float* U) {
  // flip both axes and swap channels: the equivalent conv2d kernel
  const int64_t stride = int64_t(Cout) * Cin;
  weights_blocked(Cout, Cin, [&](int o, int c) { return w + (int64_t(c) * Cout + o) * 9; }, true,
                  [&](int e, int o, int c, float v) { U[e * stride + int64_t(o) * Cin + c] = v; });
}

void winograd_weights_transposed_kn(const float* w, int Cin, int Cout, float* U, int64_t plane, int nr) {
  // Row c of every U[ξ], L output channels at a time (kernel_transform, as weights_blocked), with
  // the lanes over o, so that the stores are contiguous (a run of L columns lies in one panel: L
  // divides nr).
  constexpr int L = 16;
  const int64_t n_pad = nr > 0 ? (int64_t(Cout) + nr - 1) / nr * nr : Cout;
  auto at = [&](int c, int o) {  // pack_b_all's layout (kernels/gemm.h), or row-major [Cin][Cout]
    if (nr <= 0) return int64_t(c) * Cout + o;
    const int64_t k0 = int64_t(c) / int64_t(kGemmKC) * int64_t(kGemmKC);
    const int64_t kc = std::min<int64_t>(int64_t(kGemmKC), Cin - k0);
    return k0 * n_pad + int64_t(o / nr) * kc * nr + (c - k0) * nr + o % nr;
  };
#pragma omp parallel for schedule(static) if (int64_t(Cin) * Cout > 4096)
  for (int c = 0; c < Cin; ++c)
    for (int o0 = 0; o0 < n_pad; o0 += L) {
      const int lanes = int(std::max<int64_t>(0, std::min<int64_t>(L, Cout - o0)));
      float g[9][L] = {}, u[4][4][L];
      for (int l = 0; l < lanes; ++l) {
        const float* k = w + (int64_t(c) * Cout + o0 + l) * 9;
        for (int i = 0; i < 9; ++i) g[i][l] = k[8 - i];  // flipped in both axes
      }
      kernel_transform(g, u);
      const int n = nr > 0 ? L : lanes;  // packed: the padding columns too (zeros: g is 0 there)
      if (n <= 0) continue;
      const int64_t base = at(c, o0);
      for (int e = 0; e < 16; ++e)
        for (int l = 0; l < n; ++l) U[e * plane + base + l] = u[e / 4][e % 4][l];
    }
}

void winograd_input(const float* x, int C, int H, int W, float* V, int64_t ld, int64_t col0) {
  const int th = (H + 1) / 2, tw = (W + 1) / 2;
  const int64_t plane = int64_t(C) * ld;  // V[ξ] stride
#pragma omp parallel for schedule(static) if (int64_t(C) * th * tw > 2048)
  for (int c = 0; c < C; ++c) {
    const float* xc = x + int64_t(c) * H * W;
    float* vc = V + int64_t(c) * ld + col0;
    for (int ti = 0; ti < th; ++ti)
      for (int tj = 0; tj < tw; ++tj) {
        float d[4][4];
        const int y0 = 2 * ti - 1, x0 = 2 * tj - 1;
        if (y0 >= 0 && x0 >= 0 && y0 + 4 <= H && x0 + 4 <= W) {  // interior: no bounds checks
          for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 4; ++j) d[i][j] = xc[int64_t(y0 + i) * W + x0 + j];
        } else {
          for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 4; ++j) {
              const int yy = y0 + i, xx = x0 + j;
              d[i][j] = (yy >= 0 && yy < H && xx >= 0 && xx < W) ? xc[int64_t(yy) * W + xx] : 0.f;
            }
        }
        float t[4][4], col[4], out[4];
        for (int j = 0; j < 4; ++j) {  // columns: t = Bᵀ d
          for (int i = 0; i < 4; ++i) col[i] = d[i][j];
          bt4(col, out);
          for (int i = 0; i < 4; ++i) t[i][j] = out[i];
        }
        const int64_t tcol = int64_t(ti) * tw + tj;
        for (int i = 0; i < 4; ++i) {  // rows: V = t B
          bt4(t[i], out);
          for (int j = 0; j < 4; ++j) vc[(i * 4 + j) * plane + tcol] = out[j];
        }
      }
  }
}

void winograd_output(const float* M, int Cout, int H, int W, int64_t ld, int64_t col0, const float* bias, float* y) {
  const int th = (H + 1) / 2, tw = (W + 1) / 2;
  const int64_t plane = int64_t(Cout) * ld;
#pragma omp parallel for schedule(static) if (int64_t(Cout) * th * tw > 2048)
  for (int o = 0; o < Cout; ++o) {
    const float* mo = M + int64_t(o) * ld + col0;
    float* yo = y + int64_t(o) * H * W;
    const float b = bias ? bias[o] : 0.f;
    for (int ti = 0; ti < th; ++ti)
      for (int tj = 0; tj < tw; ++tj) {
        const int64_t tcol = int64_t(ti) * tw + tj;
        float t[2][4], col[4], out[2];
        for (int j = 0; j < 4; ++j) {  // columns: t = Aᵀ m
          for (int i = 0; i < 4; ++i) col[i] = mo[(i * 4 + j) * plane + tcol];
          at4(col, out);
          t[0][j] = out[0];
          t[1][j] = out[1];
        }
        for (int i = 0; i < 2; ++i) {  // rows: Y = t A
          at4(t[i], out);
          const int yy = 2 * ti + i;
          if (yy >= H) continue;
          for (int j = 0; j < 2; ++j) {
            const int xx = 2 * tj + j;
            if (xx < W) yo[int64_t(yy) * W + xx] = out[j] + b;
          }
        }
      }
  }
}

void winograd_input_tiles(const float* x, int C, int H, int W, int t0, int nt, float* V) {
  // The block's input rows, channel-last with the zero border (2·⌈W/2⌉ + 2 columns: one left, and
  // one right for even W, two for odd), so that a tile's transform runs over the channels in
  // contiguous lanes.
  const int tw = (W + 1) / 2, ti0 = t0 / tw, ti1 = (t0 + nt - 1) / tw;
  const int r0 = 2 * ti0 - 1, rows = 2 * (ti1 - ti0) + 4, cols = 2 * tw + 2;
  thread_local std::vector<float> buf;
  const size_t need = size_t(rows) * cols * C;
  if (buf.size() < need) buf.resize(need);
  float* xs = buf.data();
  for (int r = 0; r < rows; ++r) {
    const int yy = r0 + r;
    float* row = xs + int64_t(r) * cols * C;
    if (yy < 0 || yy >= H) {
      std::fill(row, row + int64_t(cols) * C, 0.f);
      continue;
    }
    std::fill(row, row + C, 0.f);  // column −1
    for (int xx = W + 1; xx < cols; ++xx) std::fill(row + int64_t(xx) * C, row + int64_t(xx + 1) * C, 0.f);
    for (int c = 0; c < C; ++c) {
      const float* src = x + (int64_t(c) * H + yy) * W;
      for (int xx = 0; xx < W; ++xx) row[int64_t(xx + 1) * C + c] = src[xx];
    }
  }
  // Per tile, in passes over the channels that each read and write a few contiguous runs (one loop
  // over all 16 values would keep 32 streams live): t = Bᵀ d by columns, then V = t B by rows, the
  // same operations as bt4.
  const int64_t plane = int64_t(nt) * C;
  thread_local std::vector<float> tbuf;
  if (tbuf.size() < size_t(16) * C) tbuf.resize(size_t(16) * C);
  float* tt = tbuf.data();  // tt[(i·4 + j)·C + c]
  for (int t = 0; t < nt; ++t) {
    const int ti = (t0 + t) / tw, tj = (t0 + t) % tw;
    const float* d0 = xs + (int64_t(2 * (ti - ti0)) * cols + 2 * tj) * C;  // the tile's top-left input
    auto d = [&](int i, int j) { return d0 + (int64_t(i) * cols + j) * C; };
    for (int j = 0; j < 4; ++j) {
      const float *a0 = d(0, j), *a1 = d(1, j), *a2 = d(2, j), *a3 = d(3, j);
      float *o0 = tt + j * C, *o1 = tt + (4 + j) * C, *o2 = tt + (8 + j) * C, *o3 = tt + (12 + j) * C;
      for (int c = 0; c < C; ++c) {
        o0[c] = a0[c] - a2[c];
        o1[c] = a1[c] + a2[c];
        o2[c] = a2[c] - a1[c];
        o3[c] = a1[c] - a3[c];
      }
    }
    float* v = V + int64_t(t) * C;
    for (int i = 0; i < 4; ++i) {
      const float *a0 = tt + (4 * i) * C, *a1 = a0 + C, *a2 = a1 + C, *a3 = a2 + C;
      float *o0 = v + (4 * i) * plane, *o1 = o0 + plane, *o2 = o1 + plane, *o3 = o2 + plane;
      for (int c = 0; c < C; ++c) {
        o0[c] = a0[c] - a2[c];
        o1[c] = a1[c] + a2[c];
        o2[c] = a2[c] - a1[c];
        o3[c] = a1[c] - a3[c];
      }
    }
  }
}

void winograd_output_tiles(const float* M, int Cout, int H, int W, int t0, int nt, const float* bias, float* y) {
  // Per tile, in passes over the channels as in winograd_input_tiles: t = Aᵀ m by columns, then
  // Y = t A by rows plus the bias (the same operations as at4), then the four outputs stored.
  const int tw = (W + 1) / 2;
  const int64_t plane = int64_t(nt) * Cout, HW = int64_t(H) * W;
  thread_local std::vector<float> buf;
  if (buf.size() < size_t(12) * Cout) buf.resize(size_t(12) * Cout);
  float* tt = buf.data();         // tt[(i·4 + j)·Cout + o], i < 2
  float* out = tt + 8 * Cout;     // out[(i·2 + j)·Cout + o]
  for (int t = 0; t < nt; ++t) {
    const float* m = M + int64_t(t) * Cout;
    for (int j = 0; j < 4; ++j) {
      const float *r0 = m + j * plane, *r1 = m + (4 + j) * plane, *r2 = m + (8 + j) * plane, *r3 = m + (12 + j) * plane;
      float *o0 = tt + j * Cout, *o1 = tt + (4 + j) * Cout;
      for (int o = 0; o < Cout; ++o) {
        o0[o] = r0[o] + r1[o] + r2[o];
        o1[o] = r1[o] - r2[o] - r3[o];
      }
    }
    for (int i = 0; i < 2; ++i) {
      const float *a0 = tt + 4 * i * Cout, *a1 = a0 + Cout, *a2 = a1 + Cout, *a3 = a2 + Cout;
      float *o0 = out + 2 * i * Cout, *o1 = o0 + Cout;
      if (bias) {
        for (int o = 0; o < Cout; ++o) {
          o0[o] = (a0[o] + a1[o] + a2[o]) + bias[o];
          o1[o] = (a1[o] - a2[o] - a3[o]) + bias[o];
        }
      } else {
        for (int o = 0; o < Cout; ++o) {
          o0[o] = (a0[o] + a1[o] + a2[o]) + 0.f;
          o1[o] = (a1[o] - a2[o] - a3[o]) + 0.f;
        }
      }
    }
    const int ti = (t0 + t) / tw, tj = (t0 + t) % tw, yy = 2 * ti, xx = 2 * tj;
    const bool down = yy + 1 < H, right = xx + 1 < W;
    const float *y00 = out, *y01 = out + Cout, *y10 = out + 2 * Cout, *y11 = out + 3 * Cout;
    float* yo = y + int64_t(yy) * W + xx;
    for (int o = 0; o < Cout; ++o, yo += HW) {
      yo[0] = y00[o];
      if (right) yo[1] = y01[o];
      if (down) {
        yo[W] = y10[o];
        if (right) yo[W + 1] = y11[o];
      }
    }
  }
}

}  // namespace ntc::k
