// Every op's backward against central finite differences, on random shapes with odd sizes;
// forward semantics checked against direct definitions where no test vector covers them.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <tuple>

#include "kernels/conv3x3.h"
#include "kernels/im2col.h"
#include "kernels/kernels.h"
#include "kernels/pointwise.h"
#include "lib/common.h"
#include "lib/flops.h"
#include "lib/gemm.h"
#include "lib/ops/items.h"
#include "lib/ops/ops.h"
#include "lib/rng.h"
#include "lib/threads.h"
#include "tests/gradcheck.h"
#include "tests/targets.h"

namespace ntc {
namespace {

using testing::gradcheck;
using testing::GradCheckOpts;

Tensor rnd(const Shape& s, Rng& rng, float lo = -1.f, float hi = 1.f) {
  return Tensor::uniform(s, lo, hi, rng).set_requires_grad(true);
}

// ---------------------------------------------------------------- elementwise
TEST(Ops, BinaryBroadcastGradients) {
  Rng rng(1);
  const Shape s{2, 3, 5, 7};
  for (Shape bs : {Shape{2, 3, 5, 7}, Shape{3}, Shape{1, 3, 1, 1}, Shape{1}, Shape{}}) {
    Tensor a = rnd(s, rng), b = rnd(bs, rng, 0.5f, 1.5f);  // b away from 0 for div
    gradcheck("add " + shape_str(bs), {a, b}, [](auto& v) { return add(v[0], v[1]); });
    gradcheck("add swapped " + shape_str(bs), {a, b}, [](auto& v) { return add(v[1], v[0]); });
    gradcheck("sub " + shape_str(bs), {a, b}, [](auto& v) { return sub(v[0], v[1]); });
    gradcheck("mul " + shape_str(bs), {a, b}, [](auto& v) { return mul(v[0], v[1]); });
    gradcheck("mul swapped " + shape_str(bs), {a, b}, [](auto& v) { return mul(v[1], v[0]); });
    gradcheck("div " + shape_str(bs), {a, b}, [](auto& v) { return div(v[0], v[1]); });
  }
}

TEST(Ops, BroadcastForwardValues) {
  Tensor a = Tensor::from({1, 2, 1, 2}, {1, 2, 3, 4});
  Tensor b = Tensor::from({2}, {10, 20});
  EXPECT_EQ(add(a, b).to_vector(), (std::vector<float>{11, 12, 23, 24}));
  EXPECT_EQ(sub(a, b).to_vector(), (std::vector<float>{-9, -8, -17, -16}));
  EXPECT_EQ(mul(b, a).to_vector(), (std::vector<float>{10, 20, 60, 80}));
  EXPECT_EQ(div(a, Tensor::from({}, {2})).to_vector(), (std::vector<float>{0.5, 1, 1.5, 2}));
  EXPECT_THROW(add(a, Tensor::from({3}, {1, 2, 3})), Error);
}

TEST(Ops, ScalarAffineGradients) {
  Rng rng(2);
  Tensor x = rnd({3, 1, 4, 5}, rng);
  gradcheck("add_scalar", {x}, [](auto& v) { return add_scalar(v[0], 0.7f); });
  gradcheck("mul_scalar", {x}, [](auto& v) { return mul_scalar(v[0], -1.3f); });
}

// ---------------------------------------------------------------- activations
TEST(Ops, ActivationGradients) {
  Rng rng(3);
  const Shape s{2, 3, 7, 5};
  struct Case {
    const char* name;
    Tensor (*f)(const Tensor&);
    float lo, hi;
    std::vector<float> kinks;
  };
  const Case cases[] = {
      {"relu", [](const Tensor& x) { return relu(x); }, -2, 2, {0}},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2f); }, -2, 2, {0}},
      {"gelu", [](const Tensor& x) { return gelu(x); }, -4, 4, {}},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, -6, 6, {}},
      {"softplus", [](const Tensor& x) { return softplus(x); }, -6, 6, {}},
      {"tanh", [](const Tensor& x) { return tanh(x); }, -3, 3, {}},
      {"abs", [](const Tensor& x) { return abs(x); }, -2, 2, {0}},
      {"exp", [](const Tensor& x) { return exp(x); }, -3, 2, {}},
      {"log", [](const Tensor& x) { return log(x); }, 0.2f, 4, {}},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0.2f, 4, {}},
      {"square", [](const Tensor& x) { return square(x); }, -2, 2, {}},
      {"clip", [](const Tensor& x) { return clip(x, -0.5f, 0.8f); }, -2, 2, {-0.5f, 0.8f}},
      // Below the bound lower_bound passes only negative gradients (not a derivative; checked in
      // LowerBoundGradientRule), so FD is valid above it.
      {"lower_bound", [](const Tensor& x) { return lower_bound(x, 0.3f); }, 0.35f, 2, {}},
  };
  for (const auto& c : cases) {
    Tensor x = rnd(s, rng, c.lo, c.hi);
    testing::away_from(x, c.kinks, 0.05f);
    EXPECT_GT(gradcheck(c.name, {x}, [&](auto& v) { return c.f(v[0]); }), 0);
  }
}

TEST(Ops, ActivationForwardValues) {
  Tensor x = Tensor::from({5}, {-2, -0.5f, 0, 0.5f, 3});
  auto y = leaky_relu(x, 0.2f).to_vector();
  EXPECT_FLOAT_EQ(y[0], -0.4f);
  EXPECT_FLOAT_EQ(y[4], 3.f);
  auto g = gelu(x).to_vector();
  for (int i = 0; i < 5; ++i) {
    double v = x.data()[i];
    EXPECT_NEAR(g[size_t(i)], 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))), 2e-7 * (1 + std::fabs(v)));
  }
  auto sp = softplus(x).to_vector();
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(sp[size_t(i)], std::log1p(std::exp(double(x.data()[i]))), 1e-6);
  EXPECT_EQ(clip(x, -1, 1).to_vector(), (std::vector<float>{-1, -0.5f, 0, 0.5f, 1}));
  EXPECT_EQ(lower_bound(x, 0.1f).to_vector(), (std::vector<float>{0.1f, 0.1f, 0.1f, 0.5f, 3}));
}

// lower_bound passes the gradient below the bound only when it is negative.
TEST(Ops, LowerBoundGradientRule) {
  Tensor x = Tensor::from({4}, {-1, -1, 2, 2}).set_requires_grad(true);
  Tensor y = lower_bound(x, 0.f);
  Tensor up = Tensor::from({4}, {1, -1, 1, -1});
  sum(mul(y, up)).backward();
  EXPECT_EQ(x.grad_tensor().to_vector(), (std::vector<float>{0, -1, 1, -1}));
}

