// `ntc bench sga` — seconds per SGA iteration (SPEC §4) of a config with random weights on a
// random image: soft rounding, hyper-synthesis, synthesis, the rate terms, backward to the latents
// and the Adam update. Median over --iters iterations after two warm-up iterations.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "bench/bench.h"
#include "lib/args.h"
#include "kernels/kernels.h"
#include "lib/alloc.h"
#include "lib/blas.h"
#include "lib/gemm.h"
#include "lib/common.h"
#include "lib/json.h"
#include "lib/threads.h"
#include "nn/model.h"
#include "train/sga.h"

namespace ntc::bench {

int bench_sga(const std::vector<std::string>& argv) {
  cli::Args args(argv, {"config", "size", "iters"}, {"json"});
  const std::string cfg = args.str("config", "jpegl");
  const int iters = int(args.integer("iters", 8));
  long H = 512, W = 768;
  if (args.has("size") && std::sscanf(args.str("size").c_str(), "%ldx%ld", &H, &W) != 2) fail("--size wants HxW");
  if (iters < 1 || H < 1 || W < 1 || H > 8192 || W > 8192) fail("bench sga: bad --iters or --size");
  nn::Model m(nn::Config::load(cfg));
  Rng rng(5);
  m.init(rng);
  m.finalize();
  const Tensor img = Tensor::uniform({1, 3, H, W}, 0, 255, rng);
  const double rate = m.rate_lambdas().empty() ? 0 : m.rate_lambdas()[m.rate_lambdas().size() / 2];
  train::SgaOptions o;
  o.iters = iters + 2;
  std::vector<double> t;
  auto last = std::chrono::steady_clock::now();
  mem_reset_peak();
  train::sga_refine(m, img, rate > 0 ? rate : 0.01, rate, o, [&](int i, double) {
    const auto now = std::chrono::steady_clock::now();
    if (i >= 2) t.push_back(std::chrono::duration<double>(now - last).count());
    last = now;
  });
  std::sort(t.begin(), t.end());
  const double iter_s = t[t.size() / 2];
  if (args.has("json"))
    std::printf("%s\n", json_line(JsonOut{{"bench", "sga"}, {"config", cfg}, {"size", {H, W}}, {"threads", num_threads()},
                                          {"kernels", k::kernel_target_name()}, {"blas", blas_kernel_name()},
                                          {"gemm", gemm_backend_name()}, {"iter_s", iter_s}, {"min_iter_s", t[0]},
                                          {"iters", iters}, {"peak_rss_mb", double(peak_rss_bytes()) / 1e6}}).c_str());
  else
    std::printf("SGA iteration of %s at %ldx%ld, %d threads (%s, OpenBLAS %s, GEMM %s): median %.3f s (min %.3f)\n", cfg.c_str(), H, W,
                num_threads(), k::kernel_target_name(), blas_kernel_name(), gemm_backend_name(), iter_s, t[0]);
  return 0;
}

}  // namespace ntc::bench
