#include "train/sga.h"

#include <cmath>

#include "lib/common.h"
#include "lib/ops/ops.h"
#include "lib/rng.h"
#include "train/optim.h"

namespace ntc::train {
namespace {

Tensor gain(const Tensor& v, const Tensor& g) { return g.defined() ? mul(v, g) : v; }
Tensor bits(const Tensor& p) { return mul_scalar(sum(log(p)), float(-1.0 / std::log(2.0))); }

// 1 inside the h×w image, 0 in the padding: [1, 1, Hp, Wp] broadcast over channels via mul.
Tensor unpadded_mask(int64_t h, int64_t w, int64_t hp, int64_t wp) {
  Tensor m = Tensor::zeros({1, 3, hp, wp});
  for (int c = 0; c < 3; ++c)
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) m.data()[(c * hp + i) * wp + j] = 1.f;
  return m;
}

// The loss of §4.2 for latents after `round_y` / `round_z` (soft or hard rounding).
Tensor sga_loss(nn::Model& m, const Tensor& x, const Tensor& mask, double pixels, double lambda,
                const nn::Model::Gains& G, const Tensor& y, const Tensor& z,
                const std::function<Tensor(const Tensor&, const Tensor&)>& round) {
  const int M = m.latent_channels();
  Tensor bits_total, y_s;
  if (m.hyperprior()) {
    const Tensor med = Tensor::from({m.hyper_channels()}, m.entropy_bottleneck().medians());
    const Tensor z_s = round(z, med);
    const Tensor hs = (*m.h_s())(gain(z_s, G.z_inv));
    const Tensor mu = slice_channels(hs, 0, M), sigma = m.gaussian_conditional().scales(slice_channels(hs, M, M));
    y_s = round(y, mu);
    bits_total = add(bits(m.entropy_bottleneck().likelihood(z_s)),
                     bits(codec::GaussianConditional::likelihood(y_s, sigma, mu)));
  } else {
    const Tensor med = Tensor::from({M}, m.entropy_bottleneck().medians());
    y_s = round(y, med);
    bits_total = bits(m.entropy_bottleneck().likelihood(y_s));
  }
  const Tensor x_hat = m.g_s()(gain(y_s, G.y_inv));
  const Tensor se = sum(mul(square(sub(x_hat, x)), mask));
  const Tensor mse = mul_scalar(se, float(255.0 * 255.0 / (3 * pixels)));
  return add(mul_scalar(bits_total, float(1 / pixels)), mul_scalar(mse, float(lambda)));
}

}  // namespace

nn::Latents sga_refine(nn::Model& m, const Tensor& image, double lambda, double rate_lambda, const SgaOptions& o,
                       const std::function<void(int, double)>& progress) {
  NTC_CHECK(m.finalized(), "SGA needs a finalised model (medians)");
  if (o.iters < 1) return nn::analyze(m, image, rate_lambda);
  const double need = double(image.dim(2)) * double(image.dim(3)) * double(kSgaBytesPerPixel);
  if (o.max_bytes > 0 && need > double(o.max_bytes))
    fail("SGA on a ", image.dim(3), "x", image.dim(2), " image would need about ", int64_t(std::ceil(need / (1 << 20))),
         " MiB of memory (it differentiates through the decoder over the whole image), over the limit of ",
         o.max_bytes >> 20, " MiB: encode without --sga, or raise the limit (ntc encode --sga-max-memory MIB)");
  const nn::Model::Gains G = nn::gains_for_stream(m, rate_lambda);
  nn::Latents l = nn::analyze(m, image, rate_lambda);
  Tensor y = l.y.clone().set_requires_grad(true);
  Tensor z = l.z.defined() ? l.z.clone().set_requires_grad(true) : Tensor();
  const Tensor x = m.preprocess(image);
  const int64_t h = image.dim(2), w = image.dim(3);
  const Tensor mask = unpadded_mask(h, w, x.dim(2), x.dim(3));
  std::vector<Tensor> vars{y};
  if (z.defined()) vars.push_back(z);
  Adam adam(vars, AdamForm::Keras);
  Rng rng(o.seed);
  // Network weights are frozen: only y and z require gradients.
  for (auto& [n, p] : m.named_parameters()) p.set_requires_grad(false);
  const int drop = int(0.9 * o.iters);
  for (int t = 0; t < o.iters; ++t) {
    const float tau = sga_temperature(t);
    auto soft = [&](const Tensor& v, const Tensor& off) { return sga_round(v, sga_noise(v.shape(), rng), tau, off); };
    Tensor loss = sga_loss(m, x, mask, double(h * w), lambda, G, y, z, soft);
    loss.backward();
    adam.step(t < drop ? o.lr : 0.1f * o.lr);
    for (Tensor& v : vars) v.zero_grad();
    if (progress) progress(t, loss.item());
  }
  for (auto& [n, p] : m.named_parameters()) p.set_requires_grad(true);
  return {y.detach(), z.defined() ? z.detach() : Tensor()};
}

double rd_loss_hard(nn::Model& m, const Tensor& image, const nn::Latents& l, double lambda, double rate_lambda) {
  NoGrad ng;
  const nn::Model::Gains G = nn::gains_for_stream(m, rate_lambda);
  const Tensor x = m.preprocess(image);
  const Tensor mask = unpadded_mask(image.dim(2), image.dim(3), x.dim(2), x.dim(3));
  auto hard = [](const Tensor& v, const Tensor& off) { return add(round_ste(sub(v, off)), off); };
  return sga_loss(m, x, mask, double(image.dim(2) * image.dim(3)), lambda, G, l.y, l.z, hard).item();
}

}  // namespace ntc::train