// ---------------------------------------------------------------- reductions, matmul
TEST(Ops, ReductionAndMatmulGradients) {
  Rng rng(4);
  Tensor x = rnd({3, 5, 7}, rng);
  gradcheck("sum", {x}, [](auto& v) { return sum(v[0]); });
  gradcheck("mean", {x}, [](auto& v) { return mean(v[0]); });
  Tensor a = rnd({5, 7}, rng), b = rnd({7, 3}, rng);
  gradcheck("matmul", {a, b}, [](auto& v) { return matmul(v[0], v[1]); });
  Tensor c = matmul(Tensor::from({1, 2}, {1, 2}), Tensor::from({2, 1}, {3, 4}));
  EXPECT_FLOAT_EQ(c.item(), 11.f);
}

// ---------------------------------------------------------------- convolutions
// Direct definitions (SPEC §1.0) to check the im2col+GEMM forward on odd geometries.
std::vector<double> conv2d_direct(const Tensor& x, const Tensor& w, const Tensor& b, int s, Pad2 p) {
  const int N = int(x.dim(0)), C = int(x.dim(1)), H = int(x.dim(2)), W = int(x.dim(3));
  const int O = int(w.dim(0)), kh = int(w.dim(2)), kw = int(w.dim(3));
  const int Ho = (H + p.top + p.bottom - kh) / s + 1, Wo = (W + p.left + p.right - kw) / s + 1;
  std::vector<double> y(size_t(N) * O * Ho * Wo);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o)
      for (int i = 0; i < Ho; ++i)
        for (int j = 0; j < Wo; ++j) {
          double acc = b.defined() ? b.data()[o] : 0.0;
          for (int c = 0; c < C; ++c)
            for (int u = 0; u < kh; ++u)
              for (int v = 0; v < kw; ++v) {
                int iy = i * s + u - p.top, ix = j * s + v - p.left;
                if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                  acc += double(x.data()[((n * C + c) * H + iy) * W + ix]) *
                         w.data()[((o * C + c) * kh + u) * kw + v];
              }
          y[((size_t(n) * O + o) * Ho + i) * Wo + j] = acc;
        }
  return y;
}

std::vector<double> convT_direct(const Tensor& x, const Tensor& w, const Tensor& b, int s, Pad2 p) {
  const int N = int(x.dim(0)), C = int(x.dim(1)), H = int(x.dim(2)), W = int(x.dim(3));
  const int O = int(w.dim(1)), kh = int(w.dim(2)), kw = int(w.dim(3));
  const int Ho = (H - 1) * s + kh - p.top - p.bottom, Wo = (W - 1) * s + kw - p.left - p.right;
  std::vector<double> y(size_t(N) * O * Ho * Wo);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o)
      for (int i = 0; i < Ho * Wo; ++i) y[(size_t(n) * O + o) * Ho * Wo + i] = b.defined() ? b.data()[o] : 0;
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int i = 0; i < H; ++i)
        for (int j = 0; j < W; ++j)
          for (int o = 0; o < O; ++o)
            for (int u = 0; u < kh; ++u)
              for (int v = 0; v < kw; ++v) {
                int py = i * s + u - p.top, px = j * s + v - p.left;
                if (py >= 0 && py < Ho && px >= 0 && px < Wo)
                  y[((size_t(n) * O + o) * Ho + py) * Wo + px] +=
                      double(x.data()[((n * C + c) * H + i) * W + j]) * w.data()[((c * O + o) * kh + u) * kw + v];
              }
  return y;
}

void expect_close(const Tensor& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(size_t(got.numel()), want.size()) << what;
  double mx = 1e-6;
  for (double v : want) mx = std::max(mx, std::fabs(v));
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got.data()[i], want[i], 2e-6 * mx) << what << " element " << i;
}

struct ConvCase {
  int k, s, H, W;
};
const ConvCase kConvCases[] = {{5, 2, 17, 24}, {5, 2, 16, 9}, {3, 1, 7, 5}, {1, 1, 5, 6},
                               {3, 2, 1, 1},   {9, 4, 13, 10}, {13, 8, 3, 2}, {18, 16, 2, 3},
                               {6, 4, 3, 4},   {16, 16, 2, 2}, {1, 2, 4, 5}};

TEST(Ops, Conv2dForwardMatchesDirectAndGradients) {
  Rng rng(5);
  for (const auto& c : kConvCases) {
    const int Cin = 3, Cout = 4;
    Tensor x = rnd({2, Cin, c.H, c.W}, rng), w = rnd({Cout, Cin, c.k, c.k}, rng), b = rnd({Cout}, rng);
    std::string name = "conv2d k" + std::to_string(c.k) + "s" + std::to_string(c.s) + " " +
                       std::to_string(c.H) + "x" + std::to_string(c.W);
    Pad2 same = same_pad_conv(c.H, c.W, c.k, c.k, c.s);
    Tensor y = conv2d_same(x, w, b, c.s);
    EXPECT_EQ(y.dim(2), (c.H + c.s - 1) / c.s) << name;  // SAME: ceil(n/s)
    expect_close(y, conv2d_direct(x, w, b, c.s, same), name);
    Pad2 expl{c.k / 2, (c.k - 1) / 2, c.k / 2, (c.k - 1) / 2};  // SignalConv alignment
    expect_close(conv2d(x, w, Tensor(), c.s, expl), conv2d_direct(x, w, Tensor(), c.s, expl), name + " explicit");
    gradcheck(name, {x, w, b}, [&](auto& v) { return conv2d_same(v[0], v[1], v[2], c.s); });
  }
}

TEST(Ops, ConvTranspose2dForwardMatchesDirectAndGradients) {
  Rng rng(6);
  for (const auto& c : kConvCases) {
    const int Cin = 3, Cout = 2;
    Tensor x = rnd({2, Cin, c.H, c.W}, rng), w = rnd({Cin, Cout, c.k, c.k}, rng), b = rnd({Cout}, rng);
    std::string name = "convT k" + std::to_string(c.k) + "s" + std::to_string(c.s) + " " +
                       std::to_string(c.H) + "x" + std::to_string(c.W);
    Tensor y = conv_transpose2d_same(x, w, b, c.s);
    EXPECT_EQ(y.dim(2), int64_t(c.H) * c.s) << name;  // SAME transpose: n·s exactly
    EXPECT_EQ(y.dim(3), int64_t(c.W) * c.s) << name;
    expect_close(y, convT_direct(x, w, b, c.s, same_pad_conv_transpose(c.k, c.k, c.s)), name);
    Pad2 sig{c.k / 2, c.k - c.s - c.k / 2, c.k / 2, c.k - c.s - c.k / 2};  // SignalConv upsampling
    if (sig.top >= 0)
      expect_close(conv_transpose2d(x, w, Tensor(), c.s, sig), convT_direct(x, w, Tensor(), c.s, sig),
                   name + " signalconv");
    gradcheck(name, {x, w, b}, [&](auto& v) { return conv_transpose2d_same(v[0], v[1], v[2], c.s); });
  }
}

