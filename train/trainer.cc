#include "train/trainer.h"

#include <csignal>
#include <chrono>
#include <cstring>
#include <initializer_list>
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <immintrin.h>
#include <memory>
#include <sstream>

#include "lib/framed.h"
#include "kernels/kernels.h"
#include "lib/binio.h"
#include "lib/common.h"
#include "lib/fileio.h"
#include "lib/gemm.h"
#include "lib/image.h"
#include "lib/json.h"
#include "lib/ops/ops.h"
#include "lib/rng.h"
#include "lib/threads.h"
#include "nn/compress.h"
#include "nn/model.h"
#include "nn/model_file.h"
#include "train/data.h"
#include "train/dist.h"
#include "train/loss.h"
#include "train/optim.h"

namespace ntc::train {
namespace {

volatile std::sig_atomic_t g_stop = 0;
int64_t g_step_limit = 0;
extern "C" void on_signal(int) { g_stop = 1; }

constexpr uint32_t kVersion = 2;

std::string options_text(const TrainOptions& o) {
  std::ostringstream s;
  s << "data=" << o.data << "\nval=" << o.val << "\nsteps=" << o.steps << "\ncrop=" << o.crop << "\nbatch=" << o.batch
    << "\nlr=" << o.lr << "\ndecay_from=" << o.decay_from << "\nwarmup=" << o.warmup << "\nwarm_from=" << o.warm_from
    << "\nlambda_boost=" << o.lambda_boost << "\nclipnorm=" << o.clipnorm << "\nmin_scale=" << o.min_scale << "\nflips=" << o.flips
    << "\nseed=" << o.seed << "\nprecision=" << o.precision << "\nreduce=" << o.reduce << "\nunit=" << o.unit << "\nquant=" << o.quant << "\nadam=" << o.adam << "\ncheckpoint_every=" << o.checkpoint_every
    << "\nval_every=" << o.val_every << "\nlog_every=" << o.log_every << "\nval_images=" << o.val_images << "\nlambdas=";
  for (size_t i = 0; i < o.lambdas.size(); ++i) s << (i ? "," : "") << o.lambdas[i];
  s << "\n";
  return s.str();
}

// Inverse of options_text; keeps `out` and `config`. The text comes from a file, so every number
// is parsed whole and in range, or the checkpoint is refused with an ntc::Error naming `origin`.
void parse_options(const std::string& text, TrainOptions& o, const std::string& origin) {
  auto bad = [&](const std::string& k, const std::string& v) {
    fail(origin, ": corrupt checkpoint (option ", k, " = '", v.substr(0, 40), "')");
  };
  auto integer = [&](const std::string& k, const std::string& v, int64_t lo, int64_t hi) {
    int64_t x = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (ec != std::errc() || end != v.data() + v.size() || x < lo || x > hi) bad(k, v);
    return x;
  };
  auto real = [&](const std::string& k, const std::string& v) {
    char* end = nullptr;
    const double x = v.empty() ? 0 : std::strtod(v.c_str(), &end);
    if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(x) || std::fabs(x) > 1e30) bad(k, v);
    return float(x);
  };
  constexpr int64_t kBig = int64_t(1) << 40;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    if (k == "data") o.data = v;
    else if (k == "val") o.val = v;
    else if (k == "steps") o.steps = integer(k, v, 0, kBig);
    else if (k == "crop") o.crop = int(integer(k, v, 1, 1 << 16));
    else if (k == "batch") o.batch = int(integer(k, v, 1, 1 << 16));
    else if (k == "lr") o.lr = real(k, v);
    else if (k == "decay_from") o.decay_from = integer(k, v, -1, kBig);
    else if (k == "warmup") o.warmup = integer(k, v, -1, kBig);
    else if (k == "warm_from") o.warm_from = integer(k, v, 0, kBig);
    else if (k == "lambda_boost") o.lambda_boost = v == "1";
    else if (k == "clipnorm") o.clipnorm = real(k, v);
    else if (k == "min_scale") o.min_scale = real(k, v);
    else if (k == "flips") o.flips = v == "1";
    else if (k == "seed") {
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), o.seed);
      if (ec != std::errc() || end != v.data() + v.size()) bad(k, v);
    } else if (k == "quant") o.quant = v;
    else if (k == "precision") o.precision = v;
    else if (k == "reduce") o.reduce = v;
    else if (k == "unit") o.unit = int(integer(k, v, 1, 1 << 16));
    else if (k == "adam") o.adam = v;
    else if (k == "checkpoint_every") o.checkpoint_every = integer(k, v, 0, kBig);
    else if (k == "val_every") o.val_every = integer(k, v, 0, kBig);
    else if (k == "log_every") o.log_every = integer(k, v, 0, kBig);
    else if (k == "val_images") o.val_images = int(integer(k, v, 0, 1 << 30));
    else if (k == "lambdas") {
      o.lambdas.clear();
      std::stringstream ls(v);
      std::string item;
      while (std::getline(ls, item, ',')) {
        if (o.lambdas.size() >= 1024) bad(k, v);
        o.lambdas.push_back(real(k, item));
      }
    }
  }
}

