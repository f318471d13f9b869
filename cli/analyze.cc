// ntc analyze — the paper's analyses on ntc's models (issue: ntc analyze). So far:
//   blocking --model F --data DIR --json OUT [--quality Q | --lambda L] [--limit N]
//     decodes each image through a real stream and reports boundary_ratio (lib/metrics.h: the
//     pixel differences across 16-pixel block boundaries over those one pixel inside), per image
//     and on average, with the bpp and PSNR of the decode.
//   gap --model F --data DIR --sga N --json OUT [--quality Q | --lambda L] [--limit N]
//     the part of the inference gap SGA recovers (SPEC §6.1): the RD cost bpp + λ·MSE (MSE of the
//     8-bit decode on the 0..255 scale, bpp of the real stream) with amortised encoding and after
//     N SGA iterations, per image and on average, and gap_percent = 100·(amortised − sga)/amortised.
//   manifold --model F --data DIR --json OUT [--pairs N] [--crop 256] [--steps 11] [-o FIG.svg]
//     the manifold-flatness experiment (SPEC §6.2, nn/analysis.h) on random pairs of crops:
//     MSE of the decoded latent line to the pixel line and to the mixup on a t grid, curve length
//     over endpoint distance (length_ratio_mean), Fig. 4a/4b as SVG, the Fig. 3 strip as PNG.
//   filters --model F -o BASIS.png [--images DIR] [--json OUT] [--overlap PNG]
//     the synthesis basis functions (SPEC §6.3): g(v·e_c) − g(0) per channel, ordered by mean ŷ²
//     over the images, tiled with the active latent's block in the middle of each tile; the share
//     of each response's energy outside its own block; the overlap of the 2×2 blocks it reaches.
#include <algorithm>
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
#include "nn/analysis.h"
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
    const double d0 = mse(e0.recon, img), d1 = mse(e1.recon, img);
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

// Fig. 4a (MSE of the decoded curve to the pixel line, solid, and to the mixup, dashed, against t)
// and Fig. 4b (curve length against endpoint distance, with the diagonal) as one SVG.
std::string manifold_svg(const std::vector<nn::ManifoldPair>& pairs, const std::string& title) {
  const double W = 420, H = 320, L = 60, T = 40, pw = W - L - 20, ph = H - T - 50;
  double ymax = 1e-12, dmax = 1e-12;
  for (const auto& p : pairs) {
    for (size_t i = 0; i < p.t.size(); ++i) ymax = std::max({ymax, p.mse_to_line[i], p.mse_to_mixup[i]});
    dmax = std::max({dmax, p.length, p.endpoint_distance});
  }
  std::string o;
  char b[512];
  std::snprintf(b, sizeof b,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
                "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                "<text x=\"%.0f\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">%s</text>\n",
                2 * W, H + 10, W, xml_escape(title).c_str());
  o += b;
  auto axes = [&](double x0, const char* xl, const char* yl, double xmax, double ymax_) {
    std::snprintf(b, sizeof b,
                  "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"black\"/>\n"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 %.1f %.1f)\">%s</text>\n"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">0</text><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n",
                  x0 + L, T, pw, ph, x0 + L + pw / 2, T + ph + 35, xl, x0 + 18, T + ph / 2, x0 + 18, T + ph / 2, yl, x0 + L - 4,
                  T + ph + 4, x0 + L - 4, T + 4, ymax_, x0 + L + pw, T + ph + 16, xmax);
    o += b;
  };
  axes(0, "t", "MSE (0..255 scale)", 1, ymax);
  axes(W, "‖x̂⁰ − x̂¹‖₂", "curve length L(γ̂)", dmax, dmax);
  std::snprintf(b, sizeof b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\n",
                W + L, T + ph, W + L + pw, T);
  o += b;
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
  for (size_t k = 0; k < pairs.size(); ++k) {
    const auto& p = pairs[k];
    const char* c = colors[k % 8];
    for (int dashed = 0; dashed < 2; ++dashed) {
      o += "<polyline fill=\"none\" stroke=\"" + std::string(c) + "\"" + (dashed ? " stroke-dasharray=\"5 4\"" : "") + " points=\"";
      for (size_t i = 0; i < p.t.size(); ++i) {
        const double v = dashed ? p.mse_to_mixup[i] : p.mse_to_line[i];
        std::snprintf(b, sizeof b, "%.1f,%.1f ", L + pw * p.t[i], T + ph * (1 - v / ymax));
        o += b;
      }
      o += "\"/>\n";
    }
    std::snprintf(b, sizeof b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", W + L + pw * p.endpoint_distance / dmax,
                  T + ph * (1 - p.length / dmax), c);
    o += b;
  }
  std::snprintf(b, sizeof b, "<text x=\"%.1f\" y=\"%.1f\">a: solid MSE(γ̂(t), x̂(t)), dashed MSE(γ̂(t), x(t))</text>\n"
                "<text x=\"%.1f\" y=\"%.1f\">b: points on the diagonal: straight decoded paths</text>\n</svg>\n",
                L, H + 4, W + L, H + 4);
  o += b;
  return o;
}