// Outputs of >= 4096 pixels are processed in bands of rows (each band's im2col and col2im only
// touch its rows); smaller images share one GEMM side by side. Both against direct sums and FD.
TEST(Ops, ConvolutionBandsAndGroups) {
  Rng rng(14);
  for (auto [N, H, W] : {std::tuple{2, 70, 75}, std::tuple{5, 9, 7}}) {
    Tensor x = rnd({N, 2, H, W}, rng), w = rnd({3, 2, 3, 3}, rng), b = rnd({3}, rng);
    Tensor w1 = rnd({3, 2, 1, 1}, rng), wt = rnd({2, 3, 5, 5}, rng);
    const std::string size = std::to_string(N) + "x" + std::to_string(H) + "x" + std::to_string(W);
    expect_close(conv2d_same(x, w, b, 1), conv2d_direct(x, w, b, 1, {1, 1, 1, 1}), "conv2d " + size);
    expect_close(conv2d_same(x, w1, b, 1), conv2d_direct(x, w1, b, 1, {0, 0, 0, 0}), "conv2d 1x1 " + size);
    expect_close(conv_transpose2d_same(x, wt, b, 2), convT_direct(x, wt, b, 2, same_pad_conv_transpose(5, 5, 2)),
                 "convT " + size);
    GradCheckOpts o;
    o.max_elems = 24;
    gradcheck("conv2d " + size, {x, w, b}, [](auto& v) { return conv2d_same(v[0], v[1], v[2], 1); }, o);
    gradcheck("conv2d 1x1 " + size, {x, w1, b}, [](auto& v) { return conv2d_same(v[0], v[1], v[2], 1); }, o);
    gradcheck("convT " + size, {x, wt, b}, [](auto& v) { return conv_transpose2d_same(v[0], v[1], v[2], 2); }, o);
  }
}

// With ntc's GEMM kernel, conv2d builds its im2col columns inside the GEMM (implicit GEMM) and
// computes its input gradient a few channels at a time, and conv_transpose2d's backward builds
// im2col(dy) inside its GEMMs; with OpenBLAS both materialise them. On
// shapes with several k-blocks, bands and grouped images: forward and all gradients agree between
// the two back ends, match the direct sum, and the implicit path gives the same bits on 1 and 3
// threads.
TEST(Ops, ConvImplicitGemmMatchesExplicit) {
  Rng rng(31);
  const int saved = num_threads();
  for (auto [N, H, W] : {std::tuple{2, 70, 67}, std::tuple{5, 17, 14}}) {
    const Tensor x0 = Tensor::uniform({N, 24, H, W}, -1, 1, rng), w0 = Tensor::uniform({20, 24, 5, 5}, -0.2f, 0.2f, rng);
    const Tensor b0 = Tensor::uniform({20}, -1, 1, rng);
    const Tensor gy = Tensor::uniform({N, 20, (H + 1) / 2, (W + 1) / 2}, -1, 1, rng);
    const Tensor wt0 = Tensor::uniform({20, 14, 5, 5}, -0.2f, 0.2f, rng), bt0 = Tensor::uniform({14}, -1, 1, rng);
    const Tensor gyt = Tensor::uniform({N, 14, (H + 1) / 2 * 2, (W + 1) / 2 * 2}, -1, 1, rng);
    std::vector<std::vector<float>> runs;  // y, dx, dw, db per run
    for (auto [be, threads] : {std::pair{GemmBackend::Ntc, 1}, std::pair{GemmBackend::Ntc, 3},
                               std::pair{GemmBackend::OpenBLAS, 2}}) {
      set_gemm_backend(be);
      set_num_threads(threads);
      Tensor x = x0.detach().set_requires_grad(true), w = w0.detach().set_requires_grad(true),
             b = b0.detach().set_requires_grad(true), wt = wt0.detach().set_requires_grad(true),
             bt = bt0.detach().set_requires_grad(true);
      Tensor y = conv2d_same(x, w, b, 2);
      // and a transposed conv back up (its backward builds im2col(dy) inside the GEMMs)
      Tensor yt = conv_transpose2d_same(y, wt, bt, 2);
      add(sum(mul(y, gy)), sum(mul(yt, gyt))).backward();
      std::vector<float> all(y.data(), y.data() + y.numel());
      all.insert(all.end(), yt.data(), yt.data() + yt.numel());
      for (const Tensor* t : {&x, &w, &b, &wt, &bt}) all.insert(all.end(), t->grad(), t->grad() + t->numel());
      runs.push_back(all);
      if (runs.size() == 1) expect_close(y, conv2d_direct(x0, w0, b0, 2, same_pad_conv(H, W, 5, 5, 2)), "implicit");
    }
    const std::string size = std::to_string(N) + "x" + std::to_string(H) + "x" + std::to_string(W);
    EXPECT_EQ(runs[0], runs[1]) << "implicit GEMM, 1 vs 3 threads, " << size;
    ASSERT_EQ(runs[0].size(), runs[2].size());
    double worst = 0;
    for (size_t i = 0; i < runs[0].size(); ++i)
      worst = std::max(worst, double(std::fabs(runs[0][i] - runs[2][i])) / (1 + std::fabs(runs[2][i])));
    EXPECT_LT(worst, 2e-4) << "implicit vs materialised, " << size;  // rounding; wrong indexing gives O(1)
  }
  set_gemm_backend(GemmBackend::Auto);
  set_num_threads(saved);
}

// y = conv(x, w, b) and the gradients of x, w and b for sum(y ⊙ gy), run on 1 and on 3 threads.
std::array<std::vector<float>, 2> on_1_and_3_threads(
    const Tensor& x0, const Tensor& w0, const Tensor& b0, const Tensor& gy,
    const std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>& conv) {
  std::array<std::vector<float>, 2> runs;
  for (int r = 0; r < 2; ++r) {
    set_num_threads(r ? 3 : 1);
    Tensor xg = x0.detach().set_requires_grad(true), wg = w0.detach().set_requires_grad(true),
           bg = b0.detach().set_requires_grad(true);
    Tensor y = conv(xg, wg, bg);
    sum(mul(y, gy)).backward();
    runs[size_t(r)] = y.to_vector();
    for (const Tensor* t : {&xg, &wg, &bg}) runs[size_t(r)].insert(runs[size_t(r)].end(), t->grad(), t->grad() + t->numel());
  }
  return runs;
}

