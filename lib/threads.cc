#include "lib/threads.h"

#include <cblas.h>
#include <omp.h>

namespace ntc {
int num_cores() { return omp_get_num_procs(); }

void set_num_threads(int n) {
  if (n <= 0) n = num_cores();
  // OpenBLAS stays on one thread; parallelism comes from lib/gemm.cc's fixed tile grid. In the
  // OpenMP build openblas_set_num_threads also sets OpenMP's count, so it must come first.
  openblas_set_num_threads(1);
  omp_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }
}  // namespace ntc
