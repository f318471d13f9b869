// The scalar twin of kernels/gemm_simd.cc: the same operations in the same order (per k-block an
// fma chain from 0 in ascending k, then alpha, then the fold into C), one element at a time.
#include <algorithm>
#include <cmath>

#include "kernels/gemm.h"

namespace ntc::k::ref {

void sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
           float beta, float* C, int ldc) {
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float& o = C[size_t(i) * size_t(ldc) + size_t(j)];
      if (K == 0) {
        o = beta == 0.f ? 0.f : o * beta;
        continue;
      }
      for (int k0 = 0; k0 < K; k0 += int(kGemmKC)) {
        const int k1 = std::min(K, k0 + int(kGemmKC));
        float acc = 0.f;
        for (int k = k0; k < k1; ++k) {
          const float a = ta ? A[size_t(k) * size_t(lda) + size_t(i)] : A[size_t(i) * size_t(lda) + size_t(k)];
          const float b = tb ? B[size_t(j) * size_t(ldb) + size_t(k)] : B[size_t(k) * size_t(ldb) + size_t(j)];
          acc = std::fma(a, b, acc);
        }
        fold_element(o, acc, alpha, beta, k0 == 0);
      }
    }
}

}  // namespace ntc::k::ref