struct State {
  int64_t step = 0;
  double train_s = 0;  // wall-clock seconds of training over every invocation (since version 2)
  uint64_t data_pos = 0;
  Rng noise{0};
};

// Checkpoint layout, version 2 (version 1 had no flags byte and always full f32 with moments):
// magic NTCK, u32 version, config text, options text, i64 step, u64 data position, u64 noise key,
// u64 noise counter, i64 Adam t, u8 flags (bit 0: f16 values, bit 1: Adam moments present), f64
// training seconds so far, u32
// tensor count, per tensor: name, u64 numel, values (then m, v when present); CRC-32 of the rest.
// A compact snapshot (f16, no moments) is what a campaign commits to the repository.
constexpr uint8_t kF16 = 1, kMoments = 2;
constexpr int64_t kRewarmSteps = 500;  // warm-up after a resume from weights alone, unless --warmup

void put_values(BinWriter& w, const Tensor& t, bool f16) {
  const int64_t n = t.numel();
  if (!f16) {
    w.raw(t.data(), size_t(n) * 4);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = _cvtss_sh(t.data()[i], _MM_FROUND_TO_NEAREST_INT);
    if ((h & 0x7C00) == 0x7C00 && std::isfinite(t.data()[i]))  // beyond f16's range (65504)
      fail("snapshot: a weight (", t.data()[i], ") does not fit in f16; the snapshot would not load");
    w.put<uint16_t>(h);
  }
}

std::vector<uint8_t> serialize_checkpoint(const nn::Model& m, const TrainOptions& o, const State& st, Adam& adam,
                                          uint8_t flags) {
  BinWriter w = open_frame_writer(kCheckpointFrame);
  w.put<uint32_t>(kVersion);
  w.str(m.config().text());
  w.str(options_text(o));
  w.put<int64_t>(st.step);
  w.put<uint64_t>(st.data_pos);
  w.put<uint64_t>(st.noise.key());
  w.put<uint64_t>(st.noise.counter());
  w.put<int64_t>(flags & kMoments ? adam.t() : 0);
  w.put<uint8_t>(flags);
  w.put<double>(st.train_s);
  const nn::NamedTensors params = m.named_parameters();
  w.put<uint32_t>(uint32_t(params.size()));
  for (size_t i = 0; i < params.size(); ++i) {
    w.str(params[i].first);
    w.put<uint64_t>(uint64_t(params[i].second.numel()));
    put_values(w, params[i].second, flags & kF16);
    if (flags & kMoments)
      for (const Tensor* t : {&adam.m()[i], &adam.v()[i]}) put_values(w, *t, flags & kF16);
  }
  return close_frame(std::move(w));
}

void save_checkpoint(const std::string& path, const nn::Model& m, const TrainOptions& o, const State& st, Adam& adam) {
  write_file_atomic(path, serialize_checkpoint(m, o, st, adam, kMoments));
}

struct Loaded {
  std::string config_text, options_text;
};

// Reads the checkpoint's config and options (to build the model), then fills model, Adam and state.
Loaded read_checkpoint_header(const std::vector<uint8_t>& b, const std::string& path) {
  BinReader r = open_frame(b.data(), b.size(), kCheckpointFrame, path);
  const uint32_t version = r.get<uint32_t>();
  if (version != 1 && version != kVersion) fail(path, ": checkpoint version ", version, ", this build reads 1 and ", kVersion);
  Loaded l;
  l.config_text = r.str();
  l.options_text = r.str();
  return l;
}

// Re-anchoring a variable-rate model's rate points: every parameter and its Adam moments carry
// over from `from` to `to` unchanged, except the log-gain tensors [L, C], whose rows for the new λ
// list are read off the old rows piecewise linearly in log λ (extrapolated along the end segments),
// the same rule by which gains_for interpolates between rate points; their moments restart at 0.
void reanchor_gains(const nn::Model& from, Adam& from_adam, nn::Model& to, Adam& to_adam) {
  const auto& la = from.rate_lambdas();
  const auto& lb = to.rate_lambdas();
  const nn::NamedTensors a = from.named_parameters(), b = to.named_parameters();
  NTC_CHECK(a.size() == b.size(), "re-anchoring: the two models differ beyond their gains");
  for (size_t i = 0; i < b.size(); ++i) {
    NTC_CHECK(a[i].first == b[i].first, "re-anchoring: parameter ", a[i].first, " against ", b[i].first);
    const Tensor &src = a[i].second, &dst = b[i].second;
    if (a[i].first.rfind("gain.", 0) != 0) {
      NTC_CHECK(src.shape() == dst.shape(), "re-anchoring: ", a[i].first, " changed shape");
      const size_t n = size_t(src.numel()) * sizeof(float);
      std::memcpy(dst.data(), src.data(), n);
      std::memcpy(to_adam.m()[i].data(), from_adam.m()[i].data(), n);
      std::memcpy(to_adam.v()[i].data(), from_adam.v()[i].data(), n);
      continue;
    }
    const int64_t C = src.dim(1);
    for (size_t r = 0; r < lb.size(); ++r) {
      size_t s = 0;  // the segment [la[s], la[s+1]] that holds (or extends to) lb[r]
      while (s + 2 < la.size() && lb[r] > la[s + 1]) ++s;
      const double t = std::log(lb[r] / la[s]) / std::log(la[s + 1] / la[s]);
      for (int64_t c = 0; c < C; ++c) {
        const double g0 = src.data()[int64_t(s) * C + c], g1 = src.data()[int64_t(s + 1) * C + c];
        dst.data()[int64_t(r) * C + c] = float(g0 + t * (g1 - g0));
      }
    }
  }
  to_adam.set_t(from_adam.t());
}

