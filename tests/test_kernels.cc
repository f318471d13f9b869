// tests/test_kernels.cc — every SIMD kernel against its scalar twin, plus the twins' own maths.
//
// Harness (in the spirit of dav1d's checkasm): each kernel runs through the public entry point
// with the Highway path selected, once per compiled target this CPU runs (forced in turn with
// hwy::SetSupportedTargetsForTest), and through ntc::k::ref directly, on identical random arrays
// of sizes 1, 7, 17, 1023, 4097 and 70000 (the last is threaded by kernels/dispatch.cc). Every
// array starts 4 bytes off the allocation's 16-byte alignment and is framed by guard floats that
// must survive. All arrays, inputs included, are compared afterwards.
//
// Tolerances: arithmetic kernels must agree bit for bit (same IEEE ops, -ffp-contract=off).
// Transcendentals: |simd - ref| <= rel * |ref| + abs, with rel = 6e-7 (Highway's contrib/math
// claims <= 4 ulp for Log/Tanh, i.e. <= 4.8e-7 relative, plus half an ulp of rounding in the twin)
// and abs = 1e-30 (results flushed near the bottom of the float range), unless stated.
// Reductions: relative 1e-6.
#include <gtest/gtest.h>
#include <omp.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <numbers>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "kernels/kernels.h"
#include "tests/targets.h"

namespace {

namespace k = ntc::k;
using P = float* const*;  // the arrays of one test case, in the order they were declared
using ntc::test::ForceTarget;
using ntc::test::simd_targets;

const size_t kSizes[] = {1, 7, 17, 1023, 4097, 70000};
constexpr size_t kGuard = 16;  // guard floats on each side of an array
constexpr float kSentinel = -7.25e33f;

struct Range {
  float lo, hi;
};
struct Tol {
  double rel, abs;  // both 0: bit-exact
};
constexpr Tol kExact{0.0, 0.0};
constexpr Tol kTransc{6e-7, 1e-30};
// Accumulating transcendental kernels, gx0 + gy * f'(x): the twins' difference is relative to the
// term gy * f'(x) (|gy| <= 2, |f'| <= 1.13), not to the sum, which may cancel; so abs = 6e-7 * 2.3.
constexpr Tol kTranscAcc{6e-7, 1.5e-6};
constexpr Tol kReduce{1e-6, 1e-30};

// Selects the Highway path for the lifetime of the object and restores the previous mode.
class SimdMode {
 public:
  explicit SimdMode(bool reference = false) : saved_(k::use_reference_kernels()) {
    k::set_reference_kernels(reference);
  }
  ~SimdMode() { k::set_reference_kernels(saved_); }

 private:
  bool saved_;
};

// n floats, unaligned (one float past the start of an allocation that begins with kGuard
// sentinels), followed by kGuard sentinels.
class Guarded {
 public:
  explicit Guarded(size_t n) : n_(n), buf_(2 * kGuard + 1 + n, kSentinel) {}
  float* data() { return buf_.data() + kGuard + 1; }
  size_t size() const { return n_; }
  bool guards_intact() const {
    for (size_t i = 0; i <= kGuard; ++i)
      if (std::bit_cast<uint32_t>(buf_[i]) != std::bit_cast<uint32_t>(kSentinel)) return false;
    for (size_t i = kGuard + 1 + n_; i < buf_.size(); ++i)
      if (std::bit_cast<uint32_t>(buf_[i]) != std::bit_cast<uint32_t>(kSentinel)) return false;
    return true;
  }

