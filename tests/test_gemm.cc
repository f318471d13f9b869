// tests/test_gemm.cc — ntc's Highway SGEMM (kernels/gemm.h) against its scalar twin (bit for bit,
// on every Highway target this CPU runs) and against a double-precision product; the tile
// invariance lib/gemm.cc relies on; and lib/gemm.cc's two back ends and thread counts.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/im2col.h"
#include "kernels/kernels.h"
#include "lib/gemm.h"
#include "lib/ops/ops.h"
#include "lib/tensor.h"
#include "lib/threads.h"
#include "tests/targets.h"

namespace {

struct Case {
  bool ta, tb;
  int M, N, K;
  float alpha, beta;
};

// Row-major operands with padded leading dimensions (ld = cols + 3), filled from a seeded RNG.
struct Operands {
  int lda, ldb, ldc;
  std::vector<float> A, B, C;
};
Operands make(const Case& c, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  Operands o;
  const int arows = c.ta ? c.K : c.M, acols = c.ta ? c.M : c.K;
  const int brows = c.tb ? c.N : c.K, bcols = c.tb ? c.K : c.N;
  o.lda = acols + 3;
  o.ldb = bcols + 3;
  o.ldc = c.N + 3;
  o.A.resize(size_t(arows) * o.lda + 1);
  o.B.resize(size_t(brows) * o.ldb + 1);
  o.C.resize(size_t(c.M) * o.ldc + 1);
  for (float& x : o.A) x = u(g);
  for (float& x : o.B) x = u(g);
  for (float& x : o.C) x = u(g);
  return o;
}

// alpha·op(A)·op(B) + beta·C in double.
std::vector<double> product(const Case& c, const Operands& o) {
  std::vector<double> r(size_t(c.M) * c.N);
  for (int i = 0; i < c.M; ++i)
    for (int j = 0; j < c.N; ++j) {
      double s = 0;
      for (int k = 0; k < c.K; ++k)
        s += double(c.ta ? o.A[size_t(k) * o.lda + i] : o.A[size_t(i) * o.lda + k]) *
             double(c.tb ? o.B[size_t(j) * o.ldb + k] : o.B[size_t(k) * o.ldb + j]);
      r[size_t(i) * c.N + j] = c.alpha * s + (c.beta == 0 ? 0.0 : c.beta * double(o.C[size_t(i) * o.ldc + j]));
    }
  return r;
}

std::vector<Case> cases() {
  std::vector<Case> v;
  const int dims[][3] = {{1, 1, 1},    {1, 33, 7},    {13, 1, 300},  {12, 32, 256}, {25, 47, 257},
                         {145, 65, 513}, {7, 200, 0}, {160, 2100, 20}, {6, 16, 1000}};
  const float ab[][2] = {{1, 0}, {1, 1}, {0.5f, -0.75f}};
  for (const auto& d : dims)
    for (int t = 0; t < 4; ++t)
      for (const auto& s : ab) v.push_back({bool(t & 1), bool(t & 2), d[0], d[1], d[2], s[0], s[1]});
  return v;
}

std::string name(const Case& c) {
  return std::to_string(c.M) + "x" + std::to_string(c.N) + "x" + std::to_string(c.K) + (c.ta ? " Aᵀ" : "") +
         (c.tb ? " Bᵀ" : "") + " alpha " + std::to_string(c.alpha) + " beta " + std::to_string(c.beta);
}

TEST(Gemm, SimdMatchesScalarTwinBitForBitOnEveryTarget) {
  int checked = 0;
  for (const int64_t target : ntc::test::simd_targets()) {
    ntc::test::ForceTarget force(target);
    for (const Case& c : cases()) {
      Operands s = make(c, 7), r = make(c, 7);
      ntc::k::sgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, s.A.data(), s.lda, s.B.data(), s.ldb, c.beta, s.C.data(),
                    s.ldc);
      ntc::k::ref::sgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, r.A.data(), r.lda, r.B.data(), r.ldb, c.beta,
                         r.C.data(), r.ldc);
      if (target & (HWY_SSSE3 | HWY_SSE4)) {  // no FMA: MulAdd rounds twice; agree to rounding
        for (size_t i = 0; i < s.C.size(); ++i)
          ASSERT_NEAR(s.C[i], r.C[i], 1e-6 * (c.K + 4)) << hwy::TargetName(target) << " " << name(c);
        continue;
      }
      ASSERT_EQ(0, std::memcmp(s.C.data(), r.C.data(), s.C.size() * sizeof(float)))
          << hwy::TargetName(target) << " " << name(c);
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(Gemm, AgreesWithDoublePrecisionProduct) {
  for (const Case& c : cases()) {
    Operands o = make(c, 11);
    const std::vector<double> want = product(c, o);
    const std::vector<float> before = o.C;
    ntc::k::sgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, o.A.data(), o.lda, o.B.data(), o.ldb, c.beta, o.C.data(), o.ldc);
    for (int i = 0; i < c.M; ++i) {
      for (int j = 0; j < c.N; ++j)  // terms are in [-1, 1]: error bound ~ K · 2^-24 with margin
        ASSERT_NEAR(o.C[size_t(i) * o.ldc + j], want[size_t(i) * c.N + j], 1e-6 * (c.K + 4)) << name(c);
      for (int j = c.N; j < o.ldc && size_t(i) * o.ldc + j < o.C.size(); ++j)  // padding untouched
        ASSERT_EQ(o.C[size_t(i) * o.ldc + j], before[size_t(i) * o.ldc + j]) << name(c);
    }
  }
}

TEST(Gemm, BetaZeroDoesNotReadC) {
  const Case c{false, false, 13, 35, 40, 1, 0};
  Operands o = make(c, 3);
  for (float& x : o.C) x = std::numeric_limits<float>::quiet_NaN();
  ntc::k::sgemm(false, false, c.M, c.N, c.K, 1, o.A.data(), o.lda, o.B.data(), o.ldb, 0, o.C.data(), o.ldc);
  for (int i = 0; i < c.M; ++i)
    for (int j = 0; j < c.N; ++j) ASSERT_TRUE(std::isfinite(o.C[size_t(i) * o.ldc + j]));
}

// lib/gemm.cc cuts C into tiles and runs one call per tile: an element must come out the same
// wherever the cuts fall.
TEST(Gemm, ElementsDoNotDependOnTiling) {
  const Case c{false, true, 50, 77, 600, 1, 1};
  Operands whole = make(c, 5), tiled = make(c, 5);
  ntc::k::sgemm(c.ta, c.tb, c.M, c.N, c.K, 1, whole.A.data(), whole.lda, whole.B.data(), whole.ldb, 1,
                whole.C.data(), whole.ldc);
  const int rcut[] = {0, 5, 31, 50}, ccut[] = {0, 17, 18, 77};
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b)
      ntc::k::sgemm(false, true, rcut[a + 1] - rcut[a], ccut[b + 1] - ccut[b], c.K, 1,
                    tiled.A.data() + size_t(rcut[a]) * tiled.lda, tiled.lda, tiled.B.data() + size_t(ccut[b]) * tiled.ldb,
                    tiled.ldb, 1, tiled.C.data() + size_t(rcut[a]) * tiled.ldc + ccut[b], tiled.ldc);
  EXPECT_EQ(0, std::memcmp(whole.C.data(), tiled.C.data(), whole.C.size() * sizeof(float)));
}