// 1×1 convolutions with few channels run the direct kernel (kernels/pointwise.h) in training: its
// AVX2 form and its scalar twin give the same bits on odd pixel counts (tails of 1 … 15 pixels,
// several 16-pixel steps) and channel counts that leave partial groups of 4 rows.
TEST(Ops, PointwiseKernelAndTwinGiveTheSameBits) {
  const bool saved_ref = k::use_reference_kernels();  // on in the scalar build
  k::set_reference_kernels(false);
  Rng rng(71);
  for (auto [Cin, Cout] : {std::pair{7, 16}, std::pair{16, 3}, std::pair{1, 1}, std::pair{5, 9}, std::pair{33, 2}})
    for (int64_t P : {int64_t(1), int64_t(15), int64_t(16), int64_t(37), int64_t(300), int64_t(777), int64_t(8197)}) {
      const int64_t ld = P + 3;  // rows of a wider image
      std::vector<float> x(size_t(Cin) * ld), dy(size_t(Cout) * ld), w(size_t(Cout) * Cin), b(static_cast<size_t>(Cout));
      for (auto* v : {&x, &dy, &w, &b}) rng.fill_uniform(v->data(), v->size(), -1, 1);
      std::vector<float> y1(size_t(Cout) * ld, 7.f), y2 = y1, dx1(size_t(Cin) * ld, 0.5f), dx2 = dx1;
      std::vector<float> gw1(w.size()), gw2(w.size()), gb1(b.size()), gb2(b.size());
      k::pointwise_fwd(x.data(), ld, Cin, w.data(), b.data(), Cout, y1.data(), ld, P);
      k::ref::pointwise_fwd(x.data(), ld, Cin, w.data(), b.data(), Cout, y2.data(), ld, P);
      k::pointwise_bwd(x.data(), ld, Cin, w.data(), dy.data(), ld, Cout, dx1.data(), ld, gw1.data(), gb1.data(), P);
      k::ref::pointwise_bwd(x.data(), ld, Cin, w.data(), dy.data(), ld, Cout, dx2.data(), ld, gw2.data(), gb2.data(), P);
      const std::string what = std::to_string(Cin) + "->" + std::to_string(Cout) + ", " + std::to_string(P) + " px";
      EXPECT_EQ(y1, y2) << what;  // (the columns past P keep their 7s in both)
      EXPECT_EQ(dx1, dx2) << what;
      EXPECT_EQ(gw1, gw2) << what;
      EXPECT_EQ(gb1, gb2) << what;
      // dx_write sets dx to what adding into zeros gives, to the bit, whatever dx held (NaN here),
      // in both forms; the columns past P stay untouched
      const float nan = std::numeric_limits<float>::quiet_NaN();
      std::vector<float> dxz(dx1.size(), 0.f), dxw1(dx1.size(), nan), dxw2 = dxw1;
      k::pointwise_bwd(x.data(), ld, Cin, w.data(), dy.data(), ld, Cout, dxz.data(), ld, nullptr, nullptr, P);
      k::pointwise_bwd(x.data(), ld, Cin, w.data(), dy.data(), ld, Cout, dxw1.data(), ld, nullptr, nullptr, P, true);
      k::ref::pointwise_bwd(x.data(), ld, Cin, w.data(), dy.data(), ld, Cout, dxw2.data(), ld, nullptr, nullptr, P, true);
      for (int i = 0; i < Cin; ++i)
        for (int64_t p = 0; p < ld; ++p) {
          const size_t e = size_t(i * ld + p);
          if (p < P) {
            EXPECT_EQ(0, std::memcmp(&dxz[e], &dxw1[e], sizeof(float))) << what << " dx_write at " << e;
            EXPECT_EQ(0, std::memcmp(&dxz[e], &dxw2[e], sizeof(float))) << what << " twin's dx_write at " << e;
          } else {
            EXPECT_TRUE(std::isnan(dxw1[e]) && std::isnan(dxw2[e])) << what << " column " << p;
          }
        }
      // and the twin is the convolution: against a double-precision sum
      double worst = 0;
      for (int o = 0; o < Cout; ++o)
        for (int64_t p = 0; p < P; ++p) {
          double want = b[size_t(o)];
          for (int i = 0; i < Cin; ++i) want += double(w[size_t(o * Cin + i)]) * x[size_t(i * ld + p)];
          worst = std::max(worst, std::fabs(want - y2[size_t(o * ld + p)]));
        }
      EXPECT_LT(worst, 1e-5 * (Cin + 1)) << what;
    }
  k::set_reference_kernels(saved_ref);
}

// conv2d through the pointwise kernel: the forward against the direct sum, the three gradients
// against finite differences, and the same bits on 1 and 3 threads for an image of several chunks.
TEST(Ops, PointwiseConvolutionForwardGradientsAndThreads) {
  Rng rng(72);
  const Tensor x = rnd({2, 5, 7, 9}, rng), w = rnd({6, 5, 1, 1}, rng), b = rnd({6}, rng);
  expect_close(conv2d(x, w, b, 1, Pad2{}), conv2d_direct(x, w, b, 1, Pad2{}), "pointwise");
  gradcheck("pointwise conv2d", {x, w, b}, [](auto& v) { return conv2d(v[0], v[1], v[2], 1, Pad2{}); });
  gradcheck("pointwise conv2d, no bias", {x, w}, [](auto& v) { return conv2d(v[0], v[1], Tensor(), 1, Pad2{}); });
  // x with a second use: its gradient is set by the pointwise backward (dx_write) or added to, by
  // whichever backward runs first; both orders of recording
  gradcheck("pointwise conv2d and another use of x", {x, w, b}, [](auto& v) {
    return add(conv2d(v[0], v[1], v[2], 1, Pad2{}), conv2d(mul(v[0], v[0]), v[1], v[2], 1, Pad2{}));
  });
  gradcheck("another use of x and pointwise conv2d", {x, w, b}, [](auto& v) {
    const Tensor sq = conv2d(mul(v[0], v[0]), v[1], v[2], 1, Pad2{});
    return add(sq, conv2d(v[0], v[1], v[2], 1, Pad2{}));
  });
  const int saved = num_threads();
  const Tensor x0 = Tensor::uniform({2, 7, 101, 90}, -1, 1, rng), w0 = Tensor::uniform({16, 7, 1, 1}, -1, 1, rng);
  const Tensor b0 = Tensor::uniform({16}, -1, 1, rng), gy = Tensor::uniform({2, 16, 101, 90}, -1, 1, rng);
  ASSERT_GT(x0.dim(2) * x0.dim(3), k::kPointwiseChunk);
  const auto runs = on_1_and_3_threads(x0, w0, b0, gy, [](auto& x, auto& w, auto& b) { return conv2d(x, w, b, 1, Pad2{}); });
  set_num_threads(saved);
  EXPECT_EQ(runs[0], runs[1]) << "1 vs 3 threads";
}

