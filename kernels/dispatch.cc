// kernels/dispatch.cc — the public ntc::k functions: pick the scalar twin (ntc::k::ref) or the
// Highway kernel (ntc::k::simd), and spread long arrays over OpenMP threads.
//
// Determinism: work is cut into pieces whose boundaries depend only on the sizes, never on the
// thread count, and every output element is written by exactly one thread.
//  * Elementwise kernels: chunks of kChunk elements (results do not depend on cutting at all).
//  * Reductions (sum, dot, sum_squares): fixed kReduceChunk-element chunks, each reduced in
//    double by the kernel, the partial sums added in chunk order — also when single-threaded.
//  * sum_channel / dot_channel: threads own disjoint channel ranges; the kernels add one plane
//    sum at a time into gb[c] in the order o = 0, 1, ..., so splitting by channel gives the same
//    bits as one call (see kernels/ref.cc).
// No threading inside an enclosing parallel region (omp_in_parallel()) or below kParallelMin
// elements, where spawning costs more than it saves.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "kernels/kernels.h"
#include "hwy/targets.h"

// The Highway entry points, defined in the HWY_ONCE section of kernels/simd.cc from the one kernel
// list (kernels/kernel_list.h), with the signatures of ntc::k::ref.
namespace ntc::k::simd {
NTC_KERNEL_LIST(NTC_KERNEL_DECLARE)
const char* target_name();  // hwy::TargetName of the target HWY_DYNAMIC_DISPATCH selects
}  // namespace ntc::k::simd

#ifndef NTC_SCALAR_DEFAULT
#define NTC_SCALAR_DEFAULT 0
#endif

