// trainer — the training loop behind `ntc train` (SPEC §3): data, RD loss, clipping, Adam,
// schedules, progress and ETA on stderr, a JSONL log, periodic validation with real entropy coding,
// atomic checkpoints (every N steps and on SIGINT/SIGTERM) and exact resume.
//
// Exact resume: a checkpoint holds the config text, the options, the step, all parameters, Adam's
// moments and t, the noise RNG state and the data position. Batch k depends only on (seed, k)
// (train/data.h) and every op is thread-count independent, so a run resumed from a checkpoint —
// on this or another machine with the same build — continues bit for bit as if never stopped.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ntc::train {

struct TrainOptions {
  std::string config;                    // name or path; its text is stored in checkpoints
  std::string data, val, out;            // training folder, validation folder (optional), output dir
  std::vector<float> lambdas{0.01f};     // one λ, or several: a variable-rate model (gain units)
  int64_t steps = 1000;
  int crop = 128, batch = 8;
  float lr = 1e-4f, clipnorm = 1.0f, min_scale = 1.0f;
  bool flips = false;
  uint64_t seed = 1;
  std::string quant = "noise", adam = "keras";
  int64_t checkpoint_every = 500, val_every = 0, log_every = 10;
  int val_images = 0;                    // 0: all images in --val
  bool quiet = false;                    // no progress lines (tests)
};

// Trains from scratch, or resumes from out/checkpoint.ntck when `resume` (the options stored in the
// checkpoint win, except `steps`, which may extend a finished run). Returns 0 when done, 130 when
// stopped by a signal (after writing a checkpoint).
int run_training(TrainOptions opts, bool resume);

// For tests: stop after this many steps of the current invocation (0 = no limit) as if signalled.
void set_step_limit_for_tests(int64_t n);

std::string checkpoint_path(const std::string& out_dir);
std::string model_path(const std::string& out_dir);

}  // namespace ntc::train
