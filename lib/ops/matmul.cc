// matmul: C[M,N] = A[M,K] · B[K,N] through OpenBLAS sgemm (row-major).
// Backward: dA += dC · Bᵀ, dB += Aᵀ · dC.

#include "lib/common.h"
#include "lib/gemm.h"
#include "lib/flops.h"
#include "lib/ops/ops.h"

namespace ntc {

int64_t matmul_flops(int64_t M, int64_t N, int64_t K) { return 2 * M * N * K; }

Tensor matmul(const Tensor& a, const Tensor& b) {
  NTC_CHECK(a.ndim() == 2 && b.ndim() == 2 && a.dim(1) == b.dim(0), "matmul ",
            shape_str(a.shape()), " x ", shape_str(b.shape()));
  const int M = int(a.dim(0)), K = int(a.dim(1)), N = int(b.dim(1));
  Tensor c = Tensor::empty({M, N});
  gemm(false, false, M, N, K, 1.f, a.data(), K, b.data(), N,
              0.f, c.data(), N);
  count_flops("matmul", matmul_flops(M, N, K));
  if (needs_grad({&a, &b}))
    record(c, "matmul", {&a, &b}, [a, b, M, N, K](const float* gc) {
      if (a.requires_grad())
        gemm(false, true, M, K, N, 1.f, gc, N, b.data(), N, 1.f,
                    a.grad_acc(), K);
      if (b.requires_grad())
        gemm(true, false, K, N, M, 1.f, a.data(), K, gc, N, 1.f,
                    b.grad_acc(), N);
    });
  return c;
}

}  // namespace ntc
