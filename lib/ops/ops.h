// ops — every differentiable operation of ntc. Each op's forward, backward (the closure passed to
// record()) and FLOP count live together in one file under lib/ops/. Shapes are NCHW.
//
//   elementwise.cc  add sub mul div (same shape, scalar or per-channel broadcast of either side
//                   for add/mul, of the right side for sub/div), add_scalar, mul_scalar
//   activations.cc  relu leaky_relu gelu sigmoid softplus tanh abs exp log sqrt square normal_cdf
//                   clip lower_bound
//   reduce.cc       sum mean
//   matmul.cc       matmul
//   conv.cc         conv2d conv_transpose2d (TF "SAME" or explicit padding)
//   gdn.cc          gdn1 (and inverse) nonneg_reparam
//   shape.cc        concat_channels slice_channels depth_to_space
//   quant.cc        round_ste add_uniform_noise sga_round
//   overfit.cc      upsample2 soft_round causal_context laplace_bits (the overfitted codec's ops)
#pragma once
#include <cstdint>
#include <vector>

#include "lib/tensor.h"

namespace ntc {

// ---------------------------------------------------------------- elementwise.cc
// Broadcasting: shapes equal; or one side has one element; or one side is a channel vector
// ([C] or [1,C,1,1]) and the other is [N,C,...] (dim 1 = C). sub/div broadcast only the right side.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add_scalar(const Tensor& x, float c);  // x + c
Tensor mul_scalar(const Tensor& x, float c);  // c * x
int64_t elementwise_flops(int64_t n_out);

// ---------------------------------------------------------------- activations.cc
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, float slope = 0.2f);  // TF default slope (SPEC §1.1)
Tensor gelu(const Tensor& x);                            // exact: 0.5x(1+erf(x/√2))
Tensor sigmoid(const Tensor& x);
Tensor softplus(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor square(const Tensor& x);
// Standard normal CDF Φ(x) = ½·erfc(−x/√2) (vectorised erfc, kernels.h); Φ'(x) = φ(x).
Tensor normal_cdf(const Tensor& x);
// clip: forward min(max(x, lo), hi); gradient passes iff lo <= x <= hi.
Tensor clip(const Tensor& x, float lo, float hi);
// lower_bound (tfc/CompressAI LowerBound): forward max(x, bound); gradient passes iff
// x >= bound or the incoming gradient is negative (a descent step would raise x).
Tensor lower_bound(const Tensor& x, float bound);

// ---------------------------------------------------------------- reduce.cc
Tensor sum(const Tensor& x);   // shape {} (one element); accumulated in double, fixed order
Tensor mean(const Tensor& x);

// ---------------------------------------------------------------- matmul.cc
Tensor matmul(const Tensor& a, const Tensor& b);  // [M,K] x [K,N] -> [M,N], OpenBLAS sgemm
int64_t matmul_flops(int64_t M, int64_t N, int64_t K);

// ---------------------------------------------------------------- conv.cc
struct Pad2 {
  int top = 0, bottom = 0, left = 0, right = 0;
};
// TF/Keras Conv2D "SAME" (SPEC §1.0a): out = ceil(n/s), P = max((out-1)s + k - n, 0),
// before = P/2, after = P - before.
Pad2 same_pad_conv(int64_t h, int64_t w, int kh, int kw, int stride);
// TF/Keras Conv2DTranspose "SAME" (SPEC §1.0b): out = n·s; before = max(k-s,0)/2,
// after = k - s - before (negative = the output extends past the full transposed conv; zeros).
Pad2 same_pad_conv_transpose(int kh, int kw, int stride);

// x [N,Cin,H,W], w [Cout,Cin,kh,kw], b [Cout] or undefined -> [N,Cout,Ho,Wo],
// Ho = (H + top + bottom - kh)/stride + 1. Cross-correlation, no kernel flip.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, Pad2 pad);
Tensor conv2d_same(const Tensor& x, const Tensor& w, const Tensor& b, int stride);
// relu(conv2d(x, w, b, 1, Pad2{})) for a 1×1 kernel w [Cout, Cin, 1, 1]: the same values and
// gradients; where conv2d takes its direct pointwise kernel (fp32, outside PortableProducts,
// Cin·Cout <= 512: the overfitted codec's layers) in one op, without the pre-activation tensor.
Tensor pointwise_relu(const Tensor& x, const Tensor& w, const Tensor& b);
// x [N,Cin,H,W], w [Cin,Cout,kh,kw] (PyTorch layout), b [Cout] or undefined ->
// [N,Cout,Ho,Wo], Ho = (H-1)·stride + kh - top - bottom; the exact adjoint of conv2d.
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, Pad2 pad);
Tensor conv_transpose2d_same(const Tensor& x, const Tensor& w, const Tensor& b, int stride);
int64_t conv2d_flops(int64_t cin, int64_t cout, int kh, int kw, int64_t ho, int64_t wo, bool bias);
int64_t conv_transpose2d_flops(int64_t cin, int64_t cout, int kh, int kw, int64_t hin, int64_t win,
                               int64_t hout, int64_t wout, bool bias);

