// Data-parallel training (train/dist.h): the fixed-point gradient sum, the sharded data order, the
// leaf-ready callback of backward, and — through `mpirun` and $NTC_BIN — N ranks against one
// process bit for bit, resume across a change of N, and a rank that dies or hangs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <thread>

#include "lib/image.h"
#include "lib/ops/ops.h"
#include "lib/rng.h"
#include "nn/config.h"
#include "nn/model.h"
#include "tests/tiny_config.h"
#include "train/data.h"
#include "train/dist.h"
#include "train/loss.h"

namespace ntc::train {
namespace {

namespace fs = std::filesystem;

const char* const kTinyCfg = test::kTinyTrainCfg;

std::vector<Tensor> params_of(nn::Model& m) {
  std::vector<Tensor> p;
  for (auto& [n, t] : m.named_parameters()) p.push_back(t);
  return p;
}

// The tiny model, initialised from rng.
std::unique_ptr<nn::Model> tiny_model(Rng& rng) {
  auto m = std::make_unique<nn::Model>(nn::Config::parse(kTinyCfg));
  m->init(rng);
  return m;
}

std::vector<std::vector<float>> grads_of(const std::vector<Tensor>& ps) {
  std::vector<std::vector<float>> g;
  for (const Tensor& p : ps) g.push_back(p.has_grad() ? std::vector<float>(p.grad(), p.grad() + p.numel()) : std::vector<float>{});
  return g;
}

// Σ in fixed point is exact, so the order in which images are added cannot change a bit; the
// result is the mean to within fp32 rounding; an out-of-range or non-finite value skips the step.
TEST(Dist, FixedPointSumIsOrderFreeAndSkipsBadValues) {
  const int B = 6;
  std::vector<Tensor> ps = {Tensor::param({1000}), Tensor::param({3, 7}), Tensor::param({5})};
  Rng rng(7);
  std::vector<std::vector<std::vector<float>>> g(B);  // [image][param][value]
  for (int i = 0; i < B; ++i)
    for (const Tensor& p : ps) {
      std::vector<float> v(size_t(p.numel()));
      // Magnitudes from 1e-9 to 1e3: a float sum would depend on the order.
      for (float& x : v) x = float((rng.uniform() - 0.5) * std::pow(10.0, -9 + 12 * rng.uniform()));
      g[size_t(i)].push_back(v);
    }
  auto run = [&](const std::vector<int>& order, ExactGradSum& s) {
    s.clear();
    for (int i : order) {
      for (size_t k = 0; k < ps.size(); ++k) {
        Tensor p = ps[k];
        p.zero_grad();
        std::copy(g[size_t(i)][k].begin(), g[size_t(i)][k].end(), p.grad_acc());
      }
      s.add_all();
    }
    s.finish(single_process_comm());
    for (Tensor p : ps) p.zero_grad();
    const bool ok = s.to_grads();
    return std::make_pair(ok, grads_of(ps));
  };
  ExactGradSum s(ps, B);
  const auto a = run({0, 1, 2, 3, 4, 5}, s), b = run({5, 3, 1, 0, 4, 2}, s);
  ASSERT_TRUE(a.first && b.first);
  EXPECT_EQ(a.second, b.second);  // bit for bit
  for (size_t k = 0; k < ps.size(); ++k)
    for (size_t j = 0; j < a.second[k].size(); ++j) {
      double mean = 0;
      for (int i = 0; i < B; ++i) mean += g[size_t(i)][k][j];
      mean /= B;
      EXPECT_NEAR(a.second[k][j], mean, 1e-6 * std::fabs(mean) + 3e-10) << k << " " << j;
    }
  for (float bad : {NAN, INFINITY, 1e9f}) {
    g[2][1][4] = bad;
    EXPECT_FALSE(run({0, 1, 2, 3, 4, 5}, s).first) << bad;
  }
}

// A shard of batch k is exactly those images of the whole batch k (crops, flips, scales).
TEST(Dist, ShardedBatchesAreSlicesOfTheGlobalBatch) {
  const std::string dir = ::testing::TempDir() + "/ntc_dist_data_" + std::to_string(getpid());
  fs::create_directories(dir);
  for (int i = 0; i < 5; ++i) {
    Tensor img = Tensor::empty({1, 3, 40, 50});
    for (int64_t j = 0; j < img.numel(); ++j) img.data()[j] = float((j * (i + 3)) % 256);
    write_image(dir + "/i" + std::to_string(i) + ".png", img);
  }
  DataOptions o;
  o.dir = dir;
  o.crop = 16;
  o.batch = 6;
  o.flips = true;
  o.min_scale = 0.5f;
  o.seed = 11;
  o.prefetch = 0;
  BatchLoader whole(o);
  for (auto [first, count] : std::vector<std::pair<int, int>>{{0, 2}, {2, 2}, {4, 2}, {3, 3}, {0, 6}}) {
    DataOptions so = o;
    so.shard_first = first;
    so.shard_count = count;
    BatchLoader part(so);
    for (uint64_t k : {0ull, 1ull, 7ull}) {
      const Tensor w = whole.make(k), p = part.make(k);
      ASSERT_EQ(p.dim(0), count);
      const int64_t img = 3 * 16 * 16;
      EXPECT_TRUE(std::equal(p.data(), p.data() + p.numel(), w.data() + first * img)) << first << " " << k;
    }
  }
  DataOptions bad = o;
  bad.shard_first = 4;
  bad.shard_count = 3;
  EXPECT_THROW(BatchLoader{bad}, Error);
  fs::remove_all(dir);
}

// backward(leaf_done) reports each parameter once, when its gradient is already final.
TEST(Dist, BackwardReportsEachLeafOnceWhenFinal) {
  Rng rng(3);
  const auto mp = tiny_model(rng);
  nn::Model& m = *mp;
  const std::vector<Tensor> ps = params_of(m);
  std::map<TensorImpl*, int64_t> numel;
  for (const Tensor& p : ps) numel[p.impl()] = p.numel();
  const Tensor x = Tensor::uniform({2, 3, 64, 64}, 0, 255, rng);
  Rng n1(5), n2(5);
  rd_loss(m, x, 0.01f, QuantMode::Mixed, n1).loss.backward();
  const auto want = grads_of(ps);
  for (Tensor p : ps) p.zero_grad();
  std::map<TensorImpl*, int> seen;
  std::map<TensorImpl*, std::vector<float>> at_report;
  rd_loss(m, x, 0.01f, QuantMode::Mixed, n2).loss.backward([&](TensorImpl* leaf) {
    ++seen[leaf];
    if (leaf->grad && numel.count(leaf))
      at_report[leaf] = std::vector<float>(leaf->grad.data(), leaf->grad.data() + numel[leaf]);
  });
  for (size_t i = 0; i < ps.size(); ++i) {
    if (want[i].empty()) continue;  // no gradient reaches it (then it need not be reported)
    EXPECT_EQ(seen[ps[i].impl()], 1) << i;  // every parameter with a gradient, exactly once
    EXPECT_EQ(at_report[ps[i].impl()], want[i]) << i;  // nothing was added after the report
  }
  for (Tensor p : ps) p.zero_grad();
}

// One process, exact step: the mean of per-image gradients, close to the batched gradient (the
// two differ by summation order and the per-image noise streams only) and the same bits on a rerun.
TEST(Dist, ExactStepGivesTheBatchMeanGradient) {
  Rng rng(9);
  const auto mp = tiny_model(rng);
  nn::Model& m = *mp;
  const std::vector<Tensor> ps = params_of(m);
  const Tensor x = Tensor::uniform({3, 3, 64, 64}, 0, 255, rng);
  ExactGradSum sum(ps, 3);
  const Rng noise(21);
  // Mixed quantisation with noise only in the rates keeps the two paths comparable.
  const StepTerms a = exact_step(m, ps, sum, single_process_comm(), x, 0, 3, 0.01f, QuantMode::Mixed, noise, -1,
                                 Precision::F32, true, false);
  ASSERT_FALSE(a.skipped);
  const auto ga = grads_of(ps);
  for (Tensor p : ps) p.zero_grad();
  const StepTerms b = exact_step(m, ps, sum, single_process_comm(), x, 0, 3, 0.01f, QuantMode::Mixed, noise, -1,
                                 Precision::F32, true, false);
  EXPECT_EQ(grads_of(ps), ga);
  EXPECT_EQ(a.loss, b.loss);
  for (Tensor p : ps) p.zero_grad();
  Rng r = noise;
  RdTerms t = rd_loss(m, x, 0.01f, QuantMode::Mixed, r);
  t.loss.backward();
  EXPECT_NEAR(a.mse, t.mse, 1e-3 * t.mse);  // the distortion path has no noise under Mixed
  double dot = 0, na = 0, nb = 0;
  const auto gb = grads_of(ps);
  for (size_t i = 0; i < ps.size(); ++i)
    for (size_t j = 0; j < ga[i].size() && j < gb[i].size(); ++j) {
      dot += double(ga[i][j]) * gb[i][j];
      na += double(ga[i][j]) * ga[i][j];
      nb += double(gb[i][j]) * gb[i][j];
    }
  // Different rate noise per image: the directions agree closely, not exactly.
  EXPECT_GT(dot / std::sqrt(na * nb), 0.9);
  EXPECT_NEAR(std::sqrt(na / nb), 1.0, 0.2);
  for (Tensor p : ps) p.zero_grad();
}

// ---------------------------------------------------------------- mpirun, through the binary
struct Job {
  std::string bin, mpirun, dir;
  Job() {
    const char* b = std::getenv("NTC_BIN");
    if (b && *b) bin = fs::absolute(b).string();
    if (std::system("command -v mpirun >/dev/null 2>&1") == 0) mpirun = "mpirun";
    dir = ::testing::TempDir() + "/ntc_mpi_" + std::to_string(getpid());
    fs::remove_all(dir);
    fs::create_directories(dir + "/data");
    std::ofstream(dir + "/tiny.cfg") << kTinyCfg;
    for (int i = 0; i < 4; ++i) {
      Tensor img = Tensor::empty({1, 3, 80, 96});
      for (int64_t j = 0; j < img.numel(); ++j) img.data()[j] = float((j * (i + 5) + (j / 96) * 3) % 256);
      write_image(dir + "/data/i" + std::to_string(i) + ".png", img);
    }
  }
  ~Job() { fs::remove_all(dir); }
  std::string why_skip() const {
    if (bin.empty()) return "NTC_BIN not set (run through make test)";
    if (mpirun.empty()) return "mpirun not found: install openmpi-bin and libopenmpi-dev (make deps)";
    return "";
  }
  // mpirun for a trial on one machine: as root it must be allowed; more ranks than cores need
  // --oversubscribe; leak checking is off for Open MPI's own allocations under ASan.
  std::string launch(int n) const {
    return mpirun + (getuid() == 0 ? " --allow-run-as-root" : "") + " --oversubscribe -np " + std::to_string(n) +
           " -x ASAN_OPTIONS=detect_leaks=0 " + bin;
  }
  std::string train(const std::string& out) const {
    return " train --config " + dir + "/tiny.cfg --data " + dir + "/data --lambda 0.01 --crop 64 --batch 6 "
           "--lr 1e-3 --seed 4 --warmup 1 --decay-from 1000 --no-lambda-boost --log-every 1 --quiet --out " + dir + "/" + out;
  }
  int sh(const std::string& cmd) const {
    const int st = std::system((cmd + " >" + dir + "/out.txt 2>" + dir + "/err.txt").c_str());
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
  }
  std::string err() const {
    std::ifstream f(dir + "/err.txt");
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  std::vector<uint8_t> file(const std::string& f) const {
    std::ifstream in(dir + "/" + f, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
  }
  // A run's fp32 weights and Adam moments: the checkpoint's tensor section, from the first tensor
  // name (g_a.…) to the CRC (the header before it holds the wall-clock training time).
  std::vector<uint8_t> weights(const std::string& run) const {
    const std::vector<uint8_t> b = file(run + "/checkpoint.ntck");
    const std::string key = "g_a.";
    const auto at = std::search(b.begin(), b.end(), key.begin(), key.end());
    if (at == b.end() || b.size() < 4) return {};
    return std::vector<uint8_t>(at, b.end() - 4);
  }
};

// N ranks with B/N images each give the same model file, byte for byte, as one process summing
// the same B images exactly; so does a run that changes N on resume.
TEST(Mpi, RanksGiveTheSameWeightsAsOneProcess) {
  Job j;
  if (!j.why_skip().empty()) GTEST_SKIP() << j.why_skip();
  ASSERT_EQ(j.sh(j.bin + j.train("one") + " --steps 4 --reduce exact --threads 2"), 0) << j.err();
  ASSERT_EQ(j.sh(j.launch(2) + j.train("two") + " --steps 4 --threads 1"), 0) << j.err();
  ASSERT_EQ(j.sh(j.launch(3) + j.train("three") + " --steps 4 --threads 1"), 0) << j.err();
  ASSERT_EQ(j.sh(j.launch(2) + j.train("mixed") + " --steps 2 --threads 1"), 0) << j.err();
  ASSERT_EQ(j.sh(j.launch(3) + " train --resume --out " + j.dir + "/mixed --steps 4 --threads 1 --quiet"), 0) << j.err();
  const auto one = j.file("one/model.ntcm");
  ASSERT_FALSE(one.empty());
  EXPECT_EQ(j.file("two/model.ntcm"), one);
  EXPECT_EQ(j.file("three/model.ntcm"), one);
  EXPECT_EQ(j.file("mixed/model.ntcm"), one);
  // The model file holds f16 weights; the checkpoints' fp32 weights and moments agree to the bit.
  const auto w1 = j.weights("one");
  ASSERT_GT(w1.size(), 100000u);
  EXPECT_TRUE(j.weights("two") == w1);
  EXPECT_TRUE(j.weights("three") == w1);
  EXPECT_TRUE(j.weights("mixed") == w1);
  // Validation (rank 0 only) finalizes the model, and mixed quantisation then trains around the
  // entropy bottleneck's medians: every rank must finalize too.
  const std::string val = " --quant mixed --val " + j.dir + "/data --val-every 2 --val-images 1 --steps 4";
  ASSERT_EQ(j.sh(j.bin + j.train("one_val") + val + " --reduce exact --threads 2"), 0) << j.err();
  ASSERT_EQ(j.sh(j.launch(2) + j.train("two_val") + val + " --threads 1"), 0) << j.err();
  EXPECT_TRUE(j.weights("two_val") == j.weights("one_val"));
  // Units of 2 images (faster): the same bits for every N that leaves whole units per rank.
  ASSERT_EQ(j.sh(j.bin + j.train("one_u2") + " --steps 4 --reduce exact --unit 2 --threads 2"), 0) << j.err();
  ASSERT_EQ(j.sh(j.launch(3) + j.train("three_u2") + " --steps 4 --unit 2 --threads 1"), 0) << j.err();
  EXPECT_TRUE(j.weights("three_u2") == j.weights("one_u2"));
  EXPECT_FALSE(j.weights("one_u2") == w1);
  EXPECT_NE(j.sh(j.launch(2) + j.train("two_u2") + " --steps 1 --unit 2 --threads 1"), 0);
  EXPECT_NE(j.err().find("must divide into units of --unit 2"), std::string::npos) << j.err();
  // The batched sum (one process's default) is another summation: not the same bits.
  ASSERT_EQ(j.sh(j.bin + j.train("batched") + " --steps 4 --threads 2"), 0) << j.err();
  EXPECT_FALSE(j.weights("batched") == w1);
  // Every log line says how many ranks wrote it.
  std::ifstream log(j.dir + "/three/log.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) {
    ++lines;
    EXPECT_NE(line.find("\"ranks\":3"), std::string::npos) << line;
  }
  EXPECT_EQ(lines, 4);
  // Ranks whose data folder (the same path, another node) holds other images are refused: here
  // each rank runs in its own working folder, and one image differs in size.
  for (const char* node : {"nodeA", "nodeB"}) {
    fs::create_directories(j.dir + "/" + node + "/data");
    fs::copy_file(j.dir + "/tiny.cfg", j.dir + "/" + node + "/tiny.cfg");
    for (int i = 0; i < 4; ++i) {
      const int h = std::string(node) == "nodeB" && i == 2 ? 72 : 80;
      Tensor img = Tensor::empty({1, 3, h, 96});
      for (int64_t k = 0; k < img.numel(); ++k) img.data()[k] = float((k * (i + 5)) % 256);
      write_image(j.dir + "/" + node + "/data/i" + std::to_string(i) + ".png", img);
    }
  }
  const std::string rel = " train --config tiny.cfg --data data --lambda 0.01 --crop 64 --batch 2 --steps 2 --quiet "
                          "--threads 1 --out run";
  EXPECT_NE(j.sh(j.launch(1).replace(j.launch(1).rfind(' ' + j.bin), 0, " -wdir " + j.dir + "/nodeA") + rel + " : -np 1 -wdir " +
                 j.dir + "/nodeB " + j.bin + rel),
            0);
  EXPECT_NE(j.err().find("does not hold the same model, options or training images"), std::string::npos) << j.err();
  // A global batch that does not divide among the ranks is a one-line error.
  EXPECT_NE(j.sh(j.launch(4) + j.train("four") + " --steps 1 --threads 1"), 0);
  EXPECT_NE(j.err().find("must divide among the 4 ranks"), std::string::npos) << j.err();
}

// The pid of rank `r` of the job whose command line mentions `tag` (from /proc), or -1.
pid_t rank_pid(const std::string& tag, int r) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream c(e.path() / "cmdline"), env(e.path() / "environ");
    const std::string cmd(std::istreambuf_iterator<char>(c), {}), en(std::istreambuf_iterator<char>(env), {});
    if (cmd.find(tag) == std::string::npos || cmd.find("mpirun") == 0) continue;
    if (en.find(std::string("OMPI_COMM_WORLD_RANK=") + std::to_string(r) + '\0') != std::string::npos) return pid_t(std::stol(name));
  }
  return -1;
}

// The pid of the mpirun whose command line mentions `tag`, or -1.
pid_t mpirun_pid(const std::string& tag) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream c(e.path() / "cmdline");
    const std::string cmd(std::istreambuf_iterator<char>(c), {});
    if (cmd.rfind("mpirun", 0) == 0 && cmd.find(tag) != std::string::npos) return pid_t(std::stol(name));
  }
  return -1;
}

