// The codec a user runs: `ntc encode`, `ntc decode`, `ntc eval`, `ntc bdrate`, `ntc plot`.
// Conventions of cjpeg/cwebp: input, -o output, a quality knob, -v. Outputs are written
// atomically (temp file + rename); every bad input is a one-line error and exit status 1.
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "lib/args.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "codec/container.h"
#include "lib/alloc.h"
#include "lib/common.h"
#include "lib/fileio.h"
#include "lib/image.h"
#include "lib/json.h"
#include "lib/metrics.h"
#include "lib/threads.h"
#include "nn/compress.h"
#include "nn/config.h"
#include "nn/model_file.h"
#include "train/data.h"
#include "train/sga.h"
#include "nn/overfit.h"
#include "train/overfit.h"

namespace ntc::cli {

namespace {
bool g_force_progress = false;
}
void force_progress(bool on) { g_force_progress = on; }
bool progress_to_stderr() { return g_force_progress || isatty(STDERR_FILENO); }
namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// The shipped model families (data/MODELS.md), by short name; the first is the default (the
// family with the better rate–distortion). Each is one variable-rate model file.
struct Family {
  const char* name;
  const char* file;  // under data/models/
};
constexpr Family kFamilies[] = {{"two-layer", "ntc_two_layer.ntcm"}, {"jpeg-like", "ntc_jpeg_like.ntcm"}};

// --model: a family's short name (two-layer, jpeg-like; '_' for '-' also accepted), or a file path
// (anything with a '/' or ending in .ntcm). Empty: the default family.
std::string resolve_model(const std::string& arg) {
  if (arg.find('/') != std::string::npos || (arg.size() > 5 && arg.substr(arg.size() - 5) == ".ntcm")) return arg;
  std::string want = arg.empty() ? kFamilies[0].name : arg;
  for (char& c : want) c = c == '_' ? '-' : char(std::tolower(static_cast<unsigned char>(c)));
  std::string names;
  for (const Family& f : kFamilies) {
    if (want == f.name) {
      const std::string path = nn::model_dir() + "/" + f.file;
      if (!std::ifstream(path).good())
        fail("the model family '", f.name, "' is not in this build (", path, " missing; see data/MODELS.md); pass --model FILE");
      return path;
    }
    names += names.empty() ? f.name : std::string(", ") + f.name;
  }
  fail("--model: no model family '", arg, "' (families: ", names, "; or give a .ntcm file path)");
}

struct LoadedModel {
  std::unique_ptr<nn::Model> model;
  uint64_t hash = 0;
  std::string path;
};

// A model file's bytes, parsed; hash: its model_hash.
LoadedModel parse(const std::string& path, const FileBytes& bytes, uint64_t hash) {
  LoadedModel m;
  m.path = path;
  m.model = nn::deserialize_model(bytes.data(), bytes.size(), path);
  m.hash = hash;
  return m;
}

LoadedModel load(const std::string& arg) {
  const std::string path = resolve_model(arg);
  const FileBytes bytes = read_file_bytes(path);
  return parse(path, bytes, nn::model_hash(bytes.data(), bytes.size()));
}

// The model a stream names, when --model is not given: the shipped family whose file has the
// stream's model hash (the default family first, so the usual case reads one file), each file
// hashed before it is parsed; the default family when none matches (ntc 0.2 streams, whose hash
// is the older one, are accepted by the caller, and another model's stream is refused there).
LoadedModel load_for_stream(uint64_t stream_hash) {
  for (const Family& f : kFamilies) {
    const std::string path = nn::model_dir() + "/" + f.file;
    if (!std::ifstream(path).good()) continue;
    const FileBytes bytes = read_file_bytes(path);
    if (nn::model_hash(bytes.data(), bytes.size()) == stream_hash) return parse(path, bytes, stream_hash);
  }
  return load("");
}

// The identity streams made by ntc 0.2 and earlier carry (FNV-1a of the file): computed only for such a
// stream, from the file read again.
uint64_t legacy_hash(const LoadedModel& m) {
  const std::vector<uint8_t> bytes = read_file(m.path);
  return nn::legacy_model_hash(bytes.data(), bytes.size());
}

// "-" is stdin (inputs) or stdout (outputs); files are written atomically as always.
std::vector<uint8_t> read_input(const std::string& path) {
  if (path != "-") return read_file(path);
  std::vector<uint8_t> b;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) b.insert(b.end(), buf, buf + n);
  if (std::ferror(stdin)) fail("cannot read stdin");
  return b;
}

