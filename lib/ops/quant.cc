// Quantisation proxies: rounding with a straight-through gradient, and additive uniform noise
// (the paper's training-time proxy, SPEC §3.2). Both have identity gradients.
#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"
#include "lib/common.h"
#include "lib/flops.h"
#include "lib/ops/ops.h"
#include "lib/rng.h"

namespace ntc {

Tensor round_ste(const Tensor& x) {
  const size_t n = size_t(x.numel());
  Tensor y = Tensor::empty(x.shape());
  const float* xv = x.data();
  float* yv = y.data();
  for (size_t i = 0; i < n; ++i) yv[i] = std::nearbyint(xv[i]);  // default mode: half to even
  count_flops("round", 0);
  if (needs_grad({&x}))
    record(y, "round_ste", {&x}, [x, n](const float* gy) { k::add(x.grad_acc(), gy, x.grad_acc(), n); });
  return y;
}

Tensor add_uniform_noise(const Tensor& x, Rng& rng) {
  const size_t n = size_t(x.numel());
  Tensor y = Tensor::empty(x.shape());
  rng.fill_uniform(y.data(), n, -0.5f, 0.5f);
  k::add(y.data(), x.data(), y.data(), n);
  count_flops("uniform_noise", int64_t(n));
  if (needs_grad({&x}))
    record(y, "uniform_noise", {&x}, [x, n](const float* gy) { k::add(x.grad_acc(), gy, x.grad_acc(), n); });
  return y;
}

Tensor sga_noise(const Shape& mu_shape, Rng& rng) {
  Shape s = mu_shape;
  s.push_back(2);
  Tensor u = Tensor::empty(s);
  rng.fill_uniform(u.data(), size_t(u.numel()), 0x1.0p-24f, 1.f);
  return u;
}

float sga_temperature(int64_t t, float tau_ub, float rate, float t0) {
  return float(std::clamp(double(tau_ub) * std::exp(-double(rate) * (double(t) - t0)), 1e-8, double(tau_ub)));
}

Tensor sga_round(const Tensor& mu, const Tensor& u, float tau, const Tensor& offset) {
  const size_t n = size_t(mu.numel());
  NTC_CHECK(u.numel() == 2 * mu.numel() && u.dim(-1) == 2, "sga_round: u ", shape_str(u.shape()), " for mu ",
            shape_str(mu.shape()));
  // offset: none, elementwise, or per channel (dim 1 of mu)
  const bool per_channel = offset.defined() && offset.numel() != mu.numel();
  if (per_channel) NTC_CHECK(mu.ndim() >= 2 && offset.numel() == mu.dim(1), "sga_round: offset ", shape_str(offset.shape()));
  const int64_t C = mu.ndim() >= 2 ? mu.dim(1) : 1, inner = mu.ndim() >= 2 ? mu.numel() / (mu.dim(0) * C) : 1;
  auto off = [&](size_t i) -> float {
    if (!offset.defined()) return 0.f;
    return per_channel ? offset.data()[(int64_t(i) / inner) % C] : offset.data()[i];
  };
  constexpr double kEps = 1e-5;
  Tensor y = Tensor::empty(mu.shape());
  Buffer dydm(n);  // ∂y/∂m, kept for backward
  const float* mv = mu.data();
  const float* uv = u.data();
#pragma omp parallel for schedule(static) if (n > 16384)
  for (size_t i = 0; i < n; ++i) {
    const double o = off(i), m = double(mv[i]) - o, fl = std::floor(m), ce = std::ceil(m);
    const double dd = m - fl, du = ce - m;
    const double cd = std::clamp(dd, -1 + kEps, 1 - kEps), cu = std::clamp(du, -1 + kEps, 1 - kEps);
    const double ld = -std::atanh(cd) / tau, lu = -std::atanh(cu) / tau;
    const double gd = -std::log(-std::log(double(uv[2 * i]))), gu = -std::log(-std::log(double(uv[2 * i + 1])));
    const double a = ((lu + gu) - (ld + gd)) / tau;  // p_up = σ(a)
    const double pu = a >= 0 ? 1 / (1 + std::exp(-a)) : std::exp(a) / (1 + std::exp(a)), pd = 1 - pu;
    y.data()[i] = float(fl * pd + ce * pu + o);
    // ∂ℓ_dn/∂m = −1/(τ(1 − cd²)) where clip passes; ∂ℓ_up/∂m = +1/(τ(1 − cu²)) where clip passes.
    const double dld = (dd >= -1 + kEps && dd <= 1 - kEps) ? -1 / (tau * (1 - cd * cd)) : 0.0;
    const double dlu = (du >= -1 + kEps && du <= 1 - kEps) ? 1 / (tau * (1 - cu * cu)) : 0.0;
    dydm.data()[i] = float((ce - fl) * pu * pd * (dlu - dld) / tau);
  }
  count_flops("sga_round", 20 * int64_t(n));
  if (needs_grad({&mu, &offset}))
    record(y, "sga_round", {&mu, &offset}, [mu, offset, dydm, n, per_channel, C, inner](const float* gy) {
      if (mu.requires_grad()) k::mul_acc(gy, dydm.data(), mu.grad_acc(), n);  // y depends on mu through m
      if (offset.defined() && offset.requires_grad()) {
        float* go = offset.grad_acc();
        for (size_t i = 0; i < n; ++i) {  // ∂y/∂offset = 1 − ∂y/∂m
          const float g = gy[i] * (1 - dydm.data()[i]);
          if (per_channel) go[(int64_t(i) / inner) % C] += g;
          else go[i] += g;
        }
      }
    });
  return y;
}

}  // namespace ntc
