// The overfitted per-image codec (nn/overfit.h, train/overfit.h, codec/laplace.h): its ops'
// gradients, the weight code, the Laplace tables, the encoder (a tiny image overfits; the
// stream decodes to exactly the encoder's reconstruction, on every SIMD target and thread count),
// grey and odd-sized images, and hostile streams.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "codec/laplace.h"
#include "kernels/kernels.h"
#include "kernels/overfit_math.h"
#include "lib/common.h"
#include "lib/fileio.h"
#include "lib/framed.h"
#include "lib/image.h"
#include "lib/json.h"
#include "lib/ops/ops.h"
#include "lib/rng.h"
#include "lib/threads.h"
#include "nn/overfit.h"
#include "tests/gradcheck.h"
#include "tests/targets.h"
#include "train/overfit.h"

namespace ntc {
namespace {

namespace ov = nn::overfit;
using testing::gradcheck;

Tensor rand_tensor(const Shape& s, uint64_t seed, float lo = -1, float hi = 1) {
  Rng rng(seed);
  Tensor t = Tensor::uniform(s, lo, hi, rng);
  t.set_requires_grad(true);
  return t;
}

TEST(OverfitOps, UpsampleMatchesItsDefinitionAndFiniteDifferences) {
  // 1-D definition on a 1×3 plane to 1×6 and 1×5: ¾·in[k] + ¼·neighbour, edges replicated.
  const Tensor x = Tensor::from({1, 1, 1, 3}, {0, 4, 8});
  const Tensor y6 = upsample2(x, 1, 6), y5 = upsample2(x, 1, 5);
  EXPECT_EQ(y6.to_vector(), (std::vector<float>{0, 1, 3, 5, 7, 8}));
  EXPECT_EQ(y5.to_vector(), (std::vector<float>{0, 1, 3, 5, 7}));
  for (auto [h, w, oh, ow] : std::vector<std::array<int64_t, 4>>{{3, 4, 6, 8}, {3, 4, 5, 7}, {1, 1, 2, 1}, {2, 5, 3, 10}})
    EXPECT_GT(gradcheck("upsample2", {rand_tensor({1, 2, h, w}, uint64_t(h * 10 + w))},
                        [=](const std::vector<Tensor>& in) { return upsample2(in[0], oh, ow); }),
              0);
  EXPECT_THROW(upsample2(x, 1, 4), Error);  // 3 → 4 is not a ×2 step
}

// The plane functions (the decoder's too) against the separable definition computed element by
// element, column pass by columns: the same floats, forward and adjoint (overfitted streams decode
// to the pixels their encoder saw, whichever way the passes are scheduled).
TEST(OverfitOps, UpsamplePlaneIsTheSeparableDefinitionBitForBit) {
  auto nb = [](int64_t i, int64_t n) { return (i & 1) ? std::min(i / 2 + 1, n - 1) : std::max<int64_t>(i / 2 - 1, 0); };
  for (auto [h, w, oh, ow] : std::vector<std::array<int64_t, 4>>{{5, 7, 10, 14}, {5, 7, 9, 13}, {1, 1, 2, 2}, {3, 1, 5, 1}}) {
    Rng rng(uint64_t(h * 100 + w));
    std::vector<float> in(size_t(h * w)), g(size_t(oh * ow));
    rng.fill_uniform(in.data(), in.size(), -1, 1);
    rng.fill_uniform(g.data(), g.size(), -1, 1);
    std::vector<float> rows(size_t(h * ow)), want(size_t(oh * ow)), grow(size_t(h * ow), 0.f), gwant(size_t(h * w), 0.5f);
    for (int64_t r = 0; r < h; ++r)
      for (int64_t c = 0; c < ow; ++c) rows[size_t(r * ow + c)] = 0.75f * in[size_t(r * w + c / 2)] + 0.25f * in[size_t(r * w + nb(c, w))];
    for (int64_t c = 0; c < ow; ++c)
      for (int64_t i = 0; i < oh; ++i) want[size_t(i * ow + c)] = 0.75f * rows[size_t(i / 2 * ow + c)] + 0.25f * rows[size_t(nb(i, h) * ow + c)];
    for (int64_t c = 0; c < ow; ++c)
      for (int64_t i = 0; i < oh; ++i) {
        grow[size_t(i / 2 * ow + c)] += 0.75f * g[size_t(i * ow + c)];
        grow[size_t(nb(i, h) * ow + c)] += 0.25f * g[size_t(i * ow + c)];
      }
    for (int64_t r = 0; r < h; ++r)
      for (int64_t c = 0; c < ow; ++c) {
        gwant[size_t(r * w + c / 2)] += 0.75f * grow[size_t(r * ow + c)];
        gwant[size_t(r * w + nb(c, w))] += 0.25f * grow[size_t(r * ow + c)];
      }
    std::vector<float> out(want.size()), gin(gwant.size(), 0.5f), tmp(size_t(h * ow));
    upsample2_plane(in.data(), h, w, out.data(), oh, ow, tmp.data());
    upsample2_plane_adj(g.data(), oh, ow, gin.data(), h, w, tmp.data());
    EXPECT_EQ(out, want) << h << "x" << w << " -> " << oh << "x" << ow;
    EXPECT_EQ(gin, gwant) << h << "x" << w << " -> " << oh << "x" << ow << " (adjoint)";
  }
}

// Learned upsampling (four taps per output sample and axis): the bilinear taps give the bilinear
// values; the plane functions are the separable definition, element by element, bit for bit, forward
// and adjoint, and the taps' gradient is the sum of the products it multiplies; the op's gradients
// in x and in the taps match finite differences.
TEST(OverfitOps, LearnedUpsampleIsItsDefinitionAndItsGradients) {
  auto tap = [](int64_t i, int64_t n, int q) {
    const int64_t k = i / 2, d = (i & 1) ? 1 : -1;
    const int64_t v = q == 0 ? k : q == 1 ? k + d : q == 2 ? k - d : k + 2 * d;
    return std::clamp<int64_t>(v, 0, n - 1);
  };
  const float f[4] = {0.61f, 0.32f, -0.07f, 0.13f};
  for (auto [h, w, oh, ow] : std::vector<std::array<int64_t, 4>>{{5, 7, 10, 14}, {5, 7, 9, 13}, {1, 1, 2, 2}, {3, 1, 5, 1}, {2, 3, 3, 6}}) {
    Rng rng(uint64_t(h * 100 + w));
    std::vector<float> in(size_t(h * w)), g(size_t(oh * ow));
    rng.fill_uniform(in.data(), in.size(), -1, 1);
    rng.fill_uniform(g.data(), g.size(), -1, 1);
    auto sum4 = [&](float a, float b, float c, float d) { return ((f[0] * a + f[1] * b) + f[2] * c) + f[3] * d; };
    std::vector<float> rows(size_t(h * ow)), want(size_t(oh * ow)), grow(size_t(h * ow), 0.f), gwant(size_t(h * w), 0.5f);
    double gfwant[4] = {0, 0, 0, 0};
    for (int64_t r = 0; r < h; ++r)
      for (int64_t c = 0; c < ow; ++c) {
        const float* x = in.data() + r * w;
        rows[size_t(r * ow + c)] = sum4(x[tap(c, w, 0)], x[tap(c, w, 1)], x[tap(c, w, 2)], x[tap(c, w, 3)]);
      }
    for (int64_t c = 0; c < ow; ++c)
      for (int64_t i = 0; i < oh; ++i)
        want[size_t(i * ow + c)] = sum4(rows[size_t(tap(i, h, 0) * ow + c)], rows[size_t(tap(i, h, 1) * ow + c)],
                                        rows[size_t(tap(i, h, 2) * ow + c)], rows[size_t(tap(i, h, 3) * ow + c)]);
    for (int64_t i = 0; i < oh; ++i)
      for (int q = 0; q < 4; ++q)
        for (int64_t c = 0; c < ow; ++c) {
          grow[size_t(tap(i, h, q) * ow + c)] += f[q] * g[size_t(i * ow + c)];
          gfwant[q] += double(g[size_t(i * ow + c)]) * double(rows[size_t(tap(i, h, q) * ow + c)]);
        }
    for (int64_t r = 0; r < h; ++r)
      for (int64_t c = 0; c < ow; ++c)
        for (int q = 0; q < 4; ++q) {
          gwant[size_t(r * w + tap(c, w, q))] += f[q] * grow[size_t(r * ow + c)];
          gfwant[q] += double(grow[size_t(r * ow + c)]) * double(in[size_t(r * w + tap(c, w, q))]);
        }
    std::vector<float> out(want.size()), gin(gwant.size(), 0.5f), tmp(size_t(h * ow)), gtmp(size_t(h * ow));
    double gf[4] = {0, 0, 0, 0};
    upsample2_plane(in.data(), h, w, f, out.data(), oh, ow, tmp.data());
    upsample2_plane_adj(in.data(), h, w, f, g.data(), oh, ow, gin.data(), gf, tmp.data(), gtmp.data());
    const std::string at = std::to_string(h) + "x" + std::to_string(w) + " -> " + std::to_string(oh) + "x" + std::to_string(ow);
    EXPECT_EQ(out, want) << at;
    EXPECT_EQ(gin, gwant) << at << " (adjoint)";
    for (int q = 0; q < 4; ++q) EXPECT_NEAR(gf[q], gfwant[q], 1e-9 * (1 + std::fabs(gfwant[q]))) << at << " tap " << q;
    double gf_only[4] = {0, 0, 0, 0};  // the taps' gradient alone (x needs none): the same sums
    upsample2_plane_adj(in.data(), h, w, f, g.data(), oh, ow, nullptr, gf_only, tmp.data(), gtmp.data());
    for (int q = 0; q < 4; ++q) EXPECT_EQ(gf_only[q], gf[q]) << at << " tap " << q << ", without gin";
    // The bilinear taps: the bilinear step's values.
    const float bil[4] = {0.75f, 0.25f, 0.f, 0.f};
    std::vector<float> a(want.size()), b(want.size());
    upsample2_plane(in.data(), h, w, bil, a.data(), oh, ow, tmp.data());
    upsample2_plane(in.data(), h, w, b.data(), oh, ow, tmp.data());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << at << " " << i;
  }
  for (auto [h, w, oh, ow] : std::vector<std::array<int64_t, 4>>{{3, 4, 6, 8}, {3, 5, 5, 9}, {1, 1, 2, 1}, {2, 2, 4, 3}}) {
    Tensor taps = Tensor::from({4}, {0.7f, 0.2f, -0.1f, 0.05f});
    taps.set_requires_grad(true);
    EXPECT_GT(gradcheck("upsample2 taps", {rand_tensor({1, 2, h, w}, uint64_t(h * 10 + w)), taps},
                        [=](const std::vector<Tensor>& in) { return upsample2(in[0], oh, ow, in[1]); }),
              0);
  }
  EXPECT_THROW(upsample2(Tensor::zeros({1, 1, 3, 3}), 6, 6, Tensor::zeros({3})), Error);  // four taps
}

TEST(OverfitOps, SoftRoundLimitsAndFiniteDifferences) {
  const Tensor x = Tensor::from({5}, {-1.3f, -0.5f, 0.2f, 0.49f, 2.75f});
  const Tensor cold = soft_round(x, 1e-3f), hot = soft_round(x, 50.f);
  const std::vector<float> want = {-1, -0.5f, 0, 0, 3};  // −0.5 is the midpoint: stays
  for (int i = 0; i < 5; ++i) {
    if (i != 1) {
      EXPECT_NEAR(cold.data()[i], want[size_t(i)], 1e-4) << i;
    }
    EXPECT_NEAR(hot.data()[i], x.data()[i], 2e-3) << i;  // nearly the identity when hot
  }
  EXPECT_GT(gradcheck("soft_round", {rand_tensor({3, 7}, 3, -3, 3)},
                      [](const std::vector<Tensor>& in) { return soft_round(in[0], 0.3f); }, {1e-3, 2e-2, 1e-3, 48}),
            0);
}

// The encoder's fp32 transcendentals (kernels/overfit_math.h): exp and log2 against double over
// their ranges; soft rounding and the Laplace rate against their double-precision definitions; the
// AVX2 kernels and their scalar twins give the same bits, over lengths that leave every tail.
TEST(OverfitOps, TranscendentalKernelsAreAccurateAndTheirTwinsAgree) {
  double worst_exp = 0, worst_log = 0;
  for (double x = -87; x <= 88; x += 0.0173) {
    const double want = std::exp(double(float(x)));
    worst_exp = std::max(worst_exp, std::fabs(k::exp_approx(float(x)) / want - 1));
  }
  EXPECT_LT(worst_exp, 4e-7);  // a few ulp (float's ulp is 1.2e-7 relative)
  for (double x = 1e-30; x <= 1e30; x *= 1.0137) {
    const float f = float(x);
    worst_log = std::max(worst_log, std::fabs(double(k::log2_approx(f)) - std::log2(double(f))));
  }
  EXPECT_LT(worst_log, 1e-5);  // absolute: up to |log2| = 100, a few ulp of the result
  EXPECT_EQ(k::exp_approx(0.f), 1.f);
  EXPECT_EQ(k::log2_approx(1.f), 0.f);
  EXPECT_EQ(k::log2_approx(0.25f), -2.f);
  EXPECT_GT(k::exp_approx(-1000.f), 0.f);  // clamped: a normal float, never 0 or a denormal
  EXPECT_TRUE(std::isfinite(k::exp_approx(1000.f)));

  const bool saved_ref = k::use_reference_kernels();  // on in the scalar build
  k::set_reference_kernels(false);
  Rng rng(12);
  for (size_t n : {size_t(1), size_t(7), size_t(8), size_t(29), size_t(1000)}) {
    std::vector<float> x(n), yv(n), mu(n), lb(n);
    rng.fill_uniform(x.data(), n, -40, 40);
    rng.fill_uniform(mu.data(), n, -20, 20);
    rng.fill_uniform(lb.data(), n, -4, 5.5f);  // past both ends of [−3, 4.5]
    for (size_t i = 0; i < n; ++i) yv[i] = std::round(mu[i] + x[i] * 0.5f);  // some far out: the floor
    for (float T : {0.3f, 0.1f, 1e-3f, 5.f}) {
      std::vector<float> y1(n), d1(n), y2(n), d2(n);
      k::soft_round(x.data(), n, T, y1.data(), d1.data());
      k::ref::soft_round(x.data(), n, T, y2.data(), d2.data());
      EXPECT_EQ(y1, y2) << n << " T " << T;
      EXPECT_EQ(d1, d2) << n << " T " << T;
      const double norm = 1 / (2 * std::tanh(0.5 / T));
      for (size_t i = 0; i < n; ++i) {
        const double v = x[i], fl = std::floor(v), t = std::tanh((v - fl - 0.5) / T);
        EXPECT_NEAR(y1[i], fl + 0.5 + t * norm, 4e-6 * (1 + std::fabs(v))) << v << " T " << T;
        EXPECT_NEAR(d1[i], (1 - t * t) / T * norm, 1e-5 * (1 + (1 - t * t) / T * norm)) << v << " T " << T;
      }
    }
    std::vector<float> b1(n), gy1(n), gm1(n), gl1(n), b2(n), gy2(n), gm2(n), gl2(n);
    k::laplace_bits(yv.data(), mu.data(), lb.data(), n, -3, 4.5f, b1.data(), gy1.data(), gm1.data(), gl1.data());
    k::ref::laplace_bits(yv.data(), mu.data(), lb.data(), n, -3, 4.5f, b2.data(), gy2.data(), gm2.data(), gl2.data());
    EXPECT_EQ(b1, b2) << n;
    EXPECT_EQ(gy1, gy2) << n;
    EXPECT_EQ(gm1, gm2) << n;
    EXPECT_EQ(gl1, gl2) << n;
    int floored = 0, clamped = 0;
    for (size_t i = 0; i < n; ++i) {
      const double l = std::clamp(double(lb[i]), -3.0, 4.5), s = std::exp(l), m = mu[i];
      auto cdf = [&](double t) { return t < m ? 0.5 * std::exp((t - m) / s) : 1 - 0.5 * std::exp(-(t - m) / s); };
      const double P = cdf(yv[i] + 0.5) - cdf(yv[i] - 0.5);
      if (P < 1.01e-9) {  // the floor
        if (P < 0.99e-9) {
          ++floored;
          EXPECT_EQ(gy1[i], 0.f);
          EXPECT_NEAR(b1[i], -std::log2(1e-9), 1e-5);
        }
        continue;
      }
      EXPECT_NEAR(b1[i], -std::log2(P), 1e-4 + 2e-6 * s) << yv[i] << " " << m << " " << l;
      // ∂bits/∂y by a central difference in double
      const double h = 1e-4;
      const double Pp = cdf(yv[i] + h + 0.5) - cdf(yv[i] + h - 0.5), Pm = cdf(yv[i] - h + 0.5) - cdf(yv[i] - h - 0.5);
      const double dy = (-std::log2(Pp) + std::log2(Pm)) / (2 * h);
      EXPECT_NEAR(gy1[i], dy, 1e-3 * (1 + std::fabs(dy))) << yv[i] << " " << m << " " << l;
      EXPECT_EQ(gm1[i], -gy1[i]);
      if (lb[i] < -3 || lb[i] > 4.5f) {
        ++clamped;
        EXPECT_EQ(gl1[i], 0.f);
      }
    }
    if (n == 1000) {
      EXPECT_TRUE(floored > 10 && clamped > 10) << floored << " floored, " << clamped << " clamped";
    }
  }
  k::set_reference_kernels(saved_ref);
}

TEST(OverfitOps, CausalContextGathersItsNeighboursAndScattersBack) {
  const auto offs = ov::context_offsets();
  Tensor x = Tensor::empty({1, 1, 4, 6});
  for (int i = 0; i < 24; ++i) x.data()[i] = float(i + 1);
  const Tensor c = causal_context(x, offs);
  ASSERT_EQ(c.shape(), (Shape{1, 16, 4, 6}));
  for (int r = 0; r < 4; ++r)
    for (int col = 0; col < 6; ++col)
      for (int j = 0; j < 16; ++j) {
        const int rr = r + offs[size_t(j)].first, cc = col + offs[size_t(j)].second;
        const float want = (rr >= 0 && cc >= 0 && cc < 6) ? float(rr * 6 + cc + 1) : 0.f;
        ASSERT_EQ(c.data()[(j * 4 + r) * 6 + col], want) << r << "," << col << " j " << j;
      }
  EXPECT_GT(gradcheck("causal_context", {rand_tensor({1, 1, 5, 7}, 4)},
                      [&](const std::vector<Tensor>& in) { return causal_context(in[0], offs); }),
            0);
  EXPECT_THROW(causal_context(x, {{0, 1}}), Error);  // not causal
  // A plane large enough to run in parallel (16 × 64 × 80): the forward is the definition, and the
  // backward gives each element its planes' terms in plane order (the floats of a plane-by-plane
  // scatter), on 1 and 3 threads.
  Rng rng(8);
  const int64_t h = 64, w = 80;
  Tensor big = Tensor::uniform({1, 1, h, w}, -1, 1, rng), gy = Tensor::uniform({1, 16, h, w}, -1, 1, rng);
  std::vector<float> want(size_t(h * w), 0.f);
  for (size_t j = 0; j < offs.size(); ++j)
    for (int64_t r = 0; r < h; ++r)
      for (int64_t col = 0; col < w; ++col) {
        const int64_t rr = r + offs[j].first, cc = col + offs[j].second;
        if (rr >= 0 && cc >= 0 && cc < w) want[size_t(rr * w + cc)] += gy.data()[(int64_t(j) * h + r) * w + col];
      }
  const int saved = num_threads();
  for (int threads : {1, 3}) {
    set_num_threads(threads);
    Tensor xb = big.detach().set_requires_grad(true);
    sum(mul(causal_context(xb, offs), gy)).backward();
    EXPECT_EQ(std::vector<float>(xb.grad(), xb.grad() + h * w), want) << threads << " threads";
  }
  set_num_threads(saved);
}

TEST(OverfitOps, LaplaceBitsMatchTheIntegralAndFiniteDifferences) {
  const Tensor y = Tensor::from({3}, {0, 2, -1}), mu = Tensor::from({3}, {0, 0.3f, 4}), lb = Tensor::from({3}, {0, -1, 1});
  const Tensor b = laplace_bits(y, mu, lb, -3, 4.5f);
  for (int i = 0; i < 3; ++i) {
    const double s = std::exp(double(lb.data()[i])), m = mu.data()[i];
    auto cdf = [&](double t) { return t < m ? 0.5 * std::exp((t - m) / s) : 1 - 0.5 * std::exp(-(t - m) / s); };
    const double P = cdf(y.data()[i] + 0.5) - cdf(y.data()[i] - 0.5);
    EXPECT_NEAR(b.data()[i], -std::log2(P), 1e-5) << i;
  }
  // Values away from the floor; log b inside its range.
  Tensor yy = rand_tensor({2, 9}, 5, -3, 3), mm = rand_tensor({2, 9}, 6, -2, 2), ll = rand_tensor({2, 9}, 7, -1, 1.5f);
  EXPECT_GT(gradcheck("laplace_bits", {yy, mm, ll},
                      [](const std::vector<Tensor>& in) { return laplace_bits(in[0], in[1], in[2], -3, 4.5f); },
                      {1e-3, 2e-2, 1e-3, 48}),
            0);
}

TEST(OverfitCoding, DetExpIsExpAndTheTablesAreValid) {
  for (double x = -700; x <= 8; x += 0.37) EXPECT_NEAR(codec::det_exp(x) / std::exp(x), 1.0, 4e-16) << x;
  EXPECT_EQ(codec::det_exp(0), 1.0);
  EXPECT_EQ(codec::det_exp(-1000), 0.0);
  for (int s = 0; s < codec::kLaplaceScales; s += 9)
    for (int f = 0; f < codec::kLaplaceFrac; f += 3) {
      const codec::CdfTable& t = codec::laplace_table(s, f);
      EXPECT_NO_THROW(codec::validate(t));
      // The most probable value is the one nearest the centre f/F: 0, or 1 past the midpoint.
      size_t best = 0;
      for (size_t i = 0; i + 1 < t.cdf.size() - 1; ++i)
        if (t.cdf[i + 1] - t.cdf[i] > t.cdf[best + 1] - t.cdf[best]) best = i;
      EXPECT_EQ(int(best) + t.offset, f * 2 > codec::kLaplaceFrac ? 1 : 0) << s << "," << f;
    }
  // The slot: shift + frac/F is μ rounded to eighths; the scale index rounds log b on its grid.
  for (float mu : {-7.3f, -0.06f, 0.f, 0.0624f, 0.07f, 3.99f, 1e9f, -1e9f}) {
    const codec::LaplaceSlot s = codec::laplace_slot(mu, 0.f);
    const double back = s.shift + double(s.frac) / codec::kLaplaceFrac;
    EXPECT_NEAR(back, std::clamp(double(mu), -1048576.0, 1048576.0), 0.5 / codec::kLaplaceFrac + 1e-9) << mu;
    EXPECT_TRUE(s.frac >= 0 && s.frac < codec::kLaplaceFrac);
  }
  EXPECT_EQ(codec::laplace_slot(0, -100).scale, 0);
  EXPECT_EQ(codec::laplace_slot(0, 100).scale, codec::kLaplaceScales - 1);
  EXPECT_EQ(codec::laplace_slot(NAN, NAN).shift, 0);
}

TEST(OverfitCoding, ExpGolombRoundTripsAndRefusesBadCodes) {
  codec::BitWriter w;
  std::vector<std::pair<int32_t, int>> vals;
  Rng rng(9);
  for (int k = 0; k <= 24; k += 3)
    for (int32_t q : {0, 1, -1, 2, -2, 7, -8, 1000, -1000, (1 << 30) - 1, -(1 << 30) + 1,
                      int32_t(rng.next_u64() % 100000) - 50000})
      vals.push_back({q, k});
  size_t bits = 0;
  for (auto [q, k] : vals) {
    codec::put_exp_golomb(w, q, k);
    bits += codec::exp_golomb_bits(q, k);
  }
  EXPECT_EQ(w.bits(), bits);
  const std::vector<uint8_t> b = w.finish();
  EXPECT_EQ(b.size(), (bits + 7) / 8);
  codec::BitReader r(b.data(), b.size());
  for (auto [q, k] : vals) ASSERT_EQ(codec::get_exp_golomb(r, k), q) << k;
  EXPECT_EQ(codec::exp_golomb_bits(0, 0), 1u);  // "1"
  EXPECT_EQ(codec::exp_golomb_bits(1, 0), 3u);  // "010"
  const std::vector<uint8_t> zeros(8, 0), trunc = {0x00, 0x01};
  codec::BitReader rz(zeros.data(), zeros.size()), rt(trunc.data(), trunc.size());
  EXPECT_THROW(codec::get_exp_golomb(rz, 0), Error);  // too many leading zeros
  EXPECT_THROW(codec::get_exp_golomb(rt, 0), Error);  // 15 zeros, then the code runs off the end
}

// A small smooth colour image with an edge.
Tensor test_image(int64_t h, int64_t w, bool grey = false) {
  Tensor x = Tensor::empty({1, 3, h, w});
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j)
        x.data()[(c * h + i) * w + j] =
            float(std::clamp<int64_t>(40 + 3 * i + 2 * j + (grey ? 0 : 30 * c) + (j > w / 2 ? 60 : 0), 0, 255));
  return x;
}

train::OverfitOptions quick(int iters) {
  train::OverfitOptions o;
  o.iters = iters;
  o.candidates = 1;
  o.levels = 4;
  o.syn_hidden = 8;
  o.arm_hidden = 8;
  o.lambda = 0.02;
  return o;
}

// The stream decodes to `want` under every SIMD target this CPU runs and on 1 and 3 threads.
void expect_decodes_everywhere(const std::vector<uint8_t>& bytes, const std::vector<float>& want) {
  for (int64_t target : test::simd_targets()) {
    test::ForceTarget ft(target);
    for (int threads : {1, 3}) {
      set_num_threads(threads);
      EXPECT_EQ(ov::decode(bytes.data(), bytes.size(), "t", 1 << 20).to_vector(), want) << target << " " << threads;
    }
  }
  set_num_threads(0);
}

// The presets grow fast < medium < slow, the options' default is medium (what `ntc encode` without
// --overfit or --iters would run, and what the README's numbers are for), and other names are refused.
TEST(Overfit, PresetsAreOrderedAndTheDefaultIsMedium) {
  const int fast = train::overfit_preset_iters("fast"), medium = train::overfit_preset_iters("medium"),
            slow = train::overfit_preset_iters("slow");
  EXPECT_LT(0, fast);
  EXPECT_LT(fast, medium);
  EXPECT_LT(medium, slow);
  EXPECT_EQ(train::OverfitOptions{}.iters, medium);
  EXPECT_THROW(train::overfit_preset_iters("Medium"), Error);
  EXPECT_THROW(train::overfit_preset_iters(""), Error);
}

TEST(Overfit, ATinyImageOverfits) {
  const Tensor img = test_image(16, 24);
  train::OverfitOptions o = quick(150);
  std::vector<double> losses;
  o.progress = [&](int, int, double loss) { losses.push_back(loss); };
  const train::OverfitResult r = train::overfit_encode(img, o);
  ASSERT_EQ(losses.size(), 150u);
  auto avg = [&](size_t from) { return (losses[from] + losses[from + 1] + losses[from + 2]) / 3; };
  EXPECT_LT(avg(147), 0.5 * avg(0));  // the loss falls
  EXPECT_GT(r.psnr, 20.0);
  EXPECT_NEAR(r.bpp, 8.0 * double(r.bytes.size()) / (16 * 24), 1e-12);
}

TEST(Overfit, DecodingGivesTheEncodersReconstructionEverywhere) {
  const Tensor img = test_image(21, 35);
  train::OverfitOptions o = quick(60);
  o.candidates = 2;
  o.warmup_iters = 10;
  int calls = 0, last = 0;
  o.progress = [&](int done, int total, double) {
    ++calls;
    last = done;
    EXPECT_EQ(total, 70);  // 60 + the losing candidate's 10
  };
  const train::OverfitResult r = train::overfit_encode(img, o);
  EXPECT_EQ(calls, 70);
  EXPECT_EQ(last, 70);
  const std::vector<float> want = r.recon.to_vector();
  EXPECT_EQ(ov::decode(r.bytes.data(), r.bytes.size(), "t", 1 << 20).to_vector(), want);
  expect_decodes_everywhere(r.bytes, want);
  // The stream is canonical: read and written back, it is the same bytes.
  const ov::Stream s = ov::read_stream(r.bytes.data(), r.bytes.size(), "t", 1 << 20);
  EXPECT_EQ(ov::write_stream(s), r.bytes);
  EXPECT_EQ(s.arch.channels, 3);
  EXPECT_EQ(r.weight_bits, double(ov::weight_bits(s.arch, s.net)));
}

// Learned upsampling: a version-2 stream that decodes to the encoder's reconstruction on every
// target and thread count, is canonical, reports its upsampling, and whose taps moved from bilinear.
TEST(Overfit, LearnedUpsamplingStreams) {
  const Tensor img = test_image(23, 34);
  train::OverfitOptions o = quick(60);
  o.learned_up = true;
  const train::OverfitResult r = train::overfit_encode(img, o);
  ASSERT_GE(r.bytes.size(), 5u);
  EXPECT_EQ(r.bytes[4], 2);  // the version
  const std::vector<float> want = r.recon.to_vector();
  expect_decodes_everywhere(r.bytes, want);
  const ov::Stream s = ov::read_stream(r.bytes.data(), r.bytes.size(), "t", 1 << 20);
  EXPECT_TRUE(s.arch.learned_up);
  EXPECT_EQ(ov::write_stream(s), r.bytes);
  ASSERT_EQ(ov::param_specs(s.arch).size(), size_t(14 + o.levels - 1));
  const ov::WeightSet w = s.net.dequantize(s.arch);
  bool moved = false;
  for (int l = 1; l < o.levels; ++l) {
    const auto& f = w[ov::up_taps_index(l)];
    ASSERT_EQ(f.size(), 4u);
    moved |= f[0] != 0.75f || f[1] != 0.25f || f[2] != 0.f || f[3] != 0.f;
  }
  EXPECT_TRUE(moved);  // trained, and coded
  // The decoder upsamples as training did: the stream's PSNR is the trained state's, less the
  // weights' quantisation and the pixels' rounding.
  EXPECT_NEAR(r.psnr, r.kept_psnr, 0.5) << r.psnr << " " << r.kept_psnr;
  // FLOPs: 7 per upsampled sample and axis instead of 3.
  ov::Arch bil = s.arch;
  bil.learned_up = false;
  EXPECT_NEAR(ov::decoder_flops(s.arch).upsample, ov::decoder_flops(bil).upsample * 7.0 / 3.0, 1e-9);
  // Hostile: an unknown upsampling byte (after the ARM width), or a version-1 stream read as 2.
  for (uint8_t bad : {0, 2, 255}) {
    std::vector<uint8_t> v = r.bytes;
    v[17] = bad;
    reseal_frame(v);
    EXPECT_THROW(ov::decode(v.data(), v.size(), "t", 1 << 20), Error) << int(bad);
  }
  for (uint8_t bad : {0, 1, 25}) {  // the taps' step exponent (the fifth group's, offset 30): 2 … 24
    std::vector<uint8_t> v = r.bytes;
    v[30] = bad;
    reseal_frame(v);
    EXPECT_THROW(ov::decode(v.data(), v.size(), "t", 1 << 20), Error) << int(bad);
  }
  // The taps are coded as their difference from bilinear: fewer bits than the integers themselves
  // would take at any Exp-Golomb order.
  const auto specs = ov::param_specs(s.arch);
  const int e_up = s.net.step_exp[ov::kUpGroup], k_up = s.net.eg_order[ov::kUpGroup];
  EXPECT_GE(e_up, ov::kUpMinStepExp);
  size_t coded = 0, raw_best = SIZE_MAX;
  for (size_t i = 0; i < specs.size(); ++i)
    if (specs[i].group == ov::kUpGroup)
      for (size_t j = 0; j < 4; ++j) coded += codec::exp_golomb_bits(s.net.q[i][j] - ov::coded_base(specs[i], j, e_up), k_up);
  for (int k = 0; k <= 24; ++k) {
    size_t raw = 0;
    for (size_t i = 0; i < specs.size(); ++i)
      if (specs[i].group == ov::kUpGroup)
        for (int32_t q : s.net.q[i]) raw += codec::exp_golomb_bits(q, k);
    raw_best = std::min(raw_best, raw);
  }
  EXPECT_LT(coded, raw_best);
  std::vector<uint8_t> v1 = r.bytes;
  v1[4] = 1;
  reseal_frame(v1);
  EXPECT_THROW(ov::decode(v1.data(), v1.size(), "t", 1 << 20), Error);
}

// The stream does not depend on the thread count: training's reductions go in fixed chunks, and
// the weight-step search codes its candidates side by side but chooses as the serial search would.
TEST(Overfit, TheStreamDoesNotDependOnTheThreadCount) {
  const Tensor img = test_image(37, 29);
  std::vector<std::vector<uint8_t>> streams;
  const int saved = num_threads();
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    streams.push_back(train::overfit_encode(img, quick(40)).bytes);
  }
  set_num_threads(saved);
  EXPECT_EQ(streams[1], streams[0]);
  EXPECT_EQ(streams[2], streams[0]);
}