// Starts `cmd` in the background; returns its pid (a shell, in its own process group).
pid_t spawn(const std::string& cmd) {
  const pid_t p = fork();
  if (p == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return p;
}

// Ends a spawned job (its whole process group) when a test leaves early (a failed ASSERT).
struct KillOnExit {
  pid_t job;
  ~KillOnExit() {
    if (job <= 0) return;
    kill(-job, SIGKILL);
    waitpid(job, nullptr, 0);
  }
};

// Waits up to `s` seconds; the exit status, or -1 (then the whole group is killed).
int wait_for(pid_t p, double s) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < s) {
    int st = 0;
    if (waitpid(p, &st, WNOHANG) == p) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(-p, SIGKILL);
  waitpid(p, nullptr, 0);
  return -1;
}

// A rank killed mid-run, or one that hangs (stopped), ends the job with a non-zero status in
// bounded time, and the last checkpoint still loads.
TEST(Mpi, ADeadOrHungRankEndsTheJob) {
  Job j;
  if (!j.why_skip().empty()) GTEST_SKIP() << j.why_skip();
  for (const int sig : {SIGKILL, SIGSTOP}) {
    const std::string out = sig == SIGKILL ? "killed" : "hung";
    const pid_t job = spawn(j.launch(2) + j.train(out) + " --steps 100000 --checkpoint-every 2 --threads 1 --rank-timeout 15 >" +
                            j.dir + "/" + out + ".out 2>" + j.dir + "/" + out + ".err");
    KillOnExit guard{job};
    const auto t0 = std::chrono::steady_clock::now();
    pid_t victim = -1;
    while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
      if (fs::exists(j.dir + "/" + out + "/checkpoint.ntck") && (victim = rank_pid(j.dir + "/" + out, 1)) > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_GT(victim, 0) << "the job did not start";
    kill(victim, sig);
    const int rc = wait_for(job, 90);
    guard.job = -1;
    if (rank_pid(j.dir + "/" + out, 1) == victim) kill(victim, SIGKILL);  // a stopped rank left behind
    EXPECT_NE(rc, -1) << out << ": the job did not end within 90 s";
    EXPECT_NE(rc, 0) << out;
    std::ifstream e(j.dir + "/" + out + ".err");
    const std::string err(std::istreambuf_iterator<char>(e), {});
    if (sig == SIGSTOP) {
      EXPECT_NE(err.find("no answer from the other ranks"), std::string::npos) << err;
    }
    EXPECT_EQ(j.sh(j.bin + " train --info --out " + j.dir + "/" + out), 0) << out << ": " << j.err();
  }
}

// SIGUSR1 to mpirun (which forwards it) pauses the job: every rank stops after the same step,
// rank 0's checkpoint holds that step, and the run resumes from it.
TEST(Mpi, SigusrOneToMpirunPausesTheJob) {
  Job j;
  if (!j.why_skip().empty()) GTEST_SKIP() << j.why_skip();
  const std::string tag = j.dir + "/paused";
  const pid_t job = spawn(j.launch(2) + j.train("paused") + " --steps 100000 --checkpoint-every 100000 --threads 1 >" +
                          j.dir + "/p.out 2>" + j.dir + "/p.err");
  KillOnExit guard{job};
  const auto t0 = std::chrono::steady_clock::now();
  while (!fs::exists(tag + "/log.jsonl") && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const pid_t m = mpirun_pid(tag);
  ASSERT_GT(m, 0);
  kill(m, SIGUSR1);
  EXPECT_EQ(wait_for(job, 60), 130);
  guard.job = -1;
  ASSERT_EQ(j.sh(j.bin + " train --info --out " + tag), 0) << j.err();
  std::ifstream info(j.dir + "/out.txt"), log(tag + "/log.jsonl");
  const std::string i((std::istreambuf_iterator<char>(info)), {});
  std::string line, last;
  while (std::getline(log, line)) last = line;  // --log-every 1: the last line is the last step
  const std::string step = last.substr(0, last.find(','));  // {"step":N
  EXPECT_EQ(i.substr(0, step.size()), step) << i << " / " << last;
  EXPECT_EQ(j.sh(j.launch(3) + " train --resume --out " + tag + " --steps " + std::to_string(std::stol(step.substr(8)) + 2) +
                 " --threads 1 --quiet"),
            0)
      << j.err();
}

// One process: SIGTERM (what scripts/campaign.sh pause sends) and SIGUSR1 stop training after the
// current step with a checkpoint, exit status 130.
TEST(TrainCli, StopSignalsWriteACheckpoint) {
  Job j;
  if (j.bin.empty()) GTEST_SKIP() << "NTC_BIN not set (run through make test)";
  for (const int sig : {SIGTERM, SIGUSR1}) {
    const std::string run = j.dir + "/signal" + std::to_string(sig);
    const pid_t job = spawn("exec " + j.bin + j.train("signal" + std::to_string(sig)) +
                            " --steps 100000 --checkpoint-every 100000 --threads 1 2>" + run + ".err");
    KillOnExit guard{job};
    const auto t0 = std::chrono::steady_clock::now();
    while (!fs::exists(run + "/log.jsonl") && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(fs::exists(run + "/log.jsonl"));
    kill(job, sig);
    EXPECT_EQ(wait_for(job, 60), 130) << sig;
    guard.job = -1;
    EXPECT_EQ(j.sh(j.bin + " train --info --out " + run), 0) << sig << ": " << j.err();
  }
}

}  // namespace
}  // namespace ntc::train