// ntc::gemm: each back end gives the same bits on 1 and 3 threads, and the two agree to rounding.
TEST(Gemm, BackEndsAgreeAndIgnoreThreadCount) {
  const Case c{true, false, 300, 1100, 520, 1, 0};
  const int saved = ntc::num_threads();
  std::vector<std::vector<float>> out;
  for (ntc::GemmBackend be : {ntc::GemmBackend::Ntc, ntc::GemmBackend::OpenBLAS}) {
    ntc::set_gemm_backend(be);
    std::vector<float> first;
    for (int threads : {1, 3}) {
      ntc::set_num_threads(threads);
      Operands o = make(c, 9);
      ntc::gemm(c.ta, c.tb, c.M, c.N, c.K, 1, o.A.data(), o.lda, o.B.data(), o.ldb, 0, o.C.data(), o.ldc);
      if (first.empty()) first = o.C;
      else EXPECT_EQ(0, std::memcmp(first.data(), o.C.data(), first.size() * sizeof(float))) << ntc::gemm_backend_name();
    }
    out.push_back(first);
  }
  ntc::set_gemm_backend(ntc::GemmBackend::Auto);
  ntc::set_num_threads(saved);
  double worst = 0;
  for (size_t i = 0; i < out[0].size(); ++i) worst = std::max(worst, double(std::fabs(out[0][i] - out[1][i])));
  EXPECT_LT(worst, 1e-4);
}


// The implicit GEMM (BPanels): op(B) built panel by panel — im2col columns of a group of image
// bands with a row of ones (conv2d forward and weight gradient), or a whole B packed once — gives
// the same bits as the scalar twin on the materialised operand, on every target, for column
// offsets (col0, the thread split) and with K and N spanning several k- and column blocks.
// The column matrix an Im2colSource stands for, [rows, G·band_cols], built by the reference
// im2col image by image, with its rows of ones below.
std::vector<float> materialised_columns(const ntc::k::Im2colSource& src) {
  const int64_t bc = src.g.band_cols(), cols = src.G * bc;
  std::vector<float> col(size_t(src.rows() * cols), 1.f);
  for (int i = 0; i < src.G; ++i) {
    ntc::k::ConvGeom gi = src.g;
    gi.ld = cols;
    ntc::k::ref::im2col(gi, src.x + i * src.x_stride, col.data() + i * bc);
  }
  return col;
}

