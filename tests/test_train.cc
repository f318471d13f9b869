// Training: schedules, gradients reach every parameter, the data loader's determinism and errors,
// exact resume after a stop, a kill during checkpoint writing, and a tiny model that learns.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "lib/common.h"
#include "lib/fileio.h"
#include "lib/image.h"
#include "lib/ops/ops.h"
#include "lib/threads.h"
#include "nn/model.h"
#include "nn/model_file.h"
#include "tests/tiny_config.h"
#include "nn/compress.h"
#include "train/data.h"
#include "train/derive.h"
#include "train/loss.h"
#include "train/optim.h"
#include "train/trainer.h"
#include "tests/targets.h"

namespace ntc::train {
namespace {
namespace fs = std::filesystem;

const char* const kTinyCfg = test::kTinyTrainCfg;

// A scratch folder with a tiny config and `n` synthetic images (one smaller than the crop).
struct Scratch {
  std::string dir;
  explicit Scratch(int n, int size = 96) {
    dir = ::testing::TempDir() + "/ntc_train_" + std::to_string(getpid()) + "_" + std::to_string(counter()++);
    fs::remove_all(dir);
    fs::create_directories(dir + "/data");
    std::ofstream(dir + "/tiny.cfg") << kTinyCfg;
    Rng rng{uint64_t(n)};
    for (int i = 0; i < n; ++i) {
      Tensor img = Tensor::empty({1, 3, size, size + 16});
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < size; ++y)
          for (int x = 0; x < size + 16; ++x)
            img.data()[(c * size + y) * (size + 16) + x] = float((x * (c + 1) + y * (3 - c) + 40 * i) % 256);
      write_image(dir + "/data/img" + std::to_string(i) + ".png", img);
    }
    write_image(dir + "/data/small.png", Tensor::zeros({1, 3, 8, 8}));
  }
  ~Scratch() { fs::remove_all(dir); }
  static int& counter() {
    static int c = 0;
    return c;
  }
  TrainOptions options(int64_t steps) const {
    TrainOptions o;
    o.config = dir + "/tiny.cfg";
    o.data = dir + "/data";
    o.out = dir + "/out";
    o.steps = steps;
    o.crop = 64;
    o.batch = 2;
    o.lr = 1e-3f;
    o.lambdas = {0.01f};
    o.checkpoint_every = 1000;
    o.log_every = 5;
    o.quiet = true;
    return o;
  }
};

TEST(Schedules, LearningRateAndLambdaBoundaries) {
  const int64_t N = 1000;  // warm-up 20 steps, drop at 800, λ boost until 200
  EXPECT_FLOAT_EQ(learning_rate(0, N, 1e-4f), 1e-4f / 20);
  EXPECT_FLOAT_EQ(learning_rate(18, N, 1e-4f), 1e-4f * 19 / 20);
  EXPECT_FLOAT_EQ(learning_rate(19, N, 1e-4f), 1e-4f);
  EXPECT_FLOAT_EQ(learning_rate(799, N, 1e-4f), 1e-4f);
  EXPECT_FLOAT_EQ(learning_rate(800, N, 1e-4f), 1e-5f);
  EXPECT_FLOAT_EQ(lambda_schedule(199, N, 0.01f), 0.1f);
  EXPECT_FLOAT_EQ(lambda_schedule(200, N, 0.01f), 0.01f);
  EXPECT_FLOAT_EQ(lambda_schedule(0, N, 0.02f), 0.02f);  // λ > 0.01: no boost
  EXPECT_FLOAT_EQ(learning_rate(0, 1800000, 1e-4f), 1e-4f / 36000);  // the paper's W = 36,000
}

// The explicit schedule: decay point, warm-up length, a warm-up restarted at a step, no λ boost.
TEST(Schedules, ExplicitDecayWarmupAndRestart) {
  Schedule s{1000, 300, 10, 0, true};
  EXPECT_FLOAT_EQ(learning_rate(0, s, 1e-3f), 1e-4f);
  EXPECT_FLOAT_EQ(learning_rate(9, s, 1e-3f), 1e-3f);
  EXPECT_FLOAT_EQ(learning_rate(299, s, 1e-3f), 1e-3f);
  EXPECT_FLOAT_EQ(learning_rate(300, s, 1e-3f), 1e-4f);
  s.decay_from = 1000;  // D ≥ N: a warm-up–stable run that never decays
  EXPECT_FLOAT_EQ(learning_rate(999, s, 1e-3f), 1e-3f);
  s.warm_from = 500;  // moments restarted at step 500
  EXPECT_FLOAT_EQ(learning_rate(500, s, 1e-3f), 1e-4f);
  EXPECT_FLOAT_EQ(learning_rate(504, s, 1e-3f), 5e-4f);
  EXPECT_FLOAT_EQ(learning_rate(509, s, 1e-3f), 1e-3f);
  s.warmup = 0;
  EXPECT_FLOAT_EQ(learning_rate(500, s, 1e-3f), 1e-3f);
  EXPECT_FLOAT_EQ(lambda_schedule(10, s, 0.005f), 0.05f);
  s.lambda_boost = false;
  EXPECT_FLOAT_EQ(lambda_schedule(10, s, 0.005f), 0.005f);
  // The defaults are the paper's whatever the other fields say.
  EXPECT_FLOAT_EQ(learning_rate(799, Schedule{1000, -1, -1, 0, false}, 1e-4f), 1e-4f);
  EXPECT_FLOAT_EQ(learning_rate(800, Schedule{1000, -1, -1, 0, false}, 1e-4f), 1e-5f);
}

TEST(Train, EveryParameterReceivesAGradient) {
  for (QuantMode q : {QuantMode::Noise, QuantMode::Mixed}) {
    nn::Model m(nn::Config::parse(kTinyCfg));
    Rng rng(1);
    m.init(rng);
    if (q == QuantMode::Mixed) m.finalize();
    Tensor x = Tensor::uniform({2, 3, 64, 64}, 0, 255, rng);
    RdTerms t = rd_loss(m, x, 0.01f, q, rng);
    EXPECT_GT(t.bpp_y, 0);
    EXPECT_GT(t.bpp_z, 0);
    t.loss.backward();
    for (auto& [name, p] : m.named_parameters()) {
      ASSERT_TRUE(p.has_grad()) << name;
      double s = 0;
      for (int64_t i = 0; i < p.numel(); ++i) s += std::fabs(p.grad()[i]);
      EXPECT_GT(s, 0) << name << (q == QuantMode::Mixed ? " (mixed)" : " (noise)");
    }
  }
}

TEST(Data, DeterministicSeekableAndChecked) {
  Scratch s(3);
  DataOptions o;
  o.dir = s.dir + "/data";
  o.crop = 64;
  o.batch = 3;
  o.seed = 9;
  o.flips = true;
  o.min_scale = 0.7f;
  BatchLoader a(o), b(o);
  EXPECT_EQ(a.files(), 3u);  // small.png skipped
  std::vector<std::vector<float>> seq;
  for (int k = 0; k < 5; ++k) seq.push_back(a.next().to_vector());
  b.seek(3);
  EXPECT_EQ(b.next().to_vector(), seq[3]);
  EXPECT_EQ(b.make(1).to_vector(), seq[1]);
  EXPECT_NE(seq[0], seq[1]);
  for (float v : seq[2]) {
    EXPECT_GE(v, 0.f);
    EXPECT_LE(v, 255.f);
  }
  o.seed = 10;
  BatchLoader c(o);
  EXPECT_NE(c.next().to_vector(), seq[0]);

  DataOptions bad = o;
  bad.dir = s.dir + "/nope";
  EXPECT_THROW(BatchLoader x(bad), Error);
  fs::create_directories(s.dir + "/empty");
  bad.dir = s.dir + "/empty";
  EXPECT_THROW(BatchLoader x(bad), Error);
  std::ofstream(s.dir + "/empty/broken.png") << "not a png";
  try {
    BatchLoader x(bad);
    ADD_FAILURE() << "accepted a broken image";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.png"), std::string::npos) << e.what();
  }
}

// A checkpoint's bytes with its training-time field (wall-clock, the one field that may differ
// between two exact runs) and the CRC over it zeroed; layout in train/trainer.cc.
std::vector<uint8_t> without_clock(std::vector<uint8_t> b) {
  size_t at = 8;
  for (int str = 0; str < 2; ++str) {
    uint32_t n;
    std::memcpy(&n, b.data() + at, 4);
    at += 4 + n;
  }
  at += 5 * 8 + 1;  // step, data position, noise key and counter, Adam t, flags
  EXPECT_LE(at + 8, b.size());
  double s;
  std::memcpy(&s, b.data() + at, 8);
  EXPECT_TRUE(s > 0 && s < 3600) << "training seconds " << s;
  std::memset(b.data() + at, 0, 8);
  std::memset(b.data() + b.size() - 4, 0, 4);
  return b;
}

// 20 steps in one go equal 10 steps, a stop, a resume and 10 more, bit for bit — also when the
// two halves run on different thread counts (a checkpoint moved to a machine with more cores).
TEST(Train, ResumeIsBitExact) {
  Scratch s(2);
  TrainOptions o = s.options(20);
  ASSERT_EQ(run_training(o, false), 0);
  const auto full = read_file(checkpoint_path(o.out));
  const auto model_full = read_file(model_path(o.out));
  for (int threads : {2, 1}) {
    fs::remove_all(o.out);
    set_step_limit_for_tests(10);
    ASSERT_EQ(run_training(o, false), 130);
    set_step_limit_for_tests(0);
    EXPECT_FALSE(fs::exists(model_path(o.out)));
    set_num_threads(threads);
    ASSERT_EQ(run_training(o, true), 0);
    set_num_threads(0);
    EXPECT_EQ(without_clock(read_file(checkpoint_path(o.out))), without_clock(full)) << "resumed on " << threads << " thread(s)";
    EXPECT_EQ(read_file(model_path(o.out)), model_full);
  }
}

// bf16 analysis products: a run is thread-count independent and resumes bit for bit within its
// precision, differs from the fp32 run, and a resume may switch precision. Without AVX512_BF16
// the scalar twin runs (the same bits, slowly).
TEST(Train, Bf16ResumeIsExactAndPrecisionCanSwitch) {
  const bool emulate = !k::bf16_supported(), saved_ref = k::use_reference_kernels();
  if (emulate) k::set_reference_kernels(true);
  Scratch s(2);
  TrainOptions o = s.options(12);
  o.precision = "bf16";
  ASSERT_EQ(run_training(o, false), 0);
  const auto full = read_file(checkpoint_path(o.out));
  fs::remove_all(o.out);
  set_step_limit_for_tests(6);
  ASSERT_EQ(run_training(o, false), 130);
  set_step_limit_for_tests(0);
  set_num_threads(1);
  // With the reference kernels (emulation, the scalar build) bf16 runs only when asked for: a plain
  // resume would go on in fp32 (trainer.cc), so this one names the precision it keeps.
  ResumeOverrides keep;
  keep.precision = k::use_reference_kernels();
  ASSERT_EQ(run_training(o, true, keep), 0);
  set_num_threads(0);
  EXPECT_EQ(without_clock(read_file(checkpoint_path(o.out))), without_clock(full));
  TrainOptions f = s.options(12);
  f.out = s.dir + "/fp32";
  ASSERT_EQ(run_training(f, false), 0);
  EXPECT_NE(without_clock(read_file(checkpoint_path(f.out))), without_clock(full));
  // Switch an fp32 run to bf16 on resume: it trains on, and the checkpoint records the switch.
  TrainOptions r = f;
  r.steps = 14;
  r.precision = "bf16";
  ResumeOverrides over;
  over.steps = over.precision = true;
  ASSERT_EQ(run_training(r, true, over), 0);
  EXPECT_NE(checkpoint_info(checkpoint_path(f.out)).find("\"precision\":\"bf16\""), std::string::npos);
  EXPECT_NE(checkpoint_info(checkpoint_path(f.out)).find("\"step\":14"), std::string::npos);
  r.precision = "fp16";
  r.steps = 15;
  EXPECT_THROW(run_training(r, true, over), Error);
  // A bf16 run resumed where bf16 cannot run (here: the AVX2 target forced) goes on in fp32.
  if (!emulate) {
    test::ForceTarget avx2(HWY_AVX2);
    TrainOptions b = o;
    b.steps = 14;
    ResumeOverrides os;
    os.steps = true;
    ASSERT_EQ(run_training(b, true, os), 0);
    EXPECT_NE(checkpoint_info(checkpoint_path(o.out)).find("\"precision\":\"fp32\""), std::string::npos);
  }
  k::set_reference_kernels(saved_ref);
}

// A process killed at random moments while writing checkpoints always leaves a loadable one.
TEST(Train, KillDuringCheckpointWritingKeepsThePreviousOne) {
  Scratch s(2);
  TrainOptions o = s.options(4);
  o.checkpoint_every = 1;
  ASSERT_EQ(run_training(o, false), 0);
  const std::string ck = checkpoint_path(o.out);
  for (int trial = 0; trial < 5; ++trial) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {  // child: rewrite the checkpoint over and over
      const auto bytes = read_file(ck);
      for (;;) write_file_atomic(ck, bytes);
    }
    usleep(useconds_t(2000 + 3000 * trial));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    TrainOptions r = o;
    r.steps = 5 + trial;
    EXPECT_EQ(run_training(r, true), 0) << "trial " << trial;
  }
}

