// threads — the run-time thread count of ntc's OpenMP loops. OpenBLAS itself always runs on one
// thread; GEMMs are parallelised over a fixed tile grid by lib/gemm.cc (see why there).
// Default: all cores. Set once from --threads; results of every op that feeds the entropy coder
// do not depend on it (see kernels/kernels.h on fixed reduction chunks).
#pragma once
#include <exception>
#include <mutex>

namespace ntc {

// An exception cannot leave an OpenMP region (it ends the process in std::terminate). Work that
// may throw inside one (an allocation failure, an NTC_CHECK) runs through run(), which keeps the
// first exception; rethrow() after the region raises it on the calling thread, so the process
// still ends with its one-line error.
class ThreadErrors {
 public:
  template <class F>
  void run(F&& f) noexcept {
    try {
      f();
    } catch (...) {
      std::lock_guard<std::mutex> l(mu_);
      if (!first_) first_ = std::current_exception();
    }
  }
  void rethrow() {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::mutex mu_;
  std::exception_ptr first_;
};

void set_num_threads(int n);  // n <= 0: all cores
int num_threads();
int num_cores();
}  // namespace ntc
