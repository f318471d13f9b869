// threads — the run-time thread count (OpenMP for our loops, OpenBLAS for GEMM).
// Default: all cores. Set once from --threads; results of every op that feeds the entropy coder
// do not depend on it (see kernels/kernels.h on fixed reduction chunks).
#pragma once

namespace ntc {
void set_num_threads(int n);  // n <= 0: all cores
int num_threads();
int num_cores();
}  // namespace ntc