TEST(Train, TinyModelLearnsOneImage) {
  Scratch s(1);
  TrainOptions o = s.options(200);
  o.batch = 1;
  o.lr = 2e-3f;
  o.log_every = 10;
  ASSERT_EQ(run_training(o, false), 0);
  std::ifstream log(o.out + "/log.jsonl");
  std::vector<double> losses;
  std::string line;
  while (std::getline(log, line)) {
    const size_t p = line.find("\"loss\":");
    if (p != std::string::npos) losses.push_back(std::stod(line.substr(p + 7)));
  }
  ASSERT_GE(losses.size(), 10u);
  const double early = (losses[1] + losses[2]) / 2, late = (losses[losses.size() - 1] + losses[losses.size() - 2]) / 2;
  EXPECT_LT(late, 0.5 * early) << "loss " << early << " -> " << late;
}

// Several λ: one model with gain units per λ; every rate point is trained, and the model file
// remembers the λ list.
TEST(Train, VariableRateTrainsEveryRatePoint) {
  Scratch s(2);
  TrainOptions o = s.options(16);
  o.lambdas = {0.02f, 0.005f};
  ASSERT_EQ(run_training(o, false), 0);
  auto m = nn::load_model(model_path(o.out));
  ASSERT_EQ(m->rate_lambdas().size(), 2u);
  {  // the log splits each window by rate point: [λ, bpp, PSNR, steps], steps adding up to the window
    std::ifstream log(o.out + "/log.jsonl");
    std::string line;
    int windows = 0, steps = 0;
    while (std::getline(log, line)) {
      const size_t p = line.find("\"per_rate\":[");
      if (p == std::string::npos) continue;
      ++windows;
      for (size_t q = line.find("[", p + 12); q != std::string::npos && q < line.size(); q = line.find("[", q + 1)) {
        const size_t close = line.find("]", q);
        const std::string entry = line.substr(q + 1, close - q - 1);
        EXPECT_TRUE(entry.rfind("0.005,", 0) == 0 || entry.rfind("0.02,", 0) == 0) << entry;
        steps += std::stoi(entry.substr(entry.rfind(',') + 1));
      }
    }
    EXPECT_GT(windows, 0);
    EXPECT_EQ(steps, 16);
  }
  EXPECT_NEAR(m->rate_lambdas()[0], 0.005, 1e-9);
  // Gains start at sqrt(λ_l / λ_mid) (nn/model.h); training must have moved both rate points.
  const double mid = std::sqrt(0.005 * 0.02);
  for (auto& [n, t] : m->named_parameters())
    if (n == "gain.y")
      for (int l = 0; l < 2; ++l) {
        const float init = float(std::sqrt((l ? 0.02 : 0.005) / mid));
        double moved = 0;
        for (int c = 0; c < 16; ++c) moved += std::fabs(t.data()[l * 16 + c] - init);
        EXPECT_GT(moved, 0.03) << "rate point " << l << " never trained";  // f16 storage moves < 0.003
      }
}

