// `ntc flops` — FLOPs (the paper's convention, lib/flops.h), parameters and optionally time per
// layer of a model's four parts: analysis f (g_a), hyper-analysis f_h (h_a), hyper-synthesis g_h
// (h_s) and synthesis g (g_s). Encode = f + f_h, decode = g + g_h, as in the paper's Table 1.
// Every FLOP figure comes from the ops' own *_flops functions via the layer trace.
#include <cmath>
#include <cstdio>
#include <memory>

#include "lib/args.h"
#include "cli/commands.h"
#include "kernels/kernels.h"
#include "lib/common.h"
#include "lib/json.h"
#include "lib/ops/ops.h"
#include "lib/threads.h"
#include "nn/model.h"
#include "nn/model_file.h"
#include "nn/overfit.h"
#include "lib/fileio.h"
#include "nn/profile.h"

namespace ntc::cli {
namespace {

void parse_size(const std::string& s, int64_t* h, int64_t* w) {
  const size_t x = s.find('x');
  char* e1 = nullptr;
  char* e2 = nullptr;
  if (x == std::string::npos) fail("--size wants HxW, got '", s, "'");
  *h = std::strtol(s.substr(0, x).c_str(), &e1, 10);
  *w = std::strtol(s.substr(x + 1).c_str(), &e2, 10);
  if (*e1 || *e2 || *h < 1 || *w < 1 || *h > 16384 || *w > 16384) fail("--size wants HxW within 1..16384, got '", s, "'");
}

// The decoder of an overfitted stream (nn/overfit.h): FLOPs per pixel by part, in the shape of
// --model's JSON (flops_per_pixel.decode).
int stream_flops(const std::string& path, bool json) {
  const std::vector<uint8_t> bytes = read_file(path);
  if (!nn::overfit::is_overfit_stream(bytes.data(), bytes.size()))
    fail("flops: ", path, " is not an overfitted stream (a model's stream is profiled with --model FILE)");
  const nn::overfit::Stream h = nn::overfit::read_stream_header(bytes.data(), bytes.size(), path);
  const nn::overfit::Arch& a = h.arch;
  const nn::overfit::DecoderFlops f = nn::overfit::decoder_flops(a);
  int64_t params = 0;
  for (const auto& s : nn::overfit::param_specs(a)) params += numel_of(s.shape);
  if (json) {
    JsonOut fp{{"arm", f.arm}, {"upsampling", f.upsample}, {"synthesis", f.synthesis}, {"decode", f.total()}};
    JsonOut km{{"arm", f.arm / 2000}, {"upsampling", f.upsample / 2000}, {"synthesis", f.synthesis / 2000}, {"decode", f.total() / 2000}};
    JsonOut j{{"stream", path}, {"size", {a.height, a.width}}, {"pixels", double(a.height) * a.width}, {"type", "overfit"},
              {"flops_per_pixel", fp}, {"kmac_per_pixel", km}, {"params", {{"decoder", params}}},
              {"latents", a.latent_count()}};
    std::printf("%s\n", json_line(j).c_str());
    return 0;
  }
  std::printf("%s: overfitted stream, %dx%d, %lld decoder parameters, %lld latents\n", path.c_str(), a.width, a.height,
              (long long)params, (long long)a.latent_count());
  std::printf("  ARM (entropy model)  %10.1f FLOPs/px\n  upsampling           %10.1f FLOPs/px\n  synthesis            %10.1f FLOPs/px\n",
              f.arm, f.upsample, f.synthesis);
  std::printf("decode: %.1f FLOPs/px = %.4f KMAC/px\n", f.total(), f.total() / 2000);
  return 0;
}

}  // namespace

int cmd_flops(const std::vector<std::string>& argv) {
  Args args(argv, {"config", "model", "size", "seed", "stream"}, {"json", "time"});
  if (!args.positional().empty()) fail("flops: unexpected argument '", args.positional()[0], "'");
  if (args.has("stream")) {
    if (args.has("config") || args.has("model") || args.has("size") || args.has("time"))
      fail("flops: --stream takes no --config, --model, --size or --time");
    return stream_flops(args.str("stream"), args.has("json"));
  }
  if (args.has("config") == args.has("model")) fail("flops: give exactly one of --config NAME, --model FILE and --stream FILE");
  int64_t H = 512, W = 768;
  if (args.has("size")) parse_size(args.str("size"), &H, &W);
  const bool json = args.has("json"), timed = args.has("time");

  std::unique_ptr<nn::Model> model;
  if (args.has("model")) {
    model = nn::load_model(args.str("model"));
  } else {
    model = std::make_unique<nn::Model>(nn::Config::load(args.str("config")));
    Rng rng(uint64_t(args.integer("seed", 1)));
    model->init(rng);
  }
  const nn::ModelProfile prof = nn::profile_model(*model, H, W, timed);
  const auto& parts = prof.parts;
  const double pixels = double(H) * double(W);
  auto fpp = [&](int64_t f) { return double(f) / pixels; };
  const int64_t enc = prof.flops("f") + prof.flops("f_h"), dec = prof.flops("g") + prof.flops("g_h");
  const int64_t eb_params = model->entropy_bottleneck().channels() == 0 ? 0 : [&] {
    int64_t n = 0;
    for (auto& [name, t] : model->entropy_bottleneck().named_parameters()) n += t.numel();
    return n;
  }();

  if (json) {
    JsonOut j{{"model", model->config().origin()}, {"size", {H, W}}, {"pixels", pixels}, {"threads", num_threads()},
              {"kernels", k::kernel_target_name()}};
    JsonOut fp, km, pa;
    for (const nn::PartProfile& p : parts) {
      fp[p.key] = fpp(p.flops);
      km[p.key] = fpp(p.flops) / 2000;
      pa[p.key] = p.params;
    }
    fp["encode"] = fpp(enc);
    fp["decode"] = fpp(dec);
    km["encode"] = fpp(enc) / 2000;
    km["decode"] = fpp(dec) / 2000;
    pa["entropy_bottleneck"] = eb_params;
    j["flops_per_pixel"] = fp;
    j["kmac_per_pixel"] = km;
    j["params"] = pa;
    JsonOut layers = JsonOut::array();
    for (const nn::PartProfile& p : parts)
      for (const auto& r : p.layers) {
        const int64_t f = r.leaf ? r.flops : r.self_flops;
        JsonOut l{{"part", p.key}, {"name", r.path}, {"type", r.type + (r.leaf ? "" : " (self)")}, {"in", r.in},
                  {"out", r.out}, {"params", r.params}, {"flops", f}, {"flops_per_pixel", fpp(f)},
                  {"share", p.flops ? double(f) / double(p.flops) : 0.0}};
        if (timed && r.leaf) {
          l["ms"] = r.ms;
          l["gflops"] = r.ms > 0 ? double(r.flops) / r.ms * 1e-6 : 0.0;
        }
        layers.push_back(l);
      }
    j["layers"] = layers;
    if (timed) {
      JsonOut ms;
      for (const nn::PartProfile& p : parts) ms[p.key] = p.ms;
      j["ms"] = ms;
    }
    std::printf("%s\n", json_line(j).c_str());
    return 0;
  }

  std::printf("%s at %lldx%lld (%d threads, kernels %s)\n", model->config().origin().c_str(), (long long)H,
              (long long)W, num_threads(), k::kernel_target_name());
  for (const nn::PartProfile& p : parts) {
    std::printf("\n%s (%s, %s): %lld params, %.4f FLOPs/px, %.4f KMAC/px%s\n", p.key.c_str(), p.module->name().c_str(),
                p.module->type().c_str(), (long long)p.params, fpp(p.flops), fpp(p.flops) / 2000,
                timed ? (", " + std::to_string(p.ms) + " ms").c_str() : "");
    std::printf("  %-36s %-26s %-18s %-18s %10s %14s %7s%s\n", "layer", "type", "in", "out", "params", "FLOPs/px",
                "share", timed ? "       ms  GFLOP/s" : "");
    for (const auto& r : p.layers) {
      const int64_t f = r.leaf ? r.flops : r.self_flops;
      std::printf("  %-36s %-26s %-18s %-18s %10lld %14.4f %6.2f%%", r.path.c_str(),
                  (r.type + (r.leaf ? "" : " (self)")).c_str(), shape_str(r.in).c_str(), shape_str(r.out).c_str(),
                  (long long)r.params, fpp(f), p.flops ? 100.0 * double(f) / double(p.flops) : 0.0);
      if (timed && r.leaf) std::printf(" %9.3f %8.1f", r.ms, r.ms > 0 ? double(r.flops) / r.ms * 1e-6 : 0.0);
      std::printf("\n");
    }
  }
  std::printf("\nencode (f + f_h): %.4f FLOPs/px = %.4f KMAC/px\ndecode (g + g_h): %.4f FLOPs/px = %.4f KMAC/px\n",
              fpp(enc), fpp(enc) / 2000, fpp(dec), fpp(dec) / 2000);
  std::printf("entropy bottleneck: %lld params\n", (long long)eb_params);
  return 0;
}

}  // namespace ntc::cli
