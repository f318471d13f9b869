// gradcheck — backward of any composition of ops against central finite differences.
//
// L(inputs) = Σ_i out_i · r_i with a fixed random cotangent r, accumulated in double. For every
// differentiable input (all elements, or an evenly spread sample of `max_elems` of them) the
// analytic dL/dx from backward() must match (L(x+h) − L(x−h)) / 2h within
// tol · max(max|analytic|, floor). Ops with kinks declare where FD is invalid by choosing inputs
// away from them (see away_from()).
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "lib/rng.h"
#include "lib/tensor.h"

namespace ntc::testing {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradCheckOpts {
  double h = 1e-2;          // FD step
  double tol = 1e-2;        // relative to the largest analytic gradient of that input
  double floor = 1e-3;      // scale floor for tiny gradients
  int max_elems = 48;       // elements probed per input
};

inline double loss_of(const Tensor& out, const std::vector<float>& r) {
  double s = 0;
  const float* o = out.data();
  for (size_t i = 0; i < r.size(); ++i) s += double(o[i]) * double(r[i]);
  return s;
}

// Returns the number of probed elements (> 0), failing the current test on a mismatch.
inline int gradcheck(const std::string& what, std::vector<Tensor> inputs, const Fn& fn,
                     GradCheckOpts o = {}) {
  Rng rng(12345);
  Tensor out0;
  {
    NoGrad ng;
    out0 = fn(inputs);
  }
  std::vector<float> r(size_t(out0.numel()));
  rng.fill_uniform(r.data(), r.size(), -1.f, 1.f);

  for (auto& x : inputs) x.zero_grad();
  Tensor out = fn(inputs);
  Tensor rt = Tensor::from(out.shape(), r);
  // L = sum(out ⊙ r), built by hand so that the check does not rely on mul/sum being right.
  Tensor L = Tensor::empty({});
  L.data()[0] = float(loss_of(out, r));
  record(L, "gradcheck_loss", {&out}, [out, r](const float* g) {
    float* go = out.grad_acc();
    for (size_t i = 0; i < r.size(); ++i) go[i] += g[0] * r[i];
  });
  L.backward();

  int probed = 0;
  for (size_t t = 0; t < inputs.size(); ++t) {
    Tensor& x = inputs[t];
    if (!x.requires_grad()) continue;
    Tensor an = x.grad_tensor();
    double scale = o.floor;
    for (int64_t i = 0; i < an.numel(); ++i) scale = std::max(scale, double(std::fabs(an.data()[i])));
    const int64_t n = x.numel();
    const int64_t step = std::max<int64_t>(1, n / o.max_elems);
    for (int64_t i = 0; i < n; i += step) {
      NoGrad ng;
      float* p = x.data() + i;
      const float x0 = *p;
      *p = float(x0 + o.h);
      const double hp = double(*p) - x0;
      double lp = loss_of(fn(inputs), r);
      *p = float(x0 - o.h);
      const double hm = x0 - double(*p);
      double lm = loss_of(fn(inputs), r);
      *p = x0;
      const double fd = (lp - lm) / (hp + hm);
      const double a = an.data()[i];
      EXPECT_NEAR(a, fd, o.tol * scale) << what << ": input " << t << " element " << i << " of "
                                        << shape_str(x.shape());
      ++probed;
    }
  }
  return probed;
}

// Values of x moved at least `gap` away from each kink.
inline void away_from(Tensor& x, std::vector<float> kinks, float gap) {
  for (int64_t i = 0; i < x.numel(); ++i)
    for (float k : kinks) {
      float& v = x.data()[i];
      if (std::fabs(v - k) < gap) v = v < k ? k - gap : k + gap;
    }
}

}  // namespace ntc::testing
