// Quantisation proxies: rounding with a straight-through gradient, and additive uniform noise
// (the paper's training-time proxy, SPEC §3.2). Both have identity gradients.
#include <cmath>

#include "kernels/kernels.h"
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

}  // namespace ntc
