// `ntc bench overfit` — the overfitted codec's two costs (nn/overfit.h, train/overfit.h): seconds
// per encoder training iteration (median, after the first 5) and seconds to decode the stream it
// makes (median of 5 in-process decodes: parsing, entropy decoding with the ARM, upsampling and
// synthesis), with the decoder's FLOPs per pixel. The image is --image FILE, or a smooth synthetic
// picture of --size HxW; --upsample bilinear|learned picks the decoder's upsampling.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "bench/bench.h"
#include "kernels/kernels.h"
#include "lib/args.h"
#include "lib/blas.h"
#include "lib/gemm.h"
#include "lib/common.h"
#include "lib/image.h"
#include "lib/json.h"
#include "lib/metrics.h"
#include "lib/threads.h"
#include "nn/overfit.h"
#include "train/overfit.h"

namespace ntc::bench {

namespace {
double secs() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

int bench_overfit(const std::vector<std::string>& argv) {
  cli::Args args(argv, {"size", "iters", "image", "upsample"}, {"json"});
  const std::string up = args.str("upsample", "bilinear");
  if (up != "bilinear" && up != "learned") fail("bench overfit: --upsample wants bilinear or learned, got '", up, "'");
  const int iters = int(args.integer("iters", 30));
  long H = 512, W = 768;
  if (args.has("size") && std::sscanf(args.str("size").c_str(), "%ldx%ld", &H, &W) != 2) fail("--size wants HxW");
  if (iters < 10 || H < 1 || W < 1 || H * W > train::kOverfitMaxPixels) fail("bench overfit: bad --iters (10 or more) or --size");
  Tensor img;
  if (args.has("image")) {
    img = read_image(args.str("image"));
    H = long(img.dim(2));
    W = long(img.dim(3));
  } else {
    img = Tensor::empty({1, 3, H, W});
    for (long c = 0; c < 3; ++c)
      for (long y = 0; y < H; ++y)
        for (long x = 0; x < W; ++x)
          img.data()[(c * H + y) * W + x] =
              float(std::round(127.5 + 100 * std::sin(0.05 * double(x + 2 * c)) * std::cos(0.031 * double(y)) + 20 * ((x / 37 + y / 23) % 2)));
  }
  train::OverfitOptions o;
  o.iters = iters;
  o.candidates = 1;
  o.learned_up = up == "learned";
  std::vector<double> t;
  double last = secs();
  o.progress = [&](int done, int, double) {
    const double now = secs();
    if (done > 5) t.push_back(now - last);
    last = now;
  };
  const train::OverfitResult r = train::overfit_encode(img, o);
  std::sort(t.begin(), t.end());
  const double iter_s = t[t.size() / 2];
  std::vector<double> d;
  for (int i = 0; i < 5; ++i) {
    const double t0 = secs();
    (void)nn::overfit::decode(r.bytes.data(), r.bytes.size(), "bench", H * W);
    d.push_back(secs() - t0);
  }
  std::sort(d.begin(), d.end());
  const double fpp = nn::overfit::decoder_flops(r.arch).total();
  if (args.has("json"))
    std::printf("%s\n", json_line(JsonOut{{"bench", "overfit"}, {"size", {H, W}}, {"threads", num_threads()},
                                          {"kernels", k::kernel_target_name()}, {"blas", blas_kernel_name()},
                                          {"gemm", gemm_backend_name()}, {"upsampling", up}, {"iter_s", iter_s},
                                          {"us_per_pixel_iter", iter_s / double(H * W) * 1e6}, {"decode_s", d[2]},
                                          {"decode_flops_per_pixel", fpp}, {"iters", iters}, {"bpp", r.bpp},
                                          {"psnr", r.psnr}}).c_str());
  else
    std::printf("overfitted codec at %ldx%ld, %d threads (%s): %.4f s per training iteration (%.3f µs per pixel), "
                "decode %.4f s (%.0f FLOPs/px)\n", H, W, num_threads(), k::kernel_target_name(), iter_s,
                iter_s / double(H * W) * 1e6, d[2], fpp);
  return 0;
}

}  // namespace ntc::bench
