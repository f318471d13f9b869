// `ntc bench train` — seconds per training step (forward, backward, clipping, Adam) of a config
// on random batch×3×crop² images, the median over --reps steps after a warm-up, plus where the
// time goes: forward time per layer type and backward time per op (one profiled step).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>

#include "bench/bench.h"
#include "lib/args.h"
#include "kernels/kernels.h"
#include "lib/alloc.h"
#include "lib/blas.h"
#include "lib/gemm.h"
#include "lib/common.h"
#include "lib/json.h"
#include "lib/flops.h"
#include "lib/threads.h"
#include "nn/model.h"
#include "cli/launch.h"
#include "train/dist.h"
#include "train/loss.h"
#include "train/optim.h"

namespace ntc::bench {
namespace {

// The benchmarked model, initialised from `rng`, its parameters and a Keras Adam over them.
struct Trainee {
  nn::Model model;
  std::vector<Tensor> params;
  std::unique_ptr<train::Adam> adam;
  Trainee(const std::string& cfg, int crop, Rng& rng) : model(nn::Config::load(cfg)) {
    if (crop % model.downsampling()) fail("bench train: --crop must be a multiple of ", model.downsampling());
    model.init(rng);
    for (auto& [n, t] : model.named_parameters()) params.push_back(t);
    adam = std::make_unique<train::Adam>(params, train::AdamForm::Keras);
  }
};

// `--reduce exact`, and every run under mpirun: the data-parallel step of train/dist.h. Each of N
// ranks computes batch/N images; the JSON (rank 0) adds ranks, reduce, overlap and the share of the
// step spent waiting for communication (comm_s: median seconds per step in the sums and gathers).
int bench_train_exact(const std::string& cfg, int batch, int crop, int reps, train::QuantMode q, Precision analysis,
                      const std::string& precision, bool overlap, bool json, int unit) {
  return cli::run_as_rank(600, [&](train::Comm* c) {
    train::Comm& comm = c ? *c : train::single_process_comm();
    if (batch % comm.size()) fail("bench train: the batch (", batch, ") must divide among the ", comm.size(), " ranks");
    Rng rng(1);
    Trainee tr(cfg, crop, rng);
    nn::Model& model = tr.model;
    std::vector<Tensor>& params = tr.params;
    train::Adam& adam = *tr.adam;
    const int share = batch / comm.size();
    Rng data(100 + uint64_t(comm.rank()));
    const Tensor x = Tensor::uniform({share, 3, crop, crop}, 0, 255, data);
    train::ExactGradSum sum(params, batch);
    Rng noise(5);
    auto step = [&] {
      const train::StepTerms t = train::exact_step(model, params, sum, comm, x, comm.rank() * share, batch, 0.01f, q,
                                                   noise, -1, analysis, overlap, false, unit);
      noise.set_counter(noise.counter() + (uint64_t(batch) << 32));
      if (!t.skipped) {
        train::clip_grad_global_norm(params, 1.0);
        adam.step(1e-4f);
      }
      for (Tensor& p : params) p.zero_grad();
    };
    step();  // warm-up
    comm.take_comm_seconds();
    std::vector<double> t, cs;
    for (int i = 0; i < reps; ++i) {
      comm.barrier();
      comm.take_comm_seconds();
      const auto t0 = std::chrono::steady_clock::now();
      step();
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      cs.push_back(comm.take_comm_seconds());
    }
    std::sort(t.begin(), t.end());
    std::sort(cs.begin(), cs.end());
    const double step_s = t[t.size() / 2], comm_s = cs[cs.size() / 2];
    if (comm.rank() != 0) return 0;
    if (json) {
      std::printf("%s\n", json_line(JsonOut{{"bench", "train"}, {"config", cfg}, {"precision", precision}, {"batch", batch},
                                            {"crop", crop}, {"threads", num_threads()}, {"ranks", comm.size()},
                                            {"reduce", "exact"}, {"unit", unit}, {"overlap", overlap}, {"kernels", k::kernel_target_name()},
                                            {"gemm", gemm_backend_name()}, {"step_s", step_s}, {"min_step_s", t[0]},
                                            {"reps", reps}, {"comm_s", comm_s}, {"comm_share", comm_s / step_s},
                                            {"peak_rss_mb", double(peak_rss_bytes()) / 1e6}})
                                   .c_str());
    } else {
      std::printf("train step of %s (%s analysis, exact sums), batch %d of %dx%d over %d rank%s × %d threads%s: median %.3f s "
                  "(min %.3f), waiting for communication %.3f s (%.0f%%)\n",
                  cfg.c_str(), precision.c_str(), batch, crop, crop, comm.size(), comm.size() > 1 ? "s" : "", num_threads(),
                  overlap ? ", overlapped" : "", step_s, t[0], comm_s, 100 * comm_s / step_s);
    }
    return 0;
  });
}

}  // namespace

int bench_train(const std::vector<std::string>& argv) {
  cli::Args args(argv, {"config", "batch", "crop", "reps", "quant", "precision", "reduce", "unit"}, {"json", "no-overlap"});
  const std::string precision = args.str("precision", "fp32");
  if (precision != "fp32" && precision != "bf16") fail("bench train: --precision must be fp32 or bf16");
  const Precision analysis = precision == "bf16" ? Precision::Bf16 : Precision::F32;
  if (analysis == Precision::Bf16) check_bf16_available();
  const std::string cfg = args.str("config", "jpegl");
  const int batch = int(args.integer("batch", 8)), crop = int(args.integer("crop", 128)), reps = int(args.integer("reps", 5));
  if (batch < 1 || crop < 1 || reps < 1) fail("bench train: batch, crop and reps must be positive");
  const train::QuantMode q = train::parse_quant_mode(args.str("quant", "noise"));
  const std::string reduce = args.str("reduce", cli::launched_by_mpirun() ? "exact" : "batch");
  if (reduce != "batch" && reduce != "exact") fail("bench train: --reduce must be batch or exact");
  if (reduce == "exact" || cli::launched_by_mpirun())
    return bench_train_exact(cfg, batch, crop, reps, q, analysis, precision, !args.has("no-overlap"), args.has("json"),
                             int(args.integer("unit", 1)));
  Rng rng(1);
  Trainee tr(cfg, crop, rng);
  nn::Model& model = tr.model;
  std::vector<Tensor>& params = tr.params;
  train::Adam& adam = *tr.adam;
  const Tensor x = Tensor::uniform({batch, 3, crop, crop}, 0, 255, rng);
  auto step = [&] {
    train::RdTerms t = train::rd_loss(model, x, 0.01f, q, rng, -1, analysis);
    t.loss.backward();
    train::clip_grad_global_norm(params, 1.0);
    adam.step(1e-4f);
    for (Tensor& p : params) p.zero_grad();
  };
  step();  // warm-up
  mem_reset_peak();
  const MemStats m0 = mem_stats();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  const double step_s = t[t.size() / 2];
  // Memory obtained from the system per step after the warm-up (0 when every buffer is reused).
  const double fresh_mb_per_step = double(mem_stats().fresh_bytes - m0.fresh_bytes) / 1e6 / reps;

  // One profiled step: forward per layer type, backward per op.
  std::map<std::string, double> fwd;
  std::vector<std::pair<double, std::string>> layers;
  double fwd_total = 0, bwd_total = 0;
  int64_t fwd_flops = 0, bwd_flops = 0;
  BackwardProfile bp;
  {
    nn::LayerTrace trace;
    FlopCounter fc_fwd;
    train::RdTerms terms = train::rd_loss(model, x, 0.01f, q, rng, -1, analysis);
    fwd_flops = fc_fwd.total();
    for (const auto& r : trace.records())
      if (r.leaf) {
        fwd[r.type.substr(0, r.type.find(' '))] += r.ms;
        fwd_total += r.ms;
        layers.push_back({r.ms, r.path + " " + r.type + " " + shape_str(r.in) + " " +
                                    std::to_string(double(r.flops) / r.ms * 1e-6).substr(0, 5) + " GFLOP/s"});
      }
    set_backward_profile(&bp);
    {
      FlopCounter fc_bwd;
      terms.loss.backward();
      bwd_flops = fc_bwd.total();
    }
    set_backward_profile(nullptr);
    for (Tensor& p : params) p.zero_grad();
  }
  for (auto& [op, ms] : bp.ms) bwd_total += ms;
  auto by_ms = [](auto& a, auto& b) { return a.second > b.second; };
  std::sort(bp.ms.begin(), bp.ms.end(), by_ms);
  std::sort(bp.by_layer.begin(), bp.by_layer.end(), by_ms);
  // The same-run yardstick: the step's GEMM-dominated FLOPs (forward ops + conv backward passes)
  // at raw sgemm speed.
  const double sgemm = sgemm_gflops(3);
  const double step_gflop = double(fwd_flops + bwd_flops) * 1e-9;

  if (args.has("json")) {
    JsonOut j{{"bench", "train"}, {"config", cfg}, {"precision", precision}, {"batch", batch}, {"crop", crop},
              {"threads", num_threads()}, {"ranks", 1}, {"reduce", "batch"}, {"kernels", k::kernel_target_name()}, {"blas", blas_kernel_name()},
              {"gemm", gemm_backend_name()}, {"step_s", step_s}, {"min_step_s", t[0]}, {"reps", reps},
              {"peak_rss_mb", double(peak_rss_bytes()) / 1e6}, {"peak_tensor_mb", double(mem_stats().peak_in_use) / 1e6},
              {"forward_layers_ms", fwd_total}, {"backward_ms", bwd_total}, {"forward_gflop", double(fwd_flops) * 1e-9},
              {"backward_conv_gflop", double(bwd_flops) * 1e-9}, {"sgemm_gflops", sgemm},
              {"step_gflops", step_gflop / step_s}, {"step_s_at_sgemm_speed", step_gflop / sgemm},
              {"fresh_mb_per_step", fresh_mb_per_step}};
    JsonOut f = JsonOut::object(), b = JsonOut::object(), l = JsonOut::object();
    for (auto& [k, v] : fwd) f[k] = v;
    for (auto& [k, v] : bp.ms) b[k] = v;
    for (auto& [k, v] : bp.by_layer) l[k] = v;
    j["forward_ms_by_layer_type"] = f;
    j["backward_ms_by_op"] = b;
    j["backward_ms_by_layer"] = l;
    std::printf("%s\n", json_line(j).c_str());
  } else {
    std::printf("train step of %s (%s analysis), batch %d of %dx%d, %d threads (%s, OpenBLAS %s, GEMM %s): median %.3f s (min %.3f), peak RSS %.0f MB, "
                "fresh memory %.1f MB/step\n",
                cfg.c_str(), precision.c_str(), batch, crop, crop, num_threads(), k::kernel_target_name(), blas_kernel_name(), gemm_backend_name(), step_s, t[0],
                double(peak_rss_bytes()) / 1e6, fresh_mb_per_step);
    std::printf("forward (layers) %.1f ms:\n", fwd_total);
    for (auto& [k, v] : fwd) std::printf("  %-20s %8.1f ms  %5.1f%%\n", k.c_str(), v, 100 * v / fwd_total);
    std::sort(layers.rbegin(), layers.rend());
    std::printf("slowest forward layers:\n");
    for (size_t i = 0; i < std::min<size_t>(8, layers.size()); ++i)
      std::printf("  %8.1f ms  %s\n", layers[i].first, layers[i].second.c_str());
    std::printf("backward %.1f ms:\n", bwd_total);
    for (auto& [k, v] : bp.ms) std::printf("  %-20s %8.1f ms  %5.1f%%\n", k.c_str(), v, 100 * v / bwd_total);
    std::printf("slowest backward layers:\n");
    for (size_t i = 0; i < std::min<size_t>(10, bp.by_layer.size()); ++i)
      std::printf("  %8.1f ms  %s\n", bp.by_layer[i].second, bp.by_layer[i].first.c_str());
    std::printf("FLOPs: forward %.2f G, conv backward %.2f G; %.1f GFLOP/s per step; sgemm %.1f GFLOP/s in this run,\n"
                "so the step's FLOPs at sgemm speed would take %.3f s\n",
                double(fwd_flops) * 1e-9, double(bwd_flops) * 1e-9, step_gflop / step_s, sgemm, step_gflop / sgemm);
  }
  return 0;
}

}  // namespace ntc::bench