void write_output(const std::string& path, const std::vector<uint8_t>& bytes) {
  if (path != "-") return write_file_atomic(path, bytes);
  if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() || std::fflush(stdout) != 0)
    fail("cannot write stdout");
}

double parse_positive(const Args& a, const char* k) {
  const std::string text = a.str(k);  // strtod's end pointer points into it: keep it alive
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end || !(v > 0)) fail("--", k, " wants a positive number, got '", text, "'");
  return v;
}

// The rate of a variable-rate model from --lambda or --quality (0..100, log-spaced over its λ
// range; default 50); 0 for a fixed-rate model (which takes neither).
double rate_lambda(const nn::Model& m, const Args& a) {
  const auto& ls = m.rate_lambdas();
  if (a.has("lambda") && a.has("quality")) fail("give --lambda or --quality, not both");
  if (ls.empty()) {
    if (a.has("quality")) fail("this model has a fixed rate: --quality does not apply");
    return 0;
  }
  if (a.has("lambda")) return parse_positive(a, "lambda");
  const long q = a.integer("quality", 50);
  if (q < 0 || q > 100) fail("--quality wants 0..100");
  return nn::lambda_for_quality(m, double(q));
}

// λ of the SGA loss: the rate for a variable-rate model, else --lambda or the trained λ.
double sga_lambda(const nn::Model& m, const Args& a, double rate) {
  if (rate > 0) return rate;
  if (a.has("lambda")) return parse_positive(a, "lambda");
  if (m.trained_lambda() > 0) return m.trained_lambda();
  fail("--sga needs --lambda: this model file does not record the λ it was trained for");
}


nn::Encoded encode_image(LoadedModel& lm, const Tensor& img, double rate, int sga_iters, double sga_lam, bool progress,
                         const std::string& label, size_t sga_max_bytes = train::SgaOptions().max_bytes) {
  if (sga_iters <= 0) return nn::compress(*lm.model, img, lm.hash, rate);
  train::SgaOptions o;
  o.iters = sga_iters;
  o.max_bytes = sga_max_bytes;
  Progress bar("SGA " + label, sga_iters, progress);
  const nn::Latents l = train::sga_refine(*lm.model, img, sga_lam, rate, o, [&](int t, double loss) {
    char b[48];
    std::snprintf(b, sizeof b, "loss %.4f", loss);
    bar.update(t + 1, b);
  });
  return nn::encode_latents(*lm.model, l, img.dim(2), img.dim(3), lm.hash, rate);
}

}  // namespace

