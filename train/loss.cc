#include "train/loss.h"

#include <cmath>

#include "lib/common.h"
#include "lib/ops/ops.h"

namespace ntc::train {
namespace {

// −Σ log₂ p as a differentiable scalar.
Tensor bits(const Tensor& p) { return mul_scalar(sum(log(p)), float(-1.0 / std::log(2.0))); }

// round(v − c) + c with a straight-through gradient, c per channel (or none).
Tensor round_around(const Tensor& v, const Tensor& c) {
  if (!c.defined()) return round_ste(v);
  return add(round_ste(sub(v, c)), c);
}

}  // namespace

QuantMode parse_quant_mode(const std::string& s) {
  if (s == "noise") return QuantMode::Noise;
  if (s == "mixed") return QuantMode::Mixed;
  fail("unknown quantisation proxy '", s, "' (noise or mixed)");
}

double RdTerms::psnr() const { return 10 * std::log10(255.0 * 255.0 / std::max(mse, 1e-10)); }

RdTerms rd_loss(nn::Model& m, const Tensor& img, float lambda, QuantMode q, Rng& rng, int rate_index,
                Precision analysis) {
  NTC_CHECK(img.ndim() == 4 && img.dim(1) == 3, "rd_loss: images ", shape_str(img.shape()));
  const int64_t N = img.dim(0), H = img.dim(2), W = img.dim(3), f = m.downsampling();
  if (H % f || W % f) fail("training crops must be multiples of ", f, " pixels, got ", H, "x", W);
  const double pixels = double(N * H * W);
  const Tensor x = add_scalar(mul_scalar(img, 1.f / 255.f), -0.5f);
  const int M = m.latent_channels();

  if (rate_index < 0 && !m.rate_lambdas().empty()) fail("a variable-rate model needs a rate point");
  const nn::Model::Gains G = rate_index >= 0 ? m.gains_at(rate_index) : nn::Model::Gains{};
  auto gain = [](const Tensor& v, const Tensor& g) { return g.defined() ? mul(v, g) : v; };

  RdTerms r;
  auto analyse = [&](nn::Module& t, const Tensor& v) {
    ConvPrecisionScope scope(analysis);
    return t(v);
  };
  Tensor y = gain(analyse(m.g_a(), x), G.y);
  Tensor y_tilde = add_uniform_noise(y, rng);
  Tensor bits_y, bits_z, y_syn;
  if (m.hyperprior()) {
    Tensor z = gain(analyse(*m.h_a(), y), G.z);
    Tensor z_tilde = add_uniform_noise(z, rng);
    bits_z = bits(m.entropy_bottleneck().likelihood(z_tilde));
    Tensor medians;
    if (q == QuantMode::Mixed && m.entropy_bottleneck().finalized())
      medians = Tensor::from({m.hyper_channels()}, m.entropy_bottleneck().medians());
    Tensor hs = (*m.h_s())(gain(q == QuantMode::Noise ? z_tilde : round_around(z, medians), G.z_inv));
    Tensor mu = slice_channels(hs, 0, M), sigma = m.gaussian_conditional().scales(slice_channels(hs, M, M));
    bits_y = bits(codec::GaussianConditional::likelihood(y_tilde, sigma, mu));
    y_syn = q == QuantMode::Noise ? y_tilde : add(round_ste(sub(y, mu)), mu);
  } else {
    bits_y = bits(m.entropy_bottleneck().likelihood(y_tilde));
    y_syn = q == QuantMode::Noise ? y_tilde : round_ste(y);
  }
  Tensor x_hat = m.g_s()(gain(y_syn, G.y_inv));
  Tensor mse = mul_scalar(mean(square(sub(x_hat, x))), 255.f * 255.f);
  Tensor bpp = mul_scalar(bits_z.defined() ? add(bits_y, bits_z) : bits_y, float(1.0 / pixels));
  r.loss = add(bpp, mul_scalar(mse, lambda));
  r.bpp_y = bits_y.item() / pixels;
  r.bpp_z = bits_z.defined() ? bits_z.item() / pixels : 0.0;
  r.mse = mse.item();
  return r;
}

}  // namespace ntc::train
