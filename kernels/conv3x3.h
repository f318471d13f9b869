// conv3x3 — 3×3, stride-1 convolutions padded by one pixel (TF "SAME" for 3×3) with at most 4
// channels in and out (the overfitted codec's residual synthesis layers, 3 → 3 over every pixel),
// computed directly: as a GEMM the product has 3 rows against the kernel's 12 and spends most of
// its time building columns of 27 values per pixel.
//
// The input is read through a copy padded with one zero pixel on every side, so every one of the
// 9·Cin taps of an output is one FMA, zeros included, in the order (i, ky, kx) ascending. AVX2 + FMA
// (the build's baseline), 16 pixels per step; the scalar twins in ref:: compute each pixel with
// std::fma in the same order and give the same bits (tested); --kernels ref runs them. Training
// only: the overfitted decoder runs its own fixed-order synthesis (nn/overfit.cc).
#pragma once
#include <cstdint>

namespace ntc::k {

constexpr int kConv3x3MaxChannels = 4;

// xp: C planes of (H + 2) × (W + 2) floats, x with a zero border. Returns nothing; fills xp.
void conv3x3_pad(const float* x, int C, int H, int W, float* xp);

// Rows [r0, r1) of y[o] (H × W planes) = b[o] + Σ_(i, ky, kx) w[o][i][ky][kx]·xp[i][r + ky][c + kx]
// (b null: from 0), or with accumulate, y += that sum taken from 0. w: [Cout][Cin][3][3].
void conv3x3_rows(const float* xp, int Cin, int H, int W, const float* w, const float* b, int Cout, bool accumulate,
                  float* y, int r0, int r1);

// The weight and bias gradients of rows [r0, r1): gw[o][i][ky][kx] = Σ dy[o][r][c]·xp[i][r + ky][c + kx]
// and gb[o] = Σ dy[o][r][c] (overwritten; each a sum in 16 lanes by c mod 16, rows ascending and
// columns ascending within a lane, the lanes then added in order from 0; gw or gb may be null).
void conv3x3_grads(const float* xp, int Cin, int H, int W, const float* dy, int Cout, float* gw, float* gb, int r0, int r1);

// The weights of the input gradient as a forward: wt[i][o][ky][kx] = w[o][i][2 − ky][2 − kx], so that
// dx = conv3x3_rows(pad(dy), wt) accumulates Σ_(o, ky, kx) w[o][i][ky][kx]·dy[o][r − ky + 1][c − kx + 1].
void conv3x3_flip(const float* w, int Cout, int Cin, float* wt);

namespace ref {
void conv3x3_rows(const float* xp, int Cin, int H, int W, const float* w, const float* b, int Cout, bool accumulate,
                  float* y, int r0, int r1);
void conv3x3_grads(const float* xp, int Cin, int H, int W, const float* dy, int Cout, float* gw, float* gb, int r0, int r1);
}  // namespace ref

}  // namespace ntc::k
