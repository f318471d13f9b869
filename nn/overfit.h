// overfit — the overfitted per-image codec (`ntc encode --overfit`, issue #18): a stream carries
// its own tiny decoder. The encoder (train/overfit.h) trains latents and networks for one image;
// this file defines the decoder, the stream and the arithmetic both sides share.
//
// The decoder, for an image of H×W pixels and C channels (3, or 1 for a grey image):
//   latents   L single-channel integer grids ŷ_l, l = 0…L−1, of ⌈H/2^l⌉ × ⌈W/2^l⌉;
//   ARM       every latent is coded with a Laplace(μ, b) predicted from 16 causal neighbours in
//             its own grid (kContextOffsets; 0 outside) by an MLP 16 → A → A → 2 (ReLU; outputs μ,
//             log b), shared by all grids; rANS with the tables of codec/laplace.h;
//   upsample  ŷ_l is brought to H×W by l ×2 steps (lib/ops upsample2_plane): bilinear, or with
//             learned four-tap filters, one per step (Arch::learned_up);
//   synthesis per pixel, 1×1 convs L → S (ReLU) → C, then two residual 3×3 convs C → C
//             (x₁ = x₀ + conv₁(x₀), x₂ = x₁ + conv₂(ReLU(x₁)), zero padding), values in [0, 1];
//   pixels    round(clip(255·x₂, 0, 255)); a grey image is written as three equal channels.
// Weights are integers q times 2^−e, e per group (ARM weights, ARM biases, synthesis weights,
// synthesis biases), coded with signed Exp-Golomb codes whose order is also per group.
//
// Bit-exactness: every decoder operation is a single IEEE operation in a fixed order, scalar code
// (compilers may vectorise across outputs, never reorder a sum: -ffp-contract=off, no fast-math),
// no libm, no GEMM back end, no threads. So a stream decodes to the same pixels on every x86-64 CPU,
// SIMD target and thread count, and the encoder's reconstruction is the decoder's, by
// construction: the encoder's final pass calls the functions below.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "lib/tensor.h"

