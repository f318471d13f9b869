#include "nn/model.h"

#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"
#include "lib/common.h"
#include "lib/gemm.h"
#include "lib/ops/ops.h"
#include "nn/transforms.h"

namespace ntc::nn {
namespace {
codec::ScaleMode parse_scale_mode(const std::string& s) {
  if (s == "tf_index") return codec::ScaleMode::TfIndex;
  if (s == "lower_bound") return codec::ScaleMode::LowerBound;
  fail("unknown scale_mode '", s, "' (tf_index or lower_bound)");
}
}  // namespace

Model::Model(const Config& cfg) : cfg_(cfg) {
  const std::string prior = cfg_.str("prior", "hyperprior");
  if (prior != "hyperprior" && prior != "factorized") fail(cfg_.origin(), ": unknown prior '", prior, "'");
  hyper_ = prior == "hyperprior";
  M_ = cfg_.integer("latent_channels", 320);
  if (M_ < 1 || M_ > 4096) fail(cfg_.origin(), ": latent_channels out of range");
  // z channels: hyper_channels (CompressAI's N of a mean-scale hyperprior), by default M.
  const int Z = Z_ = hyper_ ? cfg_.integer("hyper_channels", M_) : M_;
  if (Z < 1 || Z > 4096) fail(cfg_.origin(), ": hyper_channels out of range");
  g_a_ = build_transform(cfg_, "analysis", "g_a", M_);
  g_s_ = build_transform(cfg_, "synthesis", "g_s", M_);
  if (hyper_) {
    h_a_ = build_transform(cfg_, "hyper_analysis", "h_a", M_, Z);
    h_s_ = build_transform(cfg_, "hyper_synthesis", "h_s", M_, Z);
  }
  eb_ = codec::EntropyBottleneck(Z, cfg_.ints("eb.filters", {3, 3}), float(cfg_.number("eb.init_scale", 10.0)));
  gc_ = codec::GaussianConditional(parse_scale_mode(cfg_.str("scale_mode", "tf_index")));
  cfg_.str("name", "");  // free-form label
  lambdas_ = cfg_.numbers("rate.lambdas");
  trained_lambda_ = cfg_.number("lambda", 0.0);
  if (lambdas_.size() == 1) fail(cfg_.origin(), ": rate.lambdas needs at least two values");
  const std::string gains = cfg_.str("rate.gains", "linear");
  if (gains != "linear" && gains != "log") fail(cfg_.origin(), ": rate.gains must be linear or log, got '", gains, "'");
  log_gains_ = gains == "log";
  for (size_t i = 1; i < lambdas_.size(); ++i)
    if (!(lambdas_[i] > lambdas_[i - 1])) fail(cfg_.origin(), ": rate.lambdas must be ascending");
  if (!lambdas_.empty()) {
    const int L = int(lambdas_.size());
    gain_y_ = Tensor::param({L, M_});
    gain_y_inv_ = Tensor::param({L, M_});
    if (hyper_) {
      gain_z_ = Tensor::param({L, Z});
      gain_z_inv_ = Tensor::param({L, Z});
    }
  }
  cfg_.check_all_used();
  // Downsampling factor as SNTC measures it: 64 / width of the last latent of a 64x64 image.
  NoGrad ng;
  // A batch of no images: every layer works out its output shape and computes nothing (a 64×64
  // image through g_a took 2 ms of every model load). That forward pass also made OpenBLAS, where
  // it is the back end, map its buffers early; reserve_blas_buffers does that now (lib/gemm.h).
  reserve_blas_buffers();
  Tensor probe = Tensor::zeros({0, 3, 64, 64});
  Tensor y = g_a()(probe);
  Tensor last = hyper_ ? (*h_a_)(y) : y;
  NTC_CHECK(last.dim(3) >= 1 && 64 % last.dim(3) == 0, cfg_.origin(), ": cannot infer the downsampling factor");
  factor_ = int(64 / last.dim(3));
  y_stride_ = int(64 / y.dim(3));
}

NamedTensors Model::named_parameters() const {
  NamedTensors r = g_a_->named_parameters();
  auto add = [&](const NamedTensors& v) { r.insert(r.end(), v.begin(), v.end()); };
  if (hyper_) add(h_a_->named_parameters());
  if (hyper_) add(h_s_->named_parameters());
  add(g_s_->named_parameters());
  for (auto& [n, t] : eb_.named_parameters()) r.push_back({"eb." + n, t});
  if (gain_y_.defined()) {
    r.push_back({"gain.y", gain_y_});
    r.push_back({"gain.y_inv", gain_y_inv_});
  }
  if (gain_z_.defined()) {
    r.push_back({"gain.z", gain_z_});
    r.push_back({"gain.z_inv", gain_z_inv_});
  }
  return r;
}

Model::Gains Model::gains_at(int l) const {
  NTC_CHECK(!lambdas_.empty() && l >= 0 && l < int(lambdas_.size()), "gains_at(", l, ") of a model with ",
            lambdas_.size(), " rate points");
  const int L = int(lambdas_.size());
  auto row = [&](const Tensor& t) {
    if (!t.defined()) return Tensor();
    const int64_t C = t.dim(1);
    Tensor r = slice_channels(t.reshape({1, L, C}), l, 1).reshape({C});
    return log_gains_ ? exp(r) : r;
  };
  return {row(gain_y_), row(gain_y_inv_), row(gain_z_), row(gain_z_inv_)};
}

// Gains interpolate geometrically (Cui et al. 2021). Training does not keep them positive (a
// trained gain can cross zero and flip its channel), so the interpolation works on magnitudes
// when both ends share a sign and falls back to linear when they differ or one is zero; a plain
// pow of a negative base was NaN and made whole channels of z non-finite.
double interpolate_gain(double a, double b, double t) {
  if (a > 0 && b > 0) return std::pow(a, 1 - t) * std::pow(b, t);
  if (a < 0 && b < 0) return -(std::pow(-a, 1 - t) * std::pow(-b, t));
  return (1 - t) * a + t * b;
}

Model::Gains Model::gains_for(double lambda) const {
  NTC_CHECK(!lambdas_.empty(), "gains_for: the model has a fixed rate");
  if (!(lambda >= lambdas_.front() * (1 - 1e-6) && lambda <= lambdas_.back() * (1 + 1e-6)))
    fail("λ ", lambda, " is outside the model's range [", lambdas_.front(), ", ", lambdas_.back(), "]");
  size_t l = 0;
  while (l + 2 < lambdas_.size() && lambda > lambdas_[l + 1]) ++l;
  const double t = std::clamp(std::log(lambda / lambdas_[l]) / std::log(lambdas_[l + 1] / lambdas_[l]), 0.0, 1.0);
  auto mix = [&](const Tensor& g) {
    if (!g.defined()) return Tensor();
    const int64_t C = g.dim(1);
    Tensor r = Tensor::empty({C});
    const float* a = g.data() + int64_t(l) * C;
    const float* b = a + C;
    for (int64_t c = 0; c < C; ++c)
      r.data()[c] = log_gains_ ? float(std::exp((1 - t) * double(a[c]) + t * double(b[c])))
                               : float(interpolate_gain(a[c], b[c], t));
    return r;
  };
  return {mix(gain_y_), mix(gain_y_inv_), mix(gain_z_), mix(gain_z_inv_)};
}

int64_t Model::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Model::init(Rng& rng) {
  g_a_->init(rng);
  g_s_->init(rng);
  if (hyper_) {
    h_a_->init(rng);
    h_s_->init(rng);
  }
  eb_.init(rng);
  // Gain units start where an MSE-optimal uniform quantiser would put them: step² ∝ 1/λ, so the
  // gain of rate point l is sqrt(λ_l / λ_mid) (λ_mid the geometric middle), the inverse its
  // reciprocal. Training then refines them per channel.
  if (!lambdas_.empty()) {
    const double mid = std::sqrt(lambdas_.front() * lambdas_.back());
    for (size_t l = 0; l < lambdas_.size(); ++l) {
      const double g = std::sqrt(lambdas_[l] / mid);
      const float fwd = float(log_gains_ ? std::log(g) : g), inv = float(log_gains_ ? -std::log(g) : 1 / g);
      for (Tensor* t : {&gain_y_, &gain_z_})
        if (t->defined()) k::fill(fwd, t->data() + l * size_t(t->dim(1)), size_t(t->dim(1)));
      for (Tensor* t : {&gain_y_inv_, &gain_z_inv_})
        if (t->defined()) k::fill(inv, t->data() + l * size_t(t->dim(1)), size_t(t->dim(1)));
    }
  }
}

void Model::finalize() {
  eb_.finalize();
  if (hyper_) gc_.finalize();
}

namespace {
// Mirror without repeating the edge, periodically (period 2(n−1)) when the pad exceeds n − 1.
int64_t mirror(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t p = 2 * (n - 1), r = i % p;
  return r < n ? r : p - r;
}
}  // namespace

Tensor reflect_pad(const Tensor& x, int64_t h2, int64_t w2) {
  const int64_t N = x.dim(0), C = x.dim(1), h = x.dim(2), w = x.dim(3);
  NTC_CHECK(h2 >= h && w2 >= w, "reflect_pad to a smaller size");
  Tensor y = Tensor::empty({N, C, h2, w2});
  for (int64_t q = 0; q < N * C; ++q)
    for (int64_t i = 0; i < h2; ++i)
      for (int64_t j = 0; j < w2; ++j)
        y.data()[(q * h2 + i) * w2 + j] = x.data()[(q * h + mirror(i, h)) * w + mirror(j, w)];
  return y;
}

Tensor Model::preprocess(const Tensor& image) const {
  NTC_CHECK(image.ndim() == 4 && image.dim(1) == 3, "preprocess: image ", shape_str(image.shape()));
  const int64_t h = image.dim(2), f = factor_;
  return preprocess_rows(image, 0, (h + f - 1) / f * f);
}

// x/255 − 1/2 (a product then a sum, each rounded: the same floats as the scale and shift ops),
// reflect-padded to multiples of the downsampling factor. Images never need gradients.
Tensor Model::preprocess_rows(const Tensor& image, int64_t r0, int64_t rows) const {
  NTC_CHECK(image.ndim() == 4 && image.dim(0) == 1 && image.dim(1) == 3, "preprocess: image ", shape_str(image.shape()));
  const int64_t h = image.dim(2), w = image.dim(3), f = factor_;
  const int64_t h2 = (h + f - 1) / f * f, w2 = (w + f - 1) / f * f;
  NTC_CHECK(r0 >= 0 && rows >= 0 && r0 + rows <= h2, "preprocess: rows ", r0, "+", rows, " of ", h2);
  Tensor x = Tensor::empty({1, 3, rows, w2});
  const float scale = 1.f / 255.f;
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < rows; ++i) {
      const float* src = image.data() + (c * h + mirror(r0 + i, h)) * w;
      float* dst = x.data() + (c * rows + i) * w2;
      for (int64_t j = 0; j < w; ++j) dst[j] = src[j] * scale + -0.5f;
      for (int64_t j = w; j < w2; ++j) dst[j] = src[mirror(j, w)] * scale + -0.5f;
    }
  return x;
}

Tensor Model::postprocess(const Tensor& x_hat, int64_t h, int64_t w) const {
  const int64_t N = x_hat.dim(0), C = x_hat.dim(1), H = x_hat.dim(2), W = x_hat.dim(3);
  NTC_CHECK(h <= H && w <= W, "postprocess: crop ", h, "x", w, " from ", shape_str(x_hat.shape()));
  Tensor y = Tensor::empty({N, C, h, w});
  for (int64_t p = 0; p < N * C; ++p)
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) y.data()[(p * h + i) * w + j] = (x_hat.data()[(p * H + i) * W + j] + 0.5f) * 255.f;
  return y;
}

}  // namespace ntc::nn