std::vector<std::pair<int64_t, double>> logged_lr(const std::string& out) {
  std::ifstream log(out + "/log.jsonl");
  std::vector<std::pair<int64_t, double>> r;
  std::string line;
  while (std::getline(log, line)) {
    const size_t p = line.find("\"lr\":"), q = line.find("\"step\":");
    if (p != std::string::npos) r.push_back({std::stoll(line.substr(q + 7)), std::stod(line.substr(p + 5))});
  }
  return r;
}

// A resume may shorten the planned steps as well as extend them; the schedule follows the new
// total, and a total already reached just writes the model.
TEST(Train, ResumeCanShortenTheRun) {
  Scratch s(2);
  TrainOptions o = s.options(40);
  o.log_every = 1;
  set_step_limit_for_tests(10);
  ASSERT_EQ(run_training(o, false), 130);
  set_step_limit_for_tests(0);
  for (auto [step, lr] : logged_lr(o.out)) EXPECT_FLOAT_EQ(float(lr), 1e-3f) << step;  // no warm-up (⌊0.02·40⌋ = 0)
  TrainOptions r = o;
  r.steps = 15;  // decay now from ⌊0.8·15⌋ = 12
  ResumeOverrides over;
  over.steps = true;
  ASSERT_EQ(run_training(r, true, over), 0);
  EXPECT_TRUE(fs::exists(model_path(o.out)));
  const auto lrs = logged_lr(o.out);
  ASSERT_EQ(lrs.back().first, 15);
  for (auto [step, lr] : lrs) {  // a line for step k logs the rate of update k (index k − 1)
    if (step > 10) {
      EXPECT_FLOAT_EQ(float(lr), step <= 12 ? 1e-3f : 1e-4f) << step;
    }
  }
  // Below the steps done: nothing more to train, the model is (re)written, the checkpoint stays.
  fs::remove(model_path(o.out));
  const auto ck = read_file(checkpoint_path(o.out));
  r.steps = 8;
  ASSERT_EQ(run_training(r, true, over), 0);
  EXPECT_TRUE(fs::exists(model_path(o.out)));
  EXPECT_EQ(read_file(checkpoint_path(o.out)), ck);
  // Without the override the checkpoint's own total stands.
  r.steps = 100;
  ASSERT_EQ(run_training(r, true), 0);
  EXPECT_EQ(logged_lr(o.out).back().first, 15);
}