namespace {

// encode's summary line: size, bytes, bpp (and PSNR); on stderr when the stream goes to stdout.
void print_summary(const std::string& out, const Tensor& img, size_t bytes, const Tensor& recon, bool with_psnr) {
  FILE* report = out == "-" ? stderr : stdout;  // the summary must not mix into a stream on stdout
  std::fprintf(report, "%s: %ldx%ld, %zu bytes, %.4f bpp", out == "-" ? "stdout" : out.c_str(), long(img.dim(3)),
               long(img.dim(2)), bytes, 8.0 * double(bytes) / double(img.dim(2) * img.dim(3)));
  if (with_psnr) std::fprintf(report, ", PSNR %.2f dB", psnr(recon, img));
  std::fprintf(report, "\n");
}

// λ of an overfitted encode: --lambda, or --quality 0…100 log-spaced over 0.0004…0.1024 (the
// campaign's rate points; default 50 = 0.0064).
double overfit_lambda(const Args& a) {
  if (a.has("lambda") && a.has("quality")) fail("give --lambda or --quality, not both");
  if (a.has("lambda")) return parse_positive(a, "lambda");
  const long q = a.integer("quality", 50);
  if (q < 0 || q > 100) fail("--quality wants 0..100");
  return 0.0004 * std::pow(256.0, double(q) / 100.0);
}

int encode_overfit(const Args& a, const std::string& in, const std::string& out) {
  if (a.has("model") || a.has("sga") || a.has("sga-max-memory")) fail("--overfit trains its own decoder: --model and --sga do not apply");
  train::OverfitOptions o;
  o.iters = a.has("iters") ? int(a.integer("iters", 0)) : train::overfit_preset_iters(a.str("overfit", "medium"));
  if (o.iters < 1 || o.iters > 10000000) fail("--iters wants 1..10000000");
  if (o.iters < 4 * o.warmup_iters) o.candidates = 1;  // short runs: no warm-up race
  o.lambda = overfit_lambda(a);
  o.seed = uint64_t(a.integer("seed", 1));
  if (a.has("overfit-widths")) {  // the decoder's size: synthesis and ARM hidden widths
    const std::vector<double> w = a.numbers("overfit-widths");
    if (w.size() != 2 || w[0] != std::floor(w[0]) || w[1] != std::floor(w[1]) || w[0] < 1 || w[1] < 1 ||
        w[0] > nn::overfit::kMaxHidden || w[1] > nn::overfit::kMaxHidden)
      fail("--overfit-widths wants SYN,ARM: two whole numbers 1..", nn::overfit::kMaxHidden);
    o.syn_hidden = int(w[0]);
    o.arm_hidden = int(w[1]);
  }
  if (a.has("overfit-upsample")) {
    const std::string u = a.str("overfit-upsample");
    if (u != "bilinear" && u != "learned") fail("--overfit-upsample wants bilinear or learned, got '", u, "'");
    o.learned_up = u == "learned";
  }
  const std::vector<uint8_t> in_bytes = read_input(in);
  const Tensor img = read_image(in_bytes.data(), in_bytes.size(), in == "-" ? "stdin" : in);
  Progress bar("overfit " + in, train::overfit_total_iters(o), !a.has("quiet"));
  o.progress = [&](int done, int, double loss) {
    char b[48];
    std::snprintf(b, sizeof b, "loss %.4f", loss);
    bar.update(done, b);
  };
  const double t0 = now_s();
  const train::OverfitResult r = train::overfit_encode(img, o);
  const double t1 = now_s();
  write_output(out, r.bytes);
  print_summary(out, img, r.bytes.size(), r.recon, a.has("psnr"));
  if (a.has("v"))
    std::fprintf(stderr, "overfitted decoder: %d channel%s, %d levels, λ %g, %d iterations, weights %.0f bits, decoder %.0f FLOPs/px, encode %.1f s, %d threads\n",
                 r.arch.channels, r.arch.channels == 1 ? "" : "s", r.arch.levels, o.lambda, o.iters, r.weight_bits,
                 nn::overfit::decoder_flops(r.arch).total(), t1 - t0, num_threads());
  if (a.has("v"))
    std::fprintf(stderr, "last training step: loss %.4f, latents %.4f bpp (estimate), PSNR %.2f dB (float); coded the state "
                 "of iteration %d: hard-rounded loss %.4f, latents %.4f bpp, PSNR %.2f dB\n", r.train_loss, r.train_bpp,
                 r.train_psnr, r.kept_iter, r.kept_loss, r.kept_bpp, r.kept_psnr);
  return 0;
}

}  // namespace

int cmd_encode(const std::vector<std::string>& argv) {
  Args a(argv, {"o", "model", "lambda", "quality", "sga", "sga-max-memory", "overfit", "iters", "seed", "overfit-widths", "overfit-upsample"}, {"v", "psnr", "quiet"});
  if (a.positional().size() != 1)
    usage_fail("usage: ntc encode IN.(png|jpg|ppm)|- -o OUT.ntc|- [--model NAME|FILE] [--lambda L | --quality Q] [--sga ITERS] "
               "[--sga-max-memory MIB] [--overfit fast|medium|slow] [--iters N] [--seed S] [--psnr] [-v]");
  if (!a.has("o")) usage_fail("encode: -o OUT.ntc is required");
  if (a.has("overfit") || a.has("iters") || a.has("seed") || a.has("overfit-widths") || a.has("overfit-upsample")) return encode_overfit(a, a.positional()[0], a.str("o"));
  const std::string in = a.positional()[0], out = a.str("o");
  LoadedModel lm = load(a.str("model"));
  const double rate = rate_lambda(*lm.model, a);
  const long sga = a.integer("sga", 0);
  if (sga < 0 || sga > 1000000) fail("--sga wants 0..1000000 iterations");
  const double sga_lam = sga > 0 ? sga_lambda(*lm.model, a, rate) : 0;
  const long sga_mib = a.integer("sga-max-memory", long(train::SgaOptions().max_bytes >> 20));
  if (sga_mib < 1 || sga_mib > (1L << 30)) fail("--sga-max-memory wants a size in MiB (1 or more)");
  const std::vector<uint8_t> in_bytes = read_input(in);
  const Tensor img = read_image(in_bytes.data(), in_bytes.size(), in == "-" ? "stdin" : in);
  if (img.dim(2) > 65536 || img.dim(3) > 65536) fail(in, ": images up to 65536 pixels per side are supported");
  const double t0 = now_s();
  nn::Encoded e = encode_image(lm, img, rate, int(sga), sga_lam, !a.has("quiet"), in, size_t(sga_mib) << 20);
  const double t1 = now_s();
  write_output(out, e.bytes);
  print_summary(out, img, e.bytes.size(), e.recon, a.has("psnr"));
  const double px = double(img.dim(2) * img.dim(3));
  if (a.has("v"))
    std::fprintf(stderr, "model %s, %s, model estimate %.4f bpp, encode %.3f s%s, %d threads\n", lm.path.c_str(),
                 rate > 0 ? ("λ " + std::to_string(rate)).c_str() : "fixed rate", e.est_bits / px, t1 - t0,
                 sga > 0 ? (" (" + std::to_string(sga) + " SGA iterations)").c_str() : "", num_threads());
  return 0;
}

