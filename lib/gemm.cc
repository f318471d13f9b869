#include "lib/gemm.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "lib/blas.h"
#include "lib/common.h"
#include "lib/threads.h"

namespace ntc {
namespace {
std::atomic<GemmBackend> g_backend{GemmBackend::Auto};

bool use_ntc_kernel() {
  switch (g_backend.load(std::memory_order_relaxed)) {
    case GemmBackend::OpenBLAS: return false;
    case GemmBackend::Ntc: return true;
    case GemmBackend::Auto: break;
  }
  if (k::use_reference_kernels()) return false;  // the scalar-reference configuration: OpenBLAS
  // ntc's kernel wherever Highway runs FMA vectors (AVX2: 8 lanes, AVX-512: 16); measured faster
  // than OpenBLAS on both (lib/gemm.h). Not cached: --target may change the target.
  return k::sgemm_lanes() >= 8;
}

// OpenBLAS's OpenMP build picks its thread count at every call from omp_get_max_threads(), and
// runs serially only inside an active parallel region. Outside one, this thread's OpenMP count is
// set to 1 for the duration of the call, so a tile is always one single-threaded sgemm.
void serial_sgemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
                  const float* b, int ldb, float beta, float* c, int ldc) {
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads > 1) omp_set_num_threads(1);
  blas::sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (threads > 1) omp_set_num_threads(threads);
}

constexpr int kTargetTiles = 8;  // enough for 8 threads; fixed, never the thread count
int ceil_div(int a, int b) { return (a + b - 1) / b; }
int round_up(int a, int m) { return ceil_div(a, m) * m; }
// ntc's kernel gives every element of C the same bits however C is cut, so the cut can follow the
// thread count: one call per thread, each packing its share of the operands once (a fixed grid of
// 8 tiles packed A or B up to 4 times and padded 64-row tiles to 72 micro-kernel rows). Columns
// are split when wide enough (B is then packed once), rows otherwise. f(cols, offset, length).
template <class F>
void split_over_threads(int M, int N, int K, const F& f) {
  const int T = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (T == 1 || 2 * int64_t(M) * N * K < (int64_t(1) << 21)) {
    f(true, 0, N);
    return;
  }
  const bool cols = N >= 128 * T || N >= M;
  const int align = cols ? 64 : 48;  // multiples of the micro-tile (32 columns, 12 rows)
  const int span = cols ? N : M;
  const int part = std::max(align, round_up(ceil_div(span, T), align)), parts = ceil_div(span, part);
  ThreadErrors errors;  // an allocation failure in a kernel's scratch must not end in std::terminate
#pragma omp parallel for schedule(static, 1) num_threads(std::min(T, parts))
  for (int t = 0; t < parts; ++t) errors.run([&] { f(cols, t * part, std::min(part, span - t * part)); });
  errors.rethrow();
}
const float* row_of_op_a(bool ta, const float* A, int lda, int o) { return ta ? A + o : A + int64_t(o) * lda; }

thread_local Precision t_conv_precision = Precision::F32;
thread_local bool t_portable = false;
thread_local bool t_portable_winograd = false;
}  // namespace

bool portable_winograd() { return t_portable_winograd; }
PortableWinograd::PortableWinograd(bool on) : ScopedSwitch(&t_portable_winograd, on) {}

bool portable_products() { return t_portable; }
PortableProducts::PortableProducts() : ScopedSwitch(&t_portable, true) {}

Precision conv_precision() { return t_conv_precision; }
ConvPrecisionScope::ConvPrecisionScope(Precision p) : saved_(t_conv_precision) {
  if (p == Precision::Bf16) check_bf16_available();
  t_conv_precision = p;
}
ConvPrecisionScope::~ConvPrecisionScope() { t_conv_precision = saved_; }

bool bf16_products_available() {
  return !k::use_reference_kernels() && k::bf16_supported() && k::sgemm_nr() == k::sgemm_bf16_nr();
}

void check_bf16_available() {
  if (k::use_reference_kernels()) return;
  if (!k::bf16_supported())
    fail("bf16 products need a CPU with AVX512_BF16, which this one lacks; use --precision fp32 (or --kernels ref "
         "for the exact scalar emulation, far slower)");
  if (k::sgemm_nr() != k::sgemm_bf16_nr())
    fail("bf16 products need the avx512 target (--target ", k::kernel_target_name(), " is in force)");
}

