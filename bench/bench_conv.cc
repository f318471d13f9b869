// `ntc bench conv` — forward and backward GFLOP/s of the paper's large convolution layers next to
// raw cblas_sgemm GFLOP/s measured in the same run.
//
// Layers: the ELIC analysis convs on a batch of 8 × 3×256×256 (and the residual-block convs at
// 128×128), the JPEG-like synthesis convT k18 s16 320→3 and the two-layer synthesis convT k13 s8
// 320→12 for a 512×768 output, and the three hyper-synthesis layers at 512×768. FLOPs use the
// paper's convention (lib/flops.h): forward = conv2d_flops / conv_transpose2d_flops; backward =
// forward for dW plus forward for dx where dx is computed (not for the image-input layer).
// Every layer's forward is spot-checked against a direct double-precision sum before timing.
// --precision bf16 runs the conv2d layers' products on bf16 operands (as `ntc train --precision
// bf16` runs the analysis transforms); the transposed convolutions are always fp32.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>

#include "bench/bench.h"
#include "lib/args.h"
#include "kernels/kernels.h"
#include "lib/alloc.h"
#include "lib/blas.h"
#include "lib/gemm.h"
#include "lib/common.h"
#include "lib/json.h"
#include "lib/ops/ops.h"
#include "lib/rng.h"
#include "lib/threads.h"