TEST(Gemm, PanelsMatchTwinOnMaterialisedOperand) {
  std::mt19937 gen(21);
  std::uniform_real_distribution<float> u(-1, 1);
  // 3 images of 12 channels, 23x61, k5 s2, SAME-like padding; band of output rows 3..9 (of 12):
  // K = 12·25 + 1 = 301 rows (two k-blocks), 3·7·31 = 651 columns.
  ntc::k::ConvGeom g{12, 23, 61, 5, 5, 2, 1, 2, 12, 31};
  g.oy0 = 3;
  g.oy1 = 10;
  const int G = 3, K = 12 * 25, rows = K + 1;
  const int64_t xs = int64_t(12) * 23 * 61 + 5, bc = g.band_cols(), cols = G * bc;
  std::vector<float> x(size_t(G * xs));
  for (float& v : x) v = u(gen);
  const ntc::k::Im2colSource src{g, x.data(), xs, G, 1};
  // The materialised column matrix [rows, cols] via the reference im2col, ones in the last row.
  const std::vector<float> col = materialised_columns(src);
  for (int c = 0; c < src.rows(); c += 7) {  // im2col_row on its own, from an odd column
    std::vector<float> row(size_t(cols - 5));
    ntc::k::im2col_row(src, c, 5, cols - 5, row.data());
    ASSERT_EQ(0, std::memcmp(row.data(), col.data() + size_t(c) * cols + 5, row.size() * 4)) << "row " << c;
  }
  int checked = 0;
  for (const int64_t target : ntc::test::simd_targets()) {
    if (target & (HWY_SSSE3 | HWY_SSE4)) continue;  // no FMA: compared to rounding by the sgemm tests
    ntc::test::ForceTarget force(target);
    const size_t nr = ntc::k::sgemm_nr();
    // forward: C[5, cols] = A[5, rows] · col, columns from offset nr (as a thread's share would)
    {
      const int M = 5, n = int(cols - nr);
      std::vector<float> A(size_t(M * rows)), C1(size_t(M * n)), C2(size_t(M * n));
      for (float& v : A) v = u(gen);
      for (float& v : C1) v = u(gen);
      C2 = C1;
      ntc::k::BPanels bp{ntc::k::im2col_panels, &src, nr};
      ntc::k::sgemm_panels(false, M, n, rows, 1.f, A.data(), rows, bp, 1.f, C1.data(), n);
      ntc::k::ref::sgemm(false, false, M, n, rows, 1.f, A.data(), rows, col.data() + nr, int(cols), 1.f, C2.data(), n);
      ASSERT_EQ(C1, C2) << "im2col_panels " << hwy::TargetName(target);
    }
    // weight gradient: C[7, rows] = D[7, cols] · colᵀ (K = cols: several k-blocks)
    {
      const int M = 7;
      std::vector<float> D(size_t(M * cols)), C1(size_t(M * rows), 0.f), C2(C1);
      for (float& v : D) v = u(gen);
      ntc::k::sgemm_panels(false, M, rows, int(cols), 0.5f, D.data(), int(cols), {ntc::k::im2col_panels_t, &src},
                           0.f, C1.data(), rows);
      ntc::k::ref::sgemm(false, true, M, rows, int(cols), 0.5f, D.data(), int(cols), col.data(), int(cols), 0.f,
                         C2.data(), rows);
      ASSERT_EQ(C1, C2) << "im2col_panels_t " << hwy::TargetName(target);
    }
    // a whole B packed once (both layouts), wider than one column block (2048)
    for (bool tb : {false, true}) {
      const int M = 13, Kb = 300, N = 2100;
      std::vector<float> A(size_t(Kb * M)), B(size_t(Kb * N)), C1(size_t(M * N)), C2;
      for (float& v : A) v = u(gen);
      for (float& v : B) v = u(gen);
      for (float& v : C1) v = u(gen);
      C2 = C1;
      std::vector<float> packed(ntc::k::packed_b_floats(Kb, N));
      const ntc::k::PackedB pb = ntc::k::pack_b_all(tb, B.data(), tb ? Kb : N, Kb, N, packed.data());
      ntc::k::sgemm_panels(true, M, N, Kb, 1.f, A.data(), M, {ntc::k::packed_b_panels, &pb}, 0.25f, C1.data(), N);
      ntc::k::ref::sgemm(true, tb, M, N, Kb, 1.f, A.data(), M, B.data(), tb ? Kb : N, 0.25f, C2.data(), N);
      ASSERT_EQ(C1, C2) << "packed B, tb " << tb << " " << hwy::TargetName(target);
    }
    ++checked;
  }
  EXPECT_GT(checked, 0);
  // ntc::gemm_panels spreads columns or rows over threads: the same bits on 1 and 3 threads.
  const int saved = ntc::num_threads();
  ntc::set_gemm_backend(ntc::GemmBackend::Ntc);
  std::vector<float> first;
  for (int threads : {1, 3}) {
    ntc::set_num_threads(threads);
    for (int M : {6, 300}) {
      std::vector<float> A(size_t(M * rows), 0.5f), C(size_t(M * cols));
      for (size_t i = 0; i < A.size(); ++i) A[i] = float(i % 13) * 0.125f - 0.75f;
      ntc::gemm_panels(false, M, int(cols), rows, 1.f, A.data(), rows, {ntc::k::im2col_panels, &src}, 0.f, C.data(),
                       int(cols));
      if (threads == 1) first.insert(first.end(), C.begin(), C.end());
      else EXPECT_EQ(0, std::memcmp(first.data() + (M == 6 ? 0 : 6 * cols), C.data(), C.size() * 4)) << M;
    }
  }
  ntc::set_gemm_backend(ntc::GemmBackend::Auto);
  ntc::set_num_threads(saved);
}

}  // namespace