// The model a checkpoint's config describes, built under a parameter budget from the file's size
// (every value is stored with at least 2 bytes), so a corrupt config cannot demand gigabytes.
std::unique_ptr<nn::Model> model_for_checkpoint(const nn::Config& cfg, size_t file_size) {
  ParamBudget budget(int64_t(file_size / 2));
  return std::make_unique<nn::Model>(cfg);
}

// Fills model, Adam and state; returns whether the checkpoint held Adam's moments.
bool read_checkpoint_body(const std::vector<uint8_t>& b, const std::string& path, nn::Model& m, State& st, Adam& adam) {
  BinReader r = open_frame(b.data(), b.size(), kCheckpointFrame, path);
  const uint32_t version = r.get<uint32_t>();
  r.str();
  r.str();
  st.step = r.get<int64_t>();
  st.data_pos = r.get<uint64_t>();
  const uint64_t key = r.get<uint64_t>(), counter = r.get<uint64_t>();
  st.noise.set_key(key);
  st.noise.set_counter(counter);
  adam.set_t(r.get<int64_t>());
  const uint8_t flags = version == 1 ? kMoments : r.get<uint8_t>();
  if (flags & ~(kF16 | kMoments)) fail(path, ": unknown checkpoint flags ", int(flags));
  st.train_s = version == 1 ? 0.0 : r.get<double>();
  if (!(st.train_s >= 0 && st.train_s < 1e10)) fail(path, ": corrupt checkpoint (training time)");
  if (st.step < 0 || adam.t() < 0) fail(path, ": corrupt checkpoint (negative step)");
  const nn::NamedTensors params = m.named_parameters();
  if (r.get<uint32_t>() != params.size()) fail(path, ": checkpoint does not match the model");
  auto take = [&](const Tensor& t, size_t n, const std::string& name) {
    if (!(flags & kF16)) {
      std::memcpy(t.data(), r.take(n * 4), n * 4);
    } else {
      const uint8_t* src = r.take(n * 2);
      for (size_t k = 0; k < n; ++k) {
        uint16_t h;
        std::memcpy(&h, src + 2 * k, 2);
        t.data()[k] = _cvtsh_ss(h);
      }
    }
    for (size_t k = 0; k < n; ++k)
      if (!std::isfinite(t.data()[k])) fail(path, ": tensor ", name, " holds a non-finite value");
  };
  for (size_t i = 0; i < params.size(); ++i) {
    if (r.str() != params[i].first) fail(path, ": checkpoint tensor order does not match the model");
    const uint64_t n = r.get<uint64_t>();
    if (n != uint64_t(params[i].second.numel())) fail(path, ": checkpoint tensor size mismatch for ", params[i].first);
    take(params[i].second, size_t(n), params[i].first);
    if (flags & kMoments) {
      take(adam.m()[i], size_t(n), params[i].first + " (Adam m)");
      take(adam.v()[i], size_t(n), params[i].first + " (Adam v)");
    } else {
      k::fill(0.f, adam.m()[i].data(), size_t(n));
      k::fill(0.f, adam.v()[i].data(), size_t(n));
    }
  }
  if (!r.done()) fail(path, ": trailing bytes in checkpoint");
  return flags & kMoments;
}

struct ValResult {
  double bpp = 0, est_bpp = 0, psnr = 0;
  int images = 0;
};

ValResult validate(nn::Model& m, const TrainOptions& o, double lambda) {
  ValResult v;
  m.finalize();
  std::vector<std::string> files = list_images(o.val);
  if (o.val_images > 0 && files.size() > size_t(o.val_images)) files.resize(size_t(o.val_images));
  for (const std::string& f : files) {
    const Tensor img = read_image(f);
    const nn::Encoded e = nn::compress(m, img, 0, lambda);
    const double px = double(img.dim(2) * img.dim(3));
    double se = 0;
    for (int64_t i = 0; i < img.numel(); ++i) se += double(e.recon.data()[i] - img.data()[i]) * (e.recon.data()[i] - img.data()[i]);
    v.bpp += 8.0 * double(e.bytes.size()) / px;
    v.est_bpp += e.est_bits / px;
    v.psnr += 10 * std::log10(255.0 * 255.0 / std::max(se / double(img.numel()), 1e-10));
    ++v.images;
  }
  if (v.images) {
    v.bpp /= v.images;
    v.est_bpp /= v.images;
    v.psnr /= v.images;
  }
  return v;
}