// pointwise_relu is relu(conv2d) fused (the overfitted codec's hidden layers): the same output and
// input, weight and bias gradients to the bit as the two ops, on an image of several chunks with a
// good share of negative pre-activations, on 1 and 3 threads, with and without the scalar twins,
// and through the unfused fallback (a 1×1 layer too wide for the direct kernel).
TEST(Ops, PointwiseReluIsReluOfConvToTheBit) {
  Rng rng(74);
  const int saved = num_threads();
  const bool saved_ref = k::use_reference_kernels();
  for (auto [Cin, Cout] : {std::pair{7, 16}, std::pair{16, 8}, std::pair{30, 20}}) {
    const Tensor x0 = Tensor::uniform({2, Cin, 101, 90}, -1, 1, rng), w0 = Tensor::uniform({Cout, Cin, 1, 1}, -1, 1, rng);
    const Tensor b0 = Tensor::uniform({Cout}, -0.5f, 0.5f, rng), gy = Tensor::uniform({2, Cout, 101, 90}, -1, 1, rng);
    ASSERT_GT(x0.dim(2) * x0.dim(3), k::kPointwiseChunk);
    for (bool twins : {false, true}) {
      k::set_reference_kernels(twins);
      const auto fused = on_1_and_3_threads(x0, w0, b0, gy, [](auto& x, auto& w, auto& b) { return pointwise_relu(x, w, b); });
      const auto apart =
          on_1_and_3_threads(x0, w0, b0, gy, [](auto& x, auto& w, auto& b) { return relu(conv2d(x, w, b, 1, Pad2{})); });
      const std::string what = std::to_string(Cin) + " -> " + std::to_string(Cout) + (twins ? ", twins" : "");
      EXPECT_EQ(fused[0], apart[0]) << what << ", 1 thread";
      EXPECT_EQ(fused[1], apart[1]) << what << ", 3 threads";
      EXPECT_EQ(fused[0], fused[1]) << what << ", 1 vs 3 threads";
      size_t zeros = 0;
      for (int64_t i = 0; i < 2 * Cout * 101 * 90; ++i) zeros += fused[0][size_t(i)] == 0.f;
      EXPECT_GT(zeros, size_t(2 * Cout * 101 * 90 / 5)) << what << ": the ReLU should clip a good share";
    }
  }
  k::set_reference_kernels(saved_ref);
  set_num_threads(saved);
}

// 3×3 stride-1 convolutions with at most 4 channels run the direct kernel (kernels/conv3x3.h) in
// training: its AVX2 form and its scalar twin give the same bits, forward (fresh and accumulated),
// flipped (the input gradient) and for the weight and bias gradients, on widths below, at and past
// a 16-pixel step with tails, and on row ranges that start inside the image.
TEST(Ops, Conv3x3KernelAndTwinGiveTheSameBits) {
  const bool saved_ref = k::use_reference_kernels();  // on in the scalar build
  k::set_reference_kernels(false);
  Rng rng(73);
  for (auto [Cin, Cout] : {std::pair{3, 3}, std::pair{1, 4}, std::pair{4, 1}, std::pair{2, 3}})
    for (auto [H, W] : {std::pair{1, 1}, std::pair{5, 7}, std::pair{4, 16}, std::pair{6, 37}, std::pair{3, 50}}) {
      std::vector<float> x(size_t(Cin) * H * W), dy(size_t(Cout) * H * W), w(size_t(Cout) * Cin * 9), b(static_cast<size_t>(Cout));
      for (auto* v : {&x, &dy, &w, &b}) rng.fill_uniform(v->data(), v->size(), -1, 1);
      std::vector<float> xp(size_t(Cin) * (H + 2) * (W + 2));
      k::conv3x3_pad(x.data(), Cin, H, W, xp.data());
      const std::string what = std::to_string(Cin) + "->" + std::to_string(Cout) + " " + std::to_string(H) + "x" + std::to_string(W);
      for (bool acc : {false, true}) {
        std::vector<float> y1(size_t(Cout) * H * W, 0.25f), y2 = y1;
        k::conv3x3_rows(xp.data(), Cin, H, W, w.data(), b.data(), Cout, acc, y1.data(), H / 3, H);
        k::ref::conv3x3_rows(xp.data(), Cin, H, W, w.data(), b.data(), Cout, acc, y2.data(), H / 3, H);
        EXPECT_EQ(y1, y2) << what << (acc ? ", accumulated" : "");
        if (!acc) {  // the twin against a double-precision sum
          double worst = 0;
          for (int o = 0; o < Cout; ++o)
            for (int r = H / 3; r < H; ++r)
              for (int c = 0; c < W; ++c) {
                double want = b[size_t(o)];
                for (int i = 0; i < Cin; ++i)
                  for (int ky = 0; ky < 3; ++ky)
                    for (int kx = 0; kx < 3; ++kx) {
                      const int iy = r + ky - 1, ix = c + kx - 1;
                      if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                        want += double(w[size_t(((o * Cin + i) * 3 + ky) * 3 + kx)]) * x[size_t((i * H + iy) * W + ix)];
                    }
                worst = std::max(worst, std::fabs(want - y2[size_t((o * H + r) * W + c)]));
              }
          EXPECT_LT(worst, 1e-5 * (9 * Cin + 1)) << what;
        }
      }
      std::vector<float> g1(w.size() + b.size(), 9.f), g2(g1.size(), -9.f);
      k::conv3x3_grads(xp.data(), Cin, H, W, dy.data(), Cout, g1.data(), g1.data() + w.size(), 0, H);
      k::ref::conv3x3_grads(xp.data(), Cin, H, W, dy.data(), Cout, g2.data(), g2.data() + w.size(), 0, H);
      EXPECT_EQ(g1, g2) << what << ", weight and bias gradients";
    }
  k::set_reference_kernels(saved_ref);
}

// conv2d through the direct 3×3 kernel: the forward against the direct sum, the three gradients
// against finite differences, and the same bits on 1 and 3 threads for images of several row chunks.
TEST(Ops, Conv3x3SmallForwardGradientsAndThreads) {
  Rng rng(74);
  const Tensor x = rnd({2, 3, 6, 37}, rng), w = rnd({3, 3, 3, 3}, rng), b = rnd({3}, rng);  // 2 steps and a tail
  const Pad2 one{1, 1, 1, 1};
  expect_close(conv2d(x, w, b, 1, one), conv2d_direct(x, w, b, 1, one), "3x3 small");
  expect_close(conv2d_same(x, w, b, 1), conv2d_direct(x, w, b, 1, one), "3x3 small, same");
  gradcheck("3x3 small conv2d", {x, w, b}, [](auto& v) { return conv2d_same(v[0], v[1], v[2], 1); });
  gradcheck("3x3 small conv2d, no bias", {x, w}, [](auto& v) { return conv2d_same(v[0], v[1], Tensor(), 1); });
  const int saved = num_threads();
  const Tensor x0 = Tensor::uniform({2, 3, 70, 300}, -1, 1, rng), w0 = Tensor::uniform({3, 3, 3, 3}, -1, 1, rng);
  const Tensor b0 = Tensor::uniform({3}, -1, 1, rng), gy = Tensor::uniform({2, 3, 70, 300}, -1, 1, rng);
  const auto runs = on_1_and_3_threads(x0, w0, b0, gy, [](auto& x, auto& w, auto& b) { return conv2d_same(x, w, b, 1); });
  set_num_threads(saved);
  EXPECT_EQ(runs[0], runs[1]) << "1 vs 3 threads";
}

