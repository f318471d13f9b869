// model — a whole codec: transforms + entropy models, built from a Config (SPEC §1.6).
//
//   prior = hyperprior (default): y = g_a(x), z = h_a(y), (μ, r) = h_s(ẑ), x̂ = g_s(ŷ);
//           z is coded with the factorized prior, y with the Gaussian conditional.
//   prior = factorized (bls2017): y = g_a(x), x̂ = g_s(ŷ); y coded with the factorized prior.
// Variable rate (config `rate.lambdas = l1,l2,...`, ascending; Cui et al. 2021 gain units): per
// rate point l, channel gains scale y before quantisation (gain.y[l]) and ŷ after it
// (gain.y_inv[l]), likewise z (gain.z, gain.z_inv), so one model covers every λ of the list; a λ in
// between interpolates neighbouring gains geometrically: g = g_l^(1−t) · g_(l+1)^t in log λ.
// init() starts gain l at sqrt(λ_l / λ_mid) (inverse gains at the reciprocal).
// `rate.gains = log` stores each gain as its logarithm (gain = exp(parameter)), so trained gains
// stay positive and the geometric interpolation is linear in the stored values; the default
// `linear` stores the gains themselves (older models), which training can push across zero.
// Images enter as x/255 − 0.5, reflect-padded on the bottom/right to a multiple of the model's
// downsampling factor (64 for ELIC + hyper), and the reconstruction is cropped back (SPEC §3.7).
#pragma once
#include <memory>
#include <string>

#include "codec/entropy_bottleneck.h"
#include "codec/gaussian_conditional.h"
#include "nn/config.h"
#include "nn/module.h"

namespace ntc::nn {

// The gain between two trained gains a (t = 0) and b (t = 1): geometric in magnitude when they
// share a sign, linear otherwise (see model.cc).
double interpolate_gain(double a, double b, double t);

class Model {
 public:
  explicit Model(const Config& cfg);  // throws on unknown keys or transforms

  const Config& config() const { return cfg_; }
  bool hyperprior() const { return hyper_; }
  int latent_channels() const { return M_; }
  int hyper_channels() const { return Z_; }  // channels of z (= latent_channels() by default)
  int downsampling() const { return factor_; }      // of the last latent (z, or y when factorized)
  int latent_stride() const { return y_stride_; }   // of y
  // Shapes of y and z (z: hyperprior only) for an image padded to hp×wp.
  Shape y_shape(int64_t hp, int64_t wp) const { return {1, M_, hp / y_stride_, wp / y_stride_}; }
  Shape z_shape(int64_t hp, int64_t wp) const { return {1, Z_, hp / factor_, wp / factor_}; }

  // Parts, each a Module named g_a, g_s, h_a, h_s (h_* are null for a factorized model).
  Module& g_a() { return *g_a_; }
  Module& g_s() { return *g_s_; }
  Module* h_a() { return h_a_.get(); }
  Module* h_s() { return h_s_.get(); }
  codec::EntropyBottleneck& entropy_bottleneck() { return eb_; }
  const codec::EntropyBottleneck& entropy_bottleneck() const { return eb_; }
  codec::GaussianConditional& gaussian_conditional() { return gc_; }
  const codec::GaussianConditional& gaussian_conditional() const { return gc_; }

  // Every parameter with its semantic name: g_a.conv1.weight, ..., eb.matrices.0, ...
  NamedTensors named_parameters() const;
  int64_t num_parameters() const;
  void init(Rng& rng);   // Keras / tfc initialisation (SPEC §1.7, §2.1)
  void finalize();       // entropy tables (medians, quantiles, CDFs) from the current weights
  bool finalized() const { return eb_.finalized() && (!hyper_ || gc_.finalized()); }

  // λ the model was trained for (config key `lambda`, written by ntc train; 0 if unknown).
  double trained_lambda() const { return trained_lambda_; }

  // ---- variable rate ----
  const std::vector<double>& rate_lambdas() const { return lambdas_; }  // empty: fixed rate
  bool log_gains() const { return log_gains_; }  // gain parameters are logarithms (rate.gains = log)
  struct Gains {
    Tensor y, y_inv, z, z_inv;  // [M] each (z ones undefined for a factorized model)
  };
  // Gains of rate point l as differentiable slices of the parameters (training).
  Gains gains_at(int l) const;
  // Gains for any λ within [first, last] of rate_lambdas(), interpolated; no graph (coding).
  Gains gains_for(double lambda) const;

  // 8-bit image [1,3,H,W] (0..255) -> network input [1,3,H',W'], H', W' multiples of downsampling().
  Tensor preprocess(const Tensor& image) const;
  // Rows [r0, r0 + rows) of preprocess(image), the same values, without the rest (banded encoding).
  Tensor preprocess_rows(const Tensor& image, int64_t r0, int64_t rows) const;
  // Network output -> 8-bit-range image cropped to h×w (not rounded).
  Tensor postprocess(const Tensor& x_hat, int64_t h, int64_t w) const;

 private:
  Config cfg_;
  bool hyper_ = true;
  int M_ = 0, Z_ = 0, factor_ = 0, y_stride_ = 0;
  std::unique_ptr<Module> g_a_, g_s_, h_a_, h_s_;
  codec::EntropyBottleneck eb_;
  codec::GaussianConditional gc_;
  std::vector<double> lambdas_;
  double trained_lambda_ = 0;
  bool log_gains_ = false;  // rate.gains = log: parameters are log-gains
  Tensor gain_y_, gain_y_inv_, gain_z_, gain_z_inv_;  // [L, M] (defined when lambdas_ is)
};

// Bottom/right reflect padding to h2×w2 (TF REFLECT: mirror without repeating the edge; repeated
// periodically when the padding is wider than the image, so any size down to 1×1 works).
Tensor reflect_pad(const Tensor& x, int64_t h2, int64_t w2);

}  // namespace ntc::nn