int cmd_decode(const std::vector<std::string>& argv) {
  Args a(argv, {"o", "model", "max-pixels", "max-memory", "format"}, {"v"});
  const long max_pixels = a.integer("max-pixels", long(nn::kDefaultMaxPixels));
  if (max_pixels < 1) fail("--max-pixels wants a positive count");
  const long max_memory = a.integer("max-memory", long(nn::kDefaultMaxMemoryMiB));
  if (max_memory < 1 || max_memory > (1L << 30)) fail("--max-memory wants a size in MiB (1 or more)");
  if (a.positional().size() != 1)
    usage_fail("usage: ntc decode IN.ntc|- -o OUT.(png|ppm)|- [--format png|ppm] [--model NAME|FILE] [--max-pixels N] "
               "[--max-memory MIB]");
  if (!a.has("o")) usage_fail("decode: -o OUT.png is required");
  const std::string out = a.str("o"), in = a.positional()[0];
  const std::string ext = out.size() > 4 ? out.substr(out.size() - 4) : "";
  std::string format = a.str("format", out == "-" ? "png" : ext == ".ppm" ? "ppm" : ext == ".png" ? "png" : "");
  if (format != "png" && format != "ppm")
    usage_fail("decode: the output must end in .png or .ppm (or give --format png|ppm)");
  if (out != "-" && ext != "." + format) usage_fail("decode: --format ", format, " does not match ", out);
  const std::vector<uint8_t> bytes = read_input(in);
  if (nn::overfit::is_overfit_stream(bytes.data(), bytes.size())) {  // carries its own decoder
    if (a.has("model")) fail("decode: ", in, " is an overfitted stream, which carries its own decoder; --model does not apply");
    const nn::overfit::Stream h = nn::overfit::read_stream_header(bytes.data(), bytes.size(), in == "-" ? "stdin" : in);
    if (format == "png" && !png_writable(h.arch.width, h.arch.height))
      fail("decode: the stream holds a ", h.arch.width, "x", h.arch.height, " image, too large for PNG output; decode to .ppm");
    set_memory_budget(size_t(max_memory) << 20);
    const double t0 = now_s();
    const Tensor img = nn::overfit::decode(bytes.data(), bytes.size(), in == "-" ? "stdin" : in, max_pixels);
    const double t1 = now_s();
    write_output(out, image_file_bytes(img, format == "ppm", out));
    if (a.has("v"))
      std::fprintf(stderr, "%s: %ldx%ld, overfitted stream decoded in %.3f s\n", out.c_str(), long(img.dim(3)), long(img.dim(2)), t1 - t0);
    return 0;
  }
  const codec::Container c = codec::read_container(bytes.data(), bytes.size(), in == "-" ? "stdin" : in);
  // (a PNG too large to write is refused before the (long) decode, not after it)
  if (format == "png" && !png_writable(c.width, c.height))
    fail("decode: the stream holds a ", c.width, "x", c.height, " image, too large for PNG output; decode to .ppm");
  LoadedModel lm = a.has("model") ? load(a.str("model")) : load_for_stream(c.model_hash);
  const uint64_t expect = nn::accepted_model_hash(c.model_hash, lm.hash, [&] { return legacy_hash(lm); });  // ntc 0.2 streams too
  const double t0 = now_s();
  set_memory_budget(size_t(max_memory) << 20);  // the model is loaded: the budget bounds the decode
  mem_reset_peak();
  const Tensor img = nn::decompress(*lm.model, bytes.data(), bytes.size(), expect, max_pixels);
  const double t1 = now_s();
  write_output(out, image_file_bytes(img, format == "ppm", out));
  if (a.has("v"))
    std::fprintf(stderr, "%s: %ldx%ld, decoded in %.3f s with %d threads, peak tensor memory %.1f MiB\n", out.c_str(),
                 long(img.dim(3)), long(img.dim(2)), t1 - t0, num_threads(), double(mem_stats().peak_in_use) / (1 << 20));
  return 0;
}

