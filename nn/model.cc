#include "nn/model.h"

#include "lib/common.h"
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
  g_a_ = build_transform(cfg_, "analysis", "g_a", M_);
  g_s_ = build_transform(cfg_, "synthesis", "g_s", M_);
  if (hyper_) {
    h_a_ = build_transform(cfg_, "hyper_analysis", "h_a", M_);
    h_s_ = build_transform(cfg_, "hyper_synthesis", "h_s", M_);
  }
  eb_ = codec::EntropyBottleneck(M_, cfg_.ints("eb.filters", {3, 3}), float(cfg_.number("eb.init_scale", 10.0)));
  gc_ = codec::GaussianConditional(parse_scale_mode(cfg_.str("scale_mode", "tf_index")));
  cfg_.str("name", "");  // free-form label
  cfg_.check_all_used();
  // Downsampling factor as SNTC measures it: 64 / width of the last latent of a 64x64 image.
  NoGrad ng;
  Tensor probe = Tensor::zeros({1, 3, 64, 64});
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
  return r;
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
}

void Model::finalize() {
  eb_.finalize();
  if (hyper_) gc_.finalize();
}

Tensor reflect_pad(const Tensor& x, int64_t h2, int64_t w2) {
  const int64_t N = x.dim(0), C = x.dim(1), h = x.dim(2), w = x.dim(3);
  NTC_CHECK(h2 >= h && w2 >= w, "reflect_pad to a smaller size");
  Tensor y = Tensor::empty({N, C, h2, w2});
  // Mirror without repeating the edge, periodically (period 2(n−1)) when the pad exceeds n − 1.
  auto mirror = [](int64_t i, int64_t n) {
    if (n == 1) return int64_t(0);
    const int64_t p = 2 * (n - 1), r = i % p;
    return r < n ? r : p - r;
  };
  for (int64_t q = 0; q < N * C; ++q)
    for (int64_t i = 0; i < h2; ++i)
      for (int64_t j = 0; j < w2; ++j)
        y.data()[(q * h2 + i) * w2 + j] = x.data()[(q * h + mirror(i, h)) * w + mirror(j, w)];
  return y;
}

Tensor Model::preprocess(const Tensor& image) const {
  NTC_CHECK(image.ndim() == 4 && image.dim(1) == 3, "preprocess: image ", shape_str(image.shape()));
  const int64_t h = image.dim(2), w = image.dim(3), f = factor_;
  Tensor x = add_scalar(mul_scalar(image, 1.f / 255.f), -0.5f);
  const int64_t h2 = (h + f - 1) / f * f, w2 = (w + f - 1) / f * f;
  return h2 == h && w2 == w ? x : reflect_pad(x, h2, w2);
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