// An unstable run (a hard phase at ten times the soft phase's learning rate diverges): the encoder
// codes the best state it saw, by the hard-rounded loss, not the last one, and the stream is better
// for it. With eval_every 0 it codes the last state.
TEST(Overfit, TheBestStateIsCodedNotTheLast) {
  const Tensor img = test_image(24, 32);
  auto run = [&](int eval_every) {
    train::OverfitOptions o = quick(200);
    o.hard_fraction = 0.5;
    o.hard_lr_scale = 10.f;
    o.eval_every = eval_every;
    return train::overfit_encode(img, o);
  };
  const train::OverfitResult last = run(0), best = run(10);
  const double lambda = quick(1).lambda;
  auto cost = [&](const train::OverfitResult& r) { return r.bpp + lambda * 255.0 * 255.0 / std::pow(10.0, r.psnr / 10.0); };
  EXPECT_EQ(last.kept_iter, 200);
  EXPECT_LE(best.kept_iter, 100);  // the diverging hard phase never beats where it started
  EXPECT_LT(best.kept_loss, 0.5 * last.kept_loss);
  EXPECT_LT(cost(best), 0.5 * cost(last));  // measured on the streams: 4.8 against 28.5
  EXPECT_EQ(ov::decode(best.bytes.data(), best.bytes.size(), "t", 1 << 20).to_vector(), best.recon.to_vector());
}