namespace ntc::bench {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median seconds of fn over at least `min_reps` runs and about `budget_s` seconds, after a warm-up.
double median_time(const std::function<void()>& fn, int min_reps, double budget_s,
                   const std::function<void()>& setup = {}) {
  if (setup) setup();
  fn();  // warm-up
  std::vector<double> t;
  const double start = now_s();
  while (int(t.size()) < min_reps || (now_s() - start < budget_s && t.size() < 50)) {
    if (setup) setup();
    const double t0 = now_s();
    fn();
    t.push_back(now_s() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Layer {
  const char* name;
  bool transposed;
  int N, Cin, H, W, Cout, k, s;
  bool input_grad;  // false for the image-input layer
};

// y[n,o,p,q] recomputed directly (double) at a few positions; returns the max relative error.
double spot_check(const Layer& L, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, Rng& rng) {
  const int Ho = int(y.dim(2)), Wo = int(y.dim(3));
  double worst = 0;
  for (int t = 0; t < 16; ++t) {
    const int n = int(rng.next_u64() % uint64_t(L.N)), o = int(rng.next_u64() % uint64_t(L.Cout));
    const int p = int(rng.next_u64() % uint64_t(Ho)), q = int(rng.next_u64() % uint64_t(Wo));
    double acc = b.data()[o], mag = std::fabs(acc);
    for (int c = 0; c < L.Cin; ++c)
      for (int u = 0; u < L.k; ++u)
        for (int v = 0; v < L.k; ++v) {
          int iy, ix;
          double wv;
          if (!L.transposed) {
            Pad2 pd = same_pad_conv(L.H, L.W, L.k, L.k, L.s);
            iy = p * L.s + u - pd.top;
            ix = q * L.s + v - pd.left;
            wv = w.data()[((int64_t(o) * L.Cin + c) * L.k + u) * L.k + v];
          } else {
            Pad2 pd = same_pad_conv_transpose(L.k, L.k, L.s);
            const int ty = p + pd.top - u, tx = q + pd.left - v;
            if (ty < 0 || tx < 0 || ty % L.s || tx % L.s) continue;
            iy = ty / L.s;
            ix = tx / L.s;
            wv = w.data()[((int64_t(c) * L.Cout + o) * L.k + u) * L.k + v];
          }
          if (iy < 0 || iy >= L.H || ix < 0 || ix >= L.W) continue;
          const double xv = x.data()[((int64_t(n) * L.Cin + c) * L.H + iy) * L.W + ix];
          acc += xv * wv;
          mag += std::fabs(xv * wv);
        }
    const double got = y.data()[((int64_t(n) * L.Cout + o) * Ho + p) * Wo + q];
    worst = std::max(worst, std::fabs(got - acc) / (mag + 1e-12));
  }
  return worst;
}

}  // namespace

double sgemm_gflops(int reps) {
  // Raw sgemm, 2048^3, OpenBLAS's own threading on the same thread count (ntc itself keeps
  // OpenBLAS single-threaded and tiles GEMMs over threads, lib/gemm.h); restored afterwards.
  const int G = kSgemmN, T = num_threads();
  Rng rng(7);
  Buffer A(size_t(G) * G), B(size_t(G) * G), C(size_t(G) * G);
  rng.fill_uniform(A.data(), A.size(), -1, 1);
  rng.fill_uniform(B.data(), B.size(), -1, 1);
  blas::set_num_threads(T);  // (the OpenMP build follows the OpenMP count anyway)
  const double t = median_time([&] {
    blas::sgemm(false, false, G, G, G, 1.f, A.data(), G, B.data(), G, 0.f, C.data(), G);
  }, reps, 1.0);
  set_num_threads(T);
  return 2.0 * G * G * G / t * 1e-9;
}

int bench_conv(const std::vector<std::string>& argv) {
  cli::Args args(argv, {"reps", "set", "precision"}, {"json"});
  const std::string set = args.str("set", "jpegl");
  if (set != "jpegl" && set != "light") fail("bench conv: --set wants jpegl or light");
  const bool json = args.has("json");
  const int reps = int(args.integer("reps", 3));
  if (reps < 1) fail("--reps wants >= 1");
  const std::string precision = args.str("precision", "fp32");
  if (precision != "fp32" && precision != "bf16") fail("bench conv: --precision wants fp32 or bf16");
  const Precision prec = precision == "bf16" ? Precision::Bf16 : Precision::F32;
  if (prec == Precision::Bf16) check_bf16_available();
  // bf16 operands carry 8 significant bits: the spot check allows their rounding
  const double tolerance = prec == Precision::Bf16 ? 2e-2 : 1e-4;
  Rng rng(2024);

  const int G = kSgemmN;
  const double sgemm = bench::sgemm_gflops(std::max(reps, 3));

  const std::vector<Layer> jpegl_layers = {
      {"g_a.conv1 k5s2 3->192 @256", false, 8, 3, 256, 256, 192, 5, 2, false},
      {"g_a.res.c1 k1 192->96 @128", false, 8, 192, 128, 128, 96, 1, 1, true},
      {"g_a.res.c2 k3 96->96 @128", false, 8, 96, 128, 128, 96, 3, 1, true},
      {"g_a.res.c3 k1 96->192 @128", false, 8, 96, 128, 128, 192, 1, 1, true},
      {"g_a.conv2 k5s2 192->192 @128", false, 8, 192, 128, 128, 192, 5, 2, true},
      {"g_a.conv3 k5s2 192->192 @64", false, 8, 192, 64, 64, 192, 5, 2, true},
      {"g_a.conv4 k5s2 192->320 @32", false, 8, 192, 32, 32, 320, 5, 2, true},
      {"g_s.jpegl convT k18s16 320->3 @512x768", true, 1, 320, 32, 48, 3, 18, 16, true},
      {"g_s.two_layer convT k13s8 320->12 @512x768", true, 1, 320, 32, 48, 12, 13, 8, true},
      {"h_s.conv1 convT k5s2 320->320 @512x768", true, 1, 320, 8, 12, 320, 5, 2, true},
      {"h_s.conv2 convT k5s2 320->480 @512x768", true, 1, 320, 16, 24, 480, 5, 2, true},
      {"h_s.conv3 convT k3s1 480->640 @512x768", true, 1, 480, 32, 48, 640, 3, 1, true},
  };
  // The light config's layers in its training benchmark (bench train --config light: 8 × 128²).
  const std::vector<Layer> light_layers = {
      {"g_a.conv1 k5s2 3->128 @128", false, 8, 3, 128, 128, 128, 5, 2, false},
      {"g_a.conv2 k5s2 128->128 @64", false, 8, 128, 64, 64, 128, 5, 2, true},
      {"g_a.conv3 k5s2 128->128 @32", false, 8, 128, 32, 32, 128, 5, 2, true},
      {"g_a.conv4 k5s2 128->192 @16", false, 8, 128, 16, 16, 192, 5, 2, true},
      {"h_a.conv1 k3s1 192->128 @8", false, 8, 192, 8, 8, 128, 3, 1, true},
      {"h_s.deconv2 convT k5s2 192->288 @4", true, 8, 192, 4, 4, 288, 5, 2, true},
      {"h_s.deconv3 convT k3s1 288->384 @8", true, 8, 288, 8, 8, 384, 3, 1, true},
      {"g_s convT k18s16 192->3 @8", true, 8, 192, 8, 8, 3, 18, 16, true},
  };
  const std::vector<Layer>& layers = set == "light" ? light_layers : jpegl_layers;

  JsonOut rows = JsonOut::array();
  if (!json)
    std::printf("sgemm %d^3: %.1f GFLOP/s (%d threads, kernels %s, OpenBLAS %s, GEMM %s, conv2d products %s)\n%-44s %9s %9s %6s %9s %9s %6s\n", G,
                sgemm, num_threads(), k::kernel_target_name(), blas_kernel_name(), gemm_backend_name(), precision.c_str(), "layer", "fwd ms", "GFLOP/s",
                "ratio", "bwd ms", "GFLOP/s", "ratio");
  for (const Layer& L : layers) {
    Tensor x = Tensor::uniform({L.N, L.Cin, L.H, L.W}, -1, 1, rng);
    const float wb = 1.f / std::sqrt(float(L.Cin * L.k * L.k));
    Tensor w = Tensor::uniform(L.transposed ? Shape{L.Cin, L.Cout, L.k, L.k} : Shape{L.Cout, L.Cin, L.k, L.k},
                               -wb, wb, rng);
    Tensor b = Tensor::uniform({L.Cout}, -0.1f, 0.1f, rng);
    auto fwd = [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
      ConvPrecisionScope scope(prec);  // conv2d keeps it for its backward
      return L.transposed ? conv_transpose2d_same(xi, wi, bi, L.s) : conv2d_same(xi, wi, bi, L.s);
    };
    Tensor y;
    {
      NoGrad ng;
      y = fwd(x, w, b);
    }
    const double err = spot_check(L, x, w, b, y, rng);
    if (err > tolerance) fail("bench conv: ", L.name, " forward disagrees with the direct sum (rel err ", err, ")");

    const int64_t Ho = y.dim(2), Wo = y.dim(3);
    const int64_t conv_flops = L.transposed
        ? conv_transpose2d_flops(L.Cin, L.Cout, L.k, L.k, L.H, L.W, Ho, Wo, false) * L.N
        : conv2d_flops(L.Cin, L.Cout, L.k, L.k, Ho, Wo, false) * L.N;
    const int64_t fwd_flops = conv_flops + L.Cout * Ho * Wo * L.N;  // + bias
    const int64_t bwd_flops = conv_flops * (L.input_grad ? 2 : 1);

    const double t_fwd = median_time([&] {
      NoGrad ng;
      y = fwd(x, w, b);
    }, reps, 1.0);
    y = Tensor();

    // Backward alone: run the op's recorded backward closure on a fixed upstream gradient.
    Tensor xg = x.detach().set_requires_grad(L.input_grad), wg = w.detach().set_requires_grad(true),
           bg = b.detach().set_requires_grad(true);
    Tensor yg, gy;
    const double t_bwd = median_time([&] { yg.impl()->node->backward(gy.data()); }, reps, 1.0, [&] {
      yg = Tensor();
      yg = fwd(xg, wg, bg);
      if (!gy.defined()) gy = Tensor::uniform(yg.shape(), -1, 1, rng);
    });
    yg = Tensor();
    gy = Tensor();

    const double gf_fwd = double(fwd_flops) / t_fwd * 1e-9, gf_bwd = double(bwd_flops) / t_bwd * 1e-9;
    if (json) {
      rows.push_back({{"name", L.name}, {"input", {L.N, L.Cin, L.H, L.W}}, {"output", {int64_t(L.N), int64_t(L.Cout), Ho, Wo}},
                      {"fwd_ms", t_fwd * 1e3}, {"fwd_gflops", gf_fwd}, {"fwd_ratio", gf_fwd / sgemm},
                      {"bwd_ms", t_bwd * 1e3}, {"bwd_gflops", gf_bwd}, {"bwd_ratio", gf_bwd / sgemm}, {"max_rel_err", err}});
    } else {
      std::printf("%-44s %9.2f %9.1f %6.2f %9.2f %9.1f %6.2f\n", L.name, t_fwd * 1e3, gf_fwd,
                  gf_fwd / sgemm, t_bwd * 1e3, gf_bwd, gf_bwd / sgemm);
    }
    std::fflush(stdout);
  }
  if (json)
    std::printf("%s\n", json_line(JsonOut{{"bench", "conv"}, {"set", set}, {"precision", precision}, {"threads", num_threads()},
                                          {"kernels", k::kernel_target_name()}, {"blas", blas_kernel_name()},
                                          {"gemm", gemm_backend_name()}, {"sgemm_n", G}, {"sgemm_gflops", sgemm},
                                          {"layers", rows}, {"peak_rss_mb", double(peak_rss_bytes()) / 1e6},
                                          {"peak_tensor_mb", double(mem_stats().peak_in_use) / 1e6}}).c_str());
  else
    std::printf("peak RSS %.1f MB, peak tensor memory %.1f MB\n", double(peak_rss_bytes()) / 1e6,
                double(mem_stats().peak_in_use) / 1e6);
  return 0;
}

}  // namespace ntc::bench