// ntc info: the header of a stream, without decoding it. The model is named when the stream's
// model hash is one of the shipped families' (or --model FILE's); λ is the rate section of a
// variable-rate stream (the last section, 4 bytes, float32).
int cmd_info(const std::vector<std::string>& argv) {
  Args a(argv, {"model"}, {"json"});
  if (a.positional().size() != 1) usage_fail("usage: ntc info IN.ntc|- [--model NAME|FILE] [--json]");
  const std::string in = a.positional()[0];
  const std::vector<uint8_t> bytes = read_input(in);
  if (nn::overfit::is_overfit_stream(bytes.data(), bytes.size())) {
    if (a.has("model")) fail("info: ", in, " is an overfitted stream, which carries its own decoder; --model does not apply");
    const nn::overfit::Stream h = nn::overfit::read_stream_header(bytes.data(), bytes.size(), in == "-" ? "stdin" : in);
    const nn::overfit::Arch& ar = h.arch;
    const double px = double(ar.width) * double(ar.height), bpp = 8.0 * double(bytes.size()) / px;
    const double fpp = nn::overfit::decoder_flops(ar).total();
    if (a.has("json")) {
      JsonOut j{{"file", in}, {"bytes", bytes.size()}, {"width", ar.width}, {"height", ar.height}, {"bpp", bpp},
                {"type", "overfit"}, {"channels", ar.channels}, {"levels", ar.levels}, {"synthesis_hidden", ar.syn_hidden},
                {"arm_hidden", ar.arm_hidden}, {"upsampling", ar.learned_up ? "learned" : "bilinear"},
                {"lambda", double(h.lambda)}, {"decode_flops_per_pixel", fpp}};
      std::printf("%s\n", json_line(j).c_str());
      return 0;
    }
    std::printf("%s: %dx%d, %zu bytes, %.4f bpp\n", in.c_str(), ar.width, ar.height, bytes.size(), bpp);
    std::printf("overfitted stream: its own decoder (%d channel%s, %d latent levels, %s upsampling, synthesis width %d, "
                "ARM width %d), %.0f FLOPs/px to decode\n", ar.channels, ar.channels == 1 ? "" : "s", ar.levels,
                ar.learned_up ? "learned" : "bilinear", ar.syn_hidden, ar.arm_hidden, fpp);
    std::printf("lambda: %g\n", double(h.lambda));
    return 0;
  }
  const codec::Container c = codec::read_container(bytes.data(), bytes.size(), in == "-" ? "stdin" : in);
  std::string model_name, model_path;
  std::vector<std::string> candidates;
  if (a.has("model")) candidates.push_back(resolve_model(a.str("model")));
  for (const Family& f : kFamilies) candidates.push_back(nn::model_dir() + "/" + f.file);
  for (const std::string& path : candidates) {
    if (!std::ifstream(path).good()) continue;
    const std::vector<uint8_t> mb = read_file(path);
    if (nn::model_hash(mb.data(), mb.size()) != c.model_hash && nn::legacy_model_hash(mb.data(), mb.size()) != c.model_hash)
      continue;
    model_path = path;
    for (const Family& f : kFamilies)
      if (path.size() >= std::strlen(f.file) && path.compare(path.size() - std::strlen(f.file), std::string::npos, f.file) == 0)
        model_name = f.name;
    break;
  }
  double lambda = 0;
  if (c.sections.size() == 3 && c.sections.back().size() == 4) {
    float l;
    std::memcpy(&l, c.sections.back().data(), 4);
    lambda = l;
  }
  const double px = double(c.width) * double(c.height), bpp = 8.0 * double(bytes.size()) / px;
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", (unsigned long long)c.model_hash);
  std::vector<size_t> sizes;
  for (const auto& sec : c.sections) sizes.push_back(sec.size());
  // flag bit 0: h_s's stride-1 3×3 layers in the portable Winograd form (every stream written now)
  const char* hs_form = (c.flags & codec::kFlagWinogradHyperSynthesis) ? "winograd" : "direct";
  if (a.has("json")) {
    JsonOut j{{"file", in}, {"bytes", bytes.size()}, {"width", c.width}, {"height", c.height}, {"bpp", bpp},
              {"model_hash", hash}, {"model", model_path.empty() ? JsonOut() : JsonOut(model_path)},
              {"family", model_name.empty() ? JsonOut() : JsonOut(model_name)}, {"lambda", lambda > 0 ? JsonOut(lambda) : JsonOut()},
              {"sections", sizes}, {"hyper_synthesis_form", hs_form}};
    std::printf("%s\n", json_line(j).c_str());
    return 0;
  }
  std::printf("%s: %ux%u, %zu bytes, %.4f bpp\n", in.c_str(), c.width, c.height, bytes.size(), bpp);
  std::printf("model: %s%s%s\n", hash,
              model_path.empty() ? " (not a shipped model; --model FILE names one)" : (" = " + model_path).c_str(),
              model_name.empty() ? "" : (" (" + model_name + ")").c_str());
  if (lambda > 0) std::printf("lambda: %g\n", lambda);
  std::printf("hyper-synthesis form: %s (codec/BITSTREAM.md)\n", hs_form);
  std::printf("sections:");
  for (size_t n : sizes) std::printf(" %zu", n);
  std::printf(" bytes\n");
  return 0;
}

