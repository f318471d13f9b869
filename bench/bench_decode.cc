// `ntc bench decode` — two modes.
// --config NAME (default jpegl): the decode path of a hyperprior model without entropy decoding:
//   (μ, r) = h_s(ẑ), x̂ = g_s(ŷ), with random weights (Keras initialisation) at a given image size.
//   Checks first that two runs give bit-identical outputs, then reports the median time.
// --model FILE --image PNG: a real stream of that image (--quality, default 50) through every
//   stage, medians over --reps: load (read + parse the model), entropy decode z, h_s, entropy
//   decode y, g_s, write PNG, write PPM; then `ntc decode` as a child process, to PPM and to PNG,
//   timed as process CPU (getrusage: user + system, process start to file written), and the
//   same-run `dwebp` CPU time on the image's WebP (cwebp -q 75) when both binaries are present.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <memory>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

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
#include "lib/fileio.h"
#include "lib/image.h"
#include "nn/compress.h"
#include "nn/model.h"
#include "nn/model_file.h"

namespace ntc::bench {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// CPU milliseconds (user + system) of a child process running `argv`; -1 if it fails.
double child_cpu_ms(const std::vector<std::string>& argv) {
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    std::vector<char*> a;
    for (const std::string& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    const int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 1), dup2(devnull, 2);
    execvp(a[0], a.data());
    _exit(127);
  }
  int st = 0;
  struct rusage ru {};
  if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return -1;
  return (double(ru.ru_utime.tv_sec) + double(ru.ru_stime.tv_sec)) * 1e3 +
         (double(ru.ru_utime.tv_usec) + double(ru.ru_stime.tv_usec)) * 1e-3;
}

bool on_path(const char* name) {
  return std::system((std::string("command -v ") + name + " >/dev/null 2>&1").c_str()) == 0;
}

int bench_decode_model(const cli::Args& args) {
  if (!args.has("image")) fail("bench decode --model FILE needs --image PNG");
  const std::string file = args.str("model"), image = args.str("image");
  const int reps = int(args.integer("reps", 9));
  if (reps < 1) fail("--reps wants >= 1");
  const long quality = args.integer("quality", 50);
  auto ms_since = [](std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  std::vector<double> load, z, hs, y, gs, total, png, ppm;
  std::unique_ptr<nn::Model> model;
  uint64_t hash = 0;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const FileBytes mb = read_file_bytes(file);
    model = nn::deserialize_model(mb.data(), mb.size(), file);
    hash = nn::model_hash(mb.data(), mb.size());
    load.push_back(ms_since(t0));
  }
  const Tensor img = read_image(image);
  const double lam = model->rate_lambdas().empty() ? 0 : nn::lambda_for_quality(*model, double(quality));
  const nn::Encoded e = nn::compress(*model, img, hash, lam);
  Tensor out;
  for (int i = 0; i < reps; ++i) {
    nn::DecodeStages st;
    const auto t0 = std::chrono::steady_clock::now();
    out = nn::decompress(*model, e.bytes.data(), e.bytes.size(), hash, nn::kDefaultMaxPixels, &st);
    total.push_back(ms_since(t0));
    z.push_back(st.z_ms), hs.push_back(st.hs_ms), y.push_back(st.y_ms), gs.push_back(st.gs_ms);
    auto t1 = std::chrono::steady_clock::now();
    const std::vector<uint8_t> p = image_file_bytes(out, false);
    png.push_back(ms_since(t1));
    t1 = std::chrono::steady_clock::now();
    const std::vector<uint8_t> q = image_file_bytes(out, true);
    ppm.push_back(ms_since(t1));
  }
  if (out.to_vector() != e.recon.to_vector()) fail("bench decode: the decode differs from the encoder's reconstruction");
  // Whole processes, as a user runs them.
  char tmpl[] = "/tmp/ntc_bench_XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (!dir) fail("bench decode: cannot make a temporary folder");
  const std::string d = dir, stream = d + "/s.ntc";
  write_file_atomic(stream, e.bytes);
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) fail("bench decode: cannot find this executable");
  exe[n] = 0;
  std::vector<double> proc_ppm, proc_png, dwebp;
  // dwebp runs in the same loop as ntc, rep by rep, so that drifts in the machine's speed (a VM's
  // neighbours) weigh on both sides of the ratio alike.
  const bool webp = on_path("cwebp") && on_path("dwebp") &&
                    child_cpu_ms({"cwebp", "-q", "75", image, "-o", d + "/i.webp"}) >= 0;
  for (int i = 0; i < reps; ++i) {
    const std::string threads = std::to_string(num_threads());
    proc_ppm.push_back(child_cpu_ms({exe, "--threads", threads, "decode", stream, "-o", d + "/o.ppm", "--model", file}));
    proc_png.push_back(child_cpu_ms({exe, "--threads", threads, "decode", stream, "-o", d + "/o.png", "--model", file}));
    if (webp) dwebp.push_back(child_cpu_ms({"dwebp", "-quiet", d + "/i.webp", "-ppm", "-o", d + "/w.ppm"}));
  }
  JsonOut dw = JsonOut(), ratio = JsonOut();
  if (webp) {
    dw = median(dwebp);
    ratio = median(proc_ppm) / median(dwebp);
  }
  std::system(("rm -rf " + d).c_str());
  const int64_t H = img.dim(2), W = img.dim(3);
  if (args.has("json")) {
    std::printf("%s\n", json_line(JsonOut{{"bench", "decode"}, {"model", file}, {"image", image}, {"size", {H, W}},
                                          {"bpp", 8.0 * double(e.bytes.size()) / double(H * W)}, {"threads", num_threads()},
                                          {"kernels", k::kernel_target_name()}, {"gemm", gemm_backend_name()},
                                          {"blas", blas_kernel_name()}, {"reps", reps}, {"load_ms", median(load)},
                                          {"z_ms", median(z)}, {"hs_ms", median(hs)}, {"y_ms", median(y)},
                                          {"gs_ms", median(gs)}, {"decode_ms", median(total)},
                                          {"write_png_ms", median(png)}, {"write_ppm_ms", median(ppm)},
                                          {"process_cpu_ms_ppm", median(proc_ppm)}, {"process_cpu_ms_png", median(proc_png)},
                                          {"dwebp_cpu_ms", dw}, {"ratio_vs_dwebp", ratio}}).c_str());
  } else {
    std::printf("decode of %s (%ldx%ld, %.3f bpp) with %s, %d threads: load %.1f ms, z %.2f ms, h_s %.1f ms, y %.1f ms, "
                "g_s %.1f ms (decode %.1f ms); write PNG %.1f ms, PPM %.1f ms; process CPU %.1f ms to PPM, %.1f ms to PNG",
                image.c_str(), long(W), long(H), 8.0 * double(e.bytes.size()) / double(H * W), file.c_str(), num_threads(),
                median(load), median(z), median(hs), median(y), median(gs), median(total), median(png), median(ppm),
                median(proc_ppm), median(proc_png));
    if (!dwebp.empty()) std::printf("; dwebp %.1f ms (ntc/dwebp %.2f)", median(dwebp), median(proc_ppm) / median(dwebp));
    std::printf("\n");
  }
  return 0;
}

}  // namespace

int bench_decode(const std::vector<std::string>& argv) {
  cli::Args args(argv, {"config", "size", "reps", "model", "image", "quality"}, {"json"});
  if (args.has("model")) return bench_decode_model(args);
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