TEST(Overfit, GreyAndOddSizedImages) {
  const Tensor grey = test_image(9, 13, true);
  const train::OverfitResult g = train::overfit_encode(grey, quick(30));
  EXPECT_EQ(g.arch.channels, 1);
  const Tensor gd = ov::decode(g.bytes.data(), g.bytes.size(), "t", 1 << 20);
  for (int64_t i = 0; i < 9 * 13; ++i) ASSERT_TRUE(gd.data()[i] == gd.data()[117 + i] && gd.data()[i] == gd.data()[234 + i]);
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {1, 70}, {70, 1}, {5, 3}}) {
    const Tensor img = test_image(h, w);
    const train::OverfitResult r = train::overfit_encode(img, quick(5));
    EXPECT_EQ(ov::decode(r.bytes.data(), r.bytes.size(), "t", 1 << 20).to_vector(), r.recon.to_vector()) << h << "x" << w;
  }
  EXPECT_THROW(train::overfit_encode(Tensor::zeros({1, 3, 3000, 2000}), quick(1)), Error);  // over the pixel limit
}

TEST(Overfit, HostileStreamsAreCleanErrors) {
  const train::OverfitResult r = train::overfit_encode(test_image(12, 10), quick(20));
  const std::vector<uint8_t> good = r.bytes;
  auto decode = [](std::vector<uint8_t> v, bool reseal) {
    if (reseal) reseal_frame(v);
    return ov::decode(v.data(), v.size(), "t", 1 << 16);
  };
  EXPECT_NO_THROW(decode(good, false));
  // Header fields: version, size, channels, levels, widths, quantisation.
  struct Edit {
    size_t at;
    std::vector<uint8_t> bytes;
  };
  for (const Edit& e : std::vector<Edit>{{4, {3}},
                                         {5, {0, 0, 0, 0}},
                                         {5, {0, 0, 2, 0}},
                                         {13, {2}},
                                         {14, {0}},
                                         {14, {9}},
                                         {15, {0}},
                                         {16, {65}},
                                         {21, {25}},
                                         {22, {30}}}) {
    std::vector<uint8_t> v = good;
    std::memcpy(v.data() + e.at, e.bytes.data(), e.bytes.size());
    EXPECT_THROW(decode(v, true), Error) << "byte " << e.at;
  }
  // Too many pixels for the limit.
  std::vector<uint8_t> big = good;
  const uint32_t side = 1000;
  std::memcpy(big.data() + 5, &side, 4);
  std::memcpy(big.data() + 9, &side, 4);
  EXPECT_THROW(decode(big, true), Error);
  // Every truncation, and flips of every byte with and without a fresh CRC: an Error or an image.
  for (size_t n = 0; n < good.size(); ++n) EXPECT_THROW(decode(std::vector<uint8_t>(good.begin(), good.begin() + long(n)), false), Error);
  Rng rng(3);
  for (size_t i = 4; i + 4 < good.size(); ++i) {
    std::vector<uint8_t> v = good;
    v[i] ^= uint8_t(1 + rng.next_u64() % 255);
    EXPECT_THROW(decode(v, false), Error);  // the CRC
    try {
      const Tensor x = decode(v, true);
      for (int64_t j = 0; j < x.numel(); ++j) ASSERT_TRUE(x.data()[j] >= 0 && x.data()[j] <= 255);
    } catch (const Error&) {
    }
  }
}