std::string fmt_time(double s) {
  char b[32];
  if (s < 120) std::snprintf(b, sizeof b, "%.0fs", s);
  else if (s < 7200) std::snprintf(b, sizeof b, "%.1fm", s / 60);
  else std::snprintf(b, sizeof b, "%.1fh", s / 3600);
  return b;
}

}  // namespace

void set_step_limit_for_tests(int64_t n) { g_step_limit = n; }

namespace {
// A whole checkpoint or snapshot file, loaded: options, model, Adam and state.
struct FullCheckpoint {
  TrainOptions o;
  std::unique_ptr<nn::Model> model;
  std::unique_ptr<Adam> adam;
  State st;
  bool moments = false;
};
FullCheckpoint load_full_checkpoint(const std::vector<uint8_t>& b, const std::string& file) {
  const Loaded l = read_checkpoint_header(b, file);
  FullCheckpoint c;
  parse_options(l.options_text, c.o, file);
  c.model = model_for_checkpoint(nn::Config::parse(l.config_text, file + " (config)"), b.size());
  std::vector<Tensor> params;
  for (auto& [n, t] : c.model->named_parameters()) params.push_back(t);
  c.adam = std::make_unique<Adam>(params, parse_adam_form(c.o.adam));
  c.moments = read_checkpoint_body(b, file, *c.model, c.st, *c.adam);
  return c;
}
}  // namespace

std::string checkpoint_info(const std::string& file) { return checkpoint_info(read_file(file), file); }

std::string checkpoint_info(const std::vector<uint8_t>& bytes, const std::string& file) {
  const FullCheckpoint c = load_full_checkpoint(bytes, file);
  return json_line(JsonOut{{"step", c.st.step}, {"steps", c.o.steps}, {"train_h", json_round(c.st.train_s / 3600, 4)},
                           {"decay_from", c.o.decay_from}, {"warmup", c.o.warmup}, {"lr", json_round(c.o.lr, 10)},
                           {"crop", c.o.crop}, {"batch", c.o.batch}, {"quant", c.o.quant}, {"precision", c.o.precision},
                           {"moments", c.moments}, {"parameters", c.model->num_parameters()}});
}

void write_snapshot(const std::string& out_dir, const std::string& file) {
  const std::string src = checkpoint_path(out_dir);
  const FullCheckpoint c = load_full_checkpoint(read_file(src), src);
  write_file_atomic(file, serialize_checkpoint(*c.model, c.o, c.st, *c.adam, kF16));
}

std::vector<std::string> write_derived_checkpoint(
    const std::string& from, const std::string& config_text, const std::string& config_origin, const std::string& out_dir,
    const std::function<void(nn::Model&, nn::Model&, const TrainOptions&)>& fill) {
  const std::string ckpt = checkpoint_path(out_dir);
  if (std::filesystem::exists(ckpt)) fail("derive: ", out_dir, " already has a checkpoint; pick another --out");
  FullCheckpoint c = load_full_checkpoint(read_file(from), from);
  nn::Model& src = *c.model;
  std::string text = config_text;
  const nn::Config probe = nn::Config::parse(text, config_origin);
  {  // the source's rate points, as its config states them
    std::istringstream in(src.config().text());
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream words(line.substr(0, line.find('=')));
      std::string key;
      if (!(words >> key) || (key != "rate.lambdas" && key != "lambda") || probe.has(key)) continue;
      text += "\n# the rate points of the run it was derived from (added by ntc derive)\n" + line + "\n";
    }
  }
  nn::Model dst(nn::Config::parse(text, config_origin));
  if (dst.rate_lambdas() != src.rate_lambdas())
    fail("derive: the config's rate points differ from those of ", from, " (leave rate.lambdas out to take the source's)");
  if (dst.log_gains() != src.log_gains()) fail("derive: the config's rate.gains differs from that of ", from);
  Rng init(c.o.seed);
  dst.init(init);
  std::vector<std::string> fresh;
  const nn::NamedTensors a = src.named_parameters();
  for (const auto& p : dst.named_parameters()) {
    auto it = std::find_if(a.begin(), a.end(), [&](const auto& q) { return q.first == p.first; });
    if (it == a.end() || it->second.shape() != p.second.shape()) {
      fresh.push_back(p.first);
      continue;
    }
    std::memcpy(p.second.data(), it->second.data(), size_t(p.second.numel()) * sizeof(float));
  }
  const auto t0 = std::chrono::steady_clock::now();
  fill(src, dst, c.o);
  c.st.train_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  c.o.config = config_origin;  // what the run trains now (its text is the checkpoint's config)
  std::vector<Tensor> params;
  for (auto& [n, t] : dst.named_parameters()) params.push_back(t);
  Adam adam(params, parse_adam_form(c.o.adam));
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) fail("derive: cannot create '", out_dir, "': ", ec.message());
  write_file_atomic(ckpt, serialize_checkpoint(dst, c.o, c.st, adam, 0));  // f32 weights, no moments
  dst.finalize();
  nn::save_model(model_path(out_dir), dst, nn::WeightFormat::F16);
  return fresh;
}