// A resume may change the crop and the batch (a cool-down on larger crops); the checkpoint then
// records them, and without the overrides the checkpoint's own values stand.
TEST(Train, ResumeCanChangeCropAndBatch) {
  Scratch s(3, 160);
  TrainOptions o = s.options(4);
  set_step_limit_for_tests(2);
  ASSERT_EQ(run_training(o, false), 130);
  set_step_limit_for_tests(0);
  TrainOptions r = o;
  r.crop = 128;
  r.batch = 1;
  r.steps = 3;
  ResumeOverrides over;
  over.crop = over.batch = over.steps = true;
  set_step_limit_for_tests(1);
  ASSERT_EQ(run_training(r, true, over), 0);
  set_step_limit_for_tests(0);
  const std::string info = checkpoint_info(checkpoint_path(o.out));
  EXPECT_NE(info.find("\"crop\":128"), std::string::npos) << info;
  EXPECT_NE(info.find("\"batch\":1"), std::string::npos) << info;
  r.crop = 64;  // not an override: ignored
  r.steps = 4;
  ResumeOverrides steps_only;
  steps_only.steps = true;
  ASSERT_EQ(run_training(r, true, steps_only), 0);
  EXPECT_NE(checkpoint_info(checkpoint_path(o.out)).find("\"crop\":128"), std::string::npos);
}