 private:
  size_t n_;
  std::vector<float> buf_;
};

std::vector<float> random_floats(size_t n, Range r, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(r.lo, r.hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

bool close(float s, float r, Tol tol) {
  if (tol.rel == 0.0 && tol.abs == 0.0)
    return std::bit_cast<uint32_t>(s) == std::bit_cast<uint32_t>(r);
  return std::fabs(double(s) - double(r)) <= tol.rel * std::fabs(double(r)) + tol.abs;
}

// Array lengths of a case: n each, unless `len` says otherwise (channel kernels).
using Lengths = std::function<std::vector<size_t>(size_t n)>;

// Runs simd(p, n) through the public API in SIMD mode and ref(p, n) on copies of the same random
// arrays (array j drawn from ranges[j]); compares every array and checks every guard. Repeated
// for each size n in `sizes` and each SIMD target.
void compare_arrays(const std::vector<Range>& ranges, const std::function<void(P, size_t)>& simd,
                    const std::function<void(P, size_t)>& ref, Tol tol,
                    std::span<const size_t> sizes = kSizes, const Lengths& len = {}) {
  for (const int64_t target : simd_targets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    ForceTarget force(target);
    for (const size_t n : sizes) {
      const std::vector<size_t> lens = len ? len(n) : std::vector<size_t>(ranges.size(), n);
      std::vector<Guarded> a, b;
      for (size_t j = 0; j < ranges.size(); ++j) {
        const std::vector<float> v = random_floats(lens[j], ranges[j], uint32_t(1000 * j + n));
        a.emplace_back(lens[j]);
        b.emplace_back(lens[j]);
        std::memcpy(a[j].data(), v.data(), v.size() * sizeof(float));
        std::memcpy(b[j].data(), v.data(), v.size() * sizeof(float));
      }
      std::vector<float*> pa, pb;
      for (size_t j = 0; j < ranges.size(); ++j) {
        pa.push_back(a[j].data());
        pb.push_back(b[j].data());
      }
      {
        SimdMode mode;
        simd(pa.data(), n);
      }
      ref(pb.data(), n);
      for (size_t j = 0; j < ranges.size(); ++j) {
        EXPECT_TRUE(a[j].guards_intact()) << "simd, array " << j << ", n=" << n;
        EXPECT_TRUE(b[j].guards_intact()) << "ref, array " << j << ", n=" << n;
        size_t bad = 0;
        for (size_t i = 0; i < lens[j]; ++i) {
          const float s = a[j].data()[i], r = b[j].data()[i];
          if (!close(s, r, tol) && bad++ < 5)
            ADD_FAILURE() << "array " << j << ", n=" << n << ", i=" << i << ": simd " << s
                          << " ref " << r;
        }
        EXPECT_EQ(bad, 0u) << "mismatches in array " << j << ", n=" << n;
      }
    }
  }
}

// The common shapes: y = f(a, b); y = f(x); gx += f(u, gy).
using Binary = void(const float*, const float*, float*, size_t);
using Unary = void(const float*, float*, size_t);
using Backward = void(const float*, const float*, float*, size_t);

void compare_binary(Binary* pub, Binary* ref, Range a, Range b, Tol tol) {
  compare_arrays(
      {a, b, {-1, 1}}, [pub](P p, size_t n) { pub(p[0], p[1], p[2], n); },
      [ref](P p, size_t n) { ref(p[0], p[1], p[2], n); }, tol);
}
void compare_unary(Unary* pub, Unary* ref, Range x, Tol tol) {
  compare_arrays(
      {x, {-1, 1}}, [pub](P p, size_t n) { pub(p[0], p[1], n); },
      [ref](P p, size_t n) { ref(p[0], p[1], n); }, tol);
}
void compare_backward(Backward* pub, Backward* ref, Range u, Tol tol) {
  compare_arrays(
      {u, {-2, 2}, {-1, 1}}, [pub](P p, size_t n) { pub(p[0], p[1], p[2], n); },
      [ref](P p, size_t n) { ref(p[0], p[1], p[2], n); }, tol);
}

// Reductions: the same random inputs through the public SIMD path (every target) and the ref twin.
using Reduction = std::function<double(const std::vector<const float*>&, size_t)>;
void compare_reduction(const std::vector<Range>& ranges, const Reduction& pub,
                       const Reduction& ref) {
  for (const int64_t target : simd_targets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    ForceTarget force(target);
    for (const size_t n : kSizes) {
      std::vector<Guarded> bufs;
      for (size_t j = 0; j < ranges.size(); ++j) {
        const std::vector<float> v = random_floats(n, ranges[j], uint32_t(77 * j + n));
        bufs.emplace_back(n);
        std::memcpy(bufs[j].data(), v.data(), n * sizeof(float));
      }
      std::vector<const float*> p;
      for (Guarded& g : bufs) p.push_back(g.data());
      double s;
      {
        SimdMode mode;
        s = pub(p, n);
      }
      const double r = ref(p, n);
      EXPECT_NEAR(s, r, kReduce.rel * std::fabs(r) + kReduce.abs) << "n=" << n;
    }
  }
}

// Runs body(mode name) once with the scalar twins and once per SIMD target.
void for_each_mode(const std::function<void(const std::string&)>& body) {
  {
    SimdMode mode(/*reference=*/true);
    body("ref");
  }
  for (const int64_t target : simd_targets()) {
    SimdMode mode;
    ForceTarget force(target);
    body(hwy::TargetName(target));
  }
}

// Channel shapes (outer, C, inner): tiny, odd, threaded by planes, and threaded with inner = 1.
struct Shape {
  size_t outer, C, inner;
};
const Shape kShapes[] = {{1, 1, 1},    {2, 3, 7},    {3, 5, 17},    {2, 4, 1023},
                         {1, 3, 4097}, {4, 8, 4096}, {3, 30000, 1}, {1, 2, 70000}};

using ChannelFwd = void(const float*, const float*, float*, size_t, size_t, size_t);

void compare_channel_fwd(ChannelFwd* pub, ChannelFwd* ref) {
  for (const Shape& s : kShapes) {
    const size_t n = s.outer * s.C * s.inner;
    compare_arrays(
        {{-5, 5}, {-2, 2}, {-1, 1}},
        [&](P p, size_t) { pub(p[0], p[1], p[2], s.outer, s.C, s.inner); },
        [&](P p, size_t) { ref(p[0], p[1], p[2], s.outer, s.C, s.inner); }, kExact, {&n, 1},
        [&](size_t) {
          return std::vector<size_t>{n, s.C, n};
        });
  }
}

// ---- elementwise binary ------------------------------------------------------------------------
TEST(Kernels, AddMatchesRef) { compare_binary(k::add, k::ref::add, {-10, 10}, {-10, 10}, kExact); }
TEST(Kernels, SubMatchesRef) { compare_binary(k::sub, k::ref::sub, {-10, 10}, {-10, 10}, kExact); }
TEST(Kernels, MulMatchesRef) { compare_binary(k::mul, k::ref::mul, {-10, 10}, {-10, 10}, kExact); }
TEST(Kernels, DivMatchesRef) { compare_binary(k::div, k::ref::div, {-10, 10}, {0.5f, 4}, kExact); }

// ---- scalar forms ------------------------------------------------------------------------------
TEST(Kernels, ScaleMatchesRef) {
  compare_arrays(
      {{-10, 10}, {-1, 1}}, [](P p, size_t n) { k::scale(0.37f, p[0], p[1], n); },
      [](P p, size_t n) { k::ref::scale(0.37f, p[0], p[1], n); }, kExact);
}
TEST(Kernels, AddScalarMatchesRef) {
  compare_arrays(
      {{-10, 10}, {-1, 1}}, [](P p, size_t n) { k::add_scalar(-1.3f, p[0], p[1], n); },
      [](P p, size_t n) { k::ref::add_scalar(-1.3f, p[0], p[1], n); }, kExact);
}
TEST(Kernels, AxpyMatchesRef) {
  compare_arrays(
      {{-10, 10}, {-3, 3}}, [](P p, size_t n) { k::axpy(0.71f, p[0], p[1], n); },
      [](P p, size_t n) { k::ref::axpy(0.71f, p[0], p[1], n); }, kExact);
}
TEST(Kernels, FillMatchesRef) {
  compare_arrays(
      {{-1, 1}}, [](P p, size_t n) { k::fill(2.5f, p[0], n); },
      [](P p, size_t n) { k::ref::fill(2.5f, p[0], n); }, kExact);
}

// ---- accumulating products ---------------------------------------------------------------------
TEST(Kernels, MulAccMatchesRef) {
  compare_binary(k::mul_acc, k::ref::mul_acc, {-10, 10}, {-10, 10}, kExact);
}
TEST(Kernels, DivAccMatchesRef) {
  compare_binary(k::div_acc, k::ref::div_acc, {-10, 10}, {0.5f, 4}, kExact);
}
TEST(Kernels, DivBwdBMatchesRef) {
  compare_arrays(
      {{-2, 2}, {-5, 5}, {0.5f, 4}, {-1, 1}},
      [](P p, size_t n) { k::div_bwd_b(p[0], p[1], p[2], p[3], n); },
      [](P p, size_t n) { k::ref::div_bwd_b(p[0], p[1], p[2], p[3], n); }, kExact);
}

// ---- channel kernels ---------------------------------------------------------------------------
TEST(Kernels, AddChannelMatchesRef) { compare_channel_fwd(k::add_channel, k::ref::add_channel); }
TEST(Kernels, MulChannelMatchesRef) { compare_channel_fwd(k::mul_channel, k::ref::mul_channel); }

TEST(Kernels, SumChannelMatchesRef) {
  for (const Shape& s : kShapes) {
    const size_t n = s.outer * s.C * s.inner;
    compare_arrays(
        {{-5, 5}, {-1, 1}}, [&](P p, size_t) { k::sum_channel(p[0], p[1], s.outer, s.C, s.inner); },
        [&](P p, size_t) { k::ref::sum_channel(p[0], p[1], s.outer, s.C, s.inner); }, kReduce,
        {&n, 1},
        [&](size_t) {
          return std::vector<size_t>{n, s.C};
        });
  }
}
TEST(Kernels, DotChannelMatchesRef) {
  for (const Shape& s : kShapes) {
    const size_t n = s.outer * s.C * s.inner;
    compare_arrays(
        {{-5, 5}, {-2, 2}, {-1, 1}},
        [&](P p, size_t) { k::dot_channel(p[0], p[1], p[2], s.outer, s.C, s.inner); },
        [&](P p, size_t) { k::ref::dot_channel(p[0], p[1], p[2], s.outer, s.C, s.inner); }, kReduce,
        {&n, 1},
        [&](size_t) {
          return std::vector<size_t>{n, n, s.C};
        });
  }
}

// The dispatch layer splits channel reductions over channel ranges and outer slices; the kernels'
// plane-by-plane contract makes that bit-identical to one call of the twin.
TEST(Kernels, ChannelReductionSplitIsExact) {
  const Shape s{4, 8, 4096};
  const size_t n = s.outer * s.C * s.inner;
  const std::vector<float> g = random_floats(n, {-5, 5}, 11), x = random_floats(n, {-2, 2}, 12);
  std::vector<float> gb1(s.C, 0.5f), gb2(s.C, 0.5f), gd1(s.C, -0.25f), gd2(s.C, -0.25f);
  {
    SimdMode mode(/*reference=*/true);
    k::sum_channel(g.data(), gb1.data(), s.outer, s.C, s.inner);
    k::dot_channel(g.data(), x.data(), gd1.data(), s.outer, s.C, s.inner);
  }
  k::ref::sum_channel(g.data(), gb2.data(), s.outer, s.C, s.inner);
  k::ref::dot_channel(g.data(), x.data(), gd2.data(), s.outer, s.C, s.inner);
  for (size_t c = 0; c < s.C; ++c) {
    EXPECT_EQ(std::bit_cast<uint32_t>(gb1[c]), std::bit_cast<uint32_t>(gb2[c])) << c;
    EXPECT_EQ(std::bit_cast<uint32_t>(gd1[c]), std::bit_cast<uint32_t>(gd2[c])) << c;
  }
}

// ---- reductions --------------------------------------------------------------------------------
TEST(Kernels, SumMatchesRef) {
  compare_reduction(
      {{-5, 5}}, [](auto& p, size_t n) { return k::sum(p[0], n); },
      [](auto& p, size_t n) { return k::ref::sum(p[0], n); });
}
TEST(Kernels, DotMatchesRef) {
  compare_reduction(
      {{-5, 5}, {-3, 3}}, [](auto& p, size_t n) { return k::dot(p[0], p[1], n); },
      [](auto& p, size_t n) { return k::ref::dot(p[0], p[1], n); });
}
TEST(Kernels, SumSquaresMatchesRef) {
  compare_reduction(
      {{-5, 5}}, [](auto& p, size_t n) { return k::sum_squares(p[0], n); },
      [](auto& p, size_t n) { return k::ref::sum_squares(p[0], n); });
}

// Fixed chunks combined in order: the result must not depend on the thread count, in any mode.
TEST(Kernels, SumIsThreadCountIndependent) {
  const size_t n = 1000000;
  const std::vector<float> x = random_floats(n, {-5, 5}, 5), y = random_floats(n, {-1, 1}, 6);
  const int saved = omp_get_max_threads();
  for_each_mode([&](const std::string& mode) {
    omp_set_num_threads(1);
    const double s1 = k::sum(x.data(), n), d1 = k::dot(x.data(), y.data(), n);
    std::vector<float> gb1(10, 0.0f);
    k::sum_channel(x.data(), gb1.data(), 10, 10, n / 100);
    for (int threads : {2, 3, 4}) {
      omp_set_num_threads(threads);
      EXPECT_EQ(std::bit_cast<uint64_t>(k::sum(x.data(), n)), std::bit_cast<uint64_t>(s1))
          << threads << " threads, " << mode;
      EXPECT_EQ(std::bit_cast<uint64_t>(k::dot(x.data(), y.data(), n)), std::bit_cast<uint64_t>(d1))
          << threads << " threads, " << mode;
      std::vector<float> gb(10, 0.0f);
      k::sum_channel(x.data(), gb.data(), 10, 10, n / 100);
      EXPECT_EQ(gb, gb1) << threads << " threads, " << mode;
    }
  });
  omp_set_num_threads(saved);
}

// ---- activations -------------------------------------------------------------------------------
TEST(Kernels, ReluFwdMatchesRef) { compare_unary(k::relu_fwd, k::ref::relu_fwd, {-5, 5}, kExact); }
TEST(Kernels, ReluBwdMatchesRef) {
  compare_backward(k::relu_bwd, k::ref::relu_bwd, {-5, 5}, kExact);
}
// relu_mask writes what relu_bwd adds into zeros, to the bit (−0 in gy becomes +0 in both), on every
// target and in the twin.
TEST(Kernels, ReluMaskIsReluBwdIntoZeros) {
  compare_backward(k::relu_mask, k::ref::relu_mask, {-5, 5}, kExact);
  const size_t n = 1029;
  std::vector<float> x = random_floats(n, {-3, 3}, 5), gy = random_floats(n, {-2, 2}, 6);
  for (size_t i = 0; i < n; i += 7) gy[i] = -0.0f;
  for (size_t i = 3; i < n; i += 11) x[i] = 0.0f;
  for (const bool twin : {false, true}) {
    std::vector<float> acc(n, 0.0f), g(n, 123.0f);
    if (twin) {
      k::ref::relu_bwd(x.data(), gy.data(), acc.data(), n);
      k::ref::relu_mask(x.data(), gy.data(), g.data(), n);
    } else {
      k::relu_bwd(x.data(), gy.data(), acc.data(), n);
      k::relu_mask(x.data(), gy.data(), g.data(), n);
    }
    EXPECT_EQ(0, std::memcmp(acc.data(), g.data(), n * sizeof(float))) << (twin ? "twin" : "simd");
    size_t zeros = 0;
    for (size_t i = 0; i < n; ++i) zeros += g[i] == 0.0f && !std::signbit(g[i]);
    EXPECT_GT(zeros, n / 3);  // the mask acted (x ≤ 0 on about half)
  }
}
TEST(Kernels, LeakyReluFwdMatchesRef) {
  compare_arrays(
      {{-5, 5}, {-1, 1}}, [](P p, size_t n) { k::leaky_relu_fwd(p[0], p[1], n, 0.01f); },
      [](P p, size_t n) { k::ref::leaky_relu_fwd(p[0], p[1], n, 0.01f); }, kExact);
}
TEST(Kernels, LeakyReluBwdMatchesRef) {
  compare_arrays(
      {{-5, 5}, {-2, 2}, {-1, 1}},
      [](P p, size_t n) { k::leaky_relu_bwd(p[0], p[1], p[2], n, 0.01f); },
      [](P p, size_t n) { k::ref::leaky_relu_bwd(p[0], p[1], p[2], n, 0.01f); }, kExact);
}
TEST(Kernels, GeluFwdMatchesRef) {
  compare_unary(k::gelu_fwd, k::ref::gelu_fwd, {-12, 12}, kTransc);
}
TEST(Kernels, GeluBwdMatchesRef) {
  compare_backward(k::gelu_bwd, k::ref::gelu_bwd, {-12, 12}, kTranscAcc);
}
TEST(Kernels, SigmoidFwdMatchesRef) {
  compare_unary(k::sigmoid_fwd, k::ref::sigmoid_fwd, {-30, 30}, kTransc);
}
TEST(Kernels, SigmoidBwdMatchesRef) {
  compare_backward(k::sigmoid_bwd, k::ref::sigmoid_bwd, {0, 1}, kExact);
}
TEST(Kernels, SoftplusFwdMatchesRef) {
  compare_unary(k::softplus_fwd, k::ref::softplus_fwd, {-30, 30}, kTransc);
}
TEST(Kernels, SoftplusBwdMatchesRef) {
  compare_backward(k::softplus_bwd, k::ref::softplus_bwd, {-30, 30}, kTranscAcc);
}
TEST(Kernels, TanhFwdMatchesRef) {
  compare_unary(k::tanh_fwd, k::ref::tanh_fwd, {-10, 10}, kTransc);
}
TEST(Kernels, TanhBwdMatchesRef) {
  compare_backward(k::tanh_bwd, k::ref::tanh_bwd, {-1, 1}, kExact);
}
TEST(Kernels, AbsFwdMatchesRef) { compare_unary(k::abs_fwd, k::ref::abs_fwd, {-5, 5}, kExact); }
TEST(Kernels, AbsBwdMatchesRef) { compare_backward(k::abs_bwd, k::ref::abs_bwd, {-5, 5}, kExact); }
TEST(Kernels, ExpFwdMatchesRef) { compare_unary(k::exp_fwd, k::ref::exp_fwd, {-80, 80}, kTransc); }
TEST(Kernels, ExpBwdMatchesRef) { compare_backward(k::exp_bwd, k::ref::exp_bwd, {0, 50}, kExact); }
TEST(Kernels, LogFwdMatchesRef) {
  compare_unary(k::log_fwd, k::ref::log_fwd, {1e-3f, 1e3f}, kTransc);
}
TEST(Kernels, LogBwdMatchesRef) {
  compare_backward(k::log_bwd, k::ref::log_bwd, {1e-3f, 1e3f}, kExact);
}
TEST(Kernels, SqrtFwdMatchesRef) {
  compare_unary(k::sqrt_fwd, k::ref::sqrt_fwd, {0, 1e3f}, kExact);
}
TEST(Kernels, SqrtBwdMatchesRef) {
  compare_backward(k::sqrt_bwd, k::ref::sqrt_bwd, {1e-2f, 30}, kExact);
}
TEST(Kernels, ErfFwdMatchesRef) { compare_unary(k::erf_fwd, k::ref::erf_fwd, {-6, 6}, kTransc); }
TEST(Kernels, ErfcFwdMatchesRef) {
  compare_unary(k::erfc_fwd, k::ref::erfc_fwd, {-10, 10}, kTransc);
}

// ---- GDN ---------------------------------------------------------------------------------------
TEST(Kernels, GdnFwdMatchesRef) {
  for (bool inverse : {false, true})
    compare_arrays(
        {{-5, 5}, {0.2f, 3}, {-1, 1}},
        [inverse](P p, size_t n) { k::gdn_fwd(p[0], p[1], p[2], n, inverse); },
        [inverse](P p, size_t n) { k::ref::gdn_fwd(p[0], p[1], p[2], n, inverse); }, kExact);
}
TEST(Kernels, GdnBwdMatchesRef) {
  for (bool inverse : {false, true})
    compare_arrays(
        {{-5, 5}, {0.2f, 3}, {-2, 2}, {-1, 1}, {-1, 1}},
        [inverse](P p, size_t n) { k::gdn_bwd(p[0], p[1], p[2], p[3], p[4], n, inverse); },
        [inverse](P p, size_t n) { k::ref::gdn_bwd(p[0], p[1], p[2], p[3], p[4], n, inverse); },
        kExact);
}
TEST(Kernels, AdamMatchesRef) {  // p, g, m, v (v ≥ 0); both forms' constants
  for (float vs : {1.f, 1.0005f})
    compare_arrays(
        {{-1, 1}, {-3, 3}, {-0.5f, 0.5f}, {0, 2}},
        [vs](P p, size_t n) { k::adam(p[0], p[1], p[2], p[3], n, 0.9f, 0.999f, 3e-4f, vs, 1e-7f); },
        [vs](P p, size_t n) { k::ref::adam(p[0], p[1], p[2], p[3], n, 0.9f, 0.999f, 3e-4f, vs, 1e-7f); }, kExact);
}

// ---- contracts: accumulation, aliasing, NaN ----------------------------------------------------

// Every *_bwd (and axpy / *_acc) adds into its output: running from g0 must give exactly g0 plus
// the result of running from zero (the kernel's last step is one float add into the output).
TEST(Kernels, BackwardKernelsAccumulate) {
  const size_t n = 1023;
  const std::vector<float> u = random_floats(n, {0.1f, 3}, 1), gy = random_floats(n, {-2, 2}, 2),
                           g0 = random_floats(n, {-1, 1}, 3);
  const std::vector<std::pair<const char*, std::function<void(float*)>>> cases = {
      {"axpy", [&](float* g) { k::axpy(0.3f, u.data(), g, n); }},
      {"mul_acc", [&](float* g) { k::mul_acc(u.data(), gy.data(), g, n); }},
      {"div_acc", [&](float* g) { k::div_acc(gy.data(), u.data(), g, n); }},
      {"div_bwd_b", [&](float* g) { k::div_bwd_b(gy.data(), gy.data(), u.data(), g, n); }},
      {"relu_bwd", [&](float* g) { k::relu_bwd(gy.data(), u.data(), g, n); }},
      {"leaky_relu_bwd", [&](float* g) { k::leaky_relu_bwd(gy.data(), u.data(), g, n, 0.1f); }},
      {"gelu_bwd", [&](float* g) { k::gelu_bwd(gy.data(), u.data(), g, n); }},
      {"sigmoid_bwd", [&](float* g) { k::sigmoid_bwd(u.data(), gy.data(), g, n); }},
      {"softplus_bwd", [&](float* g) { k::softplus_bwd(gy.data(), u.data(), g, n); }},
      {"tanh_bwd", [&](float* g) { k::tanh_bwd(u.data(), gy.data(), g, n); }},
      {"abs_bwd", [&](float* g) { k::abs_bwd(gy.data(), u.data(), g, n); }},
      {"exp_bwd", [&](float* g) { k::exp_bwd(u.data(), gy.data(), g, n); }},
      {"log_bwd", [&](float* g) { k::log_bwd(u.data(), gy.data(), g, n); }},
      {"sqrt_bwd", [&](float* g) { k::sqrt_bwd(u.data(), gy.data(), g, n); }},
      {"gdn_bwd", [&](float* g) {
         std::vector<float> gnorm(n);
         k::gdn_bwd(gy.data(), u.data(), gy.data(), g, gnorm.data(), n, false);
       }}};
  for_each_mode([&](const std::string& mode) {
    for (const auto& [name, run] : cases) {
      std::vector<float> from_zero(n, 0.0f), from_g0 = g0;
      run(from_zero.data());
      run(from_g0.data());
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(from_g0[i], g0[i] + from_zero[i]) << name << ", " << mode << ", i=" << i;
    }
  });
}

// The channel reductions accumulate too: gb[c] = float(gb[c] + plane sums), so compare loosely.
TEST(Kernels, ChannelReductionsAccumulate) {
  const size_t outer = 2, C = 3, inner = 50, n = outer * C * inner;
  const std::vector<float> g = random_floats(n, {-1, 1}, 4), x = random_floats(n, {-1, 1}, 5);
  for_each_mode([&](const std::string& mode) {
    std::vector<float> s0(C, 0.0f), s1(C, 10.0f), d0(C, 0.0f), d1(C, -10.0f);
    k::sum_channel(g.data(), s0.data(), outer, C, inner);
    k::sum_channel(g.data(), s1.data(), outer, C, inner);
    k::dot_channel(g.data(), x.data(), d0.data(), outer, C, inner);
    k::dot_channel(g.data(), x.data(), d1.data(), outer, C, inner);
    for (size_t c = 0; c < C; ++c) {
      EXPECT_NEAR(s1[c], 10.0f + s0[c], 1e-5f) << mode;
      EXPECT_NEAR(d1[c], -10.0f + d0[c], 1e-5f) << mode;
    }
  });
}

// gnorm is scratch: overwritten whatever it held before.
TEST(Kernels, GdnBwdOverwritesGnorm) {
  const size_t n = 37;
  const std::vector<float> x = random_floats(n, {-2, 2}, 1), norm = random_floats(n, {0.5f, 2}, 2),
                           gy = random_floats(n, {-1, 1}, 3);
  for_each_mode([&](const std::string& mode) {
    for (bool inverse : {false, true}) {
      std::vector<float> gx(n, 0.0f), a(n, std::numeric_limits<float>::quiet_NaN()), b(n, 0.0f);
      k::gdn_bwd(x.data(), norm.data(), gy.data(), gx.data(), a.data(), n, inverse);
      k::gdn_bwd(x.data(), norm.data(), gy.data(), gx.data(), b.data(), n, inverse);
      EXPECT_EQ(a, b) << mode << ", inverse=" << inverse;
    }
  });
}

// Forward maps may run in place (y == x, or y == a / y == b for binary ops).
TEST(Kernels, ForwardMapsAllowAliasing) {
  const size_t n = 4098;  // divisible by 3 for the channel shapes below
  const std::vector<float> x = random_floats(n, {0.1f, 5}, 8), b = random_floats(n, {0.5f, 2}, 9);
  const std::vector<std::pair<const char*, std::function<void(const float*, float*)>>> unary = {
      {"scale", [&](const float* in, float* out) { k::scale(1.5f, in, out, n); }},
      {"add_scalar", [&](const float* in, float* out) { k::add_scalar(1.5f, in, out, n); }},
      {"add(x,b)", [&](const float* in, float* out) { k::add(in, b.data(), out, n); }},
      {"sub(b,x)", [&](const float* in, float* out) { k::sub(b.data(), in, out, n); }},
      {"mul(x,b)", [&](const float* in, float* out) { k::mul(in, b.data(), out, n); }},
      {"div(b,x)", [&](const float* in, float* out) { k::div(b.data(), in, out, n); }},
      {"add_channel",
       [&](const float* in, float* out) { k::add_channel(in, b.data(), out, 1, 3, n / 3); }},
      {"mul_channel",
       [&](const float* in, float* out) { k::mul_channel(in, b.data(), out, 3, 1, n / 3); }},
      {"relu_fwd", [&](const float* in, float* out) { k::relu_fwd(in, out, n); }},
      {"leaky_relu_fwd", [&](const float* in, float* out) { k::leaky_relu_fwd(in, out, n, 0.2f); }},
      {"gelu_fwd", [&](const float* in, float* out) { k::gelu_fwd(in, out, n); }},
      {"sigmoid_fwd", [&](const float* in, float* out) { k::sigmoid_fwd(in, out, n); }},
      {"softplus_fwd", [&](const float* in, float* out) { k::softplus_fwd(in, out, n); }},
      {"tanh_fwd", [&](const float* in, float* out) { k::tanh_fwd(in, out, n); }},
      {"abs_fwd", [&](const float* in, float* out) { k::abs_fwd(in, out, n); }},
      {"exp_fwd", [&](const float* in, float* out) { k::exp_fwd(in, out, n); }},
      {"log_fwd", [&](const float* in, float* out) { k::log_fwd(in, out, n); }},
      {"sqrt_fwd", [&](const float* in, float* out) { k::sqrt_fwd(in, out, n); }},
      {"erf_fwd", [&](const float* in, float* out) { k::erf_fwd(in, out, n); }},
      {"erfc_fwd", [&](const float* in, float* out) { k::erfc_fwd(in, out, n); }},
      {"gdn_fwd", [&](const float* in, float* out) { k::gdn_fwd(in, b.data(), out, n, false); }},
      {"gdn_fwd inverse",
       [&](const float* in, float* out) { k::gdn_fwd(in, b.data(), out, n, true); }}};
  for_each_mode([&](const std::string& mode) {
    for (const auto& [name, run] : unary) {
      std::vector<float> out(n), inplace = x;
      run(x.data(), out.data());
      run(inplace.data(), inplace.data());
      EXPECT_EQ(out, inplace) << name << ", " << mode;
    }
  });
}

// Special inputs: both twins give the same class of result (NaN, +-inf, zero) and close values;
// the transcendentals propagate NaN (hn::Exp and hn::Log alone would not) and log follows IEEE.
TEST(Kernels, SpecialValuesMatchRef) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {0.0f, -0.0f, -1.0f, 1.0f, inf, -inf, nan, 1e-45f, 100.0f};
  const size_t kNan = 6;
  const std::vector<std::pair<Unary*, Unary*>> maps = {
      {k::relu_fwd, k::ref::relu_fwd},       {k::gelu_fwd, k::ref::gelu_fwd},
      {k::sigmoid_fwd, k::ref::sigmoid_fwd}, {k::softplus_fwd, k::ref::softplus_fwd},
      {k::tanh_fwd, k::ref::tanh_fwd},       {k::abs_fwd, k::ref::abs_fwd},
      {k::exp_fwd, k::ref::exp_fwd},         {k::log_fwd, k::ref::log_fwd},
      {k::sqrt_fwd, k::ref::sqrt_fwd},       {k::erf_fwd, k::ref::erf_fwd},
      {k::erfc_fwd, k::ref::erfc_fwd}};
  for (size_t m = 0; m < maps.size(); ++m) {
    std::vector<float> r(x.size());
    maps[m].second(x.data(), r.data(), x.size());
    for (const int64_t target : simd_targets()) {
      SimdMode mode;
      ForceTarget force(target);
      std::vector<float> s(x.size());
      maps[m].first(x.data(), s.data(), x.size());
      for (size_t i = 0; i < x.size(); ++i) {
        EXPECT_EQ(std::isnan(s[i]), std::isnan(r[i]))
            << "map " << m << ", " << hwy::TargetName(target) << ", x=" << x[i];
        if (!std::isnan(r[i])) {
          EXPECT_TRUE(s[i] == r[i] || close(s[i], r[i], kTransc))
              << "map " << m << ", " << hwy::TargetName(target) << ", x=" << x[i] << ": simd "
              << s[i] << " ref " << r[i];
        }
      }
    }
    if (m != 0) {  // relu maps NaN to 0 (x > 0 is false)
      EXPECT_TRUE(std::isnan(r[kNan])) << "map " << m;
    }
  }
  float y[3];
  k::ref::log_fwd(x.data(), y, 3);  // log(0) = log(-0) = -inf, log(-1) = NaN
  EXPECT_EQ(y[0], -inf);
  EXPECT_EQ(y[1], -inf);
  EXPECT_TRUE(std::isnan(y[2]));
}

TEST(Kernels, TargetNameFollowsMode) {
  {
    SimdMode mode(/*reference=*/true);
    EXPECT_STREQ(k::kernel_target_name(), "scalar");
  }
  SimdMode mode;
  const std::string best = k::kernel_target_name();
  EXPECT_FALSE(best.empty());
  EXPECT_NE(best, "scalar");
  // Forcing a target reaches the dispatch in kernels/simd.cc (else the per-target runs are moot).
  ASSERT_FALSE(simd_targets().empty());
  for (const int64_t target : simd_targets()) {
    ForceTarget force(target);
    EXPECT_STREQ(k::kernel_target_name(), hwy::TargetName(target));
  }
  EXPECT_EQ(k::kernel_target_name(), best);
}

// ---- the twins' own maths, against the C library in double ------------------------------------

// Dense grid x in [-10, 10], step 1e-3, both twins: erfc relative error < 2e-7 wherever
// erfc(x) > 1e-37, erf absolute error < 2e-7 (the bounds promised in kernels.h).
TEST(Kernels, ErfErfcAccuracy) {
  std::vector<float> x;
  for (int i = -10000; i <= 10000; ++i) x.push_back(float(i * 1e-3));
  const size_t n = x.size();
  for_each_mode([&](const std::string& mode) {
    std::vector<float> e(n), ec(n);
    k::erf_fwd(x.data(), e.data(), n);
    k::erfc_fwd(x.data(), ec.data(), n);
    double max_rel_erfc = 0.0, max_abs_erf = 0.0;
    for (size_t i = 0; i < n; ++i) {
      const double want_c = std::erfc(double(x[i]));
      if (want_c > 1e-37) max_rel_erfc = std::max(max_rel_erfc, std::fabs(ec[i] - want_c) / want_c);
      max_abs_erf = std::max(max_abs_erf, std::fabs(e[i] - std::erf(double(x[i]))));
    }
    EXPECT_LT(max_rel_erfc, 2e-7) << mode;
    EXPECT_LT(max_abs_erf, 2e-7) << mode;
  });
  // Near zero erf keeps relative accuracy (Taylor branch).
  for (float v : {1e-30f, 1e-8f, 3e-4f, 0.1f, -0.49f}) {
    float y;
    k::ref::erf_fwd(&v, &y, 1);
    EXPECT_NEAR(y, std::erf(double(v)), 1.2e-7 * std::fabs(std::erf(double(v)))) << v;
  }
  // Infinities.
  const float inf = std::numeric_limits<float>::infinity();
  const float xs[2] = {inf, -inf};
  for_each_mode([&](const std::string& mode) {
    float e[2], ec[2];
    k::erf_fwd(xs, e, 2);
    k::erfc_fwd(xs, ec, 2);
    EXPECT_EQ(e[0], 1.0f) << mode;
    EXPECT_EQ(e[1], -1.0f) << mode;
    EXPECT_EQ(ec[0], 0.0f) << mode;
    EXPECT_EQ(ec[1], 2.0f) << mode;
  });
}

// Relative error of the ref twins against double-precision formulas on a grid over [lo, hi].
template <class F, class G>
double max_rel_error(F ref_kernel, G exact, float lo, float hi) {
  std::vector<float> x;
  for (float v = lo; v <= hi; v += 0.01f) x.push_back(v);
  std::vector<float> y(x.size());
  ref_kernel(x.data(), y.data(), x.size());
  double worst = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = exact(double(x[i]));
    worst = std::max(worst, std::fabs(y[i] - want) / std::max(std::fabs(want), 1e-30));
  }
  return worst;
}

TEST(Kernels, RefActivationsMatchLibm) {
  const double kSqrt2 = std::sqrt(2.0);
  // Rounding to float alone costs up to 6e-8; libm float functions up to ~1 ulp.
  EXPECT_LT(
      max_rel_error(
          k::ref::gelu_fwd, [&](double x) { return 0.5 * x * std::erfc(-x / kSqrt2); }, -12, 12),
      2e-7);
  EXPECT_LT(max_rel_error(
                k::ref::sigmoid_fwd, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, -80, 80),
            3e-7);
  EXPECT_LT(max_rel_error(
                k::ref::softplus_fwd, [](double x) { return std::log1p(std::exp(x)); }, -80, 80),
            3e-7);
  EXPECT_LT(max_rel_error(
                k::ref::tanh_fwd, [](double x) { return std::tanh(x); }, -10, 10),
            3e-7);
  // GELU derivative: Phi(x) + x phi(x), in double; gx starts at 0 and gy = 1. Near its zero at
  // x = -0.75 the two terms cancel, so allow the absolute error of Phi (1.4e-9 relative erfc fit).
  std::vector<float> x, one, g;
  for (float v = -12; v <= 12; v += 0.01f) x.push_back(v);
  one.assign(x.size(), 1.0f);
  g.assign(x.size(), 0.0f);
  k::ref::gelu_bwd(x.data(), one.data(), g.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double xd = x[i];
    const double want = 0.5 * std::erfc(-xd / kSqrt2) +
                        xd * std::exp(-0.5 * xd * xd) / std::sqrt(2 * std::numbers::pi);
    EXPECT_NEAR(g[i], want, 2e-7 * std::fabs(want) + 1e-9) << xd;
  }
}

}  // namespace

