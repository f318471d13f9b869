// blas — which OpenBLAS micro-kernels this process runs (for benchmark reports).
//
// Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its kernels from the CPU at load time, or from
// the OPENBLAS_CORETYPE environment variable. ntc never changes that choice: on some processors
// the environment pins OPENBLAS_CORETYPE (this project's VMs: AMD Zen 5 with AVX-512, pinned to
// the AVX2 "Haswell" kernels, because older OpenBLAS builds compute wrong results or crash on
// them). lib/gemm.cc decides from this name whether its own AVX-512 GEMM is the faster one.
#pragma once

namespace ntc {
const char* blas_kernel_name();  // OpenBLAS's name for the kernel set in use, e.g. "Haswell"
}  // namespace ntc
