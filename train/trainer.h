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
#include <functional>
#include <string>
#include <vector>

namespace ntc::nn {
class Model;
}

namespace ntc::train {

class Comm;  // train/dist.h

struct TrainOptions {
  std::string config;                    // name or path; its text is stored in checkpoints
  std::string data, val, out;            // training folder, validation folder (optional), output dir
  std::vector<float> lambdas{0.01f};     // one λ, or several: a variable-rate model (gain units)
  int64_t steps = 1000;
  int crop = 128, batch = 8;
  float lr = 1e-4f, clipnorm = 1.0f, min_scale = 1.0f;
  // Schedule (train/optim.h): ×0.1 from step decay_from (-1: 80% of steps; ≥ steps: never), linear
  // warm-up over `warmup` steps (-1: 2% of steps) counted from warm_from, the paper's 10·λ boost.
  int64_t decay_from = -1, warmup = -1, warm_from = 0;
  bool lambda_boost = true;
  bool flips = false;
  uint64_t seed = 1;
  std::string quant = "noise", adam = "keras";
  std::string precision = "fp32";        // of the analysis transforms' products: fp32 or bf16 (lib/gemm.h)
  int64_t checkpoint_every = 500, val_every = 0, log_every = 10;
  int val_images = 0;                    // 0: all images in --val
  bool quiet = false;                    // no progress lines (tests)
  std::string from;                      // resume from this checkpoint or snapshot (into an empty out)
  // How a step's gradient is summed (train/dist.h): "batch" (one backward over the whole batch,
  // the fast default of one process) or "exact" (per image, in fixed point: the same bits for any
  // number of ranks). Under mpirun (comm with more than one rank) it is always "exact".
  std::string reduce = "batch";
  int unit = 1;                          // exact: images per fixed-point unit (ranks × unit must divide batch)
  bool overlap = true;                   // exact, several ranks: reduce buckets during backward
  Comm* comm = nullptr;                  // null: one process. Not stored in checkpoints.
};

// Options a resume takes from the command line rather than from the checkpoint (each only when
// given): the planned steps (longer or shorter: the schedule follows), the schedule's shape, the
// data folder and the precision (a run may switch between fp32 and bf16; the resume stays exact
// within one precision).
struct ResumeOverrides {
  bool steps = false, decay_from = false, warmup = false, data = false, precision = false, reduce = false, unit = false;
  bool crop = false, batch = false;  // e.g. a cool-down phase on larger crops
  // --lambda on a resume of a variable-rate run with log gains: new rate points, their gains read
  // off the trained ones (interpolated or extrapolated in log λ); everything else carries over.
  bool lambdas = false;
};

// Trains from scratch, or resumes from out/checkpoint.ntck when `resume` (the options stored in the
// checkpoint win, except those named in `over`). A resume whose planned steps are already done
// writes the model and returns. Returns 0 when done, 130 when stopped by a signal (SIGINT, SIGTERM
// or SIGUSR1, the one mpirun forwards; after writing a checkpoint).
// With several ranks (o.comm): every rank runs this; rank 0 alone reads the checkpoint (and sends
// it to the others), writes checkpoints, the log, the model and validates. A resume may use another
// number of ranks than the run that wrote the checkpoint; the global batch must divide among them.
int run_training(TrainOptions opts, bool resume, ResumeOverrides over = {});

// For tests: stop after this many steps of the current invocation (0 = no limit) as if signalled.
void set_step_limit_for_tests(int64_t n);

// Writes the compact snapshot of out_dir's checkpoint: the same state with f16 weights and without
// Adam's moments (half the size of the weights in f32; a campaign commits it at every stop). A
// resume from it (--from) continues the schedule and the data order; Adam restarts with a warm-up.
void write_snapshot(const std::string& out_dir, const std::string& file);

// A new run derived from a trained one (`ntc derive`, train/derive.h). The checkpoint or snapshot
// `from` gives the options, step, training hours, data position and noise state; the model is the
// one config_text describes, with the source's rate points (rate.lambdas, or lambda) added when it
// names none. Every parameter whose name and shape the source also has is copied; then
// fill(source, derived) sets the rest; its time joins the training hours.
// Writes out_dir/checkpoint.ntck with weights only (a resume warms Adam up again, as from a
// snapshot) and out_dir/model.ntcm. Returns the names of the parameters that were not copied.
std::vector<std::string> write_derived_checkpoint(
    const std::string& from, const std::string& config_text, const std::string& config_origin, const std::string& out_dir,
    const std::function<void(nn::Model& source, nn::Model& derived, const TrainOptions& o)>& fill);

// One line of JSON about a checkpoint or snapshot: step, planned steps, training hours, schedule.
std::string checkpoint_info(const std::string& file);
// The same from a checkpoint's bytes (`origin` names them in errors); the whole file is loaded and
// checked, as a resume would (tests/fuzz/fuzz_checkpoint.cc).
std::string checkpoint_info(const std::vector<uint8_t>& bytes, const std::string& origin);

std::string checkpoint_path(const std::string& out_dir);
std::string model_path(const std::string& out_dir);

}  // namespace ntc::train