// conv_transpose2d's forward on ntc's kernel computes its columns a few output channels at a time
// (x packed once) and adds each block up before the next: the bits of the whole product (one GEMM
// for all K rows of columns, then col2im), which old streams' hyper-synthesis was decoded with.
// Shapes with several channel blocks: the hyper-synthesis' k3 s1 and k5 s2 layers, the JPEG-like
// synthesis' k18 s16; images grouped side by side and one large image; 1 and 3 threads.
TEST(Ops, ConvTransposeInChannelBlocksGivesTheWholeProductsBits) {
  Rng rng(57);
  const int saved = num_threads();
  PortableProducts portable;  // ntc's kernel whatever --gemm says, as the decoder runs it
  struct Case {
    int N, Cin, H, W, Cout, k, s;
  };
  for (const Case c : {Case{2, 40, 20, 30, 70, 3, 1}, Case{3, 24, 12, 17, 60, 5, 2}, Case{1, 16, 40, 36, 64, 3, 1},
                       Case{2, 20, 4, 5, 30, 18, 16}}) {
    const Tensor x = Tensor::uniform({c.N, c.Cin, c.H, c.W}, -1, 1, rng);
    const Tensor w = Tensor::uniform({c.Cin, c.Cout, c.k, c.k}, -0.3f, 0.3f, rng);
    const Tensor b = c.k == 5 ? Tensor() : Tensor::uniform({c.Cout}, -1, 1, rng);  // (k5: no bias)
    const Pad2 pad = same_pad_conv_transpose(c.k, c.k, c.s);
    const int Ho = (c.H - 1) * c.s + c.k - pad.top - pad.bottom, Wo = (c.W - 1) * c.s + c.k - pad.left - pad.right;
    const int K = c.Cout * c.k * c.k, P = c.H * c.W;
    // The whole product per image: all K rows of columns in one GEMM, the bias, then col2im.
    std::vector<float> want(size_t(c.N) * c.Cout * Ho * Wo), col(size_t(K) * P);
    const k::ConvGeom g{c.Cout, Ho, Wo, c.k, c.k, c.s, pad.top, pad.left, c.H, c.W};
    for (int n = 0; n < c.N; ++n) {
      gemm(true, false, K, P, c.Cin, 1.f, w.data(), K, x.data() + int64_t(n) * c.Cin * P, P, 0.f, col.data(), P);
      float* yn = want.data() + int64_t(n) * c.Cout * Ho * Wo;
      for (int o = 0; o < c.Cout; ++o)
        std::fill(yn + int64_t(o) * Ho * Wo, yn + int64_t(o + 1) * Ho * Wo, b.defined() ? b.data()[o] : 0.f);
      k::col2im(g, col.data(), yn);
    }
    ASSERT_GT(int64_t(c.k) * c.k * P * c.Cout, int64_t(1) << 17) << "the case should take several channel blocks";
    for (int threads : {1, 3}) {
      set_num_threads(threads);
      NoGrad ng;
      EXPECT_EQ(conv_transpose2d(x, w, b, c.s, pad).to_vector(), want)
          << c.N << "x" << c.Cin << "x" << c.H << "x" << c.W << " -> " << c.Cout << ", k" << c.k << " s" << c.s << ", "
          << threads << " threads";
    }
  }
  set_num_threads(saved);
}

// 3x3 stride-1 convolutions with >= 128 channels in and out run Winograd F(2x2,3x3) forward; odd
// sizes exercise the partial tiles at the bottom/right edges.
TEST(Ops, WinogradConvolutionsMatchDirect) {
  Rng rng(13);
  for (auto [H, W] : {std::pair{1, 1}, std::pair{2, 3}, std::pair{7, 5}, std::pair{9, 12}}) {
    Tensor x = rnd({2, 128, H, W}, rng, -0.2f, 0.2f), w = rnd({130, 128, 3, 3}, rng, -0.2f, 0.2f), b = rnd({130}, rng);
    const std::string size = std::to_string(H) + "x" + std::to_string(W);
    expect_close(conv2d_same(x, w, b, 1), conv2d_direct(x, w, b, 1, {1, 1, 1, 1}), "winograd conv2d " + size);
    Tensor wt = rnd({128, 130, 3, 3}, rng, -0.2f, 0.2f);
    expect_close(conv_transpose2d_same(x, wt, b, 1), convT_direct(x, wt, b, 1, {1, 1, 1, 1}), "winograd convT " + size);
    gradcheck("winograd conv2d " + size, {x, w, b}, [](auto& v) { return conv2d_same(v[0], v[1], v[2], 1); });
    gradcheck("winograd convT " + size, {x, wt, b}, [](auto& v) { return conv_transpose2d_same(v[0], v[1], v[2], 1); });
  }
}

// The portable Winograd form of a stride-1 3×3 transposed conv (lib/gemm.h PortableWinograd, a
// stream's flag 1): close to the direct sums at any size (partial tiles at odd edges, several
// blocks of tile rows, a row of tiles wider than a block, more than one k-block of input channels
// in the packed U, output channels that do not fill the last panel), and the same bits on every
// SIMD target, thread count and with the scalar twins (which multiply by the plain U instead).
TEST(Ops, PortableWinogradTransposedConvMatchesDirectEverywhere) {
  Rng rng(61);
  struct Case {
    int N, Cin, Cout, H, W;
  };
  const int saved = num_threads();
  for (const Case c : {Case{2, 5, 7, 1, 1}, Case{1, 300, 40, 7, 9}, Case{3, 24, 33, 20, 13}, Case{1, 8, 16, 2, 201},
                       Case{1, 8, 16, 101, 3}, Case{2, 64, 96, 16, 24}}) {
    const Tensor x = rnd({c.N, c.Cin, c.H, c.W}, rng, -1, 1), w = rnd({c.Cin, c.Cout, 3, 3}, rng, -0.2f, 0.2f);
    const Tensor b = rnd({c.Cout}, rng);
    const std::string what = std::to_string(c.N) + "x" + std::to_string(c.Cin) + "x" + std::to_string(c.H) + "x" +
                             std::to_string(c.W) + " -> " + std::to_string(c.Cout);
    NoGrad ng;
    PortableProducts portable;
    std::vector<float> want, direct;
    {
      PortableWinograd form(true);
      const Tensor y = conv_transpose2d(x, w, b, 1, {1, 1, 1, 1});
      expect_close(y, convT_direct(x, w, b, 1, {1, 1, 1, 1}), "portable winograd convT " + what);
      want = y.to_vector();
    }
    direct = conv_transpose2d(x, w, b, 1, {1, 1, 1, 1}).to_vector();  // (outside the form: the direct one)
    if (c.Cin >= 24) {
      EXPECT_NE(want, direct) << what << ": the direct form's bits";
    }
    for (const int64_t target : test::simd_targets()) {
      if (target & (HWY_SSSE3 | HWY_SSE4)) continue;  // x86-64 builds of ntc need AVX2 (FMA)
      test::ForceTarget force(target);
      for (int threads : {1, 3}) {
        set_num_threads(threads);
        PortableWinograd form(true);
        EXPECT_EQ(conv_transpose2d(x, w, b, 1, {1, 1, 1, 1}).to_vector(), want)
            << what << ", " << hwy::TargetName(target) << ", " << threads << " threads";
      }
    }
    const bool saved_ref = k::use_reference_kernels();
    k::set_reference_kernels(true);
    {
      PortableWinograd form(true);
      EXPECT_EQ(conv_transpose2d(x, w, b, 1, {1, 1, 1, 1}).to_vector(), want) << what << ", scalar twins";
    }
    k::set_reference_kernels(saved_ref);
  }
  set_num_threads(saved);
  // The op's backward (the direct form's) against finite differences of this forward.
  PortableProducts portable;
  PortableWinograd form(true);
  Tensor x = rnd({2, 6, 5, 7}, rng), w = rnd({6, 5, 3, 3}, rng), b = rnd({5}, rng);
  gradcheck("portable winograd convT", {x, w, b}, [](auto& v) { return conv_transpose2d(v[0], v[1], v[2], 1, {1, 1, 1, 1}); });
}