int cmd_eval(const std::vector<std::string>& argv) {
  Args a(argv, {"model", "data", "sga", "lambda", "json", "csv", "limit", "name"}, {"quiet"});
  if (!a.has("data") || !a.has("json")) usage_fail("usage: ntc eval --data DIR [--model NAME|FILE] [--sga ITERS] [--lambda L1,L2,...] --json OUT.json [--csv OUT.csv]");
  LoadedModel lm = load(a.str("model"));
  nn::Model& m = *lm.model;
  std::vector<double> rates = a.numbers("lambda");  // empty: the model's own rate points
  if (m.rate_lambdas().empty()) {
    if (rates.size() > 1) fail("a fixed-rate model has one rate point; --lambda only sets the SGA λ");
  } else if (rates.empty()) {
    rates = m.rate_lambdas();
  }
  const bool fixed = m.rate_lambdas().empty();
  if (fixed) rates = {rates.empty() ? 0.0 : rates[0]};
  const long sga = a.integer("sga", 0);
  std::vector<std::string> files = train::list_images(a.str("data"));
  const long limit = a.integer("limit", 0);
  if (limit > 0 && files.size() > size_t(limit)) files.resize(size_t(limit));
  if (files.empty()) fail("eval: no images in ", a.str("data"));

  struct Row {
    std::string file;
    double bpp, est_bpp, psnr, msssim, enc_s, dec_s;
  };
  std::vector<std::vector<Row>> all;
  Progress bar("eval", int(files.size() * rates.size()), !a.has("quiet"));
  int done = 0;
  for (double r : rates) {
    const double rate = fixed ? 0 : r;
    double sga_lam = 0;
    if (sga > 0) sga_lam = fixed ? (r > 0 ? r : m.trained_lambda()) : r;
    if (sga > 0 && !(sga_lam > 0)) fail("--sga needs --lambda: the model does not record its λ");
    std::vector<Row> rows;
    for (const std::string& f : files) {
      const Tensor img = read_image(f);
      const double t0 = now_s();
      nn::Encoded e = encode_image(lm, img, rate, int(sga), sga_lam, false, f);
      const double t1 = now_s();
      const Tensor dec = nn::decompress(m, e.bytes.data(), e.bytes.size(), lm.hash);
      const double t2 = now_s();
      if (dec.to_vector() != e.recon.to_vector()) fail("eval: decoded image differs from the encoder's reconstruction: ", f);
      const double px = double(img.dim(2) * img.dim(3));
      rows.push_back({f, 8.0 * double(e.bytes.size()) / px, e.est_bits / px, psnr(dec, img), ms_ssim(dec, img), t1 - t0, t2 - t1});
      bar.update(++done);
    }
    all.push_back(rows);
  }
  auto mean = [](const std::vector<Row>& rows, double Row::*f) {
    double s = 0;
    for (const Row& r : rows) s += r.*f;
    return s / double(rows.size());
  };
  JsonOut j;
  j["name"] = a.str("name", "ntc " + lm.path);
  j["model"] = lm.path;
  j["sga_iters"] = sga;
  j["images"] = files.size();
  j["lambda"] = rates;
  const std::pair<const char*, double Row::*> means[] = {{"bpp", &Row::bpp},       {"est_bpp", &Row::est_bpp},
                                                          {"psnr_rgb", &Row::psnr}, {"msssim", &Row::msssim},
                                                          {"enc_s_mean", &Row::enc_s}, {"dec_s_mean", &Row::dec_s}};
  for (const auto& [key, field] : means) {
    JsonOut v = JsonOut::array();
    for (const auto& rows : all) v.push_back(mean(rows, field));
    j[key] = v;
  }
  j["threads"] = num_threads();
  JsonOut per = JsonOut::array();
  for (const auto& rows : all) {
    JsonOut at = JsonOut::array();
    for (const Row& r : rows)
      at.push_back({{"file", r.file}, {"bpp", r.bpp}, {"est_bpp", r.est_bpp}, {"psnr", r.psnr}, {"msssim", r.msssim},
                    {"enc_s", r.enc_s}, {"dec_s", r.dec_s}});
    per.push_back(at);
  }
  j["per_image"] = per;
  const std::string js = json_line(j) + "\n";
  write_file_atomic(a.str("json"), std::vector<uint8_t>(js.begin(), js.end()));
  if (a.has("csv")) {
    std::ostringstream c;
    c.precision(8);
    c << "lambda,file,bpp,est_bpp,psnr,msssim,enc_s,dec_s\n";
    for (size_t i = 0; i < all.size(); ++i)
      for (const Row& r : all[i])
        c << rates[i] << "," << r.file << "," << r.bpp << "," << r.est_bpp << "," << r.psnr << "," << r.msssim << "," << r.enc_s
          << "," << r.dec_s << "\n";
    const std::string cs = c.str();
    write_file_atomic(a.str("csv"), std::vector<uint8_t>(cs.begin(), cs.end()));
  }
  for (size_t i = 0; i < all.size(); ++i)
    std::printf("λ %-8g %.4f bpp (estimate %.4f), PSNR %.3f dB, MS-SSIM %.5f, encode %.3f s, decode %.3f s\n", rates[i],
                mean(all[i], &Row::bpp), mean(all[i], &Row::est_bpp), mean(all[i], &Row::psnr), mean(all[i], &Row::msssim),
                mean(all[i], &Row::enc_s), mean(all[i], &Row::dec_s));
  return 0;
}