int analyze_manifold(const std::vector<std::string>& rest) {
  Args a(rest, {"model", "data", "json", "quality", "lambda", "pairs", "crop", "steps", "sub", "seed", "o", "strip"}, {});
  if (!a.has("data") || !a.has("json"))
    usage_fail("usage: ntc analyze manifold --model F --data DIR --json OUT [--pairs N] [--crop 256] [--steps 11] "
               "[--sub 8] [--seed S] [--quality Q | --lambda L] [-o FIG.svg] [--strip STRIP.png]");
  const long pairs = a.integer("pairs", 8), crop = a.integer("crop", 256), steps = a.integer("steps", 11);
  const long sub = a.integer("sub", 8);
  if (pairs < 1 || pairs > 10000) usage_fail("--pairs wants 1..10000");
  if (crop < 16 || crop > 4096) usage_fail("--crop wants 16..4096 pixels");
  if (steps < 2 || steps > 1001) usage_fail("--steps wants 2..1001");
  if (sub < 2 || sub > 64 || sub % 2) usage_fail("--sub wants an even count 2..64");
  Analysed an = load_for_analysis(a, false);
  nn::Model& m = *an.model;
  std::vector<std::string> files = train::list_images(a.str("data"));
  if (files.size() < 2) fail("analyze manifold: ", a.str("data"), " needs at least two images");
  Rng rng(uint64_t(a.integer("seed", 1)));
  auto pick = [&](size_t n) { return size_t(rng.next_u64() % n); };
  std::vector<nn::ManifoldPair> results;
  JsonOut per = JsonOut::array();
  std::vector<double> mean_line, mean_mix;
  double ratio = 0, length = 0, dist = 0;
  for (long k = 0; k < pairs; ++k) {
    const size_t i = pick(files.size()), j = (i + 1 + pick(files.size() - 1)) % files.size();
    Tensor xs[2];
    JsonOut where = JsonOut::array();
    for (int e = 0; e < 2; ++e) {
      const std::string& f = files[e ? j : i];
      const Tensor img = read_image(f);
      const int64_t H = img.dim(2), Wd = img.dim(3);
      if (H < crop || Wd < crop) fail("analyze manifold: ", f, " is ", Wd, "x", H, ", smaller than --crop ", crop);
      const int64_t y0 = int64_t(pick(size_t(H - crop + 1))), x0 = int64_t(pick(size_t(Wd - crop + 1)));
      xs[e] = Tensor::empty({1, 3, crop, crop});
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t y = 0; y < crop; ++y)
          std::copy_n(img.data() + (c * H + y0 + y) * Wd + x0, crop, xs[e].data() + (c * crop + y) * crop);
      where.push_back({{"file", std::filesystem::path(f).filename().string()}, {"y", y0}, {"x", x0}});
    }
    Tensor strip;
    const bool want_strip = k == 0 && a.has("strip");
    nn::ManifoldPair p = nn::manifold_pair(m, xs[0], xs[1], an.rate, int(steps), int(sub), want_strip ? &strip : nullptr);
    if (want_strip) write_image(a.str("strip"), strip);
    if (mean_line.empty()) mean_line.assign(p.t.size(), 0), mean_mix.assign(p.t.size(), 0);
    for (size_t q = 0; q < p.t.size(); ++q) mean_line[q] += p.mse_to_line[q] / double(pairs), mean_mix[q] += p.mse_to_mixup[q] / double(pairs);
    ratio += p.length_ratio() / double(pairs), length += p.length / double(pairs), dist += p.endpoint_distance / double(pairs);
    per.push_back({{"crops", where}, {"mse_to_line", p.mse_to_line}, {"mse_to_mixup", p.mse_to_mixup}, {"length", p.length},
                   {"length_coarse", p.length_coarse}, {"endpoint_distance", p.endpoint_distance},
                   {"length_ratio", p.length_ratio()}});
    std::fprintf(stderr, "pair %ld/%ld: length ratio %.4f, largest MSE to the pixel line %.2f\n", k + 1, pairs,
                 p.length_ratio(), *std::max_element(p.mse_to_line.begin(), p.mse_to_line.end()));
    results.push_back(std::move(p));
  }
  JsonOut j{{"analysis", "manifold"}, {"model", an.path}, {"lambda", an.rate}, {"crop", crop}, {"pairs", pairs},
            {"steps", steps}, {"sub", sub}, {"t", results[0].t}, {"mse_to_line_mean", mean_line},
            {"mse_to_mixup_mean", mean_mix}, {"length_ratio_mean", ratio}, {"length_mean", length},
            {"endpoint_distance_mean", dist}, {"per_pair", per}};
  const std::string text = json_line(j) + "\n";
  write_file_atomic(a.str("json"), std::vector<uint8_t>(text.begin(), text.end()));
  if (a.has("o")) {
    const std::string svg = manifold_svg(results, "manifold flatness: " + std::filesystem::path(an.path).filename().string());
    write_file_atomic(a.str("o"), std::vector<uint8_t>(svg.begin(), svg.end()));
  }
  std::printf("manifold of %s over %ld pairs of %ldx%ld crops: length_ratio_mean %.4f, MSE to the pixel line at t = 0.5: %.3f "
              "(to the mixup: %.3f)\n",
              an.path.c_str(), pairs, crop, crop, ratio, mean_line[mean_line.size() / 2], mean_mix[mean_mix.size() / 2]);
  return 0;
}

