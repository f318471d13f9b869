// The manifold-flatness experiment (nn/analysis.h) on tiny models where the answer is known.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "lib/rng.h"
#include "nn/analysis.h"
#include "nn/model.h"

namespace ntc::nn {
namespace {

std::unique_ptr<Model> model_with(const std::string& synthesis, uint64_t seed) {
  auto m = std::make_unique<Model>(Config::parse("latent_channels = 12\nanalysis = cnn\nanalysis.channels_base = 8\n"
                                                 "analysis.activation = gdn\nhyper_analysis = hyper\nhyper_synthesis = hyper\n" +
                                                 synthesis));
  Rng rng(seed);
  m->init(rng);
  return m;
}

Tensor image(int h, int w, uint64_t seed) {
  Rng rng(seed);
  return Tensor::uniform({1, 3, h, w}, 0, 255, rng);
}

// An affine synthesis (one transposed convolution) maps the latent line onto the pixel line: no
// deviation, and the decoded curve is exactly as long as the distance between its ends.
TEST(Manifold, AffineSynthesisIsFlat) {
  auto m = model_with("synthesis = jpeg_like\n", 5);
  const ManifoldPair p = manifold_pair(*m, image(48, 40, 1), image(48, 40, 2), 0, 5, 4);
  ASSERT_EQ(p.t.size(), 5u);
  EXPECT_EQ(p.t.front(), 0.0);
  EXPECT_EQ(p.t.back(), 1.0);
  const double scale = p.endpoint_distance * p.endpoint_distance / (3 * 48 * 40);  // mean squared distance of the ends
  ASSERT_GT(scale, 0);
  for (double v : p.mse_to_line) EXPECT_LT(v, 1e-9 * scale + 1e-9);
  EXPECT_NEAR(p.length_ratio(), 1.0, 1e-6);
  EXPECT_NEAR(p.length_coarse, p.length, 1e-6 * p.length);
  // The mixup error of an affine g is its reconstruction error, which the endpoints have too.
  EXPECT_GT(p.mse_to_mixup.front(), 0);
}

// A strongly nonlinear synthesis bends the curve: it leaves the pixel line between the ends (never
// at them), and its polygon is longer than the chord and grows as the grid refines.
TEST(Manifold, NonlinearSynthesisBends) {
  auto m = model_with("synthesis = two_layer\nsynthesis.channels = 6\nsynthesis.activation = relu\n", 6);
  for (auto& [n, t] : m->named_parameters())  // large weights: the ReLUs switch along the line
    if (n.rfind("g_s.", 0) == 0)
      for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] *= 8.f;
  Tensor strip;
  const ManifoldPair p = manifold_pair(*m, image(32, 48, 3), image(32, 48, 4), 0, 5, 8, &strip, 4);
  EXPECT_EQ(p.mse_to_line.front(), 0.0);
  EXPECT_EQ(p.mse_to_line.back(), 0.0);
  EXPECT_GT(*std::max_element(p.mse_to_line.begin(), p.mse_to_line.end()), 1e-3);
  EXPECT_GT(p.length_ratio(), 1.0 + 1e-4);
  EXPECT_GE(p.length, p.length_coarse);
  // The strip: γ̂ on top, the pixel line below, 4 points of t side by side; equal at the ends.
  ASSERT_EQ(strip.shape(), (Shape{1, 3, 64, 4 * 48}));
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 32; ++y)
      for (int64_t x : {int64_t(0), int64_t(3 * 48 + 5)})
        EXPECT_EQ(strip.data()[(c * 64 + y) * 192 + x], strip.data()[(c * 64 + 32 + y) * 192 + x]);
}

// A JPEG-like synthesis with kernel 16 is a block transform: the basis function of a channel is
// its kernel, v·255·w[c] on the 0..255 scale, exactly in the latent's own block and zero around it.
// With kernel 18 the kernel overlaps the neighbouring blocks by one pixel on each side.
TEST(Filters, BasisResponseIsTheKernel) {
  for (int k : {16, 18}) {
    auto m = model_with("synthesis = jpeg_like\nsynthesis.kernel = " + std::to_string(k) + "\n", 8);
    Tensor w;
    for (auto& [n, t] : m->named_parameters())
      if (n == "g_s.deconv.weight") w = t;  // [M, 3, k, k]
    ASSERT_TRUE(w.defined());
    const int c = 5, pad = (k - 16) / 2;
    const Tensor r = basis_response(*m, c, 2.0, 0, 1);
    ASSERT_EQ(r.shape(), (Shape{1, 3, 48, 48}));
    for (int o = 0; o < 3; ++o)
      for (int y = 0; y < 48; ++y)
        for (int x = 0; x < 48; ++x) {
          const int ky = y - 16 + pad, kx = x - 16 + pad;  // the kernel tap that lands on (y, x)
          const bool in = ky >= 0 && ky < k && kx >= 0 && kx < k;
          const double want = in ? 2.0 * 255.0 * w.data()[((int64_t(c) * 3 + o) * k + ky) * k + kx] : 0.0;
          ASSERT_NEAR(r.data()[(o * 48 + y) * 48 + x], want, 1e-3) << "k" << k << " " << o << "," << y << "," << x;
        }
  }
}

TEST(Filters, ChannelsOrderedByEnergy) {
  auto m = model_with("synthesis = jpeg_like\n", 9);
  const auto e = channels_by_energy(*m, {image(64, 64, 1), image(32, 48, 2)}, 0);
  ASSERT_EQ(e.size(), 12u);
  std::vector<int> seen;
  for (size_t i = 0; i < e.size(); ++i) {
    seen.push_back(e[i].first);
    if (i) {
      EXPECT_GE(e[i - 1].second, e[i].second);
    }
  }
  std::sort(seen.begin(), seen.end());
  for (int c = 0; c < 12; ++c) EXPECT_EQ(seen[size_t(c)], c);
  EXPECT_GT(e.front().second, 0);
}

TEST(Manifold, BadArgumentsAreErrors) {
  auto m = model_with("synthesis = jpeg_like\n", 7);
  EXPECT_THROW(manifold_pair(*m, image(16, 16, 1), image(16, 20, 2), 0, 5, 4), Error);
  EXPECT_THROW(manifold_pair(*m, image(16, 16, 1), image(16, 16, 2), 0, 1, 4), Error);
  EXPECT_THROW(manifold_pair(*m, image(16, 16, 1), image(16, 16, 2), 0, 5, 3), Error);
}

}  // namespace
}  // namespace ntc::nn
