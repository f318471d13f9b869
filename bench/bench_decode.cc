// `ntc bench decode` — the decode path of a hyperprior model without entropy decoding:
// (μ, r) = h_s(ẑ), x̂ = g_s(ŷ), with random weights (Keras initialisation) at a given image size.
// Checks first that two runs give bit-identical outputs, then reports the median time.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "bench/bench.h"
#include "lib/args.h"
#include "kernels/kernels.h"
#include "lib/alloc.h"
#include "lib/blas.h"
#include "lib/gemm.h"
#include "lib/common.h"
#include "lib/json.h"
#include "lib/flops.h"
#include "lib/ops/ops.h"
#include "lib/threads.h"
#include "nn/model.h"

namespace ntc::bench {

int bench_decode(const std::vector<std::string>& argv) {
  cli::Args args(argv, {"config", "size", "reps"}, {"json"});
  const std::string cfg = args.str("config", "jpegl");
  const int reps = int(args.integer("reps", 9));
  if (reps < 1) fail("--reps wants >= 1");
  int64_t H = 512, W = 768;
  if (args.has("size")) {
    const std::string s = args.str("size");
    if (std::sscanf(s.c_str(), "%ldx%ld", &H, &W) != 2 || H < 64 || W < 64 || H > 8192 || W > 8192)
      fail("--size wants HxW (64..8192), got '", s, "'");
  }
  nn::Model model(nn::Config::load(cfg));
  if (!model.hyperprior()) fail("bench decode: ", cfg, " is not a hyperprior model");
  Rng rng(3);
  model.init(rng);
  const int64_t f = model.downsampling(), M = model.latent_channels();
  const int64_t Hp = (H + f - 1) / f * f, Wp = (W + f - 1) / f * f;
  NoGrad ng;
  // Latents of the right shapes, integer-valued like decoded ones.
  Tensor zh = Tensor::normal({1, model.hyper_channels(), Hp / 64, Wp / 64}, 0, 2, rng);
  Tensor yh = Tensor::normal({1, M, Hp / 16, Wp / 16}, 0, 3, rng);
  for (Tensor* t : {&zh, &yh})
    for (int64_t i = 0; i < t->numel(); ++i) t->data()[i] = std::nearbyint(t->data()[i]);
  int64_t flops = 0;
  auto decode = [&] {
    FlopCounter fc;
    Tensor hs = (*model.h_s())(zh);
    Tensor xh = model.g_s()(yh);
    flops = fc.total();
    return std::make_pair(hs, xh);
  };
  auto a = decode(), b = decode();
  if (a.first.to_vector() != b.first.to_vector() || a.second.to_vector() != b.second.to_vector())
    fail("bench decode: two runs differ");
  mem_reset_peak();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    decode();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  const double ms = t[t.size() / 2];
  const double gflops = double(flops) / ms * 1e-6;
  if (args.has("json")) {
    std::printf("%s\n", json_line(JsonOut{{"bench", "decode"}, {"config", cfg}, {"size", {H, W}}, {"threads", num_threads()},
                                          {"kernels", k::kernel_target_name()}, {"blas", blas_kernel_name()},
                                          {"gemm", gemm_backend_name()}, {"decode_ms", ms}, {"min_ms", t[0]},
                                          {"gflops", gflops}, {"flops_per_pixel", double(flops) / double(H * W)},
                                          {"reps", reps}, {"peak_rss_mb", double(peak_rss_bytes()) / 1e6},
                                          {"peak_tensor_mb", double(mem_stats().peak_in_use) / 1e6}}).c_str());
  } else {
    std::printf("decode path of %s at %ldx%ld, %d threads (%s, OpenBLAS %s, GEMM %s): median %.2f ms (min %.2f), %.1f GFLOP/s, "
                "peak RSS %.1f MB\n", cfg.c_str(), H, W, num_threads(), k::kernel_target_name(), blas_kernel_name(), gemm_backend_name(), ms, t[0], gflops,
                double(peak_rss_bytes()) / 1e6);
  }
  return 0;
}

}  // namespace ntc::bench
