// sga — iterative encoding by Stochastic Gumbel Annealing (SPEC §4; Yang et al. 2020): the
// encoder's latents y and z become free variables, optimised for the rate–distortion loss of the
// frozen model with SGA soft rounding, then coded with hard rounding as usual (nn/compress.h).
// The decoder is unchanged.
//
// Per step t (Adam iteration before the update):
//   τ = clip(0.5·exp(−5·10⁻⁴·(t − 200)), 10⁻⁸, 0.5)
//   z_s = sga(z; τ, offset = the prior's medians)   (the grid that is coded, SPEC decision 4)
//   (μ, r) = h_s(z_s);  y_s = sga(y − μ; τ) + μ
//   loss = (−Σlog₂P(z_s) − Σlog₂P(y_s | μ, σ)) / (H·W) + λ·MSE₂₅₅(x, g_s(y_s)) over the unpadded image
// Adam (Keras form) with lr 5·10⁻³, ×0.1 for the last 10% of steps, no clipping.
#pragma once
#include <functional>

#include "nn/compress.h"
#include "nn/model.h"

namespace ntc::train {

struct SgaOptions {
  int iters = 3000;
  float lr = 5e-3f;
  uint64_t seed = 1;
  // SGA differentiates through h_s and g_s over the whole image at once, so its memory grows with
  // the area: about kSgaBytesPerPixel of tensors per pixel with the shipped model (524 measured,
  // plus a margin). An image whose estimate exceeds max_bytes is refused before any work, with a
  // message saying what it would need (0: no limit). The default keeps SGA within the 2 GB the
  // plain encoder of a 24-megapixel photo stays under: about 3.5 megapixels.
  size_t max_bytes = size_t(2) << 30;
};
constexpr int64_t kSgaBytesPerPixel = 600;

// Refines the latents of `image` for rate–distortion weight `lambda` (the model's λ; for a
// variable-rate model also its rate). progress(t, loss) is called every step when set.
nn::Latents sga_refine(nn::Model& m, const Tensor& image, double lambda, double rate_lambda, const SgaOptions& o,
                       const std::function<void(int, double)>& progress = {});

// The SGA loss at the hard-rounded latents (what is coded) — used by tests to compare encoders.
double rd_loss_hard(nn::Model& m, const Tensor& image, const nn::Latents& l, double lambda, double rate_lambda);

}  // namespace ntc::train
