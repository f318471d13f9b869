// flops — FLOP accounting with the paper's convention (SPEC.md §5.1; keras-flops / TF profiler).
//
// Every op computes its own count from its shapes in a `*_flops` function next to its forward
// code (lib/ops/*.cc) and reports it here while a FlopCounter is active. The convention:
//   conv2d            2·k²·Cin·Cout·Ho·Wo  (+ Cout·Ho·Wo for the bias)
//   conv_transpose2d  2·k²·Cin·Cout·Hin·Win — every tap at every input position, including taps
//                     cropped by SAME padding (+ Cout·Hout·Wout for the bias)
//   gdn1 / igdn1      2·C²·H·W (the 1x1 mixing) + C·H·W (beta add) + C·H·W (divide or multiply);
//                     |x| counts 0
//   nonneg_reparam    3 per element (max, square, subtract)
//   add/sub/mul/div   1 per output element (residual adds count, as in flops_per_pixel.csv)
//   relu, leaky_relu, sigmoid, abs, round, clip, reshape/concat/slice/depth_to_space: 0
//   gelu              4 per element (TF's gelu graph: 3 Mul + 1 Add; Erf counts 0)
//   exp, log, sqrt, tanh, softplus, lower_bound, noise, scalar affine: 1 per element
//   matmul            2·M·N·K;  sum/mean: numel (mean +1)
// Only forward passes are counted.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ntc {

struct FlopEntry {
  std::string op;
  std::string scope;  // FlopScope label active when the op ran ("g_s.conv1", ...)
  int64_t flops;
};

// Collects the FLOPs of every op run on this thread while it is alive (nesting: innermost wins).
class FlopCounter {
 public:
  FlopCounter();
  ~FlopCounter();
  FlopCounter(const FlopCounter&) = delete;
  FlopCounter& operator=(const FlopCounter&) = delete;
  int64_t total() const;
  const std::vector<FlopEntry>& entries() const { return entries_; }
  void add(const char* op, int64_t flops);

 private:
  std::vector<FlopEntry> entries_;
  FlopCounter* prev_;
};

// Labels the ops run while it is alive (for per-layer tables).
class FlopScope {
 public:
  explicit FlopScope(std::string name);
  ~FlopScope();

 private:
  size_t prev_len_;
};

void count_flops(const char* op, int64_t flops);  // no-op unless a FlopCounter is active

}  // namespace ntc