namespace ntc::k {
namespace {

std::atomic<bool> g_reference{NTC_SCALAR_DEFAULT != 0};

constexpr size_t kParallelMin = 65536;  // below this many elements: one call, no threads
constexpr size_t kChunk = 16384;        // elements per parallel work item (elementwise)
constexpr size_t kReduceChunk = 4096;   // fixed reduction chunk (see kernels.h)

// The twin to call: scalar reference or Highway, according to use_reference_kernels().
template <class F>
F* pick(F* ref_fn, F* simd_fn) {
  return use_reference_kernels() ? ref_fn : simd_fn;
}

bool run_serial(size_t n) { return n < kParallelMin || omp_in_parallel(); }

// body(i, m) for consecutive pieces [i, i + m) covering [0, n).
template <class Body>
void for_chunks(size_t n, Body body) {
  if (run_serial(n)) return body(0, n);
  const long chunks = long((n + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static)
  for (long k = 0; k < chunks; ++k) {
    const size_t i = size_t(k) * kChunk;
    body(i, std::min(kChunk, n - i));
  }
}

// sum over fixed kReduceChunk pieces of chunk(i, m), added in index order starting from 0.0.
template <class Chunk>
double reduce_chunks(size_t n, Chunk chunk) {
  const size_t chunks = (n + kReduceChunk - 1) / kReduceChunk;
  double total = 0.0;
  if (run_serial(n)) {
    for (size_t k = 0; k < chunks; ++k) {
      const size_t i = k * kReduceChunk;
      total += chunk(i, std::min(kReduceChunk, n - i));
    }
    return total;
  }
  std::vector<double> part(chunks);
#pragma omp parallel for schedule(static)
  for (long k = 0; k < long(chunks); ++k) {
    const size_t i = size_t(k) * kReduceChunk;
    part[k] = chunk(i, std::min(kReduceChunk, n - i));
  }
  for (double p : part) total += p;
  return total;
}

// For [outer, C, inner] data: body(p, c0, m) for runs of m consecutive planes starting at plane
// p = o * C + c0 within one outer index (so the runs' channels c0 .. c0+m-1 are contiguous in b).
// Runs are grouped into work items of about kChunk elements.
template <class Body>
void for_plane_runs(size_t outer, size_t C, size_t inner, Body body) {
  const size_t planes = outer * C;
  if (run_serial(planes * inner)) {
    for (size_t o = 0; o < outer; ++o) body(o * C, 0, C);
    return;
  }
  const size_t per_item = std::max<size_t>(1, kChunk / std::max<size_t>(1, inner));
  const long items = long((planes + per_item - 1) / per_item);
#pragma omp parallel for schedule(static)
  for (long k = 0; k < items; ++k) {
    const size_t end = std::min(planes, (size_t(k) + 1) * per_item);
    for (size_t p = size_t(k) * per_item; p < end;) {
      const size_t c0 = p % C, m = std::min(C - c0, end - p);
      body(p, c0, m);
      p += m;
    }
  }
}

// For the channel reductions: body(c0, m) for disjoint channel ranges; each range is owned by one
// thread, so gb[c0 .. c0+m-1] is written by that thread only.
template <class Body>
void for_channel_ranges(size_t outer, size_t C, size_t inner, Body body) {
  if (run_serial(outer * C * inner)) return body(0, C);
  const size_t per_channel = std::max<size_t>(1, outer * inner);
  const size_t per_item = std::max<size_t>(1, kChunk / per_channel);
  const long items = long((C + per_item - 1) / per_item);
#pragma omp parallel for schedule(static)
  for (long k = 0; k < items; ++k) {
    const size_t c0 = size_t(k) * per_item;
    body(c0, std::min(per_item, C - c0));
  }
}

}  // namespace

void set_reference_kernels(bool on) { g_reference.store(on, std::memory_order_relaxed); }
bool set_simd_target(const std::string& t) {
  static int64_t forced = 0;  // the mask this function last set (0: none)
  int64_t want = 0;
  if (t == "avx2") want = HWY_AVX2;
  else if (t == "avx512") want = HWY_AVX3;
  else if (t != "auto" && t != "scalar") return false;
  if (want) {  // can this CPU run it? (checked against its own targets, then the mock restored)
    hwy::SetSupportedTargetsForTest(0);
    const bool ok = (hwy::SupportedTargets() & HWY_TARGETS & want) != 0;
    hwy::SetSupportedTargetsForTest(forced);
    if (!ok) return false;
  }
  set_reference_kernels(t == "scalar");  // the last of --kernels / --target decides the twins
  if (t == "scalar") return true;         // Highway's target stays as it was
  forced = want;
  hwy::SetSupportedTargetsForTest(want);  // 0: the CPU's own targets again
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  return true;
}
bool use_reference_kernels() { return g_reference.load(std::memory_order_relaxed); }
const char* kernel_target_name() {
  return use_reference_kernels() ? "scalar" : simd::target_name();
}

// ---- elementwise binary ------------------------------------------------------------------------
void add(const float* a, const float* b, float* y, size_t n) {
  auto f = pick(ref::add, simd::add);
  for_chunks(n, [=](size_t i, size_t m) { f(a + i, b + i, y + i, m); });
}
void sub(const float* a, const float* b, float* y, size_t n) {
  auto f = pick(ref::sub, simd::sub);
  for_chunks(n, [=](size_t i, size_t m) { f(a + i, b + i, y + i, m); });
}
void mul(const float* a, const float* b, float* y, size_t n) {
  auto f = pick(ref::mul, simd::mul);
  for_chunks(n, [=](size_t i, size_t m) { f(a + i, b + i, y + i, m); });
}
void div(const float* a, const float* b, float* y, size_t n) {
  auto f = pick(ref::div, simd::div);
  for_chunks(n, [=](size_t i, size_t m) { f(a + i, b + i, y + i, m); });
}

// ---- scalar forms ------------------------------------------------------------------------------
void scale(float alpha, const float* x, float* y, size_t n) {
  auto f = pick(ref::scale, simd::scale);
  for_chunks(n, [=](size_t i, size_t m) { f(alpha, x + i, y + i, m); });
}
void add_scalar(float c, const float* x, float* y, size_t n) {
  auto f = pick(ref::add_scalar, simd::add_scalar);
  for_chunks(n, [=](size_t i, size_t m) { f(c, x + i, y + i, m); });
}
void adam(float* p, const float* g, float* m, float* v, size_t n, float beta1, float beta2, float step, float vs,
          float eps) {
  auto f = pick(ref::adam, simd::adam);
  for_chunks(n, [=](size_t i, size_t c) { f(p + i, g + i, m + i, v + i, c, beta1, beta2, step, vs, eps); });
}
void axpy(float alpha, const float* x, float* y, size_t n) {
  auto f = pick(ref::axpy, simd::axpy);
  for_chunks(n, [=](size_t i, size_t m) { f(alpha, x + i, y + i, m); });
}
void fill(float v, float* y, size_t n) {
  auto f = pick(ref::fill, simd::fill);
  for_chunks(n, [=](size_t i, size_t m) { f(v, y + i, m); });
}

// ---- accumulating products ---------------------------------------------------------------------
void mul_acc(const float* a, const float* b, float* y, size_t n) {
  auto f = pick(ref::mul_acc, simd::mul_acc);
  for_chunks(n, [=](size_t i, size_t m) { f(a + i, b + i, y + i, m); });
}
void div_acc(const float* a, const float* b, float* y, size_t n) {
  auto f = pick(ref::div_acc, simd::div_acc);
  for_chunks(n, [=](size_t i, size_t m) { f(a + i, b + i, y + i, m); });
}
void div_bwd_b(const float* gy, const float* y, const float* b, float* gb, size_t n) {
  auto f = pick(ref::div_bwd_b, simd::div_bwd_b);
  for_chunks(n, [=](size_t i, size_t m) { f(gy + i, y + i, b + i, gb + i, m); });
}

// ---- channel broadcast -------------------------------------------------------------------------
void add_channel(const float* x, const float* b, float* y, size_t outer, size_t C, size_t inner) {
  auto f = pick(ref::add_channel, simd::add_channel);
  for_plane_runs(outer, C, inner, [=](size_t p, size_t c0, size_t m) {
    f(x + p * inner, b + c0, y + p * inner, 1, m, inner);
  });
}
void mul_channel(const float* x, const float* b, float* y, size_t outer, size_t C, size_t inner) {
  auto f = pick(ref::mul_channel, simd::mul_channel);
  for_plane_runs(outer, C, inner, [=](size_t p, size_t c0, size_t m) {
    f(x + p * inner, b + c0, y + p * inner, 1, m, inner);
  });
}
// Each channel range is swept over o = 0, 1, ... by its owning thread (one kernel call per o,
// covering the range's contiguous planes in that outer slice).
void sum_channel(const float* g, float* gb, size_t outer, size_t C, size_t inner) {
  auto f = pick(ref::sum_channel, simd::sum_channel);
  for_channel_ranges(outer, C, inner, [=](size_t c0, size_t m) {
    for (size_t o = 0; o < outer; ++o) f(g + (o * C + c0) * inner, gb + c0, 1, m, inner);
  });
}
void dot_channel(const float* g, const float* x, float* gb, size_t outer, size_t C, size_t inner) {
  auto f = pick(ref::dot_channel, simd::dot_channel);
  for_channel_ranges(outer, C, inner, [=](size_t c0, size_t m) {
    for (size_t o = 0; o < outer; ++o) {
      const size_t p = (o * C + c0) * inner;
      f(g + p, x + p, gb + c0, 1, m, inner);
    }
  });
}

// ---- reductions --------------------------------------------------------------------------------
double sum(const float* x, size_t n) {
  auto f = pick(ref::sum, simd::sum);
  return reduce_chunks(n, [=](size_t i, size_t m) { return f(x + i, m); });
}
double dot(const float* a, const float* b, size_t n) {
  auto f = pick(ref::dot, simd::dot);
  return reduce_chunks(n, [=](size_t i, size_t m) { return f(a + i, b + i, m); });
}
double sum_squares(const float* x, size_t n) {
  auto f = pick(ref::sum_squares, simd::sum_squares);
  return reduce_chunks(n, [=](size_t i, size_t m) { return f(x + i, m); });
}

// ---- activations -------------------------------------------------------------------------------
// Unary maps y = f(x) and accumulating backward maps gx += gy * f'(u), u = x or y.
namespace {
using UnaryFn = void(const float*, float*, size_t);
using BackwardFn = void(const float*, const float*, float*, size_t);

void unary(UnaryFn* f, const float* x, float* y, size_t n) {
  for_chunks(n, [=](size_t i, size_t m) { f(x + i, y + i, m); });
}
void backward(BackwardFn* f, const float* u, const float* gy, float* gx, size_t n) {
  for_chunks(n, [=](size_t i, size_t m) { f(u + i, gy + i, gx + i, m); });
}
}  // namespace

void relu_fwd(const float* x, float* y, size_t n) {
  unary(pick(ref::relu_fwd, simd::relu_fwd), x, y, n);
}
void relu_bwd(const float* x, const float* gy, float* gx, size_t n) {
  backward(pick(ref::relu_bwd, simd::relu_bwd), x, gy, gx, n);
}
void relu_mask(const float* x, const float* gy, float* g, size_t n) {
  backward(pick(ref::relu_mask, simd::relu_mask), x, gy, g, n);  // chunked like a backward; writes g
}
void leaky_relu_fwd(const float* x, float* y, size_t n, float slope) {
  auto f = pick(ref::leaky_relu_fwd, simd::leaky_relu_fwd);
  for_chunks(n, [=](size_t i, size_t m) { f(x + i, y + i, m, slope); });
}
void leaky_relu_bwd(const float* x, const float* gy, float* gx, size_t n, float slope) {
  auto f = pick(ref::leaky_relu_bwd, simd::leaky_relu_bwd);
  for_chunks(n, [=](size_t i, size_t m) { f(x + i, gy + i, gx + i, m, slope); });
}
void gelu_fwd(const float* x, float* y, size_t n) {
  unary(pick(ref::gelu_fwd, simd::gelu_fwd), x, y, n);
}
void gelu_bwd(const float* x, const float* gy, float* gx, size_t n) {
  backward(pick(ref::gelu_bwd, simd::gelu_bwd), x, gy, gx, n);
}
void sigmoid_fwd(const float* x, float* y, size_t n) {
  unary(pick(ref::sigmoid_fwd, simd::sigmoid_fwd), x, y, n);
}
void sigmoid_bwd(const float* y, const float* gy, float* gx, size_t n) {
  backward(pick(ref::sigmoid_bwd, simd::sigmoid_bwd), y, gy, gx, n);
}
void softplus_fwd(const float* x, float* y, size_t n) {
  unary(pick(ref::softplus_fwd, simd::softplus_fwd), x, y, n);
}
void softplus_bwd(const float* x, const float* gy, float* gx, size_t n) {
  backward(pick(ref::softplus_bwd, simd::softplus_bwd), x, gy, gx, n);
}
void tanh_fwd(const float* x, float* y, size_t n) {
  unary(pick(ref::tanh_fwd, simd::tanh_fwd), x, y, n);
}
void tanh_bwd(const float* y, const float* gy, float* gx, size_t n) {
  backward(pick(ref::tanh_bwd, simd::tanh_bwd), y, gy, gx, n);
}
void abs_fwd(const float* x, float* y, size_t n) {
  unary(pick(ref::abs_fwd, simd::abs_fwd), x, y, n);
}
void abs_bwd(const float* x, const float* gy, float* gx, size_t n) {
  backward(pick(ref::abs_bwd, simd::abs_bwd), x, gy, gx, n);
}
void exp_fwd(const float* x, float* y, size_t n) {
  unary(pick(ref::exp_fwd, simd::exp_fwd), x, y, n);
}
void exp_bwd(const float* y, const float* gy, float* gx, size_t n) {
  backward(pick(ref::exp_bwd, simd::exp_bwd), y, gy, gx, n);
}
void log_fwd(const float* x, float* y, size_t n) {
  unary(pick(ref::log_fwd, simd::log_fwd), x, y, n);
}
void log_bwd(const float* x, const float* gy, float* gx, size_t n) {
  backward(pick(ref::log_bwd, simd::log_bwd), x, gy, gx, n);
}
void sqrt_fwd(const float* x, float* y, size_t n) {
  unary(pick(ref::sqrt_fwd, simd::sqrt_fwd), x, y, n);
}
void sqrt_bwd(const float* y, const float* gy, float* gx, size_t n) {
  backward(pick(ref::sqrt_bwd, simd::sqrt_bwd), y, gy, gx, n);
}
void erf_fwd(const float* x, float* y, size_t n) {
  unary(pick(ref::erf_fwd, simd::erf_fwd), x, y, n);
}
void erfc_fwd(const float* x, float* y, size_t n) {
  unary(pick(ref::erfc_fwd, simd::erfc_fwd), x, y, n);
}

// ---- GDN pointwise part ------------------------------------------------------------------------
void gdn_fwd(const float* x, const float* norm, float* y, size_t n, bool inverse) {
  auto f = pick(ref::gdn_fwd, simd::gdn_fwd);
  for_chunks(n, [=](size_t i, size_t m) { f(x + i, norm + i, y + i, m, inverse); });
}
void gdn_bwd(const float* x, const float* norm, const float* gy, float* gx, float* gnorm, size_t n,
             bool inverse) {
  auto f = pick(ref::gdn_bwd, simd::gdn_bwd);
  for_chunks(
      n, [=](size_t i, size_t m) { f(x + i, norm + i, gy + i, gx + i, gnorm + i, m, inverse); });
}

}  // namespace ntc::k
