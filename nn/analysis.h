// analysis — the paper's manifold-flatness experiment (PAPER §3.1, Fig. 3–4; SPEC §6.2) and the
// synthesis basis functions (SPEC §6.3) on an ntc model, for `ntc analyze manifold|filters`.
//
// For two images x⁰, x¹ (8-bit, the same size): z⁰ = f(x⁰), z¹ = f(x¹) (the analysis with the
// rate's gains, unquantised), the latent line γ(t) = (1−t)z⁰ + t z¹, the decoded curve
// γ̂(t) = g(γ(t)) (the synthesis on continuous latents, not clipped), the pixel line
// x̂(t) = (1−t)x̂⁰ + t x̂¹ between the endpoints' reconstructions and the mixup x(t) = (1−t)x⁰ + t x¹.
//
// The curve length L = ∫₀¹ ‖J_g(γ(t))·(z¹ − z⁰)‖ dt is measured by finite differences: the length
// of the polygon through γ̂ at `sub` points per interval of the reporting grid. ntc's autodiff is
// reverse-mode only, so there is no Jacobian-vector product; the chord sum is exact for an affine
// g, never exceeds the arc length of a continuous curve, and converges to it as the grid refines
// (length_coarse, at half the points, shows how far from converged it is).
#pragma once
#include <vector>

#include "lib/tensor.h"
#include "nn/model.h"

namespace ntc::nn {

struct ManifoldPair {
  std::vector<double> t;                // the reporting grid, 0 … 1
  std::vector<double> mse_to_line;      // MSE(γ̂(t), x̂(t)) on the 0..255 scale
  std::vector<double> mse_to_mixup;     // MSE(γ̂(t), x(t)) on the 0..255 scale
  double length = 0;                    // ‖·‖₂ over all pixels and channels, on the 0..255 scale
  double length_coarse = 0;             // the same at half the points per interval
  double endpoint_distance = 0;         // ‖x̂⁰ − x̂¹‖₂
  double length_ratio() const { return length / endpoint_distance; }
};

// steps: points of the reporting grid (≥ 2); sub: polygon points per grid interval (≥ 2, even).
// lambda: the rate of a variable-rate model (0 for a fixed-rate one). images [1,3,H,W], 0..255.
// strip (optional): x̂ along γ̂ for `strip_points` evenly spaced t in the top row and x̂(t) in the
// bottom row, clipped to 0..255, as one [1,3,2H,strip_points·W] image (the Fig. 3 analogue).
ManifoldPair manifold_pair(Model& m, const Tensor& x0, const Tensor& x1, double lambda, int steps, int sub,
                           Tensor* strip = nullptr, int strip_points = 6);

// The synthesis basis functions (SPEC §6.3): the response g(v·e_c) − g(0) to one latent of channel
// c set to v (in the coded domain, ŷ, before the inverse gains of rate λ) at the centre of a
// (2·margin + 1)² latent canvas, so the whole support shows, not only the latent's own block:
// [1, 3, S, S] with S = (2·margin + 1)·stride, on the 0..255 scale, not clipped; the active latent's
// own block is rows and columns [margin·stride, (margin + 1)·stride).
Tensor basis_response(Model& m, int channel, double value, double lambda, int margin = 1);

// Channels of the coded latents ŷ (the analysis with the rate's gains, rounded) by mean ŷ² over the
// given images, largest first, with those means.
std::vector<std::pair<int, double>> channels_by_energy(Model& m, const std::vector<Tensor>& images, double lambda);

}  // namespace ntc::nn
