#include "nn/analysis.h"

#include <algorithm>
#include <cmath>

#include "lib/common.h"
#include "lib/metrics.h"
#include "lib/ops/ops.h"
#include "nn/compress.h"

namespace ntc::nn {
namespace {

// ‖a − b‖₂² over all elements (lib/metrics mse, times the count).
double squared_distance(const Tensor& a, const Tensor& b) { return mse(a, b) * double(a.numel()); }

// (1 − t)·a + t·b, elementwise in double then rounded (t = 0 and 1 give a and b exactly).
Tensor lerp(const Tensor& a, const Tensor& b, double t) {
  Tensor r = Tensor::empty(a.shape());
  for (int64_t i = 0; i < a.numel(); ++i) r.data()[i] = float((1 - t) * double(a.data()[i]) + t * double(b.data()[i]));
  return r;
}

}  // namespace

ManifoldPair manifold_pair(Model& m, const Tensor& x0, const Tensor& x1, double lambda, int steps, int sub,
                           Tensor* strip, int strip_points) {
  NTC_CHECK(x0.ndim() == 4 && x0.dim(0) == 1 && x0.dim(1) == 3 && x0.shape() == x1.shape(),
            "manifold: images ", shape_str(x0.shape()), " and ", shape_str(x1.shape()));
  NTC_CHECK(steps >= 2 && sub >= 2 && sub % 2 == 0 && strip_points >= 2, "manifold: steps ", steps, ", sub ", sub);
  NoGrad ng;
  const Model::Gains G = gains_for_stream(m, lambda);
  auto gain = [](const Tensor& v, const Tensor& g) { return g.defined() ? mul(v, g) : v; };
  const int64_t h = x0.dim(2), w = x0.dim(3);
  auto f = [&](const Tensor& x) { return gain(m.g_a()(m.preprocess(x)), G.y); };
  auto g = [&](const Tensor& z) { return m.postprocess(m.g_s()(gain(z, G.y_inv)), h, w); };  // 0..255, unclipped
  const Tensor z0 = f(x0), z1 = f(x1), xh0 = g(z0), xh1 = g(z1);
  const double px = double(x0.numel());
  ManifoldPair r;
  r.endpoint_distance = std::sqrt(squared_distance(xh0, xh1));
  const int n = (steps - 1) * sub;
  Tensor prev, prev_coarse;
  for (int i = 0; i <= n; ++i) {
    const double t = double(i) / n;
    const Tensor c = i == 0 ? xh0 : i == n ? xh1 : g(lerp(z0, z1, t));
    if (i > 0) r.length += std::sqrt(squared_distance(c, prev));
    if (i % 2 == 0) {
      if (i > 0) r.length_coarse += std::sqrt(squared_distance(c, prev_coarse));
      prev_coarse = c;
    }
    prev = c;
    if (i % sub == 0) {
      r.t.push_back(t);
      r.mse_to_line.push_back(squared_distance(c, lerp(xh0, xh1, t)) / px);
      r.mse_to_mixup.push_back(squared_distance(c, lerp(x0, x1, t)) / px);
    }
  }
  if (strip) {
    *strip = Tensor::empty({1, 3, 2 * h, strip_points * w});
    const int64_t W = strip_points * w;
    for (int k = 0; k < strip_points; ++k) {
      const double t = double(k) / (strip_points - 1);
      const Tensor top = to_uint8_range(k == 0 ? xh0 : k == strip_points - 1 ? xh1 : g(lerp(z0, z1, t)));
      const Tensor bottom = to_uint8_range(lerp(xh0, xh1, t));
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t y = 0; y < h; ++y) {
          std::copy_n(top.data() + (c * h + y) * w, w, strip->data() + (c * 2 * h + y) * W + k * w);
          std::copy_n(bottom.data() + (c * h + y) * w, w, strip->data() + (c * 2 * h + h + y) * W + k * w);
        }
    }
  }
  return r;
}

Tensor basis_response(Model& m, int channel, double value, double lambda, int margin) {
  NTC_CHECK(channel >= 0 && channel < m.latent_channels() && margin >= 0 && margin <= 8, "basis: channel ", channel,
            " of ", m.latent_channels(), ", margin ", margin);
  NoGrad ng;
  const Model::Gains G = gains_for_stream(m, lambda);
  const int64_t n = 2 * margin + 1, s = m.latent_stride();
  Tensor y = Tensor::zeros({1, m.latent_channels(), n, n});
  auto g = [&](const Tensor& v) {
    return m.postprocess(m.g_s()(G.y_inv.defined() ? mul(v, G.y_inv) : v), n * s, n * s);
  };
  const Tensor g0 = g(y);
  y.data()[(int64_t(channel) * n + margin) * n + margin] = float(value);
  return sub(g(y), g0);
}

std::vector<std::pair<int, double>> channels_by_energy(Model& m, const std::vector<Tensor>& images, double lambda) {
  NoGrad ng;
  const Model::Gains G = gains_for_stream(m, lambda);
  const int M = m.latent_channels();
  std::vector<std::pair<int, double>> e(static_cast<size_t>(M));
  for (int c = 0; c < M; ++c) e[size_t(c)] = {c, 0.0};
  double positions = 0;
  for (const Tensor& x : images) {
    Tensor y = m.g_a()(m.preprocess(x));
    if (G.y.defined()) y = mul(y, G.y);
    const int64_t P = y.dim(2) * y.dim(3);
    for (int c = 0; c < M; ++c)
      for (int64_t i = 0; i < P; ++i) {
        const double v = std::nearbyint(double(y.data()[c * P + i]));
        e[size_t(c)].second += v * v;
      }
    positions += double(P);
  }
  for (auto& [c, v] : e) v = positions > 0 ? v / positions : 0;
  std::stable_sort(e.begin(), e.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return e;
}

}  // namespace ntc::nn