// conv_transpose2d is the exact adjoint of conv2d: <conv(x), y> = <x, convT(y)>.
TEST(Ops, ConvTransposeIsAdjointOfConv) {
  Rng rng(7);
  for (const auto& c : kConvCases) {
    const int H = c.H * c.s, W = c.W * c.s;  // conv2d input whose SAME output is H/s x W/s
    Tensor x = Tensor::uniform({1, 3, H, W}, -1, 1, rng);
    Tensor w = Tensor::uniform({4, 3, c.k, c.k}, -1, 1, rng);
    Tensor y = Tensor::uniform({1, 4, c.H, c.W}, -1, 1, rng);
    Tensor cx = conv2d_same(x, w, Tensor(), c.s);
    ASSERT_EQ(cx.shape(), y.shape());
    Tensor ty = conv_transpose2d_same(y, w.reshape({4, 3, c.k, c.k}), Tensor(), c.s);
    double lhs = 0, rhs = 0;
    for (int64_t i = 0; i < y.numel(); ++i) lhs += double(cx.data()[i]) * y.data()[i];
    for (int64_t i = 0; i < x.numel(); ++i) rhs += double(x.data()[i]) * ty.data()[i];
    EXPECT_NEAR(lhs, rhs, 1e-4 * (1 + std::fabs(lhs))) << "k" << c.k << "s" << c.s;
  }
}

TEST(Ops, SamePaddingTable) {
  // testvectors/README.md table: k5s2 1/2, k3s1 1/1, k18s16 1/1, k13s8 2/3.
  const int t[][4] = {{5, 2, 1, 2}, {3, 1, 1, 1}, {18, 16, 1, 1}, {13, 8, 2, 3}, {6, 4, 1, 1}, {1, 1, 0, 0}};
  for (auto& r : t) {
    Pad2 p = same_pad_conv_transpose(r[0], r[0], r[1]);
    EXPECT_EQ(p.top, r[2]);
    EXPECT_EQ(p.bottom, r[3]);
    Pad2 q = same_pad_conv(64, 64, r[0], r[0], r[1]);  // n multiple of s: P = max(k - s, 0)
    EXPECT_EQ(q.top, r[2]);
    EXPECT_EQ(q.bottom, r[3]);
  }
  Pad2 odd = same_pad_conv(17, 17, 5, 5, 2);
  EXPECT_EQ(odd.top, 2);
  EXPECT_EQ(odd.bottom, 2);
}

TEST(Ops, Im2colMatchesReference) {
  Rng rng(8);
  for (const auto& c : kConvCases)
    for (int pt : {0, 1, 2}) {
      const int H = c.H * c.s + 1, W = c.W * c.s + 2;
      k::ConvGeom g{3, H, W, c.k, c.k, c.s, pt, (pt + 1) % 3, (H + 2 * pt - c.k) / c.s + 1,
                    (W + 2 * pt - c.k) / c.s + 1};
      if (g.Ho <= 0 || g.Wo <= 0) continue;
      std::vector<float> x(size_t(3 * H * W)), col(size_t(3 * c.k * c.k * g.Ho * g.Wo));
      rng.fill_uniform(x.data(), x.size(), -1, 1);
      rng.fill_uniform(col.data(), col.size(), -1, 1);
      std::vector<float> c1(col.size(), 7.f), c2(col.size(), -7.f);
      k::im2col(g, x.data(), c1.data());
      k::ref::im2col(g, x.data(), c2.data());
      EXPECT_EQ(c1, c2) << "im2col k" << c.k << " s" << c.s << " pt" << pt;
      std::vector<float> x1(x), x2(x);  // col2im accumulates
      k::col2im(g, col.data(), x1.data());
      k::ref::col2im(g, col.data(), x2.data());
      EXPECT_EQ(x1, x2) << "col2im k" << c.k << " s" << c.s << " pt" << pt;
    }
}

// ---------------------------------------------------------------- GDN
TEST(Ops, GdnGradients) {
  Rng rng(9);
  for (bool inverse : {false, true}) {
    Tensor x = rnd({2, 5, 3, 7}, rng, -2, 2);
    testing::away_from(x, {0}, 0.05f);
    Tensor beta = rnd({5}, rng, 0.5f, 1.5f), gamma = rnd({5, 5}, rng, 0.0f, 0.3f);
    gradcheck(inverse ? "igdn1" : "gdn1", {x, beta, gamma},
              [inverse](auto& v) { return gdn1(v[0], v[1], v[2], inverse); });
  }
}

// The batch's images run one per thread when there are enough of them: same bits for any count.
TEST(Ops, GdnSameBitsForAnyThreadCount) {
  Rng rng(11);
  const Tensor x0 = rnd({4, 24, 9, 11}, rng, -2, 2), beta0 = rnd({24}, rng, 0.5f, 1.5f),
               gamma0 = rnd({24, 24}, rng, 0.0f, 0.3f), gy = rnd({4, 24, 9, 11}, rng, -1, 1);
  std::vector<std::vector<float>> first;
  for (int threads : {1, 2, 3, 5}) {
    set_num_threads(threads);
    Tensor x = x0.clone().set_requires_grad(true), beta = beta0.clone().set_requires_grad(true),
           gamma = gamma0.clone().set_requires_grad(true);
    Tensor y = gdn1(x, beta, gamma, false);
    sum(mul(y, gy)).backward();
    std::vector<std::vector<float>> got = {y.to_vector(), x.grad_tensor().to_vector(), beta.grad_tensor().to_vector(),
                                           gamma.grad_tensor().to_vector()};
    if (first.empty()) first = got;
    else EXPECT_EQ(got, first) << threads << " threads";
  }
  set_num_threads(0);
}

TEST(Ops, GdnForwardDefinition) {
  Tensor x = Tensor::from({1, 2, 1, 1}, {3, -4});
  Tensor beta = Tensor::from({2}, {1, 2}), gamma = Tensor::from({2, 2}, {0.5f, 0.25f, 0, 1});
  // norm0 = 1 + 0.5·3 + 0.25·4 = 3.5; norm1 = 2 + 0·3 + 1·4 = 6
  auto y = gdn1(x, beta, gamma, false).to_vector();
  EXPECT_FLOAT_EQ(y[0], 3 / 3.5f);
  EXPECT_FLOAT_EQ(y[1], -4 / 6.f);
  auto z = gdn1(x, beta, gamma, true).to_vector();
  EXPECT_FLOAT_EQ(z[0], 10.5f);
  EXPECT_FLOAT_EQ(z[1], -24.f);
}

