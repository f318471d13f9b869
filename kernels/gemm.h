// kernels/gemm.h — ntc's own single-threaded SGEMM (Highway, kernels/gemm_simd.cc) and its scalar
// twin: C[M,N] = alpha·op(A)[M,K]·op(B)[K,N] + beta·C, row-major, op = transpose when ta / tb.
//
// Why ntc has one next to OpenBLAS: lib/gemm.cc runs every product of the library and uses
// OpenBLAS by default. But where OpenBLAS runs AVX2 kernels on an AVX-512 CPU (this project's
// VMs: Zen 5 with OPENBLAS_CORETYPE pinned to Haswell by the environment, lib/blas.h), this
// kernel's 512-bit micro-kernel is much faster; lib/gemm.cc picks it then (measured numbers
// there). BLAS semantics: with beta = 0, C is not read (NaN in C does not propagate).
//
// The scalar twin ref::sgemm performs exactly the same floating-point operations in the same
// order (see gemm_simd.cc), so the two agree bit for bit on targets with FMA (AVX2, AVX-512; on
// SSE4 Highway's MulAdd rounds twice and they agree to rounding only); it is a test oracle (it is a plain
// triple loop: far too slow to run a model with), not a fallback.
#pragma once
#include <cstddef>

namespace ntc::k {

constexpr size_t kGemmKC = 256;  // k-block: partial sums are folded into C every kGemmKC terms

void sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
           float beta, float* C, int ldc);
size_t sgemm_lanes();  // float lanes of the micro-kernel Highway dispatched to (8 AVX2, 16 AVX-512)

namespace ref {
void sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
           float beta, float* C, int ldc);
}  // namespace ref

}  // namespace ntc::k