// A compact snapshot (f16 weights, no moments) is about half the weights in f32, resumes in an
// empty folder with the same schedule and data position, and restarts Adam with a warm-up.
TEST(Train, CompactSnapshotResumes) {
  Scratch s(2);
  TrainOptions o = s.options(30);
  o.log_every = 1;
  o.decay_from = 1000;
  o.warmup = 4;
  set_step_limit_for_tests(10);
  ASSERT_EQ(run_training(o, false), 130);
  set_step_limit_for_tests(0);
  const std::string snap = s.dir + "/snap.ntck";
  write_snapshot(o.out, snap);
  int64_t n_params = 0;
  for (auto& [n, t] : nn::Model(nn::Config::load(s.dir + "/tiny.cfg")).named_parameters()) n_params += t.numel();
  const auto bytes = read_file(snap);
  EXPECT_LT(double(bytes.size()), 2.0 * double(n_params) + 8192);
  EXPECT_GT(double(read_file(checkpoint_path(o.out)).size()), 12.0 * double(n_params));

  TrainOptions r = s.options(30);
  r.out = s.dir + "/resumed";
  r.from = snap;
  r.log_every = 1;
  ASSERT_EQ(run_training(r, true), 0);
  auto lrs = logged_lr(r.out);
  ASSERT_EQ(lrs.front().first, 11);
  EXPECT_FLOAT_EQ(float(lrs.front().second), 1e-3f / 500);  // warm-up restarted at step 10, 500 steps
  EXPECT_FLOAT_EQ(float(lrs[3].second), 1e-3f * 4 / 500);
  EXPECT_EQ(lrs.back().first, 30);
  {  // --warmup sets the restarted warm-up's length
    TrainOptions w = r;
    w.out = s.dir + "/resumed_w";
    w.warmup = 4;
    ResumeOverrides ow;
    ow.warmup = true;
    ASSERT_EQ(run_training(w, true, ow), 0);
    const auto lw = logged_lr(w.out);
    EXPECT_FLOAT_EQ(float(lw.front().second), 1e-3f / 4);
    EXPECT_FLOAT_EQ(float(lw[3].second), 1e-3f);
  }
  // The snapshot holds the checkpoint's weights (to f16): a resume of each with nothing left to
  // train writes models with the same parameters.
  ResumeOverrides stop_now;
  stop_now.steps = true;
  TrainOptions a = s.options(10), b = s.options(10);
  a.from = snap;
  a.out = s.dir + "/from_snapshot";
  b.out = o.out;
  ASSERT_EQ(run_training(a, true, stop_now), 0);
  ASSERT_EQ(run_training(b, true, stop_now), 0);
  auto ma = nn::load_model(model_path(a.out)), mb = nn::load_model(model_path(b.out));
  const auto pa = ma->named_parameters(), pb = mb->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_EQ(pa[i].second.to_vector(), pb[i].second.to_vector()) << pa[i].first;
  // A folder that has a checkpoint is not overwritten from a snapshot.
  EXPECT_THROW(run_training(r, true), Error);
  // A damaged snapshot is an error, not garbage.
  auto bad = bytes;
  bad[bad.size() / 2] ^= 1;
  write_file_atomic(snap, bad);
  r.out = s.dir + "/resumed2";
  EXPECT_THROW(run_training(r, true), Error);
}

