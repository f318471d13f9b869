// Entropy models: gradients, initialisation, finalisation, index rules, latent round trips,
// code length against the model's information content, and index determinism across threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>

#include <cmath>

#include "codec/entropy_bottleneck.h"
#include "codec/gaussian_conditional.h"
#include "lib/common.h"
#include "lib/ops/ops.h"
#include "lib/rng.h"
#include "lib/threads.h"
#include "tests/gradcheck.h"

namespace ntc {
namespace {

using codec::EntropyBottleneck;
using codec::GaussianConditional;
using codec::ScaleMode;
using testing::gradcheck;

// A trained-looking EB: default init plus random perturbations of every parameter.
EntropyBottleneck random_eb(int C, std::vector<int> filters, uint64_t seed) {
  EntropyBottleneck eb(C, filters);
  Rng rng(seed);
  eb.init(rng);
  for (auto& [name, p] : eb.named_parameters()) {
    std::vector<float> d(size_t(p.numel()));
    rng.fill_uniform(d.data(), d.size(), -0.3f, 0.3f);
    for (size_t i = 0; i < d.size(); ++i) p.data()[i] += d[i];
  }
  return eb;
}

std::vector<Tensor> params_of(const EntropyBottleneck& eb) {
  std::vector<Tensor> v;
  for (auto& [n, p] : eb.named_parameters()) v.push_back(p);
  return v;
}

TEST(EntropyBottleneck, InitialisationMatchesSpec) {
  EntropyBottleneck eb(4, {3, 3});
  Rng rng(1);
  eb.init(rng);
  auto ps = eb.named_parameters();
  ASSERT_EQ(ps.size(), 8u);  // 3 matrices, 3 biases, 2 factors: 28 scalars per channel
  int64_t n = 0;
  for (auto& [name, p] : ps) n += p.numel();
  EXPECT_EQ(n, 28 * 4);
  EXPECT_NEAR(ps[0].second.data()[0], -1.787784, 1e-5);  // matrices.0
  EXPECT_NEAR(ps[3].second.data()[0], -1.787784, 1e-5);  // matrices.1
  EXPECT_NEAR(ps[6].second.data()[0], -0.526488, 1e-5);  // matrices.2
  for (auto& [name, p] : ps)
    if (name.rfind("biases", 0) == 0) {
      for (int64_t i = 0; i < p.numel(); ++i) EXPECT_LE(std::fabs(p.data()[i]), 0.5f);
    }
}

TEST(EntropyBottleneck, LogitsAndLikelihoodGradients) {
  for (std::vector<int> f : {std::vector<int>{3, 3}, std::vector<int>{3, 3, 3, 3}, std::vector<int>{5}}) {
    EntropyBottleneck eb = random_eb(3, f, 7);
    Rng rng(2);
    Tensor x = Tensor::uniform({2, 3, 3, 4}, -3, 3, rng).set_requires_grad(true);
    std::vector<Tensor> in{x};
    for (Tensor& p : params_of(eb)) in.push_back(p);
    gradcheck("eb_logits", in, [&](auto& v) { return eb.logits_cumulative(v[0]); }, {.h = 1e-2, .tol = 2e-2});
    gradcheck("eb_likelihood", in, [&](auto& v) { return eb.likelihood(v[0]); }, {.h = 1e-2, .tol = 2e-2});
  }
}

TEST(EntropyBottleneck, LikelihoodIsANormalisedDensity) {
  EntropyBottleneck eb = random_eb(2, {3, 3}, 3);
  const int n = 40001;  // v in [−200, 200], step 1/100: ∫ P(v) dv = 1 for the noisy density
  Tensor v = Tensor::empty({1, 2, 1, n});
  for (int c = 0; c < 2; ++c)
    for (int i = 0; i < n; ++i) v.data()[c * n + i] = float(i - n / 2) * 0.01f;
  NoGrad ng;
  Tensor p = eb.likelihood(v);
  for (int c = 0; c < 2; ++c) {
    double mass = 0;
    for (int i = 0; i < n; ++i) mass += p.data()[c * n + i];
    EXPECT_NEAR(mass * 0.01, 1.0, 1e-3) << "channel " << c;
  }
}

TEST(EntropyBottleneck, FinalizeFindsMediansAndValidTables) {
  EntropyBottleneck eb = random_eb(5, {3, 3}, 11);
  eb.finalize();
  ASSERT_TRUE(eb.finalized());
  for (int c = 0; c < 5; ++c) {
    EXPECT_NEAR(eb.logit_scalar(c, eb.medians()[size_t(c)]), 0.0, 1e-5);
    const auto& t = eb.tables()[size_t(c)];
    EXPECT_NO_THROW(codec::validate(t));
    EXPECT_LE(t.offset, 0);
  }
}

TEST(EntropyBottleneck, CodingRoundTripIncludingFarTails) {
  EntropyBottleneck eb = random_eb(4, {3, 3}, 5);
  eb.finalize();
  Rng rng(9);
  Tensor z = Tensor::normal({2, 4, 5, 3}, 0, 3, rng);
  z.data()[0] = 1e6f;
  z.data()[1] = -1e6f;
  z.data()[2] = 12345.6f;
  codec::RansEncoder enc;
  eb.encode(z, enc);
  std::vector<uint8_t> bytes = enc.finish();
  codec::RansDecoder dec(bytes.data(), bytes.data() + bytes.size());
  Tensor zh = eb.decode(z.shape(), dec);
  dec.finish();
  EXPECT_EQ(zh.to_vector(), eb.quantize(z).to_vector());
  EXPECT_EQ(zh.data()[0], std::nearbyint(1e6f - eb.medians()[0]) + eb.medians()[0]);
}

TEST(GaussianConditional, LikelihoodGradients) {
  Rng rng(3);
  Tensor y = Tensor::uniform({2, 3, 4, 5}, -6, 6, rng).set_requires_grad(true);
  Tensor s = Tensor::uniform({2, 3, 4, 5}, 0.2f, 4, rng).set_requires_grad(true);
  Tensor m = Tensor::uniform({2, 3, 4, 5}, -2, 2, rng).set_requires_grad(true);
  for (int64_t i = 0; i < y.numel(); ++i)  // keep |y − μ| away from 0 (kink of |·|)
    if (std::fabs(y.data()[i] - m.data()[i]) < 0.05f) {
      y.data()[i] += 0.1f;
    }
  gradcheck("gc_likelihood", {y, s, m}, [](auto& v) {
    return GaussianConditional::likelihood(v[0], v[1], v[2]);
  }, {.h = 2e-3, .tol = 2e-2});
}

TEST(GaussianConditional, LikelihoodValues) {
  // y = μ: P = Φ(½/σ) − Φ(−½/σ) = erf(1/(2√2 σ)).
  Tensor y = Tensor::from({3}, {0, 0, 0}), m = Tensor::from({3}, {0, 0, 0});
  Tensor s = Tensor::from({3}, {0.05f, 1, 10});  // 0.05 is lifted to 0.11
  NoGrad ng;
  auto p = GaussianConditional::likelihood(y, s, m).to_vector();
  const double sig[3] = {0.11, 1, 10};
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(p[size_t(i)], std::erf(1 / (2 * std::sqrt(2.0) * sig[i])), 2e-7);
  Tensor far = Tensor::from({1}, {50});
  EXPECT_FLOAT_EQ(GaussianConditional::likelihood(far, Tensor::from({1}, {1}), Tensor::from({1}, {0})).item(), 1e-9f);
}

TEST(GaussianConditional, ScaleMappingMatchesPaper) {
  GaussianConditional gc;
  Tensor r = Tensor::from({5}, {-30, std::log(1.f), std::log(10.f), std::log(63.f), 10});
  NoGrad ng;
  auto s = gc.scales(r).to_vector();
  const double kappa = std::log(256 / 0.11) / 63;
  const double v[5] = {0, 1, 10, 63, 63};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(s[size_t(i)], 0.11 * std::exp(kappa * v[i]), 1e-5 * s[size_t(i)]);
  EXPECT_NEAR(codec::scale_table()[0], 0.11, 1e-12);
  EXPECT_NEAR(codec::scale_table()[63], 256.0, 1e-9);
}

TEST(GaussianConditional, IndexRules) {
  Rng rng(4);
  Tensor r = Tensor::uniform({20000}, -4, 5, rng);
  GaussianConditional tf(ScaleMode::TfIndex), cai(ScaleMode::LowerBound);
  auto it = tf.indexes(r);
  Tensor sc = Tensor::uniform({20000}, 0.01f, 300, rng);
  auto ic = cai.indexes(sc);
  const auto& tab = codec::scale_table();
  for (int64_t i = 0; i < r.numel(); ++i) {
    const double v = std::min(std::exp(double(r.data()[i])), 63.0);
    const double frac = v - std::floor(v);
    if (std::fabs(frac - 0.5) > 1e-4) {
      EXPECT_EQ(it[size_t(i)], int(std::floor(v + 0.5))) << "r " << r.data()[i];
    }
    const double s = std::max(double(sc.data()[i]), 0.11);
    int want = 63;
    for (int k = 0; k < 64; ++k)
      if (float(tab[size_t(k)]) >= float(s)) {
        want = k;
        break;
      }
    EXPECT_EQ(ic[size_t(i)], want) << "scale " << s;
  }
}

// The branchless search gives std::upper_bound's index everywhere: on every threshold and its
// neighbouring floats, beyond both ends, for ±inf and NaN (63), and on random values.
TEST(GaussianConditional, IndexSearchIsUpperBound) {
  const auto& th = codec::index_thresholds();
  std::vector<float> v = {-std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(), -1e30f, 1e30f, 0.f, -0.f};
  for (float t : th) v.insert(v.end(), {t, std::nextafter(t, -1e9f), std::nextafter(t, 1e9f)});
  Rng rng(9);
  for (int i = 0; i < 5000; ++i) v.push_back(-2.f + 7.f * rng.uniform());
  const Tensor r = Tensor::from({int64_t(v.size())}, v);
  const auto idx = GaussianConditional(ScaleMode::TfIndex).indexes(r);
  for (size_t i = 0; i < v.size(); ++i) {
    const int want = std::isnan(v[i]) ? 63 : int(std::upper_bound(th.begin(), th.end(), v[i]) - th.begin());
    ASSERT_EQ(idx[i], want) << "r " << v[i];
  }
}

TEST(GaussianConditional, CodingRoundTripWithEscapes) {
  GaussianConditional gc;
  gc.finalize();
  ASSERT_EQ(gc.tables().size(), 64u);
  Rng rng(6);
  const int n = 30000;
  Tensor means = Tensor::uniform({1, 3, 100, 100}, -3, 3, rng);
  Tensor y = Tensor::normal({1, 3, 100, 100}, 0, 5, rng);
  std::vector<int32_t> idx(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) idx[size_t(i)] = int32_t(rng.next_u64() % 64);
  y.data()[0] = 1e6f;
  y.data()[1] = -1e6f;
  codec::RansEncoder enc;
  gc.encode(y, means, idx, enc);
  auto bytes = enc.finish();
  codec::RansDecoder dec(bytes.data(), bytes.data() + bytes.size());
  Tensor yh = gc.decode(means, idx, dec);
  dec.finish();
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(yh.data()[i], std::nearbyint(y.data()[i] - means.data()[i]) + means.data()[i]) << i;
}

// Actual bits within 0.5% of −Σ log2 P for 10^6 symbols drawn from the model at table scales.
TEST(GaussianConditional, CodeLengthMatchesInformationContent) {
  GaussianConditional gc;
  gc.finalize();
  Rng rng(8);
  const int n = 1 << 20;
  Tensor r = Tensor::empty({1, 1, 1, n}), y = Tensor::empty({1, 1, 1, n}), mu = Tensor::zeros({1, 1, 1, n});
  std::vector<float> z(static_cast<size_t>(n));
  rng.fill_normal(z.data(), z.size(), 0, 1);
  for (int i = 0; i < n; ++i) {
    const int k = 1 + i % 40;  // table scales 0.12 .. 10
    r.data()[i] = std::log(float(k));
    y.data()[i] = std::nearbyint(float(codec::scale_table()[size_t(k)]) * z[size_t(i)]);
  }
  auto idx = gc.indexes(r);
  for (int i = 0; i < n; ++i) ASSERT_EQ(idx[size_t(i)], 1 + i % 40);
  double info = 0;
  {
    NoGrad ng;
    Tensor p = GaussianConditional::likelihood(y, gc.scales(r), mu);
    for (int i = 0; i < n; ++i) info -= std::log2(double(p.data()[i]));
  }
  codec::RansEncoder enc;
  gc.encode(y, mu, idx, enc);
  const double bits = 8.0 * double(enc.finish().size());
  std::printf("GaussianConditional: %d symbols, %.0f bits coded vs %.0f bits information (%+.3f%%)\n", n, bits,
              info, 100 * (bits / info - 1));
  EXPECT_LT(std::fabs(bits / info - 1), 0.005);
}

// The scale indexes come from ẑ through convolutions: they must not depend on the thread count.
TEST(GaussianConditional, IndexesIdenticalForAnyThreadCount) {
  Rng rng(10);
  Tensor zh = Tensor::uniform({1, 32, 6, 9}, -4, 4, rng);
  for (int64_t i = 0; i < zh.numel(); ++i) zh.data()[i] = std::nearbyint(zh.data()[i]);
  Tensor w1 = Tensor::uniform({32, 48, 5, 5}, -0.1f, 0.1f, rng), b1 = Tensor::uniform({48}, -0.1f, 0.1f, rng);
  Tensor w2 = Tensor::uniform({48, 64, 3, 3}, -0.1f, 0.1f, rng), b2 = Tensor::uniform({64}, -0.1f, 0.1f, rng);
  auto run = [&](int threads) {
    set_num_threads(threads);
    NoGrad ng;
    Tensor h = conv_transpose2d_same(relu(conv_transpose2d_same(zh, w1, b1, 2)), w2, b2, 1);
    GaussianConditional gc;
    return std::make_pair(h.to_vector(), gc.indexes(slice_channels(h, 32, 32)));
  };
  auto one = run(1), two = run(2), three = run(3);
  set_num_threads(0);
  EXPECT_EQ(one.first, two.first);
  EXPECT_EQ(one.first, three.first);
  EXPECT_EQ(one.second, two.second);
  EXPECT_EQ(one.second, three.second);
}

}  // namespace
}  // namespace ntc