// ---- bf16 products (kernels/gemm_bf16.cc) ----

float bf16_float(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

TEST(GemmBf16, RoundsToNearestEvenAndFlushesSubnormals) {
  using ntc::k::to_bf16;
  EXPECT_EQ(to_bf16(1.f), 0x3F80);
  EXPECT_EQ(to_bf16(-2.f), 0xC000);
  // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties to even (1); just above it rounds up.
  EXPECT_EQ(to_bf16(1.f + 0x1p-8f), 0x3F80);
  EXPECT_EQ(to_bf16(1.f + 0x1p-8f + 0x1p-20f), 0x3F81);
  EXPECT_EQ(to_bf16(1.f + 3 * 0x1p-8f), 0x3F82);  // halfway between 0x3F81 and 0x3F82: even
  EXPECT_EQ(to_bf16(0x1p-140f), 0x0000);           // subnormal: +0
  EXPECT_EQ(to_bf16(-0x1p-140f), 0x8000);          // -0
  EXPECT_EQ(to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds up to infinity
  EXPECT_TRUE(std::isnan(bf16_float(to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  uint32_t snan_bits = 0x7F800001u;  // a NaN whose payload sits below bf16's bits stays a NaN
  float snan;
  std::memcpy(&snan, &snan_bits, 4);
  EXPECT_TRUE(std::isnan(bf16_float(to_bf16(snan))));
  // Against the definition on random values: the nearest bf16, ties to the even one.
  std::mt19937 g(3);
  for (int i = 0; i < 100000; ++i) {
    const uint32_t u = (g() & 0xBFFFFFFFu) | 0x00800000u;  // finite, normal
    float f;
    std::memcpy(&f, &u, 4);
    const uint16_t h = to_bf16(f);
    const float lo = bf16_float(uint16_t(u >> 16)), hi = bf16_float(uint16_t((u >> 16) + 1));
    const double dl = std::fabs(double(f) - lo), dh = std::fabs(double(f) - hi);
    const uint16_t want = dl < dh ? uint16_t(u >> 16) : dh < dl ? uint16_t((u >> 16) + 1) : uint16_t((u >> 16) + ((u >> 16) & 1));
    ASSERT_EQ(h, want) << std::hexfloat << f;
  }
}

// The kernel against its twin, bit for bit, on edge shapes (odd K: a half pair at the end of a
// k-block; K over one block; tiles cut at MR = 12 and NR = 32; M over one row block and N over one
// column block), every transpose, alpha and beta.
TEST(GemmBf16, KernelMatchesScalarTwinBitForBit) {
  if (!ntc::k::bf16_supported()) GTEST_SKIP() << "this CPU has no AVX512_BF16 (the twin alone runs here)";
  std::vector<Case> cs = cases();
  for (const Case& c : std::vector<Case>{{false, false, 13, 33, 1, 1, 0},   {false, true, 12, 32, 257, 1, 0},
                                         {true, false, 25, 65, 511, 0.5f, -0.75f}, {true, true, 1, 2049, 3, 1, 1},
                                         // over one column block: op(A) packed once for all of them
                                         {false, false, 150, 2080, 301, 1, 0.5f}, {true, false, 13, 2050, 513, -1, 0}})
    cs.push_back(c);
  for (const Case& c : cs) {
    Operands o = make(c, 11);
    std::vector<float> C1 = o.C, C2 = o.C;
    ntc::k::sgemm_bf16(c.ta, c.tb, c.M, c.N, c.K, c.alpha, o.A.data(), o.lda, o.B.data(), o.ldb, c.beta, C1.data(), o.ldc);
    ntc::k::ref::sgemm_bf16(c.ta, c.tb, c.M, c.N, c.K, c.alpha, o.A.data(), o.lda, o.B.data(), o.ldb, c.beta, C2.data(),
                            o.ldc);
    ASSERT_EQ(0, std::memcmp(C1.data(), C2.data(), C1.size() * 4)) << name(c);
  }
}

// The twin is the bf16 product: against double precision on the bf16-rounded operands it is
// close (fp32 accumulation), and against the fp32 operands within bf16's rounding (2⁻⁹ relative
// per operand).
TEST(GemmBf16, TwinAgreesWithDoubleProductOfRoundedOperands) {
  for (const Case& c : std::vector<Case>{{false, false, 9, 40, 300, 1, 0}, {true, true, 17, 5, 77, 0.5f, 1}}) {
    Operands o = make(c, 5);
    std::vector<float> C = o.C;
    ntc::k::ref::sgemm_bf16(c.ta, c.tb, c.M, c.N, c.K, c.alpha, o.A.data(), o.lda, o.B.data(), o.ldb, c.beta, C.data(),
                            o.ldc);
    const std::vector<double> exact = product(c, o);
    Operands r = o;
    for (float& v : r.A) v = bf16_float(ntc::k::to_bf16(v));
    for (float& v : r.B) v = bf16_float(ntc::k::to_bf16(v));
    const std::vector<double> rounded = product(c, r);
    double max_r = 0, max_e = 0;
    for (int i = 0; i < c.M; ++i)
      for (int j = 0; j < c.N; ++j) {
        const double got = C[size_t(i) * o.ldc + j];
        max_r = std::max(max_r, std::fabs(got - rounded[size_t(i) * c.N + j]));
        max_e = std::max(max_e, std::fabs(got - exact[size_t(i) * c.N + j]));
      }
    EXPECT_LT(max_r, 1e-5 * c.K) << name(c);
    EXPECT_LT(max_e, 0.01 * std::sqrt(double(c.K))) << name(c);
    EXPECT_GT(max_e, max_r) << name(c);  // the operands really were rounded
  }
}

// The implicit (panel) form, on the convolution's own panels, equals the twin on the
// materialised column matrix; lib/gemm's bf16 products give the same bits on 1 and 3 threads.
TEST(GemmBf16, PanelsAndThreadsGiveTheSameBits) {
  std::mt19937 gen(8);
  std::uniform_real_distribution<float> u(-1, 1);
  ntc::k::ConvGeom g{12, 23, 61, 5, 5, 2, 1, 2, 12, 31};
  const int G = 2, K = 12 * 25, rows = K + 1;
  const int64_t xs = int64_t(12) * 23 * 61, bc = g.band_cols(), cols = G * bc;
  std::vector<float> x(size_t(G * xs));
  for (float& v : x) v = u(gen);
  const ntc::k::Im2colSource src{g, x.data(), xs, G, 1};
  const std::vector<float> col = materialised_columns(src);
  const int M = 14;
  std::vector<float> A(size_t(M * rows)), D(size_t(M * cols));
  for (float& v : A) v = u(gen);
  for (float& v : D) v = u(gen);
  std::vector<float> want(size_t(M * cols), 0.f), want_t(size_t(M * rows), 0.f);
  ntc::k::ref::sgemm_bf16(false, false, M, int(cols), rows, 1.f, A.data(), rows, col.data(), int(cols), 0.f,
                          want.data(), int(cols));
  ntc::k::ref::sgemm_bf16(false, true, M, rows, int(cols), 1.f, D.data(), int(cols), col.data(), int(cols), 0.f,
                          want_t.data(), rows);
  // The twin's own panel form.
  std::vector<float> C(want.size(), 0.f), Ct(want_t.size(), 0.f);
  ntc::k::ref::sgemm_bf16_panels(false, M, int(cols), rows, 1.f, A.data(), rows, {ntc::k::im2col_panels, &src}, 0.f,
                                 C.data(), int(cols));
  ASSERT_EQ(0, std::memcmp(C.data(), want.data(), C.size() * 4));
  if (!ntc::k::bf16_supported()) GTEST_SKIP() << "this CPU has no AVX512_BF16 (the twin alone runs here)";
  ntc::k::sgemm_bf16_panels(false, M, int(cols), rows, 1.f, A.data(), rows, {ntc::k::im2col_panels, &src}, 0.f,
                            C.data(), int(cols));
  ASSERT_EQ(0, std::memcmp(C.data(), want.data(), C.size() * 4)) << "im2col_panels";
  ntc::k::sgemm_bf16_panels(false, M, rows, int(cols), 1.f, D.data(), int(cols), {ntc::k::im2col_panels_t, &src}, 0.f,
                            Ct.data(), rows);
  ASSERT_EQ(0, std::memcmp(Ct.data(), want_t.data(), Ct.size() * 4)) << "im2col_panels_t";
  // The pair panels built straight from x (BPanels::pairs) give the same bits.
  ntc::k::sgemm_bf16_panels(false, M, int(cols), rows, 1.f, A.data(), rows,
                            {ntc::k::im2col_panels, &src, 0, ntc::k::im2col_pairs}, 0.f, C.data(), int(cols));
  ASSERT_EQ(0, std::memcmp(C.data(), want.data(), C.size() * 4)) << "im2col_pairs";
  ntc::k::sgemm_bf16_panels(false, M, rows, int(cols), 1.f, D.data(), int(cols),
                            {ntc::k::im2col_panels_t, &src, 0, ntc::k::im2col_pairs_t}, 0.f, Ct.data(), rows);
  ASSERT_EQ(0, std::memcmp(Ct.data(), want_t.data(), Ct.size() * 4)) << "im2col_pairs_t";
  const int saved = ntc::num_threads();
  const bool saved_ref = ntc::k::use_reference_kernels();  // on in the scalar build: lib/gemm on the kernel here
  ntc::k::set_reference_kernels(false);
  for (int threads : {1, 3}) {
    ntc::set_num_threads(threads);
    std::vector<float> P(want.size()), Q(want.size());
    ntc::gemm_panels(false, M, int(cols), rows, 1.f, A.data(), rows, {ntc::k::im2col_panels, &src, 0, ntc::k::im2col_pairs},
                     0.f, P.data(), int(cols), ntc::Precision::Bf16);
    ntc::gemm(false, false, M, int(cols), rows, 1.f, A.data(), rows, col.data(), int(cols), 0.f, Q.data(), int(cols),
              ntc::Precision::Bf16);
    EXPECT_EQ(0, std::memcmp(P.data(), want.data(), P.size() * 4)) << threads << " threads";
    EXPECT_EQ(0, std::memcmp(Q.data(), want.data(), Q.size() * 4)) << threads << " threads";
  }
  ntc::set_num_threads(saved);
  ntc::k::set_reference_kernels(saved_ref);
}

// Pair words of neighbouring values: to_bf16 of each value (subnormals flushed, NaN kept quiet,
// infinities, ties to even), every length from 0 to 70, and nothing written past the last word.
TEST(GemmBf16, ContiguousPairsAreToBf16OfNeighbours) {
  if (!ntc::k::bf16_supported()) GTEST_SKIP() << "this CPU has no AVX512_BF16 (the pair builders need AVX-512)";
  using ntc::k::to_bf16;
  std::mt19937 gen(4);
  std::uniform_real_distribution<float> u(-3, 3);
  std::vector<float> src(70);
  for (float& v : src) v = u(gen);
  src[3] = 0x1p-130f;
  src[17] = -0x1p-140f;
  src[20] = std::numeric_limits<float>::quiet_NaN();
  src[33] = std::numeric_limits<float>::infinity();
  src[40] = 1.f + 0x1p-8f;             // a tie: to even (1)
  src[41] = 1.f + 0x1p-8f + 0x1p-7f;   // a tie: to even (up)
  for (size_t n = 0; n <= src.size(); ++n) {
    std::vector<uint32_t> got(40, 0xDEADBEEFu);
    ntc::k::bf16_pairs_contiguous(src.data(), n, got.data());
    const size_t words = (n + 1) / 2;
    for (size_t t = 0; t < got.size(); ++t) {
      const uint32_t want = t >= words ? 0xDEADBEEFu
                                       : uint32_t(to_bf16(src[2 * t])) | uint32_t(2 * t + 1 < n ? to_bf16(src[2 * t + 1]) : 0) << 16;
      ASSERT_EQ(want, got[t]) << "n " << n << " word " << t;
    }
  }
}

// The pair panels (BPanels::pairs) are exactly the kernel's rounding of the fp32 panels: im2col's
// forward and transposed forms on k-blocks of odd and even height, column blocks that start inside
// an image and end inside a panel, and a B packed once (pack_b_pairs_all), whose fp32 form gives
// the twin the same values.
TEST(GemmBf16, PairPanelsAreTheRoundedFp32Panels) {
  if (!ntc::k::bf16_supported()) GTEST_SKIP() << "this CPU has no AVX512_BF16 (the pair builders need AVX-512)";
  using ntc::k::to_bf16;
  std::mt19937 gen(9);
  std::uniform_real_distribution<float> u(-3, 3);
  const size_t nr = 32;
  auto rounded_pairs = [&](const float* p, size_t kc, size_t nc) {  // fp32 panels → pair words
    const size_t kc2 = (kc + 1) / 2, panels = (nc + nr - 1) / nr;
    std::vector<uint32_t> w(panels * kc2 * nr);
    for (size_t q = 0; q < panels; ++q)
      for (size_t t = 0; t < kc2; ++t)
        for (size_t c = 0; c < nr; ++c) {
          const float lo = p[q * kc * nr + 2 * t * nr + c], hi = 2 * t + 1 < kc ? p[q * kc * nr + (2 * t + 1) * nr + c] : 0.f;
          w[q * kc2 * nr + t * nr + c] = uint32_t(to_bf16(lo)) | uint32_t(to_bf16(hi)) << 16;
        }
    return w;
  };
  struct Geo {
    ntc::k::ConvGeom g;
    int G;
  };
  // Stride 2 (the first, second and fourth) also takes the pair rows rounded straight from x
  // (neighbouring inputs): an odd and an even width whose last pair has one value inside, a band
  // of rows that starts inside the image, and k-blocks that start at every kx.
  for (const Geo& geo : {Geo{{12, 23, 61, 5, 5, 2, 1, 2, 12, 31}, 2}, Geo{{3, 9, 14, 3, 3, 1, 1, 1, 9, 14}, 3},
                         Geo{{20, 16, 16, 4, 4, 3, 0, 0, 5, 5}, 1}, Geo{{5, 10, 20, 4, 4, 2, 1, 1, 5, 10, 2, 5}, 3}}) {
    const ntc::k::ConvGeom& g = geo.g;
    const int64_t xs = int64_t(g.C) * g.H * g.W;
    std::vector<float> x(size_t(geo.G * xs));
    for (float& v : x) v = u(gen);
    x[5] = 0x1p-130f;  // a subnormal: flushed
    const ntc::k::Im2colSource src{g, x.data(), xs, geo.G};
    const size_t K = size_t(src.rows()), cols = size_t(geo.G * g.band_cols());
    // Each builder against the rounding of its fp32 twin: op(B) has `rows` rows (k) and `width`
    // columns; k-blocks whole, of 1 and of an odd height; column blocks from 0, from inside the
    // matrix and short ones.
    auto check = [&](auto fp32, auto pairs, size_t rows, size_t width, size_t odd_kc, std::pair<size_t, size_t> short_block,
                     const char* what) {
      std::vector<float> fb(ntc::k::kGemmKC * 2048);
      std::vector<uint32_t> wb(ntc::k::kGemmKC / 2 * 2048);
      for (size_t k0 = 0; k0 < rows; k0 += ntc::k::kGemmKC)
        for (size_t kc : {std::min(ntc::k::kGemmKC, rows - k0), size_t(1), odd_kc}) {
          if (k0 + kc > rows) continue;
          for (auto [j0, n] : {std::pair<size_t, size_t>{0, SIZE_MAX}, {32, SIZE_MAX}, short_block}) {
            if (j0 >= width) continue;
            const size_t nc = std::min(n, width - j0);
            const std::vector<uint32_t> want = rounded_pairs(fp32(&src, k0, kc, j0, nc, nr, fb.data()), kc, nc);
            const uint32_t* got = pairs(&src, k0, kc, j0, nc, wb.data());
            ASSERT_EQ(0, std::memcmp(got, want.data(), want.size() * 4)) << what << " " << k0 << " " << kc << " " << j0;
          }
        }
    };
    check(ntc::k::im2col_panels, ntc::k::im2col_pairs, K, cols, 7, {64, 45}, "im2col_pairs");
    // Transposed: k runs along the columns of the column matrix, the panel columns are its rows.
    check(ntc::k::im2col_panels_t, ntc::k::im2col_pairs_t, cols, K, 9, {0, 13}, "im2col_pairs_t");
  }
  // A B packed once: its pair panels are the rounding of pack_b_all's, block by block, and the
  // product through them (kernel, pairs) equals the twin's through their fp32 form and on B itself.
  const int K = 301, N = 77, M = 13;
  std::vector<float> fb(ntc::k::kGemmKC * 2048);
  std::vector<float> B(size_t(K) * N), A(size_t(M) * K);
  for (float& v : B) v = u(gen);
  for (float& v : A) v = u(gen);
  std::vector<float> packed(ntc::k::packed_b_floats(K, N)), words(ntc::k::packed_b_floats(K, N));
  const ntc::k::PackedB pb = ntc::k::pack_b_all(false, B.data(), N, K, N, packed.data());
  const ntc::k::PackedPairs pp = ntc::k::pack_b_pairs_all(B.data(), N, K, N, reinterpret_cast<uint32_t*>(words.data()));
  ASSERT_EQ(pp.n_pad, pb.n_pad);
  for (size_t k0 = 0; k0 < size_t(K); k0 += ntc::k::kGemmKC) {
    const size_t kc = std::min(ntc::k::kGemmKC, size_t(K) - k0);
    for (size_t j0 = 0; j0 < size_t(N); j0 += nr) {
      const size_t nc = std::min(nr, size_t(N) - j0);
      const std::vector<uint32_t> want =
          rounded_pairs(ntc::k::packed_b_panels(&pb, k0, kc, j0, nc, nr, fb.data()), kc, nc);
      ASSERT_EQ(0, std::memcmp(ntc::k::packed_pairs(&pp, k0, kc, j0, nc, nullptr), want.data(), want.size() * 4)) << k0 << " " << j0;
    }
  }
  std::vector<float> want(size_t(M) * N), C1(want.size()), C2(want.size());
  ntc::k::ref::sgemm_bf16(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, want.data(), N);
  ntc::k::sgemm_bf16_panels(false, M, N, K, 1.f, A.data(), K, {ntc::k::packed_pairs_panels, &pp, 0, ntc::k::packed_pairs},
                            0.f, C1.data(), N);
  ntc::k::ref::sgemm_bf16_panels(false, M, N, K, 1.f, A.data(), K, {ntc::k::packed_pairs_panels, &pp, 0, ntc::k::packed_pairs},
                                 0.f, C2.data(), N);
  EXPECT_EQ(0, std::memcmp(C1.data(), want.data(), want.size() * 4));
  EXPECT_EQ(0, std::memcmp(C2.data(), want.data(), want.size() * 4));
}

// conv2d in bf16 on the kernel (implicit columns, pair panels, dy packed once) gives exactly the
// bits of the twin on materialised columns (--kernels ref): forward and both gradients, on 1 and 2
// threads.
TEST(GemmBf16, Conv2dKernelAndTwinGiveTheSameBits) {
  if (!ntc::k::bf16_supported()) GTEST_SKIP() << "this CPU has no AVX512_BF16 (the twin alone runs here)";
  std::mt19937 gen(12);
  std::uniform_real_distribution<float> u(-1, 1);
  auto rnd = [&](ntc::Shape s) {
    ntc::Tensor t = ntc::Tensor::empty(s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = u(gen);
    return t;
  };
  struct Case {
    ntc::Shape x, w;
    int stride;
  };
  const int saved = ntc::num_threads();
  const bool saved_ref = ntc::k::use_reference_kernels();  // on in the scalar build
  for (const Case& c : {Case{{3, 13, 21, 18}, {17, 13, 5, 5}, 2}, Case{{2, 40, 9, 11}, {33, 40, 3, 3}, 1}}) {
    const ntc::Tensor x0 = rnd(c.x), w0 = rnd(c.w), b0 = rnd({c.w[0]});
    auto run = [&](bool twin, int threads) {
      ntc::k::set_reference_kernels(twin);
      ntc::set_num_threads(threads);
      ntc::Tensor x = x0.clone(), w = w0.clone(), b = b0.clone();
      x.set_requires_grad(true);
      w.set_requires_grad(true);
      ntc::Tensor y;
      {
        ntc::ConvPrecisionScope scope(ntc::Precision::Bf16);
        y = ntc::conv2d_same(x, w, b, c.stride);
      }
      ntc::Tensor l = ntc::sum(ntc::mul(y, y));
      l.backward();
      std::vector<float> out = y.to_vector();
      out.insert(out.end(), x.grad(), x.grad() + x.numel());
      out.insert(out.end(), w.grad(), w.grad() + w.numel());
      ntc::k::set_reference_kernels(saved_ref);
      return out;
    };
    const std::vector<float> twin = run(true, 1);
    for (int threads : {1, 2}) {
      const std::vector<float> kernel = run(false, threads);
      ASSERT_EQ(kernel.size(), twin.size());
      EXPECT_EQ(0, std::memcmp(kernel.data(), twin.data(), twin.size() * 4)) << ntc::shape_str(c.x) << " " << threads;
    }
  }
  ntc::set_num_threads(saved);
}

// conv2d under a bf16 scope rounds the operands of all three products: its forward and both
// gradients match fp32 products of the rounded operands (to fp32 accumulation error) and differ
// from the unrounded ones; the precision is taken at the forward call (the backward, run outside
// the scope, keeps it); outside the scope conv2d is fp32 again.
TEST(GemmBf16, Conv2dRoundsTheOperandsOfAllThreeProducts) {
  const bool emulate = !ntc::k::bf16_supported(), saved_ref = ntc::k::use_reference_kernels();
  if (emulate) ntc::k::set_reference_kernels(true);  // the twin: the same bits, slowly
  std::mt19937 gen(4);
  std::uniform_real_distribution<float> u(-1, 1);
  auto rnd = [&](ntc::Shape s) {
    ntc::Tensor t = ntc::Tensor::empty(s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = u(gen);
    return t;
  };
  auto rounded = [](const ntc::Tensor& t) {
    ntc::Tensor r = ntc::Tensor::empty(t.shape());
    for (int64_t i = 0; i < t.numel(); ++i) r.data()[i] = bf16_float(ntc::k::to_bf16(t.data()[i]));
    return r;
  };
  const ntc::Tensor x0 = rnd({2, 6, 19, 23}), w0 = rnd({5, 6, 5, 5}), b0 = rnd({5}), gy = rnd({2, 5, 10, 12});
  // dy enters the two gradient products: rounding it is part of the bf16 result.
  struct Out {
    std::vector<float> y, gx, gw, gb;
  };
  auto run = [&](const ntc::Tensor& xv, const ntc::Tensor& wv, const ntc::Tensor& dy, ntc::Precision p) {
    ntc::Tensor x = xv.clone(), w = wv.clone(), b = b0.clone();
    x.set_requires_grad(true);
    w.set_requires_grad(true);
    b.set_requires_grad(true);
    ntc::Tensor y;
    {
      ntc::ConvPrecisionScope scope(p);
      y = ntc::conv2d_same(x, w, b, 2);
    }
    ntc::Tensor l = ntc::sum(ntc::mul(y, dy));
    l.backward();
    auto vec = [](const ntc::Tensor& t) { return std::vector<float>(t.grad(), t.grad() + t.numel()); };
    return Out{y.to_vector(), vec(x), vec(w), vec(b)};
  };
  const Out bf = run(x0, w0, gy, ntc::Precision::Bf16);
  const Out ref_in = run(rounded(x0), rounded(w0), gy, ntc::Precision::F32);  // forward operands rounded
  const Out ref_g = run(rounded(x0), rounded(w0), rounded(gy), ntc::Precision::F32);  // and dy
  const Out fp = run(x0, w0, gy, ntc::Precision::F32);
  auto maxdiff = [](const std::vector<float>& a, const std::vector<float>& b) {
    double m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
    return m;
  };
  EXPECT_LT(maxdiff(bf.y, ref_in.y), 1e-4);
  EXPECT_GT(maxdiff(bf.y, fp.y), 1e-3);
  EXPECT_LT(maxdiff(bf.gx, ref_g.gx), 1e-4);
  EXPECT_GT(maxdiff(bf.gx, ref_in.gx), 1e-3);  // dy was rounded too
  EXPECT_LT(maxdiff(bf.gw, ref_g.gw), 1e-3);
  EXPECT_GT(maxdiff(bf.gw, fp.gw), 1e-2);
  EXPECT_LT(maxdiff(bf.gb, fp.gb), 1e-4);  // the bias gradient stays an fp32 sum of dy
  const Out after = run(x0, w0, gy, ntc::Precision::F32);
  EXPECT_EQ(after.y, fp.y);
  ntc::k::set_reference_kernels(saved_ref);
}
