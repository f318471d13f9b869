// items — how ops spread a batch over the threads (used by conv.cc and gdn.cc).
//
// for_items(n, scratch_floats, f) runs f(item, scratch) for items 0..n-1: when there are at least
// as many items as threads, each thread takes a contiguous block of items with its own scratch
// (GEMMs inside then run single-threaded: each packs its operands once); otherwise the items run
// in order on this thread and the work inside each item is threaded. Each item writes only its
// own outputs (per-item partial sums are combined in item order by the caller), so results are
// the same bits for any thread count.
#pragma once
#include <omp.h>

#include <cstddef>

#include <optional>

#include "lib/alloc.h"
#include "lib/gemm.h"
#include "lib/threads.h"

namespace ntc {

template <typename F>
void for_items(size_t n_items, size_t scratch_floats, F&& f) {
  auto scratch = [scratch_floats] { return scratch_floats ? Buffer(scratch_floats) : Buffer(); };
  const int T = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (T == 1 || n_items < size_t(T)) {
    Buffer s = scratch();
    for (size_t j = 0; j < n_items; ++j) f(j, s.data());
    return;
  }
  // The calling thread's product settings (lib/gemm.h) hold in every worker too.
  const bool portable = portable_products(), winograd = portable_winograd();
  const Precision precision = conv_precision();
  ThreadErrors errors;
#pragma omp parallel num_threads(T)
  errors.run([&] {
    std::optional<PortableProducts> keep_portable;
    if (portable) keep_portable.emplace();
    PortableWinograd keep_winograd(winograd);
    ConvPrecisionScope keep_precision(precision);
    Buffer s = scratch();
    const size_t t = size_t(omp_get_thread_num());
    // Contiguous static blocks: thread t takes items [t·n/T, (t+1)·n/T).
    for (size_t j = t * n_items / size_t(T); j < (t + 1) * n_items / size_t(T); ++j) f(j, s.data());
  });
  errors.rethrow();
}

}  // namespace ntc