// ---- Highway's runtime without libhwy.so (kernels/cpu_targets.h, cli/hwy_runtime.cc) -----------
// The ntc binary defines the five libhwy.so functions its Highway code calls; this binary links
// libhwy.so itself, so it compiles that file again in its own namespace to test it.
#include <dlfcn.h>

#include "kernels/cpu_targets.h"
#define NTC_HWY_RUNTIME_NAMESPACE ntc_hwy_runtime_under_test
#include "cli/hwy_runtime.cc"

namespace {

// The detection gives libhwy.so's answer on this machine (for the x86 targets Highway 1.0 knows).
TEST(Kernels, CpuTargetsAreHighwaysOwn) {
  Dl_info info{};  // the function compared against is the library's, not a copy of ntc's
  ASSERT_NE(dladdr(reinterpret_cast<void*>(&hwy::SupportedTargets), &info), 0);
  ASSERT_NE(info.dli_fname, nullptr);
  EXPECT_NE(std::string(info.dli_fname).find("libhwy"), std::string::npos) << info.dli_fname;
  hwy::SetSupportedTargetsForTest(0);
  const int64_t lib = hwy::SupportedTargets();
  hwy::GetChosenTarget().Update(lib);
  const int64_t x86 = HWY_SSSE3 | HWY_SSE4 | HWY_AVX2 | HWY_AVX3 | HWY_AVX3_DL | HWY_EMU128 | HWY_SCALAR;
  EXPECT_EQ(k::cpu_targets() & x86, lib & x86) << std::hex << k::cpu_targets() << " " << lib;
  EXPECT_NE(k::cpu_targets() & HWY_AVX2, 0) << "ntc is built for AVX2 and runs here";
}

TEST(Kernels, HwyRuntimeMocksTargetsAndAligns) {
  namespace rt = ntc_hwy_runtime_under_test;
  hwy::ChosenTarget& c = rt::GetChosenTarget();
  EXPECT_EQ(&c, &rt::GetChosenTarget());
  EXPECT_NE(&c, &hwy::GetChosenTarget());  // its own, not libhwy.so's
  c.Update(rt::SupportedTargets());
  ASSERT_TRUE(c.IsInitialized());
  EXPECT_EQ(rt::SupportedTargets(), k::cpu_targets());
  rt::SetSupportedTargetsForTest(HWY_AVX2);  // a mock, and the next dispatch chooses again
  EXPECT_EQ(rt::SupportedTargets(), HWY_AVX2);
  EXPECT_FALSE(c.IsInitialized());
  rt::SetSupportedTargetsForTest(0);
  EXPECT_EQ(rt::SupportedTargets(), k::cpu_targets());

  for (size_t n : {size_t(1), size_t(3), size_t(64), size_t(1000), size_t(1) << 20}) {
    void* p = rt::AllocateAlignedBytes(n, nullptr, nullptr);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % HWY_ALIGNMENT, 0u) << n;
    std::memset(p, 0xab, n);  // all of it is ours (ASan checks the bounds)
    rt::FreeAlignedBytes(p, nullptr, nullptr);
  }
  EXPECT_EQ(rt::AllocateAlignedBytes(0, nullptr, nullptr), nullptr);
  EXPECT_EQ(rt::AllocateAlignedBytes(size_t(-1), nullptr, nullptr), nullptr);
  rt::FreeAlignedBytes(nullptr, nullptr, nullptr);

