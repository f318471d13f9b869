// `ntc demo` — the smoke demo of the README's first command until trained models ship: trains a
// tiny conv→GDN→conv→round→convT→IGDN→convT autoencoder on one image crop for a few hundred
// Adam steps and reports PSNR before and after. It exercises the whole stack (tensors, autodiff,
// SIMD kernels, GEMM convolutions, GDN) and fails (exit 1) if training does not improve PSNR.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "lib/args.h"
#include "cli/commands.h"
#include "kernels/kernels.h"
#include "lib/image.h"
#include "lib/json.h"
#include "lib/ops/ops.h"
#include "lib/rng.h"
#include "lib/threads.h"
#include "train/optim.h"

namespace ntc::cli {
namespace {

// A deterministic 64x64 test picture: smooth colour ramps, a disc and stripes.
Tensor synthetic_image(int S) {
  Tensor t = Tensor::empty({1, 3, S, S});
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const float disc = (x - S / 2) * (x - S / 2) + (y - S / 3) * (y - S / 3) < S * S / 16 ? 80.f : 0.f;
      const float stripes = ((x / 4) % 2) && y > 2 * S / 3 ? 60.f : 0.f;
      t.data()[(0 * S + y) * S + x] = 40.f + 150.f * x / S + disc;
      t.data()[(1 * S + y) * S + x] = 30.f + 150.f * y / S + stripes;
      t.data()[(2 * S + y) * S + x] = 200.f - 120.f * (x + y) / (2 * S) + disc * 0.5f;
    }
  return t;
}

}  // namespace

int cmd_demo(const std::vector<std::string>& argv) {
  Args args(argv, {"steps", "image", "lr", "seed"}, {});
  const int steps = int(args.integer("steps", 300));
  const long seed = args.integer("seed", 1);
  if (steps < 1) fail("--steps wants >= 1");
  const float lr = std::stof(args.str("lr", "0.01"));
  const int S = 64;
  Tensor img;
  if (args.has("image")) {
    Tensor full = read_image(args.str("image"));
    if (full.dim(2) < S || full.dim(3) < S) fail("demo: image must be at least ", S, "x", S);
    img = Tensor::empty({1, 3, S, S});
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < S; ++y)
        for (int x = 0; x < S; ++x)
          img.data()[(c * S + y) * S + x] = full.data()[(c * full.dim(2) + y) * full.dim(3) + x];
  } else {
    img = synthetic_image(S);
  }
  Tensor x = add_scalar(mul_scalar(img, 1.f / 255.f), -0.5f);  // SPEC: x/255 − 0.5

  Rng rng{uint64_t(seed)};
  std::vector<Tensor> ps;
  auto glorot = [&](Shape s, int fan) {
    const float lim = std::sqrt(6.f / float(fan));
    Tensor p = Tensor::param(s);
    rng.fill_uniform(p.data(), size_t(p.numel()), -lim, lim);
    ps.push_back(p);
    return p;
  };
  auto constant = [&](Shape s, float v) {
    Tensor p = Tensor::param(s);
    k::fill(v, p.data(), size_t(p.numel()));
    ps.push_back(p);
    return p;
  };
  const int C = 16, M = 8;
  Tensor w1 = glorot({C, 3, 5, 5}, 25 * (3 + C)), b1 = constant({C}, 0);
  Tensor beta1 = constant({C}, nonneg_reparam_init(1.f)), gamma1 = constant({C, C}, nonneg_reparam_init(0.01f));
  Tensor w2 = glorot({M, C, 5, 5}, 25 * (C + M)), b2 = constant({M}, 0);
  Tensor w3 = glorot({M, C, 5, 5}, 25 * (C + M)), b3 = constant({C}, 0);
  Tensor beta2 = constant({C}, nonneg_reparam_init(1.f)), gamma2 = constant({C, C}, nonneg_reparam_init(0.01f));
  Tensor w4 = glorot({C, 3, 5, 5}, 25 * (3 + C)), b4 = constant({3}, 0);

  auto forward = [&](const Tensor& in) {
    Tensor h = gdn1(conv2d_same(in, w1, b1, 2), nonneg_reparam(beta1, 1e-6f), nonneg_reparam(gamma1, 0.f), false);
    Tensor y = round_ste(mul_scalar(conv2d_same(h, w2, b2, 2), 8.f));  // quantised latent
    h = conv_transpose2d_same(mul_scalar(y, 1.f / 8.f), w3, b3, 2);
    h = gdn1(h, nonneg_reparam(beta2, 1e-6f), nonneg_reparam(gamma2, 0.f), true);
    return conv_transpose2d_same(h, w4, b4, 2);
  };
  auto psnr = [&](const Tensor& xh) {
    double se = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double v = std::round(std::clamp((double(xh.data()[i]) + 0.5) * 255.0, 0.0, 255.0));
      se += (v - img.data()[i]) * (v - img.data()[i]);
    }
    return 10 * std::log10(255.0 * 255.0 / std::max(se / double(x.numel()), 1e-10));
  };

  std::fprintf(stderr, "ntc demo: %dx%d image, %d Adam steps, %d threads, kernels %s\n", S, S, steps,
               num_threads(), k::kernel_target_name());
  double psnr0;
  {
    NoGrad ng;
    psnr0 = psnr(forward(x));
  }
  const auto t0 = std::chrono::steady_clock::now();
  train::Adam adam(ps, train::AdamForm::Torch);
  for (int t = 1; t <= steps; ++t) {
    Tensor loss = mean(square(sub(forward(x), x)));
    loss.backward();
    adam.step(lr);
    for (Tensor& p : ps) p.zero_grad();
    if (t % 50 == 0 || t == steps) {
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "  step %4d/%d  mse %.5f  %.1f steps/s  ETA %.1fs\n", t, steps, loss.item(),
                   t / el, (steps - t) * el / t);
    }
  }
  double psnr1;
  {
    NoGrad ng;
    psnr1 = psnr(forward(x));
  }
  std::printf("%s\n", json_line(JsonOut{{"demo", "autoencoder"}, {"steps", steps}, {"psnr_before", psnr0},
                                        {"psnr_after", psnr1}}).c_str());
  if (!(psnr1 > psnr0 + 3.0)) {
    std::fprintf(stderr, "ntc: error: demo training did not improve PSNR enough (%.2f -> %.2f dB)\n", psnr0, psnr1);
    return 1;
  }
  std::fprintf(stderr, "ntc demo: OK (PSNR %.2f -> %.2f dB)\n", psnr0, psnr1);
  return 0;
}

}  // namespace ntc::cli
