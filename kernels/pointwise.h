// pointwise — 1×1 convolutions with few weights (the overfitted codec's synthesis and ARM: 3 to 16
// channels over every pixel; lib/ops/conv.cc takes it up to Cin·Cout = 512), computed directly
// instead of as GEMMs: a GEMM with K = 7 or 16
// spends its time packing operands that are used a handful of times each, and its backward
// transposes a whole image. Here a block of pixels is read once per pass and every output channel
// is formed from it while it is in L1.
//
// AVX2 + FMA (the build's baseline, so no dispatch): 16 pixels per step, four output rows per load
// of the inputs, every sum a chain of FMAs in a fixed order. The scalar twins in ref:: compute
// each lane with std::fma in the same order, so they give the same bits (tested); --kernels ref
// runs them. Training only: decoders keep their products on ntc's GEMM (lib/gemm.h).
#pragma once
#include <cstddef>
#include <cstdint>

namespace ntc::k {

// Pixels per chunk of a backward pass: a chunk is one thread's unit of work and owns one partial
// weight gradient, summed in chunk order afterwards (the same bits for any thread count).
constexpr int64_t kPointwiseChunk = 8192;

// y[o][p] = b[o] + Σ_i w[o][i]·x[i][p] (one FMA per i, ascending; b null: from 0) for p < P.
// x: Cin rows of stride ldx; y: Cout rows of stride ldy; w: [Cout][Cin].
void pointwise_fwd(const float* x, int64_t ldx, int Cin, const float* w, const float* b, int Cout, float* y, int64_t ldy,
                   int64_t P);

// The backward over pixels [0, P) (one chunk): dx[i][p] += Σ_o w[o][i]·dy[o][p] (an FMA chain over o
// ascending, from 0, then added) when dx is not null; with dx_write, dx[i][p] = 0 + that sum instead
// (what += gives on a zeroed dx, to the bit, without reading dx: for a gradient not yet allocated).
// gw[o][i] = Σ_p dy[o][p]·x[i][p] and gb[o] = Σ_p dy[o][p] (overwritten; each a sum in 16 lanes by
// p mod 16, p ascending, the lanes then added in order from 0) when gw / gb are not null.
void pointwise_bwd(const float* x, int64_t ldx, int Cin, const float* w, const float* dy, int64_t ldy, int Cout,
                   float* dx, int64_t lddx, float* gw, float* gb, int64_t P, bool dx_write = false);

namespace ref {
void pointwise_fwd(const float* x, int64_t ldx, int Cin, const float* w, const float* b, int Cout, float* y, int64_t ldy,
                   int64_t P);
void pointwise_bwd(const float* x, int64_t ldx, int Cin, const float* w, const float* dy, int64_t ldy, int Cout,
                   float* dx, int64_t lddx, float* gw, float* gb, int64_t P, bool dx_write = false);
}  // namespace ref

}  // namespace ntc::k