std::string checkpoint_path(const std::string& out) { return out + "/checkpoint.ntck"; }
std::string model_path(const std::string& out) { return out + "/model.ntcm"; }

namespace {
// SIGINT, SIGTERM and SIGUSR1 (the one mpirun forwards to every rank) ask for a checkpoint and a
// stop, from the start of run_training (a data-parallel rank may be receiving the checkpoint).
struct StopSignals {
  using Handler = void (*)(int);
  Handler prev_int, prev_term, prev_usr1;
  StopSignals() {
    g_stop = 0;
    prev_int = std::signal(SIGINT, on_signal);
    prev_term = std::signal(SIGTERM, on_signal);
    prev_usr1 = std::signal(SIGUSR1, on_signal);
  }
  ~StopSignals() {
    std::signal(SIGINT, prev_int);
    std::signal(SIGTERM, prev_term);
    std::signal(SIGUSR1, prev_usr1);
  }
};
}  // namespace

int run_training(TrainOptions o, bool resume, ResumeOverrides over) {
  StopSignals signals;
  Comm& comm = o.comm ? *o.comm : single_process_comm();
  const int ranks = comm.size();
  const bool lead = comm.rank() == 0;  // rank 0: checkpoints, log, validation, model, progress
  if (!lead) o.quiet = true;
  if (o.out.empty()) fail("train: --out DIR is required");
  std::error_code ec;
  if (lead) std::filesystem::create_directories(o.out, ec);
  if (ec) fail("train: cannot create '", o.out, "': ", ec.message());
  const std::string ckpt = checkpoint_path(o.out);
  const std::string src = o.from.empty() ? ckpt : o.from;  // what a resume reads

  std::vector<uint8_t> ckbytes;
  std::string old_cfg_text;  // set when a resume re-anchors the rate points
  nn::Config cfg = nn::Config::parse("");
  if (resume) {
    if (lead) {
      if (!o.from.empty() && std::filesystem::exists(ckpt))
        fail("train: ", o.out, " already has a checkpoint; resume from it (without --from) or pick another --out");
      ckbytes = read_file(src);
    }
    comm.broadcast(ckbytes);  // the other ranks need not see rank 0's files
    const Loaded l = read_checkpoint_header(ckbytes, src);
    const TrainOptions cli = o;
    // Checkpoints from before the schedule keys had the paper's schedule.
    o.decay_from = o.warmup = -1;
    o.warm_from = 0;
    o.lambda_boost = true;
    o.precision = "fp32";
    o.reduce = "batch";
    o.unit = 1;
    parse_options(l.options_text, o, src);
    if (over.reduce) o.reduce = cli.reduce;
    if (over.unit) o.unit = cli.unit;
    if (over.steps) o.steps = cli.steps;  // longer or shorter: the schedule follows
    if (over.decay_from) o.decay_from = cli.decay_from;
    if (over.warmup) o.warmup = cli.warmup;
    if (over.data) o.data = cli.data;  // the same photos at another path (another machine)
    if (over.crop) o.crop = cli.crop;
    if (over.batch) o.batch = cli.batch;
    if (over.precision) o.precision = cli.precision;
    else if (o.precision == "bf16" && !bf16_products_available()) {
      // A bf16 run moved to a CPU without AVX512_BF16 (or to --target avx2): it goes on in fp32,
      // and says so; --precision bf16 with --kernels ref would emulate bf16 exactly instead.
      o.precision = "fp32";
      if (!o.quiet) std::fprintf(stderr, "ntc train: bf16 products cannot run here; this resume trains in fp32\n");
    }
    cfg = nn::Config::parse(l.config_text, src + " (config)");
    if (over.lambdas) {  // re-anchor a variable-rate run's rate points (see reanchor_gains)
      std::vector<float> want = cli.lambdas;
      std::sort(want.begin(), want.end());
      if (want.size() < 2 || std::adjacent_find(want.begin(), want.end()) != want.end() || !(want[0] > 0))
        fail("train: --lambda on a resume re-anchors the rate points: give at least two distinct positive λ");
      if (!cfg.has("rate.lambdas") || cfg.str("rate.gains", "linear") != "log")
        fail("train: only a variable-rate run with log gains (rate.gains = log) can re-anchor its rate points");
      old_cfg_text = l.config_text;
      std::istringstream in(l.config_text);
      std::ostringstream t;
      std::string line;
      while (std::getline(in, line)) {
        if (line.rfind("rate.lambdas", 0) == 0) {
          t << "rate.lambdas = ";
          for (size_t i = 0; i < want.size(); ++i) t << (i ? "," : "") << want[i];
          t << "\n";
        } else {
          t << line << "\n";
        }
      }
      cfg = nn::Config::parse(t.str(), src + " (config, re-anchored)");
      o.lambdas = want;
    }
  } else {
    if (o.data.empty()) fail("train: --data DIR is required");
    if (o.lambdas.empty()) fail("train: --lambda is required");
    cfg = nn::Config::load(o.config);
    if (o.lambdas.size() > 1) {  // variable rate: the model carries one gain set per λ
      std::sort(o.lambdas.begin(), o.lambdas.end());
      if (cfg.has("rate.lambdas")) fail("train: give the λ list either in the config (rate.lambdas) or with --lambda");
      std::ostringstream t;
      t << cfg.text() << "\n# variable rate: gain units per λ (added by ntc train)\nrate.lambdas = ";
      for (size_t i = 0; i < o.lambdas.size(); ++i) t << (i ? "," : "") << o.lambdas[i];
      t << "\n";
      cfg = nn::Config::parse(t.str(), cfg.origin());
    } else if (!cfg.has("lambda")) {  // remembered in the model file (SGA encoding needs it)
      std::ostringstream t;
      t << cfg.text() << "\n# trained for (added by ntc train)\nlambda = " << o.lambdas[0] << "\n";
      cfg = nn::Config::parse(t.str(), cfg.origin());
    }
  }
  if (o.decay_from < -1 || o.warmup < -1) fail("train: --decay-from and --warmup must be steps (or -1 for the default)");
  if (o.steps < 1 || o.batch < 1 || o.crop < 1 || !(o.lr > 0)) fail("train: steps, batch, crop and lr must be positive");
  const QuantMode quant = parse_quant_mode(o.quant);
  if (o.precision != "fp32" && o.precision != "bf16") fail("train: --precision must be fp32 or bf16, got '", o.precision, "'");
  const Precision analysis = o.precision == "bf16" ? Precision::Bf16 : Precision::F32;
  if (ranks > 1) o.reduce = "exact";  // the only summation that does not depend on the ranks
  if (o.reduce != "batch" && o.reduce != "exact") fail("train: --reduce must be batch or exact, got '", o.reduce, "'");
  const bool exact = o.reduce == "exact";
  if (o.batch % ranks)
    fail("train: the global batch (", o.batch, ") must divide among the ", ranks, " ranks");
  if (exact && (o.unit < 1 || (o.batch / ranks) % o.unit))
    fail("train: each rank's ", o.batch / ranks, " images must divide into units of --unit ", o.unit);
  if (analysis == Precision::Bf16) check_bf16_available();
  const AdamForm form = parse_adam_form(o.adam);

  auto mp = resume ? model_for_checkpoint(cfg, ckbytes.size()) : std::make_unique<nn::Model>(cfg);
  nn::Model& model = *mp;
  if (o.lambdas.size() > 1 && model.rate_lambdas().size() != o.lambdas.size())
    fail("train: the model's rate.lambdas do not match --lambda");
  if (o.lambdas.size() == 1 && !model.rate_lambdas().empty()) {
    o.lambdas.assign(model.rate_lambdas().begin(), model.rate_lambdas().end());
  }
  if (o.crop % model.downsampling()) fail("train: --crop must be a multiple of ", model.downsampling());
  State st;
  std::vector<Tensor> params;
  for (auto& [n, t] : model.named_parameters()) params.push_back(t);
  Adam adam(params, form);
  if (resume) {
    bool moments;
    if (old_cfg_text.empty()) {
      moments = read_checkpoint_body(ckbytes, src, model, st, adam);
    } else {
      auto old = model_for_checkpoint(nn::Config::parse(old_cfg_text, src + " (config)"), ckbytes.size());
      std::vector<Tensor> old_params;
      for (auto& [n, t] : old->named_parameters()) old_params.push_back(t);
      Adam old_adam(old_params, form);
      moments = read_checkpoint_body(ckbytes, src, *old, st, old_adam);
      reanchor_gains(*old, old_adam, model, adam);
      if (lead) save_checkpoint(ckpt, model, o, st, adam);  // the new rate points hold from now on
      if (!o.quiet) {
        std::fprintf(stderr, "ntc train: rate points re-anchored from");
        for (double v : old->rate_lambdas()) std::fprintf(stderr, " %g", v);
        std::fprintf(stderr, " to");
        for (double v : model.rate_lambdas()) std::fprintf(stderr, " %g", v);
        std::fprintf(stderr, "\n");
      }
    }
    if (!moments) {
      // Weights alone (a compact snapshot): Adam's moments start from zero, so the learning rate
      // warms up again from this step.
      o.warm_from = st.step;
      if (!over.warmup) o.warmup = kRewarmSteps;
      if (!o.quiet)
        std::fprintf(stderr, "ntc train: %s holds weights only; Adam restarts, learning-rate warm-up over %ld steps\n",
                     src.c_str(), long(o.warmup));
    }
  } else {
    Rng init(o.seed);
    model.init(init);
    st.noise = Rng(o.seed ^ 0xA5A5A5A5DEADBEEFull);
  }
  DataOptions dopt;
  dopt.dir = o.data;
  dopt.crop = o.crop;
  dopt.batch = o.batch;
  dopt.flips = o.flips;
  dopt.min_scale = o.min_scale;
  dopt.seed = o.seed;
  const int share = o.batch / ranks, first_image = comm.rank() * share;
  if (ranks > 1) {
    dopt.shard_first = first_image;
    dopt.shard_count = share;
  }
  BatchLoader loader(dopt);
  loader.seek(st.data_pos);

  // Every rank must hold the same weights, options and data list, or the run would silently
  // diverge (another build, another data folder, another SIMD target): compare a fingerprint of
  // each at the start and at every checkpoint.
  auto check_ranks_agree = [&](const char* when) {
    if (ranks == 1) return;
    const std::string ot = options_text(o);
    uint64_t h = fnv1a(ot.data(), ot.size());
    for (const Tensor& p : params) h = fnv1a(p.data(), size_t(p.numel()) * sizeof(float), h);
    const uint64_t data_print = loader.fingerprint();
    h = fnv1a(&data_print, sizeof data_print, h);
    const double mine[2] = {double(h >> 32), double(h & 0xFFFFFFFFu)};
    std::vector<double> all(size_t(2 * ranks));
    comm.gather(mine, 2, all.data());
    for (int r = 1; r < ranks; ++r)
      if (all[size_t(2 * r)] != all[0] || all[size_t(2 * r + 1)] != all[1])
        fail("train: rank ", r, " does not hold the same model, options or training images as rank 0 ", when,
             " (the same ntc build, SIMD target and data on every node?)");
  };
  check_ranks_agree("at the start");
  FILE* log = nullptr;
  if (lead) {
    log = std::fopen((o.out + "/log.jsonl").c_str(), "a");
    if (!log) fail("train: cannot write ", o.out, "/log.jsonl");
  }
  if (!o.quiet)
    std::fprintf(stderr, "ntc train: %s, %ld steps from %ld, batch %d×%d², λ %g, %s proxy, %s Adam, %s analysis, %s sums, %d rank%s × %d threads, %zu images\n",
                 cfg.origin().c_str(), long(o.steps), long(st.step), o.batch, o.crop, double(o.lambdas[0]),
                 o.quant.c_str(), o.adam.c_str(), o.precision.c_str(), o.reduce.c_str(), ranks, ranks > 1 ? "s" : "",
                 num_threads(), loader.files());
  std::unique_ptr<ExactGradSum> exact_sum;
  if (exact) exact_sum = std::make_unique<ExactGradSum>(params, o.batch);
  int64_t skipped = 0;
  double comm_s = 0;

  const auto t0 = std::chrono::steady_clock::now();
  const double train_s0 = st.train_s;
  const int64_t first = st.step;
  int rc = 0;
  double acc_loss = 0, acc_bpp = 0, acc_mse = 0;
  int acc_n = 0;
  // Variable rate: the same sums per rate point (the mix of rate points differs between windows).
  struct RateSums {
    double bpp = 0, mse = 0;
    int n = 0;
  };
  std::vector<RateSums> per_rate(o.lambdas.size() > 1 ? o.lambdas.size() : 0);
  while (st.step < o.steps) {
    // Variable rate: each step trains one rate point, chosen by (seed, step) alone.
    const int rate = o.lambdas.size() > 1 ? int(Rng::mix(o.seed ^ Rng::mix(uint64_t(st.step))) % o.lambdas.size()) : -1;
    const Schedule sched{o.steps, o.decay_from, o.warmup, o.warm_from, o.lambda_boost};
    const float lam = lambda_schedule(st.step, sched, o.lambdas[size_t(std::max(rate, 0))]);
    const float lr = learning_rate(st.step, sched, o.lr);
    const Tensor batch = loader.next();
    StepTerms terms;
    if (exact) {
      // Per image, in fixed point, summed across ranks (train/dist.h); the stop request travels
      // with the sums, so every rank stops after the same step.
      terms = exact_step(model, params, *exact_sum, comm, batch, first_image, o.batch, lam, quant, st.noise, rate,
                         analysis, o.overlap, g_stop != 0, o.unit);
      st.noise.set_counter(st.noise.counter() + (uint64_t(o.batch) << 32));
      comm_s += comm.take_comm_seconds();
    } else {
      RdTerms t = rd_loss(model, batch, lam, quant, st.noise, rate, analysis);
      t.loss.backward();
      terms.loss = t.loss.item();
      terms.bpp_y = t.bpp_y;
      terms.bpp_z = t.bpp_z;
      terms.mse = t.mse;
      terms.stop = g_stop != 0;
    }
    double gnorm = 0;
    if (!terms.skipped) {
      gnorm = clip_grad_global_norm(params, o.clipnorm);
      adam.step(lr);
    } else {
      ++skipped;
      if (!o.quiet)
        std::fprintf(stderr, "ntc train: step %ld skipped: an image's gradient is not finite or beyond the exact sum's range\n",
                     long(st.step));
    }
    for (Tensor& p : params) p.zero_grad();
    ++st.step;
    st.data_pos = loader.position();
    st.train_s = train_s0 + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    acc_loss += terms.loss;
    acc_bpp += terms.bpp_y + terms.bpp_z;
    acc_mse += terms.mse;
    ++acc_n;
    if (rate >= 0) {
      per_rate[size_t(rate)].bpp += terms.bpp_y + terms.bpp_z;
      per_rate[size_t(rate)].mse += terms.mse;
      ++per_rate[size_t(rate)].n;
    }
    if (st.step % o.log_every == 0 || st.step == o.steps) {
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double rate = double(st.step - first) / el;
      const double mse = acc_mse / acc_n;
      auto psnr_of = [](double m) { return 10 * std::log10(255.0 * 255.0 / std::max(m, 1e-10)); };
      JsonOut rates = JsonOut::array();  // [λ, bpp, PSNR, steps] of each rate point trained in this window
      for (size_t r = 0; r < per_rate.size(); ++r) {
        if (!per_rate[r].n) continue;
        rates.push_back({json_round(o.lambdas[r], 8), json_round(per_rate[r].bpp / per_rate[r].n, 5),
                         json_round(psnr_of(per_rate[r].mse / per_rate[r].n), 3), per_rate[r].n});
        per_rate[r] = RateSums{};
      }
      // "lambda" is the last step's λ; "per_rate" (variable rate) splits the window by rate point.
      JsonOut line{{"step", st.step}, {"loss", json_round(acc_loss / acc_n, 6)}, {"bpp", json_round(acc_bpp / acc_n, 5)},
                   {"mse", json_round(mse, 4)}, {"psnr", json_round(psnr_of(mse), 3)}, {"lambda", json_round(lam, 8)},
                   {"lr", json_round(lr, 10)}, {"grad_norm", json_round(gnorm, 4)}, {"steps_per_s", json_round(rate, 4)},
                   {"train_h", json_round(st.train_s / 3600, 4)}};
      if (!rates.empty()) line["per_rate"] = rates;
      line["ranks"] = ranks;
      if (exact) {
        line["skipped"] = skipped;
        if (ranks > 1) line["comm_share"] = json_round(comm_s / std::max(el, 1e-9), 4);
      }
      if (log) {
        std::fprintf(log, "%s\n", json_line(line).c_str());
        std::fflush(log);
      }
      if (!o.quiet)
        std::fprintf(stderr, "step %ld/%ld  %.2f steps/s  ETA %s  loss %.4f  bpp %.4f  PSNR %.2f dB\n", long(st.step),
                     long(o.steps), rate, fmt_time(double(o.steps - st.step) / rate).c_str(), acc_loss / acc_n,
                     acc_bpp / acc_n, 10 * std::log10(255.0 * 255.0 / std::max(mse, 1e-10)));
      acc_loss = acc_bpp = acc_mse = 0;
      acc_n = 0;
    }
    // Validation finalizes the model (the entropy bottleneck's medians, which mixed quantisation
    // then uses in training): every rank does, so all keep computing the same losses.
    const bool val_step = o.val_every > 0 && !o.val.empty() && st.step % o.val_every == 0;
    if (val_step && !lead) model.finalize();
    if (val_step && lead) {
      const bool vr = !model.rate_lambdas().empty();
      for (size_t l = 0; l < (vr ? o.lambdas.size() : 1); ++l) {
        const double lam_v = vr ? o.lambdas[l] : 0.0;
        const ValResult v = validate(model, o, lam_v);
        std::fprintf(log, "%s\n",
                     json_line(JsonOut{{"step", st.step}, {"val_lambda", json_round(vr ? lam_v : double(o.lambdas[0]), 8)},
                                       {"val_bpp", json_round(v.bpp, 5)}, {"val_est_bpp", json_round(v.est_bpp, 5)},
                                       {"val_psnr", json_round(v.psnr, 3)}, {"val_images", v.images}, {"ranks", ranks}})
                         .c_str());
        std::fflush(log);
        if (!o.quiet)
          std::fprintf(stderr, "validation at step %ld (λ %g): %.4f bpp (model estimate %.4f), PSNR %.2f dB on %d images\n",
                       long(st.step), vr ? lam_v : double(o.lambdas[0]), v.bpp, v.est_bpp, v.psnr, v.images);
      }
    }
    const bool limit = g_step_limit > 0 && st.step - first >= g_step_limit;
    const bool stop = terms.stop || limit;  // exact: some rank's request, the same on every rank
    if (stop || st.step % o.checkpoint_every == 0 || st.step == o.steps) {
      check_ranks_agree("at a checkpoint");
      if (lead) save_checkpoint(ckpt, model, o, st, adam);
    }
    if (stop && st.step < o.steps) {
      comm.barrier();  // no rank leaves (mpirun would end the job) before rank 0's checkpoint is written
      if (!o.quiet) std::fprintf(stderr, "ntc train: stopped at step %ld; checkpoint %s (resume with --resume)\n", long(st.step), ckpt.c_str());
      rc = 130;
      break;
    }
  }
  if (log) std::fclose(log);
  if (rc == 0 && lead) {
    model.finalize();
    nn::save_model(model_path(o.out), model, nn::WeightFormat::F16);
    if (!o.quiet) std::fprintf(stderr, "ntc train: done; model %s\n", model_path(o.out).c_str());
  }
  if (rc == 0) comm.barrier();
  return rc;
}

}  // namespace ntc::train
