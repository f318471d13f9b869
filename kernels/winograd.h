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

}  // namespace ntc::k
