// derive — a second model family from a trained one, without training it from scratch (issue #11).
//
// The paper finds the learned synthesis of a shallow-decoder model nearly linear (SPEC §6). So the
// JPEG-like family (one transposed convolution, kernel k, stride s) is derived from the campaign's
// two-layer run: analysis, hyperprior, entropy models and gains are copied, and the synthesis is
// the least-squares fit of the training crops x from their decoded latents ŷ at every rate point
// (exactly the ŷ a decoder gets). A short fine-tune (`ntc train --resume`) then adapts the rest.
//
// The fit is exact weighted linear least squares, solved in pieces. Each rate point's samples weigh
// λ / λ_max: a fine-tune's loss R + λ·MSE weighs them so, and an unweighted fit, dominated by the
// large errors of the low rates, left the top rate point 7 dB under the source's synthesis. With same padding, output pixel
// (s·i + p, s·j + q) of a stride-s transposed convolution reads the latents at (i + d, j + e)
// through the taps p + pt − d·s (rows; pt the top padding) and q + pl − e·s (columns), for the few
// offsets d, e that keep the tap inside [0, k). Each tap belongs to exactly one phase (p, q), so
// the 3·C·k² weights split into s² independent problems, one per phase, whose unknowns are the C
// weights of each of its taps. Phases with the same offsets share their normal matrix G = Σ f·fᵀ
// (f: the ŷ vectors at those offsets; zero outside the image, as the convolution's padding). The
// bias (one per colour) couples all phases; it is eliminated exactly, a Schur complement on one
// unknown per colour. Sums are in double; G gets a tiny ridge, so channels that are always zero
// (unused at every rate) get zero weights.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/tensor.h"

namespace ntc::nn {
class Model;
}

namespace ntc::train {

struct LinearFitStats {
  int64_t images = 0, samples = 0;  // images, and latent positions × rate points
  // Mean squared errors on the fitting data (0..255 scale, outputs before rounding), each rate point
  // weighted by λ / λ_max, as the distortion term λ·MSE of the training loss weighs it:
  double mse = 0;          // of the fitted synthesis
  double source_mse = -1;  // of the source's synthesis on the same latents (when a source is given)
};

// The least-squares problem itself: min over W [C, 3, k, k] and b [3] of Σ weight·‖conv_transpose2d(ŷ,
// W, b, stride s, same padding) − x‖² over the pairs added.
class LinearSynthesisFit {
 public:
  LinearSynthesisFit(int channels, int kernel, int stride);
  // y_hat [1, C, h, w] and its target x [1, 3, h·s, w·s], weighted (> 0).
  void add(const Tensor& y_hat, const Tensor& x, double weight = 1.0);
  // Writes the minimiser into W and b and returns its weighted mean squared error per value.
  double solve(const Tensor& W, const Tensor& b) const;
  int64_t positions() const { return count_; }  // latent positions added

 private:
  struct Class {  // phases that read the same latent offsets share one normal matrix
    std::vector<int> dy, dx;  // latent offsets (rows, columns)
    int dim = 0;              // unknowns per colour: |dy|·|dx|·C, ordered (row offset, column offset, channel)
    std::vector<double> G, sum;
    std::vector<int> phases;  // p·s + q
  };
  struct Phase {
    int cls = 0;
    std::vector<double> r;  // Σ f·x per colour: [dim × 3]
    double x[3] = {}, xx[3] = {};
  };
  int C_, k_, s_;
  std::vector<Class> classes_;
  std::vector<Phase> phases_;
  int64_t count_ = 0;
  double weight_ = 0;  // Σ weight over the latent positions added
  std::vector<float> F_, T_, tmp_;
};

// Fits m's synthesis (a jpeg_like transposed convolution with same padding) to the images that
// next_image returns ([1, 3, H, W], 0..255, H and W multiples of m.downsampling(); an undefined
// tensor ends them), at every rate point of m (or its one rate). m's other parts are used as they
// are; m is finalized. With a source (whose analysis and hyperprior give the same ŷ), its synthesis
// is measured on the same latents. progress(i) is called after image i (1-based).
LinearFitStats fit_linear_synthesis(nn::Model& m, const std::function<Tensor()>& next_image,
                                    nn::Model* source = nullptr, const std::function<void(int64_t)>& progress = {});

struct DeriveOptions {
  std::string from;    // checkpoint or snapshot of the trained run
  std::string config;  // the new model's config (name or path)
  std::string out;     // the new run's folder
  std::string data;    // training photos for the fit (default: the source run's)
  int crops = 200, crop = 256;
  uint64_t seed = 7;
  std::function<void(int64_t)> progress;  // after each crop of the fit
};

// `ntc derive`: writes out/checkpoint.ntck (resume it with ntc train --resume --out OUT) and
// out/model.ntcm, and prints one JSON line (what was copied, the fit) on stdout.
int run_derive(const DeriveOptions& o);

}  // namespace ntc::train
