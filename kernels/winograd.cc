#include "kernels/winograd.h"

#include <algorithm>

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
template <typename Src>  // Src(o, c) -> pointer to that 3×3 kernel
void weights_blocked(int Cout, int Cin, float* U, Src src, bool flip) {
  constexpr int L = 8;
  const int64_t stride = int64_t(Cout) * Cin;
  const int cb = (Cin + L - 1) / L;
#pragma omp parallel for schedule(static) if (stride > 4096)
  for (int blk = 0; blk < Cout * cb; ++blk) {
    const int o = blk / cb, c0 = (blk % cb) * L, lanes = std::min(L, Cin - c0);
    float g[9][L] = {}, t[4][3][L], u[4][4][L];
    for (int l = 0; l < lanes; ++l) {
      const float* k = src(o, c0 + l);
      for (int i = 0; i < 9; ++i) g[i][l] = flip ? k[8 - i] : k[i];
    }
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
    for (int e = 0; e < 16; ++e)
      for (int l = 0; l < lanes; ++l) U[e * stride + int64_t(o) * Cin + c0 + l] = u[e / 4][e % 4][l];
  }
}

}  // namespace

void winograd_weights(const float* w, int Cout, int Cin, float* U) {
  weights_blocked(Cout, Cin, U, [&](int o, int c) { return w + (int64_t(o) * Cin + c) * 9; }, false);
}

void winograd_weights_transposed(const float* w, int Cin, int Cout, float* U) {
  // flip both axes and swap channels: the equivalent conv2d kernel
  weights_blocked(Cout, Cin, U, [&](int o, int c) { return w + (int64_t(c) * Cout + o) * 9; }, true);
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

}  // namespace ntc::k
