#include "lib/blas.h"

#include <cblas.h>  // the declarations only: their types (the library is opened at run time)
#include <dlfcn.h>

#include "lib/common.h"

namespace ntc {
namespace {

constexpr const char* kLibrary = "libopenblas.so.0";

struct Api {
  decltype(&cblas_sgemm) sgemm = nullptr;
  decltype(&openblas_get_corename) corename = nullptr;
  decltype(&openblas_set_num_threads) set_num_threads = nullptr;
};

template <class F>
void resolve(void* h, const char* name, F* f) {
  *f = reinterpret_cast<F>(dlsym(h, name));
  if (!*f) fail("OpenBLAS (", kLibrary, ") has no ", name);
}

// Opened once (a function-local static: thread-safe); a failure throws and is tried again on the
// next call. The handle is never closed.
const Api& api() {
  static const Api a = [] {
    void* h = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* why = dlerror();
      fail("cannot load OpenBLAS (", why ? why : kLibrary, "); install libopenblas0, e.g. with `make deps`");
    }
    Api r;
    resolve(h, "cblas_sgemm", &r.sgemm);
    resolve(h, "openblas_get_corename", &r.corename);
    resolve(h, "openblas_set_num_threads", &r.set_num_threads);
    return r;
  }();
  return a;
}

}  // namespace

const char* blas_kernel_name() { return api().corename(); }

namespace blas {
void sgemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
           float beta, float* c, int ldc) {
  api().sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b,
              ldb, beta, c, ldc);
}
void set_num_threads(int n) { api().set_num_threads(n); }
void load() { api(); }
}  // namespace blas
}  // namespace ntc