// A resume with --lambda re-anchors a variable-rate run's rate points: the other parameters carry
// over unchanged, and each new rate point's gains are the trained ones read off piecewise linearly
// in log λ (so a new point equal to an old one keeps its gains exactly); fixed-rate or linear-gain
// runs refuse.
TEST(Train, ResumeReanchorsTheRatePoints) {
  Scratch s(2);
  std::ofstream(s.dir + "/tiny_log.cfg") << kTinyCfg << "rate.gains = log\n";
  TrainOptions o = s.options(8);
  o.config = s.dir + "/tiny_log.cfg";
  o.lambdas = {0.004f, 0.01f, 0.03f};
  ASSERT_EQ(run_training(o, false), 0);
  auto before = nn::load_model(model_path(o.out));
  TrainOptions r = s.options(8);  // nothing left to train: the model is rewritten at once
  r.lambdas = {0.002f, 0.01f, 0.02f, 0.06f};
  ResumeOverrides over;
  over.lambdas = true;
  ASSERT_EQ(run_training(r, true, over), 0);
  auto after = nn::load_model(model_path(o.out));
  ASSERT_EQ(after->rate_lambdas().size(), 4u);
  EXPECT_NEAR(after->rate_lambdas()[0], 0.002, 1e-9);
  // λ inside the old range: the same gains as the old model's interpolation (0.01 is an old point).
  for (double lam : {0.01, 0.02}) {
    const auto ga = before->gains_for(lam), gb = after->gains_for(lam);
    for (int64_t c = 0; c < ga.y.numel(); ++c) EXPECT_NEAR(gb.y.data()[c], ga.y.data()[c], 2e-3 * ga.y.data()[c]) << lam;
    for (int64_t c = 0; c < ga.z_inv.numel(); ++c)
      EXPECT_NEAR(gb.z_inv.data()[c], ga.z_inv.data()[c], 2e-3 * ga.z_inv.data()[c]) << lam;
  }
  // Below the old range: the first segment extended, in log-gain against log λ.
  const auto g4 = before->gains_for(0.004), g10 = before->gains_for(0.01), g2 = after->gains_for(0.002);
  const double t = std::log(0.002 / 0.004) / std::log(0.01 / 0.004);
  for (int64_t c = 0; c < g2.y.numel(); ++c) {
    const double want = std::exp(std::log(g4.y.data()[c]) + t * (std::log(g10.y.data()[c]) - std::log(g4.y.data()[c])));
    EXPECT_NEAR(g2.y.data()[c], want, 3e-3 * want);
  }
  // Every other parameter carried over (to the f16 of the model files).
  const auto pa = before->named_parameters(), pb = after->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    if (pa[i].first.rfind("gain.", 0) != 0) {
      EXPECT_EQ(pa[i].second.to_vector(), pb[i].second.to_vector()) << pa[i].first;
    }
  }
  // It trains on from there with the new points.
  r.steps = 12;
  over.steps = true;
  over.lambdas = false;
  ASSERT_EQ(run_training(r, true, over), 0);
  EXPECT_EQ(nn::load_model(model_path(o.out))->rate_lambdas().size(), 4u);
  // A fixed-rate run (or linear gains) cannot be re-anchored.
  TrainOptions f = s.options(4);
  f.out = s.dir + "/fixed";
  ASSERT_EQ(run_training(f, false), 0);
  f.lambdas = {0.01f, 0.02f};
  ResumeOverrides ol;
  ol.lambdas = true;
  EXPECT_THROW(run_training(f, true, ol), Error);
}