  // A caller's allocator, handing out memory at every misalignment: the payload is aligned, fits,
  // and the pointer the allocator gave is the one handed back.
  struct Arena {
    std::vector<unsigned char> mem = std::vector<unsigned char>(4096);
    size_t skew = 0, asked = 0;
    void* given = nullptr;
    void* freed = nullptr;
  } arena;
  auto alloc = [](void* o, size_t bytes) -> void* {
    auto* a = static_cast<Arena*>(o);
    a->asked = bytes;
    a->given = a->mem.data() + 128 + a->skew;
    return a->given;
  };
  auto release = [](void* o, void* m) { static_cast<Arena*>(o)->freed = m; };
  for (size_t skew = 0; skew < HWY_ALIGNMENT; ++skew) {
    arena.skew = skew;
    const size_t n = 100;
    auto* p = static_cast<unsigned char*>(rt::AllocateAlignedBytes(n, alloc, &arena));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % HWY_ALIGNMENT, 0u) << skew;
    auto* g = static_cast<unsigned char*>(arena.given);
    EXPECT_GE(p - g, ptrdiff_t(sizeof(void*))) << skew;  // room for the header
    EXPECT_LE(p + n, g + arena.asked) << skew;            // the payload inside what was asked for
    rt::FreeAlignedBytes(p, release, &arena);
    EXPECT_EQ(arena.freed, arena.given) << skew;
  }
}

}  // namespace
