// blas — OpenBLAS, loaded when first used, and which micro-kernels it runs (for benchmark reports).
//
// ntc's own GEMM (lib/gemm.h) is the default back end, so most processes never call OpenBLAS: an
// encode or decode with the default flags does not. Linking it made every process pay for
// loading it and for its start-up (about 1.6 ms of CPU a process on a Zen 4 VM, a twentieth of
// a Kodak decode), so it is opened with dlopen ("libopenblas.so.0", the library Debian's
// libopenblas*-dev links) on the first call here instead. When it cannot be opened, that first
// call is a one-line error.
//
// Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its kernels from the CPU at load time, or from
// the OPENBLAS_CORETYPE environment variable. ntc never changes that choice: on some processors
// the environment pins OPENBLAS_CORETYPE (this project's VMs: AMD Zen 5 with AVX-512, pinned to
// the AVX2 "Haswell" kernels, because older OpenBLAS builds compute wrong results or crash on
// them). lib/gemm.cc decides from this name whether its own AVX-512 GEMM is the faster one.
#pragma once

namespace ntc {
const char* blas_kernel_name();  // OpenBLAS's name for the kernel set in use, e.g. "Haswell"

namespace blas {
// cblas_sgemm in row-major order: C = alpha·op(A)·op(B) + beta·C.
void sgemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
           float beta, float* c, int ldc);
void set_num_threads(int n);  // openblas_set_num_threads
void load();                  // opens OpenBLAS now (before a parallel region that calls it)
}  // namespace blas
}  // namespace ntc
