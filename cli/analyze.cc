// ntc analyze — the paper's analyses on ntc's models (issue: ntc analyze). So far:
//   blocking --model F --data DIR --json OUT [--quality Q | --lambda L] [--limit N]
//     decodes each image through a real stream and reports boundary_ratio (lib/metrics.h: the
//     pixel differences across 16-pixel block boundaries over those one pixel inside), per image
//     and on average, with the bpp and PSNR of the decode.
#include <cmath>
#include <cstdio>
#include <filesystem>

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

namespace ntc::cli {

int cmd_analyze(const std::vector<std::string>& argv) {
  if (argv.empty()) usage_fail("usage: ntc analyze blocking --model F --data DIR --json OUT [--quality Q | --lambda L]");
  const std::string what = argv[0];
  const std::vector<std::string> rest(argv.begin() + 1, argv.end());
  if (what != "blocking") usage_fail("analyze: unknown analysis '", what, "' (blocking)");
  Args a(rest, {"model", "data", "json", "quality", "lambda", "limit", "block"}, {});
  if (!a.has("data") || !a.has("json")) usage_fail("usage: ntc analyze blocking --model F --data DIR --json OUT [--quality Q | --lambda L]");
  const std::string path = a.str("model", nn::model_dir() + "/ntc_two_layer.ntcm");
  const std::vector<uint8_t> mb = read_file(path);
  auto m = nn::deserialize_model(mb.data(), mb.size(), path);
  const uint64_t hash = nn::model_hash(mb.data(), mb.size());
  double lam = 0;
  if (!m->rate_lambdas().empty())
    lam = a.has("lambda") ? std::stod(a.str("lambda")) : nn::lambda_for_quality(*m, double(a.integer("quality", 50)));
  const int block = int(a.integer("block", 16));
  if (block < 2 || block > 4096) usage_fail("--block wants 2..4096");
  std::vector<std::string> files = train::list_images(a.str("data"));
  const long limit = a.integer("limit", 0);
  if (limit > 0 && files.size() > size_t(limit)) files.resize(size_t(limit));
  if (files.empty()) fail("analyze: no images in ", a.str("data"));
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
