// ntc analyze — the paper's analyses on ntc's models (issue: ntc analyze). So far:
//   blocking --model F --data DIR --json OUT [--quality Q | --lambda L] [--limit N]
//     decodes each image through a real stream and reports boundary_ratio (lib/metrics.h: the
//     pixel differences across 16-pixel block boundaries over those one pixel inside), per image
//     and on average, with the bpp and PSNR of the decode.
//   gap --model F --data DIR --sga N --json OUT [--quality Q | --lambda L] [--limit N]
//     the part of the inference gap SGA recovers (SPEC §6.1): the RD cost bpp + λ·MSE (MSE of the
//     8-bit decode on the 0..255 scale, bpp of the real stream) with amortised encoding and after
//     N SGA iterations, per image and on average, and gap_percent = 100·(amortised − sga)/amortised.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "lib/args.h"
#include "lib/common.h"
#include "lib/fileio.h"
#include "lib/image.h"
#include "lib/json.h"
#include "lib/metrics.h"
#include "nn/compress.h"
#include "nn/config.h"
#include "nn/model_file.h"
#include "train/data.h"
#include "train/sga.h"

namespace ntc::cli {

namespace {

// The model (--model, default: the shipped default family), its stream identity, and the λ to code
// at: a variable-rate model's --lambda or --quality (default 50); a fixed-rate model's --lambda or
// its trained λ (needed only when `need_fixed_lambda`).
struct Analysed {
  std::string path;
  std::unique_ptr<nn::Model> model;
  uint64_t hash = 0;
  double rate = 0, lambda = 0;
};
Analysed load_for_analysis(const Args& a, bool need_fixed_lambda) {
  Analysed r;
  r.path = a.str("model", nn::model_dir() + "/ntc_two_layer.ntcm");
  const std::vector<uint8_t> mb = read_file(r.path);
  r.model = nn::deserialize_model(mb.data(), mb.size(), r.path);
  r.hash = nn::model_hash(mb.data(), mb.size());
  if (!r.model->rate_lambdas().empty()) {
    r.rate = a.has("lambda") ? a.numbers("lambda").front() : nn::lambda_for_quality(*r.model, double(a.integer("quality", 50)));
    r.lambda = r.rate;
  } else if (need_fixed_lambda) {
    r.lambda = a.has("lambda") ? a.numbers("lambda").front() : r.model->trained_lambda();
    if (!(r.lambda > 0)) fail("analyze: this model does not record its λ; pass --lambda");
  }
  return r;
}

std::vector<std::string> analysis_images(const Args& a) {
  std::vector<std::string> files = train::list_images(a.str("data"));
  const long limit = a.integer("limit", 0);
  if (limit > 0 && files.size() > size_t(limit)) files.resize(size_t(limit));
  if (files.empty()) fail("analyze: no images in ", a.str("data"));
  return files;
}

double mse_of(const Tensor& a, const Tensor& b) {
  double se = 0;
  for (int64_t i = 0; i < a.numel(); ++i) se += double(a.data()[i] - b.data()[i]) * double(a.data()[i] - b.data()[i]);
  return se / double(a.numel());
}

int analyze_gap(const std::vector<std::string>& rest) {
  Args a(rest, {"model", "data", "json", "quality", "lambda", "limit", "sga"}, {});
  if (!a.has("data") || !a.has("json") || !a.has("sga"))
    usage_fail("usage: ntc analyze gap --model F --data DIR --sga N --json OUT [--quality Q | --lambda L] [--limit N]");
  const long iters = a.integer("sga", 0);
  if (iters < 1 || iters > 1000000) usage_fail("--sga wants 1..1000000 iterations");
  Analysed an = load_for_analysis(a, true);
  nn::Model* m = an.model.get();
  const std::string& path = an.path;
  const uint64_t hash = an.hash;
  const double rate = an.rate, lam = an.lambda;
  const std::vector<std::string> files = analysis_images(a);
  JsonOut per = JsonOut::array();
  double s0 = 0, s1 = 0, sg = 0;
  for (const std::string& f : files) {
    const Tensor img = read_image(f);
    const double px = double(img.dim(2) * img.dim(3));
    const nn::Encoded e0 = nn::compress(*m, img, hash, rate);
    train::SgaOptions o;
    o.iters = int(iters);
    const nn::Latents l = train::sga_refine(*m, img, lam, rate, o);
    const nn::Encoded e1 = nn::encode_latents(*m, l, img.dim(2), img.dim(3), hash, rate);
    const double b0 = 8.0 * double(e0.bytes.size()) / px, b1 = 8.0 * double(e1.bytes.size()) / px;
    const double d0 = mse_of(e0.recon, img), d1 = mse_of(e1.recon, img);
    const double rd0 = b0 + lam * d0, rd1 = b1 + lam * d1, gap = 100 * (rd0 - rd1) / rd0;
    per.push_back({{"file", std::filesystem::path(f).filename().string()}, {"amortised_rd", rd0}, {"sga_rd", rd1},
                   {"gap_percent", gap}, {"amortised_bpp", b0}, {"sga_bpp", b1}, {"amortised_psnr", psnr(e0.recon, img)},
                   {"sga_psnr", psnr(e1.recon, img)}});
    s0 += rd0, s1 += rd1, sg += gap;
    std::fprintf(stderr, "%s: RD %.4f amortised, %.4f after %ld SGA iterations (%.2f%%)\n", f.c_str(), rd0, rd1, iters, gap);
  }
  const double n = double(files.size());
  JsonOut j{{"analysis", "gap"}, {"model", path}, {"lambda", lam}, {"sga_iters", iters}, {"images", files.size()},
            {"amortised_rd", s0 / n}, {"sga_rd", s1 / n}, {"gap_percent", sg / n}, {"per_image", per}};
  const std::string text = json_line(j) + "\n";
  write_file_atomic(a.str("json"), std::vector<uint8_t>(text.begin(), text.end()));
  std::printf("inference gap of %s at λ %g over %zu images: RD %.4f amortised, %.4f after %ld SGA iterations: %.2f%%\n",
              path.c_str(), lam, files.size(), s0 / n, s1 / n, iters, sg / n);
  return 0;
}

}  // namespace

int cmd_analyze(const std::vector<std::string>& argv) {
  if (argv.empty()) usage_fail("usage: ntc analyze blocking|gap --model F --data DIR --json OUT ...");
  const std::string what = argv[0];
  const std::vector<std::string> rest(argv.begin() + 1, argv.end());
  if (what == "gap") return analyze_gap(rest);
  if (what != "blocking") usage_fail("analyze: unknown analysis '", what, "' (blocking, gap)");
  Args a(rest, {"model", "data", "json", "quality", "lambda", "limit", "block"}, {});
  if (!a.has("data") || !a.has("json")) usage_fail("usage: ntc analyze blocking --model F --data DIR --json OUT [--quality Q | --lambda L]");
  Analysed an = load_for_analysis(a, false);
  nn::Model* m = an.model.get();
  const std::string& path = an.path;
  const uint64_t hash = an.hash;
  const double lam = an.rate;
  const int block = int(a.integer("block", 16));
  if (block < 2 || block > 4096) usage_fail("--block wants 2..4096");
  const std::vector<std::string> files = analysis_images(a);
  JsonOut per = JsonOut::array();
  double sum_ratio = 0, sum_ref = 0, sum_bpp = 0;
  int n = 0;
  for (const std::string& f : files) {
    const Tensor img = read_image(f);
    const nn::Encoded e = nn::compress(*m, img, hash, lam);
    const double px = double(img.dim(2) * img.dim(3)), r = boundary_ratio(e.recon, block), r0 = boundary_ratio(img, block);
    const double bpp = 8.0 * double(e.bytes.size()) / px;
    per.push_back({{"file", std::filesystem::path(f).filename().string()}, {"bpp", bpp}, {"psnr", psnr(e.recon, img)},
                   {"boundary_ratio", r}, {"boundary_ratio_original", r0}});
    if (std::isfinite(r) && std::isfinite(r0)) sum_ratio += r, sum_ref += r0, sum_bpp += bpp, ++n;
  }
  JsonOut j{{"analysis", "blocking"}, {"model", path}, {"block", block}, {"lambda", lam}, {"images", files.size()},
            {"bpp", n ? sum_bpp / n : NAN}, {"boundary_ratio", n ? sum_ratio / n : NAN},
            {"boundary_ratio_original", n ? sum_ref / n : NAN}, {"per_image", per}};
  const std::string text = json_line(j) + "\n";
  write_file_atomic(a.str("json"), std::vector<uint8_t>(text.begin(), text.end()));
  std::printf("blocking of %s at λ %g over %d images: boundary_ratio %.4f (the originals: %.4f), %.4f bpp\n", path.c_str(),
              lam, n, n ? sum_ratio / n : NAN, n ? sum_ref / n : NAN, n ? sum_bpp / n : NAN);
  return 0;
}

}  // namespace ntc::cli