TEST(Ops, NonnegReparam) {
  Rng rng(10);
  Tensor raw = rnd({4, 6}, rng, 0.05f, 1);  // above the bound (below it: lower_bound's rule)
  gradcheck("nonneg_reparam", {raw}, [](auto& v) { return nonneg_reparam(v[0], 1e-6f); });
  // init inverts the map: value(init(v)) = v for v above the minimum.
  for (float v : {1.f, 0.1f, 0.003f}) {
    Tensor r = Tensor::from({1}, {nonneg_reparam_init(v)});
    EXPECT_NEAR(nonneg_reparam(r, 1e-6f).item(), v, 1e-7 * (1 + v));
  }
}

// ---------------------------------------------------------------- shape ops and quantisation
TEST(Ops, ShapeOpGradients) {
  Rng rng(11);
  Tensor a = rnd({2, 3, 4, 5}, rng), b = rnd({2, 2, 4, 5}, rng);
  gradcheck("concat", {a, b}, [](auto& v) { return concat_channels({v[0], v[1], v[0]}); });
  gradcheck("slice", {a}, [](auto& v) { return slice_channels(v[0], 1, 2); });
  gradcheck("reshape", {a}, [](auto& v) { return mul(v[0].reshape({2, -1}), v[0].reshape({2, 60})); });
  Tensor d = rnd({2, 8, 3, 5}, rng);
  gradcheck("depth_to_space", {d}, [](auto& v) { return depth_to_space(v[0], 2); });
}

TEST(Ops, ShapeOpValues) {
  Tensor a = Tensor::from({1, 2, 1, 2}, {1, 2, 3, 4}), b = Tensor::from({1, 1, 1, 2}, {5, 6});
  EXPECT_EQ(concat_channels({a, b}).to_vector(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(slice_channels(a, 1, 1).to_vector(), (std::vector<float>{3, 4}));
  // TF DepthToSpace: channel (i·r + j)·C + c goes to offset (i, j) of channel c.
  Tensor d = Tensor::from({1, 4, 1, 1}, {0, 1, 2, 3});
  Tensor y = depth_to_space(d, 2);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(y.to_vector(), (std::vector<float>{0, 1, 2, 3}));
  Tensor e = Tensor::from({1, 8, 1, 1}, {0, 1, 2, 3, 4, 5, 6, 7});
  EXPECT_EQ(depth_to_space(e, 2).to_vector(), (std::vector<float>{0, 2, 4, 6, 1, 3, 5, 7}));
}

TEST(Ops, RoundStraightThroughAndNoise) {
  Tensor x = Tensor::from({6}, {-1.5f, -0.5f, 0.5f, 1.5f, 2.5f, 0.4f}).set_requires_grad(true);
  Tensor y = round_ste(x);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{-2, -0, 0, 2, 2, 0}));  // half to even
  sum(mul(y, Tensor::from({6}, {1, 2, 3, 4, 5, 6}))).backward();
  EXPECT_EQ(x.grad_tensor().to_vector(), (std::vector<float>{1, 2, 3, 4, 5, 6}));

  Rng r1(42), r2(42);
  Tensor z = Tensor::zeros({1000});
  Tensor n1 = add_uniform_noise(z, r1), n2 = add_uniform_noise(z, r2);
  EXPECT_EQ(n1.to_vector(), n2.to_vector());
  double m = 0;
  for (float v : n1.to_vector()) {
    EXPECT_GE(v, -0.5f);
    EXPECT_LT(v, 0.5f);
    m += v;
  }
  EXPECT_NEAR(m / 1000, 0.0, 0.05);
  Tensor xz = Tensor::zeros({5}).set_requires_grad(true);
  Rng r3(1);
  gradcheck("uniform_noise", {xz}, [&](auto& v) {
    Rng r(7);  // same noise on every evaluation
    return add_uniform_noise(v[0], r);
  });
}

// ---------------------------------------------------------------- FLOP convention (SPEC §5.2)
TEST(Flops, JpegLikeSynthesisMatchesPaper) {
  NoGrad ng;
  Rng rng(12);
  Tensor y = Tensor::zeros({1, 320, 32, 48});
  Tensor w = Tensor::zeros({320, 3, 18, 18}), b = Tensor::zeros({3});
  FlopCounter fc;
  conv_transpose2d_same(y, w, b, 16);
  EXPECT_DOUBLE_EQ(double(fc.total()) / (512 * 768), 2433.0);
}

TEST(Flops, TwoLayerResSynthesisMatchesPaper) {
  NoGrad ng;
  Tensor y = Tensor::zeros({1, 320, 32, 48});
  Tensor w1 = Tensor::zeros({320, 12, 13, 13}), b1 = Tensor::zeros({12});
  Tensor w2 = Tensor::zeros({12, 3, 5, 5}), b2 = Tensor::zeros({3});
  Tensor beta_raw = Tensor::full({12}, 1.f), gamma_raw = Tensor::full({12, 12}, 0.1f);
  FlopCounter fc;
  Tensor h = add(gdn1(conv_transpose2d_same(y, w1, b1, 8), nonneg_reparam(beta_raw, 1e-6f),
                      nonneg_reparam(gamma_raw, 0.f), true),
                 conv_transpose2d_same(y, w1, b1, 8));
  conv_transpose2d_same(h, w2, b2, 2);
  // flops_per_pixel.csv: 10,680.00119 FLOPs/px (residual add counted).
  EXPECT_NEAR(double(fc.total()) / (512 * 768), 10680.00119, 1e-5);
}

TEST(Flops, HyperSynthesisMatchesPaper) {
  NoGrad ng;
  Tensor z = Tensor::zeros({1, 320, 8, 12});
  FlopCounter fc;
  Tensor h = relu(conv_transpose2d_same(z, Tensor::zeros({320, 320, 5, 5}), Tensor::zeros({320}), 2));
  h = relu(conv_transpose2d_same(h, Tensor::zeros({320, 480, 5, 5}), Tensor::zeros({480}), 2));
  conv_transpose2d_same(h, Tensor::zeros({480, 640, 3, 3}), Tensor::zeros({640}), 1);
  EXPECT_DOUBLE_EQ(double(fc.total()) / (512 * 768), 30354.6875);
}

// An error inside a parallel region (an NTC_CHECK, a failed allocation) reaches the caller as the
// same exception instead of ending the process in std::terminate: for_items and the GEMM tiles.
TEST(Threads, ErrorsInsideParallelRegionsReachTheCaller) {
  const int saved = num_threads();
  set_num_threads(2);
  EXPECT_THROW(for_items(4, 16, [](size_t j, float*) {
                 if (j == 3) fail("item ", j, " failed");
               }),
               Error);
  EXPECT_THROW(for_items(4, 0, [](size_t j, float*) {
                 if (j == 0) throw std::bad_alloc();
               }),
               std::bad_alloc);
  int ran = 0;
  for_items(4, 0, [&](size_t, float*) {
#pragma omp atomic
    ++ran;
  });
  EXPECT_EQ(ran, 4);
  set_num_threads(saved);
}

}  // namespace
}  // namespace ntc
