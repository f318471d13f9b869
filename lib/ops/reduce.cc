// sum / mean over all elements. Accumulated in double over fixed 4096-element chunks combined in
// index order (kernels::sum), so the result does not depend on the thread count.
#include "kernels/kernels.h"
#include "lib/flops.h"
#include "lib/ops/ops.h"

namespace ntc {
namespace {
Tensor reduce_all(const Tensor& x, const char* op, double scale) {
  size_t n = size_t(x.numel());
  Tensor y = Tensor::empty({});
  y.data()[0] = float(k::sum(x.data(), n) * scale);
  count_flops(op, int64_t(n) + (scale != 1.0 ? 1 : 0));
  if (needs_grad({&x}))
    record(y, op, {&x}, [x, n, scale](const float* gy) {
      k::add_scalar(float(gy[0] * scale), x.grad_acc(), x.grad_acc(), n);
    });
  return y;
}
}  // namespace

Tensor sum(const Tensor& x) { return reduce_all(x, "sum", 1.0); }
Tensor mean(const Tensor& x) { return reduce_all(x, "mean", 1.0 / double(x.numel())); }

}  // namespace ntc
