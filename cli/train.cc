// `ntc train` — see train/trainer.h. Flags follow the interface; everything else has the
// paper's defaults (Keras Adam, additive-noise proxy, global clip-norm 1.0).
#include <cstdio>

#include "lib/args.h"
#include "cli/commands.h"
#include "cli/launch.h"
#include "lib/common.h"
#include "lib/gemm.h"
#include "cli/progress.h"
#include "train/derive.h"
#include "train/trainer.h"

namespace ntc::cli {

int cmd_train(const std::vector<std::string>& argv) {
  Args a(argv,
         {"config", "data", "lambda", "steps", "out", "crop", "batch", "lr", "val", "seed", "quant", "adam",
          "checkpoint-every", "val-every", "val-images", "min-scale", "log-every", "clipnorm", "decay-from", "warmup", "from", "snapshot", "precision",
          "reduce", "rank-timeout", "unit"},
         {"resume", "flips", "quiet", "no-lambda-boost", "info", "no-overlap"});
  if (!a.positional().empty()) fail("train: unexpected argument '", a.positional()[0], "'");
  train::TrainOptions o;
  o.out = a.str("out");
  if (a.has("info")) {  // ntc train --info (--out RUN | --from FILE): the checkpoint's state as JSON
    if (o.out.empty() == a.str("from").empty()) fail("train: --info wants --out RUN or --from FILE");
    std::printf("%s\n", train::checkpoint_info(o.out.empty() ? a.str("from") : train::checkpoint_path(o.out)).c_str());
    return 0;
  }
  if (a.has("snapshot")) {  // ntc train --out RUN --snapshot FILE: export, no training
    if (o.out.empty()) fail("train: --snapshot needs --out RUN (the run whose checkpoint to export)");
    train::write_snapshot(o.out, a.str("snapshot"));
    return 0;
  }
  const bool resume = a.has("resume");
  o.from = a.str("from");
  if (!o.from.empty() && !resume) fail("train: --from FILE goes with --resume");
  if (!resume && !a.has("config")) usage_fail("train: --config NAME is required (or --resume)");
  o.config = a.str("config");
  o.data = a.str("data");
  o.val = a.str("val");
  if (a.has("lambda")) {
    o.lambdas.clear();
    for (double v : a.numbers("lambda")) o.lambdas.push_back(float(v));
  }
  auto number = [&](const char* k, float def) {
    if (!a.has(k)) return def;
    const std::string text = a.str(k);  // strtof's end pointer points into it: keep it alive
    char* end = nullptr;
    const float v = std::strtof(text.c_str(), &end);
    if (text.empty() || *end || !(v > 0)) fail("--", k, " wants a positive number, got '", text, "'");
    return v;
  };
  o.steps = a.integer("steps", o.steps);
  o.crop = int(a.integer("crop", o.crop));
  o.batch = int(a.integer("batch", o.batch));
  o.lr = number("lr", o.lr);
  o.clipnorm = number("clipnorm", o.clipnorm);
  o.min_scale = number("min-scale", o.min_scale);
  o.seed = uint64_t(a.integer("seed", long(o.seed)));
  o.quant = a.str("quant", o.quant);
  // --precision auto (the default for a new run): bf16 where the CPU has AVX512_BF16 and the
  // 512-bit target is in force (measured as good per step and 16% faster, data/MODELS.md), else
  // fp32. The header line and the checkpoint say which ran.
  o.precision = a.str("precision", "auto");
  if (o.precision == "auto") o.precision = bf16_products_available() ? "bf16" : "fp32";
  o.adam = a.str("adam", o.adam);
  o.checkpoint_every = a.integer("checkpoint-every", o.checkpoint_every);
  o.val_every = a.integer("val-every", o.val_every);
  o.val_images = int(a.integer("val-images", o.val_images));
  o.log_every = a.integer("log-every", o.log_every);
  o.decay_from = a.integer("decay-from", o.decay_from);
  o.warmup = a.integer("warmup", o.warmup);
  o.lambda_boost = !a.has("no-lambda-boost");
  o.flips = a.has("flips");
  o.quiet = a.has("quiet");
  if (o.checkpoint_every < 1 || o.log_every < 1 || o.val_every < 0) fail("train: intervals must be positive");
  if (o.decay_from < -1 || o.warmup < -1) fail("train: --decay-from and --warmup want a step count (or -1 for the default)");
  train::ResumeOverrides over;
  over.steps = a.has("steps");
  over.decay_from = a.has("decay-from");
  over.warmup = a.has("warmup");
  over.data = a.has("data");
  over.crop = a.has("crop");
  over.batch = a.has("batch");
  over.precision = a.has("precision") && a.str("precision") != "auto";
  over.lambdas = resume && a.has("lambda");
  if (resume && a.has("no-lambda-boost")) fail("train: --no-lambda-boost applies to a new run (the checkpoint keeps its own)");
  // Data-parallel runs (train/dist.h): under mpirun every rank runs this command; --reduce exact
  // gives one process the same per-image fixed-point sums (and so the same weights) as N ranks.
  o.reduce = a.str("reduce", o.reduce);
  if (o.reduce != "batch" && o.reduce != "exact") usage_fail("train: --reduce wants batch or exact, got '", o.reduce, "'");
  over.reduce = a.has("reduce");
  o.unit = int(a.integer("unit", o.unit));
  over.unit = a.has("unit");
  o.overlap = !a.has("no-overlap");
  const double timeout = a.has("rank-timeout") ? number("rank-timeout", 0) : 600.0;
  return run_as_rank(timeout, [&](train::Comm* comm) {
    o.comm = comm;
    return train::run_training(o, resume, over);
  });
}

// `ntc derive` — see train/derive.h.
int cmd_derive(const std::vector<std::string>& argv) {
  Args a(argv, {"from", "config", "out", "data", "crops", "crop", "seed"}, {"quiet"});
  if (!a.positional().empty()) fail("derive: unexpected argument '", a.positional()[0], "'");
  train::DeriveOptions o;
  o.from = a.str("from");
  o.config = a.str("config");
  o.out = a.str("out");
  if (o.from.empty() || o.config.empty() || o.out.empty()) usage_fail("derive: --from, --config and --out are required");
  o.data = a.str("data");
  o.crops = int(a.integer("crops", o.crops));
  o.crop = int(a.integer("crop", o.crop));
  o.seed = uint64_t(a.integer("seed", long(o.seed)));
  Progress bar("ntc derive: fitting the synthesis, crop", o.crops, !a.has("quiet"));
  o.progress = [&](int64_t done) { bar.update(int(done)); };
  return train::run_derive(o);
}

}  // namespace ntc::cli
