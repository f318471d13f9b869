// threads — the run-time thread count of ntc's OpenMP loops. OpenBLAS itself always runs on one
// thread; GEMMs are parallelised over a fixed tile grid by lib/gemm.cc (see why there).
// Default: all cores. Set once from --threads; results of every op that feeds the entropy coder
// do not depend on it (see kernels/kernels.h on fixed reduction chunks).
#pragma once

namespace ntc {
void set_num_threads(int n);  // n <= 0: all cores
int num_threads();
int num_cores();
}  // namespace ntc