// The command line: encode --overfit, decode, info and flops --stream, and what they refuse.
TEST(OverfitCli, EncodeDecodeInfoFlopsAndRefusals) {
  const char* bin = std::getenv("NTC_BIN");
  if (!bin || !*bin) GTEST_SKIP() << "NTC_BIN not set (run through make test)";
  const std::string ntc = std::filesystem::absolute(bin).string();
  const std::string dir = ::testing::TempDir() + "/ntc_overfit_cli_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  auto run = [&](const std::string& args) {
    const int st = std::system((ntc + " " + args + " >" + dir + "/out.txt 2>" + dir + "/err.txt").c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  };
  auto out = [&] {
    std::ifstream f(dir + "/out.txt");
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  write_image(dir + "/in.ppm", test_image(14, 19));
  ASSERT_EQ(run("--threads 1 encode " + dir + "/in.ppm -o " + dir + "/a.ntco --iters 20 --quiet --psnr"), 0);
  EXPECT_NE(out().find("PSNR"), std::string::npos);
  ASSERT_EQ(run("decode " + dir + "/a.ntco -o " + dir + "/a.png"), 0);
  const std::vector<uint8_t> s = read_file(dir + "/a.ntco");
  EXPECT_EQ(read_image(dir + "/a.png").to_vector(), ov::decode(s.data(), s.size(), "t", 1 << 20).to_vector());
  ASSERT_EQ(run("info " + dir + "/a.ntco --json"), 0);
  const Json info = parse_json(out());
  EXPECT_EQ(info.get("type")->str, "overfit");
  EXPECT_EQ(info.get("width")->num, 19);
  EXPECT_EQ(info.get("upsampling")->str, "bilinear");
  ASSERT_EQ(run("--threads 1 encode " + dir + "/in.ppm -o " + dir + "/l.ntco --iters 20 --quiet --overfit-upsample learned"), 0);
  ASSERT_EQ(run("info " + dir + "/l.ntco --json"), 0);
  EXPECT_EQ(parse_json(out()).get("upsampling")->str, "learned");
  ASSERT_EQ(run("decode " + dir + "/l.ntco -o " + dir + "/l.png"), 0);
  EXPECT_EQ(run("encode " + dir + "/in.ppm -o " + dir + "/b.ntco --overfit-upsample bicubic"), 1);
  ASSERT_EQ(run("flops --stream " + dir + "/a.ntco --json"), 0);
  const Json fl = parse_json(out());
  const double fpp = fl.get("flops_per_pixel")->get("decode")->num;
  EXPECT_GT(fpp, 100);
  EXPECT_LT(fpp, 3000);  // the bound for the decoder's cost
  // Refusals: one line, exit 1 (bad values) or 2 (usage).
  EXPECT_EQ(run("decode " + dir + "/a.ntco -o " + dir + "/b.png --model data/models/ntc_two_layer.ntcm"), 1);
  EXPECT_EQ(run("encode " + dir + "/in.ppm -o " + dir + "/b.ntco --overfit warp"), 1);
  EXPECT_EQ(run("encode " + dir + "/in.ppm -o " + dir + "/b.ntco --iters 0"), 1);
  EXPECT_EQ(run("encode " + dir + "/in.ppm -o " + dir + "/b.ntco --overfit fast --sga 10"), 1);
  EXPECT_EQ(run("flops --stream " + dir + "/in.ppm"), 1);
  std::vector<uint8_t> bad = s;
  bad[bad.size() / 2] ^= 0x40;
  write_file_atomic(dir + "/bad.ntco", bad);
  EXPECT_EQ(run("decode " + dir + "/bad.ntco -o " + dir + "/b.png"), 1);
  std::ifstream ef(dir + "/err.txt");
  const std::string err((std::istreambuf_iterator<char>(ef)), {});
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ntc
