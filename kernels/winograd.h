// winograd — the transforms of Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray 2016) for
// 3×3, stride-1 convolutions padded by one pixel on every side (TF "SAME" for 3×3).
//
// A 4×4 input tile d (top-left at (2i−1, 2j−1), zeros outside the image) and a 3×3 kernel g give
// the 2×2 output tile Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A with
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//   Aᵀ = [1 1 1 0; 0 1 −1 −1].
// Summed over input channels, the 16 element-wise products become 16 GEMMs
//   M[ξ] (Cout × tiles) = U[ξ] (Cout × Cin) · V[ξ] (Cin × tiles),
// which do 16 multiplies per 2×2 outputs instead of 36 (2.25× fewer). The GEMMs are the caller's
// (lib/ops/conv.cc); these functions only transform. Cross-correlation, as conv2d.
//
// Threads: each function splits its outer channel loop over OpenMP threads; every value is
// computed by one thread in a fixed order, so results do not depend on the thread count.
#pragma once
#include <cstdint>

namespace ntc::k {

inline int winograd_tiles(int H, int W) { return ((H + 1) / 2) * ((W + 1) / 2); }

// w [Cout, Cin, 3, 3] (conv2d layout) -> U [16, Cout, Cin]
void winograd_weights(const float* w, int Cout, int Cin, float* U);
// w [Cin, Cout, 3, 3] of a stride-1 transposed conv (padding 1) -> U [16, Cout, Cin] of the
// equivalent conv2d (kernel flipped in both axes, channels swapped).
void winograd_weights_transposed(const float* w, int Cin, int Cout, float* U);
// x [C, H, W] -> V[ξ][c][col0 + t] (row stride ld), t = ti·⌈W/2⌉ + tj.
void winograd_input(const float* x, int C, int H, int W, float* V, int64_t ld, int64_t col0);
// M[ξ][o][col0 + t] (row stride ld) -> y [Cout, H, W] = Aᵀ m A (+ bias[o] when bias != null).
void winograd_output(const float* M, int Cout, int H, int W, int64_t ld, int64_t col0, const float* bias, float* y);

// ---- The portable form (codec/BITSTREAM.md, flag 1): tiles in blocks, tiles as GEMM rows ----
// A stride-1 transposed conv padded by one on every side, computed as its equivalent conv2d in
// blocks of tiles: V[ξ] (tiles × Cin) · U[ξ] (Cin × Cout) = M[ξ] (tiles × Cout), so that U is
// transformed (and packed for ntc's kernel) once and each block's buffers stay cache-sized and are
// reused. Every value of the transforms is one fixed sequence of IEEE operations (built with
// -ffp-contract=off), so with a product that gives the same bits everywhere (PortableProducts) the
// layer does too.
//
// w [Cin, Cout, 3, 3] -> U[ξ] for ξ = 0..15 at U + ξ·plane: with nr = 0 row-major [Cin][Cout];
// with nr > 0 in the panels of a packed GEMM operand (kernels/gemm.h, pack_b_all: k-blocks of
// kGemmKC rows, panels of nr columns, columns beyond Cout zero; nr a multiple of 16, as
// sgemm_nr() is). plane >= the layout's size.
void winograd_weights_transposed_kn(const float* w, int Cin, int Cout, float* U, int64_t plane, int nr);
// Tiles [t0, t0 + nt) (t = ti·⌈W/2⌉ + tj) of x [C, H, W] -> V[ξ][t − t0][c] (plane nt·C).
void winograd_input_tiles(const float* x, int C, int H, int W, int t0, int nt, float* V);
// M[ξ][t − t0][o] (plane nt·Cout) -> those tiles' outputs y [Cout, H, W] = Aᵀ m A + bias[o]
// (bias may be null).
void winograd_output_tiles(const float* M, int Cout, int H, int W, int t0, int nt, const float* bias, float* y);

}  // namespace ntc::k