// The synthesis basis functions (SPEC §6.3; nn/analysis.h basis_response), tiled by energy.
int analyze_filters(const std::vector<std::string>& rest) {
  Args a(rest, {"model", "images", "limit", "channels", "value", "quality", "lambda", "o", "json", "overlap"}, {});
  if (!a.has("o"))
    usage_fail("usage: ntc analyze filters --model F -o BASIS.png [--images DIR [--limit 4]] [--channels N] [--value V] "
               "[--quality Q | --lambda L] [--json OUT] [--overlap PNG]");
  Analysed an = load_for_analysis(a, false);
  nn::Model& m = *an.model;
  const int M = m.latent_channels(), s = m.latent_stride();
  const long channels = a.integer("channels", M);
  if (channels < 1 || channels > M) usage_fail("--channels wants 1..", M);
  const double value = a.numbers("value").empty() ? 1.0 : a.numbers("value").front();
  if (!std::isfinite(value) || value == 0 || std::fabs(value) > 1000) usage_fail("--value wants a non-zero latent value up to 1000");
  std::vector<std::pair<int, double>> order;
  if (a.has("images")) {
    std::vector<std::string> files = train::list_images(a.str("images"));
    const long limit = a.integer("limit", 4);
    if (limit > 0 && files.size() > size_t(limit)) files.resize(size_t(limit));
    if (files.empty()) fail("analyze filters: no images in ", a.str("images"));
    std::vector<Tensor> imgs;
    for (const auto& f : files) imgs.push_back(read_image(f));
    order = nn::channels_by_energy(m, imgs, an.rate);
  } else {
    for (int c = 0; c < M; ++c) order.push_back({c, 0.0});
  }
  order.resize(size_t(channels));
  const int S = 3 * s, gap = 2, cols = int(std::ceil(std::sqrt(double(channels)))), rows = int((channels + cols - 1) / cols);
  const int64_t PW = int64_t(cols) * (S + gap) + gap, PH = int64_t(rows) * (S + gap) + gap;
  Tensor pic = Tensor::empty({1, 3, PH, PW});
  std::fill(pic.data(), pic.data() + pic.numel(), 64.f);
  std::vector<Tensor> responses;
  std::vector<double> peaks;
  JsonOut per = JsonOut::array();
  for (size_t k = 0; k < order.size(); ++k) {
    const Tensor r = nn::basis_response(m, order[k].first, value, an.rate, 1);
    double peak = 0, all = 0, own = 0;
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < S; ++y)
        for (int64_t x = 0; x < S; ++x) {
          const double v = r.data()[(c * S + y) * S + x];
          peak = std::max(peak, std::fabs(v));
          all += v * v;
          if (y >= s && y < 2 * s && x >= s && x < 2 * s) own += v * v;
        }
    const int64_t oy = gap + int64_t(k / size_t(cols)) * (S + gap), ox = gap + int64_t(k % size_t(cols)) * (S + gap);
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < S; ++y)
        for (int64_t x = 0; x < S; ++x)
          pic.data()[(c * PH + oy + y) * PW + ox + x] =
              float(std::nearbyint(128 + (peak > 0 ? 127 * r.data()[(c * S + y) * S + x] / peak : 0)));
    per.push_back({{"channel", order[k].first}, {"mean_y_hat_squared", order[k].second}, {"peak", peak},
                   {"outside_energy_fraction", all > 0 ? (all - own) / all : 0.0}});
    responses.push_back(r);
    peaks.push_back(peak);
  }
  write_image(a.str("o"), pic);
  // The overlap picture: the 2×2 latent blocks right and below the active one (top left), 4× larger,
  // with the block boundaries drawn, for the 8 strongest channels.
  if (a.has("overlap")) {
    const int n = int(std::min<size_t>(8, responses.size())), Z = 4, T = 2 * s * Z;
    const int64_t OW = int64_t(n) * (T + gap) + gap, OH = T + 2 * gap;
    Tensor o = Tensor::empty({1, 3, OH, OW});
    std::fill(o.data(), o.data() + o.numel(), 64.f);
    for (int k = 0; k < n; ++k) {
      const Tensor& r = responses[size_t(k)];
      const double peak = peaks[size_t(k)];
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t y = 0; y < T; ++y)
          for (int64_t x = 0; x < T; ++x) {
            const bool edge = y % (s * Z) == 0 || x % (s * Z) == 0;
            const double v = r.data()[(c * S + s + y / Z) * S + s + x / Z];
            o.data()[(c * OH + gap + y) * OW + gap + k * (T + gap) + x] =
                edge ? 255.f : float(std::nearbyint(128 + (peak > 0 ? 127 * v / peak : 0)));
          }
    }
    write_image(a.str("overlap"), o);
  }
  double outside = 0;
  for (auto& p : per) outside += p["outside_energy_fraction"].get<double>() / double(per.size());
  if (a.has("json")) {
    JsonOut j{{"analysis", "filters"}, {"model", an.path}, {"lambda", an.rate}, {"value", value}, {"stride", s},
              {"tile", S}, {"ordered_by_energy", a.has("images")}, {"outside_energy_fraction_mean", outside}, {"channels", per}};
    const std::string text = json_line(j) + "\n";
    write_file_atomic(a.str("json"), std::vector<uint8_t>(text.begin(), text.end()));
  }
  std::printf("basis functions of %s: %ld channels, %dx%d tiles (the active latent's block in the middle) in %s; "
              "mean share of the response energy outside its own %dx%d block: %.4f\n",
              an.path.c_str(), channels, S, S, a.str("o").c_str(), s, s, outside);
  return 0;
}

}  // namespace

int cmd_analyze(const std::vector<std::string>& argv) {
  if (argv.empty()) usage_fail("usage: ntc analyze blocking|gap|manifold|filters --model F ...");
  const std::string what = argv[0];
  const std::vector<std::string> rest(argv.begin() + 1, argv.end());
  if (what == "gap") return analyze_gap(rest);
  if (what == "manifold") return analyze_manifold(rest);
  if (what == "filters") return analyze_filters(rest);
  if (what != "blocking") usage_fail("analyze: unknown analysis '", what, "' (blocking, gap, manifold, filters)");
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
