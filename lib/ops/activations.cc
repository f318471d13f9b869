// Pointwise nonlinearities. Each is a forward kernel plus a backward closure that accumulates
// gy·f'(x) into x's gradient; f' is evaluated from x or from the saved output y (noted per op).
#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"
#include "lib/flops.h"
#include "lib/ops/ops.h"

namespace ntc {
namespace {

using Fwd = void (*)(const float*, float*, size_t);
using Bwd = void (*)(const float*, const float*, float*, size_t);

// f'(x) computed from the input x.
Tensor unary_from_input(const Tensor& x, const char* op, int64_t flops_per_elem, Fwd fwd, Bwd bwd) {
  size_t n = size_t(x.numel());
  Tensor y = Tensor::empty(x.shape());
  fwd(x.data(), y.data(), n);
  count_flops(op, flops_per_elem * int64_t(n));
  if (needs_grad({&x}))
    record(y, op, {&x}, [x, n, bwd](const float* gy) { bwd(x.data(), gy, x.grad_acc(), n); });
  return y;
}

// f'(x) computed from the output y (sigmoid, tanh, exp, sqrt).
Tensor unary_from_output(const Tensor& x, const char* op, int64_t flops_per_elem, Fwd fwd, Bwd bwd) {
  size_t n = size_t(x.numel());
  Tensor y = Tensor::empty(x.shape());
  fwd(x.data(), y.data(), n);
  count_flops(op, flops_per_elem * int64_t(n));
  if (needs_grad({&x})) {
    Buffer yb = y.buffer();
    record(y, op, {&x}, [x, n, bwd, yb](const float* gy) { bwd(yb.data(), gy, x.grad_acc(), n); });
  }
  return y;
}

}  // namespace

Tensor relu(const Tensor& x) { return unary_from_input(x, "relu", 0, k::relu_fwd, k::relu_bwd); }
Tensor gelu(const Tensor& x) { return unary_from_input(x, "gelu", 4, k::gelu_fwd, k::gelu_bwd); }
Tensor softplus(const Tensor& x) {
  return unary_from_input(x, "softplus", 1, k::softplus_fwd, k::softplus_bwd);
}
Tensor abs(const Tensor& x) { return unary_from_input(x, "abs", 0, k::abs_fwd, k::abs_bwd); }
Tensor log(const Tensor& x) { return unary_from_input(x, "log", 1, k::log_fwd, k::log_bwd); }
Tensor sigmoid(const Tensor& x) {
  return unary_from_output(x, "sigmoid", 0, k::sigmoid_fwd, k::sigmoid_bwd);
}
Tensor tanh(const Tensor& x) { return unary_from_output(x, "tanh", 1, k::tanh_fwd, k::tanh_bwd); }
Tensor exp(const Tensor& x) { return unary_from_output(x, "exp", 1, k::exp_fwd, k::exp_bwd); }
Tensor sqrt(const Tensor& x) { return unary_from_output(x, "sqrt", 1, k::sqrt_fwd, k::sqrt_bwd); }

Tensor leaky_relu(const Tensor& x, float slope) {
  size_t n = size_t(x.numel());
  Tensor y = Tensor::empty(x.shape());
  k::leaky_relu_fwd(x.data(), y.data(), n, slope);
  count_flops("leaky_relu", 0);
  if (needs_grad({&x}))
    record(y, "leaky_relu", {&x}, [x, n, slope](const float* gy) {
      k::leaky_relu_bwd(x.data(), gy, x.grad_acc(), n, slope);
    });
  return y;
}

// square: y = x², dy/dx = 2x.
Tensor square(const Tensor& x) {
  size_t n = size_t(x.numel());
  Tensor y = Tensor::empty(x.shape());
  k::mul(x.data(), x.data(), y.data(), n);
  count_flops("square", int64_t(n));
  if (needs_grad({&x}))
    record(y, "square", {&x}, [x, n](const float* gy) {
      float* gx = x.grad_acc();
      const float* xv = x.data();
      for (size_t i = 0; i < n; ++i) gx[i] += 2.f * xv[i] * gy[i];
    });
  return y;
}

Tensor normal_cdf(const Tensor& x) {
  const size_t n = size_t(x.numel());
  Tensor y = Tensor::empty(x.shape());
  k::scale(float(-M_SQRT1_2), x.data(), y.data(), n);
  k::erfc_fwd(y.data(), y.data(), n);
  k::scale(0.5f, y.data(), y.data(), n);
  count_flops("normal_cdf", 3 * int64_t(n));
  if (needs_grad({&x}))
    record(y, "normal_cdf", {&x}, [x, n](const float* gy) {
      float* gx = x.grad_acc();
      const float* xv = x.data();
      const double inv_sqrt_2pi = 0.3989422804014327;
      for (size_t i = 0; i < n; ++i)
        gx[i] += gy[i] * float(inv_sqrt_2pi * std::exp(-0.5 * double(xv[i]) * xv[i]));
    });
  return y;
}

// clip: the gradient passes iff lo <= x <= hi (tf.clip_by_value / torch.clamp convention).
Tensor clip(const Tensor& x, float lo, float hi) {
  size_t n = size_t(x.numel());
  Tensor y = Tensor::empty(x.shape());
  const float* xv = x.data();
  float* yv = y.data();
  for (size_t i = 0; i < n; ++i) yv[i] = std::min(std::max(xv[i], lo), hi);
  count_flops("clip", 0);
  if (needs_grad({&x}))
    record(y, "clip", {&x}, [x, n, lo, hi](const float* gy) {
      float* gx = x.grad_acc();
      const float* xv = x.data();
      for (size_t i = 0; i < n; ++i)
        if (xv[i] >= lo && xv[i] <= hi) gx[i] += gy[i];
    });
  return y;
}

// lower_bound (tfc.lower_bound / CompressAI LowerBound): forward max(x, bound); backward passes g
// where x >= bound, or where g < 0 so that gradient descent (x -= lr·g) may raise x to the bound.
Tensor lower_bound(const Tensor& x, float bound) {
  size_t n = size_t(x.numel());
  Tensor y = Tensor::empty(x.shape());
  const float* xv = x.data();
  float* yv = y.data();
  for (size_t i = 0; i < n; ++i) yv[i] = std::max(xv[i], bound);
  count_flops("lower_bound", int64_t(n));
  if (needs_grad({&x}))
    record(y, "lower_bound", {&x}, [x, n, bound](const float* gy) {
      float* gx = x.grad_acc();
      const float* xv = x.data();
      for (size_t i = 0; i < n; ++i)
        if (xv[i] >= bound || gy[i] < 0.f) gx[i] += gy[i];
    });
  return y;
}

}  // namespace ntc