namespace {
// Bf16 products: ntc's bf16 kernel, or its twin with the scalar reference kernels.
void bf16_tile(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
               float beta, float* C, int ldc) {
  if (k::use_reference_kernels()) k::ref::sgemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else k::sgemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void bf16_panels_tile(bool ta, int M, int N, int K, float alpha, const float* A, int lda, const k::BPanels& b, float beta,
                      float* C, int ldc) {
  if (k::use_reference_kernels()) k::ref::sgemm_bf16_panels(ta, M, N, K, alpha, A, lda, b, beta, C, ldc);
  else k::sgemm_bf16_panels(ta, M, N, K, alpha, A, lda, b, beta, C, ldc);
}
}  // namespace

bool gemm_takes_panels(Precision p) {
  if (p == Precision::Bf16) return !k::use_reference_kernels() && (use_ntc_kernel() || t_portable);
  return use_ntc_kernel() || (t_portable && !k::use_reference_kernels());
}

void gemm_panels(bool ta, int M, int N, int K, float alpha, const float* A, int lda, const k::BPanels& b, float beta,
                 float* C, int ldc, Precision p) {
  NTC_CHECK(gemm_takes_panels(p), "gemm_panels: needs ntc's GEMM kernel");
  if (M <= 0 || N <= 0) return;
  if (p == Precision::Bf16) {
    check_bf16_available();
    NTC_CHECK(k::sgemm_bf16_nr() == k::sgemm_nr(), "gemm_panels: bf16 panels need ", k::sgemm_bf16_nr(), "-column panels");
  }
  split_over_threads(M, N, K, [&](bool cols, int o, int len) {
    k::BPanels part = b;
    if (cols) part.col0 += size_t(o);
    const float* a = cols ? A : row_of_op_a(ta, A, lda, o);
    float* c = cols ? C + o : C + int64_t(o) * ldc;
    const int m = cols ? M : len, n = cols ? len : N;
    if (p == Precision::Bf16) bf16_panels_tile(ta, m, n, K, alpha, a, lda, part, beta, c, ldc);
    else k::sgemm_panels(ta, m, n, K, alpha, a, lda, part, beta, c, ldc);
  });
}

void reserve_blas_buffers() {
  static std::atomic<int> reserved{0};
  const int T = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (use_ntc_kernel() || T <= reserved.load()) return;
  constexpr int n = 128;  // large enough for OpenBLAS's buffered path
  blas::load();
#pragma omp parallel num_threads(T)
  {
    std::vector<float> a(size_t(n) * n, 0.f), c(size_t(n) * n);
    blas::sgemm(false, false, n, n, n, 1.f, a.data(), n, a.data(), n, 0.f, c.data(), n);
  }
  int r = reserved.load();
  while (r < T && !reserved.compare_exchange_weak(r, T)) {
  }
}

void set_gemm_backend(GemmBackend b) { g_backend.store(b); }
const char* gemm_backend_name() { return use_ntc_kernel() ? "ntc" : "openblas"; }

void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
          int ldb, float beta, float* C, int ldc, Precision p) {
  if (M <= 0 || N <= 0) return;
  if (p == Precision::Bf16) {  // ntc's bf16 kernel (or its twin) whatever the back end; the same cut
    check_bf16_available();
    split_over_threads(M, N, K, [&](bool cols, int o, int len) {
      if (cols)
        bf16_tile(ta, tb, M, len, K, alpha, A, lda, tb ? B + int64_t(o) * ldb : B + o, ldb, beta, C + o, ldc);
      else
        bf16_tile(ta, tb, len, N, K, alpha, row_of_op_a(ta, A, lda, o), lda, B, ldb, beta, C + int64_t(o) * ldc, ldc);
    });
    return;
  }
  if (t_portable && k::use_reference_kernels()) {  // the twin: the same bits as ntc's kernel
    split_over_threads(M, N, K, [&](bool cols, int o, int len) {
      if (cols)
        k::ref::sgemm(ta, tb, M, len, K, alpha, A, lda, tb ? B + int64_t(o) * ldb : B + o, ldb, beta, C + o, ldc);
      else
        k::ref::sgemm(ta, tb, len, N, K, alpha, row_of_op_a(ta, A, lda, o), lda, B, ldb, beta, C + int64_t(o) * ldc, ldc);
    });
    return;
  }
  if (t_portable || use_ntc_kernel()) {
    split_over_threads(M, N, K, [&](bool cols, int o, int len) {
      if (cols)
        k::sgemm(ta, tb, M, len, K, alpha, A, lda, tb ? B + int64_t(o) * ldb : B + o, ldb, beta, C + o, ldc);
      else
        k::sgemm(ta, tb, len, N, K, alpha, row_of_op_a(ta, A, lda, o), lda, B, ldb, beta, C + int64_t(o) * ldc, ldc);
    });
    return;
  }
  // OpenBLAS: a tile grid from the shape alone: columns first (about kTargetTiles chunks of >= 256), then rows.
  const int nt = std::min(N, std::max(256, round_up(ceil_div(N, kTargetTiles), 64)));
  const int n_tiles = ceil_div(N, nt);
  int mt = M;
  if (n_tiles < kTargetTiles) mt = std::min(M, std::max(16, round_up(ceil_div(M, ceil_div(kTargetTiles, n_tiles)), 16)));
  const int m_tiles = ceil_div(M, mt), tiles = m_tiles * n_tiles;
  blas::load();  // here, not first inside the parallel region
  ThreadErrors errors;
#pragma omp parallel for schedule(dynamic) if (tiles > 1 && !omp_in_parallel())
  for (int t = 0; t < tiles; ++t) errors.run([&] {
    const int i0 = (t / n_tiles) * mt, j0 = (t % n_tiles) * nt;
    const int mi = std::min(mt, M - i0), nj = std::min(nt, N - j0);
    const float* a = ta ? A + i0 : A + int64_t(i0) * lda;
    const float* b = tb ? B + int64_t(j0) * ldb : B + j0;
    serial_sgemm(ta, tb, mi, nj, K, alpha, a, lda, b, ldb, beta, C + int64_t(i0) * ldc + j0, ldc);
  });
  errors.rethrow();
}

}  // namespace ntc