// ---------------------------------------------------------------- gdn.cc
// GDN1 (SPEC §1.1): norm[c] = beta[c] + Σ_j gamma[c,j]·|x[j]|; y = x / norm, or x · norm when
// inverse. x [N,C,H,W], beta [C], gamma [C_out=C, C_in=C] — the effective non-negative values.
Tensor gdn1(const Tensor& x, const Tensor& beta, const Tensor& gamma, bool inverse);
int64_t gdn1_flops(int64_t C, int64_t H, int64_t W);
// Non-negative reparametrisation (tfc GDNParameter): max_lb(raw, sqrt(minimum + p))² − p,
// p = 2^-36, with lower_bound's gradient rule.
Tensor nonneg_reparam(const Tensor& raw, float minimum);
float nonneg_reparam_init(float value);  // raw = sqrt(max(value + p, p))
constexpr double kNonnegPedestal = 1.0 / 68719476736.0;  // 2^-36

// ---------------------------------------------------------------- shape.cc
Tensor concat_channels(const std::vector<Tensor>& xs);  // along dim 1
Tensor slice_channels(const Tensor& x, int64_t start, int64_t len);
// TF DepthToSpace on NCHW: out[n, c, h·r+i, w·r+j] = in[n, (i·r + j)·C + c, h, w].
Tensor depth_to_space(const Tensor& x, int r);

// ---------------------------------------------------------------- quant.cc
// Round half to even; straight-through gradient (identity).
Tensor round_ste(const Tensor& x);
// x + u, u ~ U(-1/2, 1/2) drawn from rng; gradient identity.
Tensor add_uniform_noise(const Tensor& x, Rng& rng);
// SGA stochastic soft rounding (SPEC §4.3): with m = mu − offset, fl = ⌊m⌋, ce = ⌈m⌉,
//   ℓ_dn = −atanh(clip(m − fl))/τ, ℓ_up = −atanh(clip(ce − m))/τ (clip to ±(1 − 1e−5)),
//   p = softmax(([ℓ_dn, ℓ_up] + g)/τ), g = −log(−log u) (u [..., 2]: down, up),
//   y = fl·p_dn + ce·p_up + offset. ⌊·⌋, ⌈·⌉ have zero gradient; clip passes it inside the range.
// offset: undefined (integers), a tensor like mu, or a channel vector [C].
Tensor sga_round(const Tensor& mu, const Tensor& u, float tau, const Tensor& offset = Tensor());
// u for sga_round: shape mu.shape + [2], uniform in [2^-24, 1).
Tensor sga_noise(const Shape& mu_shape, Rng& rng);
// τ(t) = clip(τ_ub·exp(−r·(t − t0)), 1e−8, τ_ub), the SGA temperature schedule (SPEC §4.4).
float sga_temperature(int64_t t, float tau_ub = 0.5f, float rate = 5e-4f, float t0 = 200.f);