namespace ntc::nn::overfit {

constexpr int kContext = 16;
// (dy, dx) of the 16 causal neighbours: 5 two rows up, 7 one row up, 4 to the left.
extern const std::array<std::pair<int, int>, kContext> kContextOffsets;
std::vector<std::pair<int, int>> context_offsets();

// Quantisation groups: ARM weights, ARM biases, synthesis weights, synthesis biases, and (learned
// upsampling only) the upsampling taps. Each has its step and Exp-Golomb order.
constexpr int kGroups = 5;
constexpr int kUpGroup = 4;
extern const char* const kGroupNames[kGroups];

constexpr int kMaxHidden = 64;  // the widest synthesis and ARM layers a stream may declare

struct Arch {
  int height = 0, width = 0;
  int channels = 3;  // 3, or 1 for a grey image
  int levels = 7;    // 1…8
  int syn_hidden = 16;
  int arm_hidden = 8;
  // Upsampling: false, bilinear (stream version 1); true, a learned four-tap filter for each ×2 step
  // (lib/ops upsample2 with taps; version 2), shared by every grid that passes through that step.
  bool learned_up = false;
  int64_t grid_h(int l) const { return (int64_t(height) + (int64_t(1) << l) - 1) >> l; }
  int64_t grid_w(int l) const { return (int64_t(width) + (int64_t(1) << l) - 1) >> l; }
  int64_t latent_count() const;
  int groups() const { return learned_up ? 5 : 4; }  // quantisation groups in use
};

// One parameter tensor of the per-image decoder: its name, shape and quantisation group.
struct ParamSpec {
  std::string name;
  Shape shape;
  int group;
};
// In stream order (1×1 convolutions, [out, in, 1, 1]): arm.w1 [A, 16, 1, 1], arm.b1 [A],
// arm.w2 [A, A, 1, 1], arm.b2 [A], arm.w3 [2, A, 1, 1], arm.b3 [2],
// syn.w1 [S, L, 1, 1], syn.b1 [S], syn.w2 [C, S, 1, 1], syn.b2 [C], syn.r1w [C, C, 3, 3], syn.r1b [C],
// syn.r2w [C, C, 3, 3], syn.r2b [C]; with learned upsampling then up.f1 … up.f{L−1} [4] (the
// taps of the step from grid s to grid s − 1), group kUpGroup.
std::vector<ParamSpec> param_specs(const Arch& a);
// Index in param_specs of the taps of the step from grid s to s − 1 (learned upsampling).
inline size_t up_taps_index(int s) { return size_t(13 + s); }

// The decoder's weights as floats (q·2^−e), in param_specs order.
using WeightSet = std::vector<std::vector<float>>;

// The quantised network: integers and, per group, the step exponent and the Exp-Golomb order.
// The upsampling taps are coded as their difference from the bilinear taps (¾, ¼, 0, 0) at their
// step (which is at least ¼, so that those are integers): see coded_base.
struct QuantNet {
  std::vector<std::vector<int32_t>> q;  // param_specs order
  std::array<int, kGroups> step_exp{};  // step 2^-e, e in 0…24
  std::array<int, kGroups> eg_order{};  // 0…24
  WeightSet dequantize(const Arch& a) const;
};

// Log-scale range of the ARM (clipped; the coding tables span it, codec/laplace.h).
constexpr float kLogbMin = -3.0f, kLogbMax = 4.5f;

// The ARM's weights with inputs major (w[i·out + j]), as arm_predict reads them.
struct ArmNet {
  int A = 0;
  std::vector<float> w1, b1, w2, b2, w3, b3;
  ArmNet(const Arch& a, const WeightSet& w);
};
// μ and log b of one latent from its 16 context values (the ARM, in the decoder's arithmetic).
void arm_predict(const ArmNet& n, const float* ctx, float& mu, float& logb);

// The context of latent (r, c) of a grid held as floats (the decoder's view).
void gather_context(const float* grid, int64_t h, int64_t w, int64_t r, int64_t c, float* ctx);

// Pixels (0…255 integers as floats, [1, 3, H, W]) from integer latents (grids l = 0…L−1).
Tensor synthesize(const Arch& a, const WeightSet& w, const std::vector<std::vector<int32_t>>& latents);

struct Stream {
  Arch arch;
  float lambda = 0;  // the λ it was encoded for (informational)
  QuantNet net;
  std::vector<std::vector<int32_t>> latents;  // grids l = 0…L−1, raster order
};

// Whether a file starts like an overfitted stream (magic "NTCO").
bool is_overfit_stream(const uint8_t* data, size_t size);

// Writes a stream (the ARM codes the latents; rANS). Returns the bytes.
std::vector<uint8_t> write_stream(const Stream& s);
// Reads and fully decodes the symbols of a stream. Distrusts its input: one-line ntc::Error for
// anything malformed; the image must be at most max_pixels.
Stream read_stream(const uint8_t* data, size_t size, const std::string& origin, int64_t max_pixels);
// Header only (no entropy decoding): for `ntc info`.
Stream read_stream_header(const uint8_t* data, size_t size, const std::string& origin);

// Bits of the weights of `net` as coded (exactly what write_stream spends on them).
size_t weight_bits(const Arch& a, const QuantNet& net);
// The best Exp-Golomb order of every group for the given integers.
std::array<int, kGroups> best_eg_orders(const Arch& a, const QuantNet& net);
// What element j of parameter tensor `spec` is coded relative to, at step 2^−e: 0, or for the
// upsampling taps the bilinear tap (¾, ¼, 0, 0 as integers; e ≥ kUpMinStepExp). The stream holds
// q − coded_base(…) for each integer q.
int32_t coded_base(const ParamSpec& spec, size_t j, int e);
// The smallest step exponent of the upsampling taps' group.
constexpr int kUpMinStepExp = 2;

// FLOPs per pixel of the per-image decoder, by part (the paper's convention: a multiply-add is 2).
struct DecoderFlops {
  double arm = 0, upsample = 0, synthesis = 0;
  double total() const { return arm + upsample + synthesis; }
};
DecoderFlops decoder_flops(const Arch& a);

// Decodes a whole overfitted stream to pixels [1, 3, H, W].
Tensor decode(const uint8_t* data, size_t size, const std::string& origin, int64_t max_pixels);

}  // namespace ntc::nn::overfit