TEST(Train, BadOptionsAreErrors) {
  Scratch s(1);
  TrainOptions o = s.options(5);
  o.crop = 48;  // not a multiple of 64
  EXPECT_THROW(run_training(o, false), Error);
  o = s.options(5);
  o.lambdas = {};
  EXPECT_THROW(run_training(o, false), Error);
  o = s.options(5);
  EXPECT_THROW(run_training(o, true), Error);  // nothing to resume
}

// ---------------------------------------------------------------- derive (train/derive.h)

// The least-squares fit recovers a transposed convolution exactly from its own outputs, for the
// paper's k18 s16, a pure block transform (k16 s16) and a 3-tap geometry (k5 s2).
TEST(Derive, LeastSquaresRecoversATransposedConvolution) {
  struct Geo {
    int C, k, s, h, w, samples;
  };
  for (const Geo g : {Geo{3, 18, 16, 3, 4, 12}, Geo{2, 16, 16, 2, 3, 8}, Geo{4, 5, 2, 5, 6, 30}}) {
    Rng rng{uint64_t(g.k * 100 + g.s)};
    const Tensor Wt = Tensor::uniform({g.C, 3, g.k, g.k}, -1.f, 1.f, rng), bt = Tensor::from({3}, {0.3f, -0.2f, 0.1f});
    LinearSynthesisFit fit(g.C, g.k, g.s);
    for (int i = 0; i < g.samples; ++i) {
      const Tensor yh = Tensor::uniform({1, g.C, g.h, g.w}, -2.f, 2.f, rng);
      fit.add(yh, conv_transpose2d_same(yh, Wt, bt, g.s));
    }
    const Tensor W = Tensor::zeros(Wt.shape()), b = Tensor::zeros({3});
    const double mse = fit.solve(W, b);
    EXPECT_LT(mse, 1e-6) << "k" << g.k << " s" << g.s;  // float rounding of targets of order 1–10
    EXPECT_EQ(fit.positions(), int64_t(g.samples) * g.h * g.w);
    for (int64_t e = 0; e < W.numel(); ++e) ASSERT_NEAR(W.data()[e], Wt.data()[e], 2e-4) << "k" << g.k << " s" << g.s << " @" << e;
    for (int o = 0; o < 3; ++o) EXPECT_NEAR(b.data()[o], bt.data()[o], 2e-4) << "k" << g.k;
  }
}

// On noisy targets, with unequal sample weights, the fit is the minimum of the weighted error (any
// step away costs) and its reported error is the one the fitted convolution really makes.
TEST(Derive, LeastSquaresIsTheMinimumAndReportsItsError) {
  const int C = 3, k = 18, s = 16;
  Rng rng{5};
  const Tensor Wt = Tensor::uniform({C, 3, k, k}, -0.05f, 0.05f, rng), bt = Tensor::from({3}, {0.1f, 0.f, -0.1f});
  LinearSynthesisFit fit(C, k, s);
  std::vector<std::pair<Tensor, Tensor>> data;
  auto weight = [](size_t i) { return 0.25 + double(i % 3); };
  for (int i = 0; i < 10; ++i) {
    const Tensor yh = Tensor::uniform({1, C, 3, 3}, -2.f, 2.f, rng);
    Tensor x = conv_transpose2d_same(yh, Wt, bt, s);
    for (int64_t e = 0; e < x.numel(); ++e) x.data()[e] += 0.1f * (rng.uniform() - 0.5f);
    fit.add(yh, x, weight(size_t(i)));
    data.emplace_back(yh, x);
  }
  const Tensor W = Tensor::zeros(Wt.shape()), b = Tensor::zeros({3});
  const double reported = fit.solve(W, b);
  auto mse = [&] {
    double se = 0, n = 0;
    for (size_t i = 0; i < data.size(); ++i) {
      const auto& [yh, x] = data[i];
      const Tensor r = conv_transpose2d_same(yh, W, b, s);
      for (int64_t e = 0; e < x.numel(); ++e) se += weight(i) * (r.data()[e] - x.data()[e]) * (r.data()[e] - x.data()[e]);
      n += weight(i) * double(x.numel());
    }
    return se / n;
  };
  const double best = mse();
  EXPECT_NEAR(reported, best, 1e-3 * best);
  EXPECT_GT(best, 0.5 * 0.1 * 0.1 / 12);  // the noise cannot be fitted away (variance 0.1²/12)
  for (float* p : {b.data(), b.data() + 2, W.data() + 7, W.data() + W.numel() / 2}) {
    for (float d : {-0.02f, 0.02f}) {
      *p += d;
      EXPECT_GT(mse(), best);
      *p -= d;
    }
  }
}