// ---------------------------------------------------------------- overfit.cc
// Bilinear ×2 upsampling with half-pixel centres and replicated edges, separable (rows, then
// columns): along an axis of n samples to o ∈ {2n−1, 2n}, out[2k] = ¾·in[k] + ¼·in[k−1] and
// out[2k+1] = ¾·in[k] + ¼·in[k+1], indexes clamped to [0, n). x [N,C,h,w] -> [N,C,oh,ow].
Tensor upsample2(const Tensor& x, int64_t oh, int64_t ow);
// The same on one plane, and its adjoint (gin += Aᵀ·gout); tmp holds h·ow floats. The decoder of
// overfitted streams calls these directly: their floats are the encoder's, bit for bit.
void upsample2_plane(const float* in, int64_t h, int64_t w, float* out, int64_t oh, int64_t ow, float* tmp);
void upsample2_plane_adj(const float* gout, int64_t oh, int64_t ow, float* gin, int64_t h, int64_t w, float* tmp);
// Learned ×2 upsampling: four taps f per output sample and axis, separable (rows, then columns),
// the same filter on both axes. Along an axis of n samples to o ∈ {2n−1, 2n}, output i reads
// k = ⌊i/2⌋, its side's neighbour s = k − 1 (even i) or k + 1 (odd i), the other side's k − (s − k),
// and k + 2(s − k), indexes clamped to [0, n):
//   out[i] = ((f0·in[k] + f1·in[s]) + f2·in[2k − s]) + f3·in[2s − k]   (in this order)
// f = (¾, ¼, 0, 0) is the bilinear step above (the same values). x [N,C,h,w], taps [4].
Tensor upsample2(const Tensor& x, int64_t oh, int64_t ow, const Tensor& taps);
// On one plane (the decoder's function too), and the adjoint: gin += Aᵀ·gout, and gf[q] += ∂/∂f_q
// (in double; gf may be null; gin may be null when only gf is wanted); it needs the forward input `in`; tmp and gtmp hold h·ow floats each.
void upsample2_plane(const float* in, int64_t h, int64_t w, const float* f, float* out, int64_t oh, int64_t ow, float* tmp);
void upsample2_plane_adj(const float* in, int64_t h, int64_t w, const float* f, const float* gout, int64_t oh,
                         int64_t ow, float* gin, double* gf, float* tmp, float* gtmp);
// Soft rounding (Agustsson & Theis 2020) at temperature T: ⌊x⌋ + ½ + tanh(r/T) / (2·tanh(1/(2T))),
// r = x − ⌊x⌋ − ½. Continuous, equal to x's nearest integer as T → 0, to x + const as T → ∞.
Tensor soft_round(const Tensor& x, float T);
// The causal neighbours of every element of a plane x [1,1,h,w]: out [1, K, h, w],
// out[j, r, c] = x[r + dy_j, c + dx_j], 0 outside the plane. Offsets must be causal (dy < 0,
// or dy = 0 and dx < 0). Backward scatters the gradient back.
Tensor causal_context(const Tensor& x, const std::vector<std::pair<int, int>>& offsets);
// −log₂ P(y) under a Laplace(μ, b = exp(clip(log b, lo, hi))) integrated over [y − ½, y + ½],
// elementwise (the three inputs have equal numel; the output has y's shape). P is computed in
// double in a cancellation-free form; below 10⁻⁹ it is floored (bits ≈ 29.9) with zero gradient;
// log b's gradient passes only inside [lo, hi].
Tensor laplace_bits(const Tensor& y, const Tensor& mu, const Tensor& logb, float logb_min, float logb_max);
}  // namespace ntc
