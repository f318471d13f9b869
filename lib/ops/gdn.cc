// GDN1 / inverse GDN1 (simplified GDN, Johnston et al. 2019; SPEC §1.1) and the non-negative
// reparametrisation of its parameters.
//
// Per image, with a = |x| viewed as [C, H·W]:
//   norm = gamma[C,C] · a + beta        (one sgemm + channel add; norm is saved for backward)
//   y    = x / norm    (GDN)   or   x · norm   (inverse GDN)
// Backward, with gn = dL/dnorm from kernels::gdn_bwd (which also adds the direct term to dx):
//   dbeta += Σ gn;  dgamma += gn · aᵀ;  dx += sign(x) ⊙ (gammaᵀ · gn)
// The per-image GEMMs of a batch run one image per thread (for_items, lib/ops/items.h).

#include <cmath>

#include "kernels/kernels.h"
#include "lib/common.h"
#include "lib/gemm.h"
#include "lib/flops.h"
#include "lib/ops/items.h"
#include "lib/ops/ops.h"

namespace ntc {

int64_t gdn1_flops(int64_t C, int64_t H, int64_t W) { return 2 * C * C * H * W + 2 * C * H * W; }


Tensor gdn1(const Tensor& x, const Tensor& beta, const Tensor& gamma, bool inverse) {
  NTC_CHECK(x.ndim() == 4, "gdn1: x ", shape_str(x.shape()));
  const int N = int(x.dim(0)), C = int(x.dim(1)), P = int(x.dim(2) * x.dim(3));
  NTC_CHECK(beta.numel() == C && gamma.ndim() == 2 && gamma.dim(0) == C && gamma.dim(1) == C,
            "gdn1: beta ", shape_str(beta.shape()), " gamma ", shape_str(gamma.shape()), " for ", C,
            " channels");
  const size_t n = size_t(x.numel());
  Tensor y = Tensor::empty(x.shape());
  Buffer a(n), norm(n);
  k::abs_fwd(x.data(), a.data(), n);
  for_items(size_t(N), 0, [&](size_t i, float*) {
    gemm(false, false, C, P, C, 1.f, gamma.data(), C, a.data() + int64_t(i) * C * P, P, 0.f,
         norm.data() + int64_t(i) * C * P, P);
  });
  k::add_channel(norm.data(), beta.data(), norm.data(), size_t(N), size_t(C), size_t(P));
  k::gdn_fwd(x.data(), norm.data(), y.data(), n, inverse);
  count_flops(inverse ? "igdn1" : "gdn1", int64_t(N) * gdn1_flops(C, x.dim(2), x.dim(3)));

  if (needs_grad({&x, &beta, &gamma}))
    record(y, inverse ? "igdn1" : "gdn1", {&x, &beta, &gamma},
           [x, beta, gamma, norm, inverse, N, C, P, n](const float* gy) {
             Buffer gn(n), ga(n);
             Buffer scratch_gx = x.requires_grad() ? Buffer() : Buffer::zeros(n);
             float* gx = x.requires_grad() ? x.grad_acc() : scratch_gx.data();
             k::gdn_bwd(x.data(), norm.data(), gy, gx, gn.data(), n, inverse);
             if (beta.requires_grad())
               k::sum_channel(gn.data(), beta.grad_acc(), size_t(N), size_t(C), size_t(P));
             if (gamma.requires_grad()) {  // per-image partials, added in image order
               Buffer a(n), part(size_t(N) * C * C);
               k::abs_fwd(x.data(), a.data(), n);
               for_items(size_t(N), 0, [&](size_t i, float*) {
                 gemm(false, true, C, C, P, 1.f, gn.data() + int64_t(i) * C * P, P, a.data() + int64_t(i) * C * P, P,
                      0.f, part.data() + int64_t(i) * C * C, C);
               });
               for (int i = 0; i < N; ++i)
                 k::add(gamma.grad_acc(), part.data() + int64_t(i) * C * C, gamma.grad_acc(), size_t(C) * C);
             }
             if (x.requires_grad()) {
               for_items(size_t(N), 0, [&](size_t i, float*) {
                 gemm(true, false, C, P, C, 1.f, gamma.data(), C, gn.data() + int64_t(i) * C * P, P, 0.f,
                      ga.data() + int64_t(i) * C * P, P);
               });
               k::abs_bwd(x.data(), ga.data(), x.grad_acc(), n);
             }
           });
  return y;
}

float nonneg_reparam_init(float value) {
  return float(std::sqrt(std::max(double(value) + kNonnegPedestal, kNonnegPedestal)));
}

Tensor nonneg_reparam(const Tensor& raw, float minimum) {
  const float bound = float(std::sqrt(double(minimum) + kNonnegPedestal));
  return add_scalar(square(lower_bound(raw, bound)), float(-kNonnegPedestal));
}

}  // namespace ntc
