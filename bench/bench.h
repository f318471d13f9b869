// bench — `ntc bench <name> [--json]`. Each benchmark validates its computation first, then
// warms up, repeats, and reports medians (and ratios measured in the same run) as one JSON
// object with --json, or a readable table otherwise.
#pragma once
#include <string>
#include <vector>

namespace ntc::bench {
int run(const std::vector<std::string>& args);
int bench_conv(const std::vector<std::string>& args);
int bench_decode(const std::vector<std::string>& args);
int bench_train(const std::vector<std::string>& args);
int bench_sga(const std::vector<std::string>& args);
int bench_overfit(const std::vector<std::string>& args);
int bench_rans(const std::vector<std::string>& args);

constexpr int kSgemmN = 2048;  // the yardstick's matrix size

// GFLOP/s of one kSgemmN³ cblas_sgemm on the current thread count (OpenBLAS's own threading, restored
// afterwards), the median of at least `reps` runs: the same-run yardstick of the GEMM-bound
// benchmarks.
double sgemm_gflops(int reps);
}  // namespace ntc::bench