namespace {
RdCurve curve_of(const std::string& path) {
  const Json j = read_json_file(path);
  const Json* b = j.get("bpp");
  const Json* p = j.get("psnr_rgb");
  if (!b || !p) fail(path, ": needs 'bpp' and 'psnr_rgb' arrays");
  return {b->numbers(), p->numbers()};
}
std::string name_of(const std::string& path) {
  const Json j = read_json_file(path);
  const Json* n = j.get("name");
  return n && n->kind == Json::String ? n->str : path;
}
}  // namespace

int cmd_bdrate(const std::vector<std::string>& argv) {
  Args a(argv, {}, {"json"});
  if (a.positional().size() != 2) usage_fail("usage: ntc bdrate REF.json TEST.json [--json]");
  const RdCurve ref = curve_of(a.positional()[0]), test = curve_of(a.positional()[1]);
  const double r = bd_rate(ref, test), p = bd_psnr(ref, test);
  if (a.has("json")) std::printf("%s\n", json_line(JsonOut{{"bd_rate_percent", r}, {"bd_psnr_db", p}}).c_str());
  else std::printf("BD-rate %+.2f%%, BD-PSNR %+.3f dB (%s vs %s; PCHIP in log-rate over the overlap)\n", r, p,
                   name_of(a.positional()[1]).c_str(), name_of(a.positional()[0]).c_str());
  return 0;
}

}  // namespace ntc::cli