// decoded_latents() is what the decoder gives g_s: its synthesis is the stream's reconstruction.
TEST(Derive, DecodedLatentsAreTheDecodersLatents) {
  nn::Model m(nn::Config::parse(std::string(kTinyCfg) + "rate.gains = log\nrate.lambdas = 0.005,0.02\n"));
  Rng rng{3};
  m.init(rng);
  m.finalize();
  const Tensor img = Tensor::uniform({1, 3, 70, 90}, 0.f, 255.f, rng);
  for (double lam : {0.005, 0.011}) {
    const nn::Encoded e = nn::compress(m, img, 0, lam);
    const Tensor yh = nn::decoded_latents(m, nn::latents_at(m, nn::analysis(m, img), lam), lam);
    EXPECT_EQ(nn::synthesize(m, yh, 70, 90).to_vector(), e.recon.to_vector()) << lam;
  }
}

// ntc derive: a JPEG-like run from a trained two-layer one. Everything but the synthesis is copied,
// the synthesis is fitted, and the new run resumes like any other; mismatched configs are errors.
TEST(Derive, JpegLikeRunFromATrainedRun) {
  Scratch s(3);
  std::ofstream(s.dir + "/src.cfg") << kTinyCfg << "rate.gains = log\n";
  const std::string body = "latent_channels = 16\nanalysis = cnn\nanalysis.channels_base = 16\nanalysis.activation = gdn\n"
                           "hyper_analysis = hyper\nhyper_synthesis = hyper\nrate.gains = log\n";
  std::ofstream(s.dir + "/jl.cfg") << "name = tiny_jl\n" << body << "synthesis = jpeg_like\n";
  TrainOptions o = s.options(6);
  o.config = s.dir + "/src.cfg";
  o.lambdas = {0.005f, 0.02f};
  ASSERT_EQ(run_training(o, false), 0);
  DeriveOptions d;
  d.from = checkpoint_path(o.out);
  d.config = s.dir + "/jl.cfg";
  d.out = s.dir + "/jl";
  d.crops = 3;
  d.crop = 64;
  int64_t calls = 0;
  d.progress = [&](int64_t) { ++calls; };
  ASSERT_EQ(run_derive(d), 0);
  EXPECT_EQ(calls, 3);
  const auto src = nn::load_model(model_path(o.out)), jl = nn::load_model(model_path(d.out));
  EXPECT_EQ(jl->rate_lambdas(), src->rate_lambdas());
  EXPECT_EQ(jl->config().str("synthesis"), "jpeg_like");
  int copied = 0;
  for (const auto& [name, t] : jl->named_parameters()) {
    if (name.rfind("g_s.", 0) == 0) continue;
    for (const auto& [n2, t2] : src->named_parameters())
      if (n2 == name) {
        EXPECT_EQ(t.to_vector(), t2.to_vector()) << name;
        ++copied;
      }
  }
  EXPECT_GT(copied, 20);
  // Training hours carry over; the derived run trains on from the source's step.
  TrainOptions r = s.options(8);
  r.out = d.out;
  ResumeOverrides over;
  over.steps = true;
  ASSERT_EQ(run_training(r, true, over), 0);
  EXPECT_NE(checkpoint_info(checkpoint_path(d.out)).find("\"step\":8"), std::string::npos);
  // An existing run is not overwritten; only the synthesis may differ; the fit needs jpeg_like.
  EXPECT_THROW(run_derive(d), Error);
  std::string wide = body;
  wide.replace(wide.find("channels_base = 16"), 18, "channels_base = 24");
  std::ofstream(s.dir + "/wide.cfg") << "name = w\n" << wide << "synthesis = jpeg_like\n";
  d.config = s.dir + "/wide.cfg";
  d.out = s.dir + "/wide";
  EXPECT_THROW(run_derive(d), Error);
  d.config = s.dir + "/src.cfg";
  d.out = s.dir + "/same";
  EXPECT_THROW(run_derive(d), Error);
}

}  // namespace
}  // namespace ntc::train
