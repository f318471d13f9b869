#include "lib/threads.h"

#include <omp.h>

namespace ntc {
int num_cores() { return omp_get_num_procs(); }

void set_num_threads(int n) {
  if (n <= 0) n = num_cores();
  omp_set_num_threads(n);  // OpenBLAS calls are kept single-threaded by lib/gemm.cc
}

int num_threads() { return omp_get_max_threads(); }
}  // namespace ntc
