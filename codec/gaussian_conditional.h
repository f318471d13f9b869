// GaussianConditional — the mean-scale model of the latent y (SPEC §2.2, §2.3).
//
// Scale parameterisation (SPEC decision 2):
//   ScaleMode::TfIndex (default, the paper's code): the hyper-synthesis "scale" half r is turned
//     into a continuous index v = clip(e^r, 0, 63) into the 64-entry log-spaced table
//     σ_i = exp(ln 0.11 + κ·i), κ = ln(256/0.11)/63, i.e. σ = 0.11·exp(κ·v) ∈ [0.11, 256].
//   ScaleMode::LowerBound (CompressAI): σ = max(r, 0.11).
// Likelihood (CompressAI form, also used for training): with a = |y − μ|,
//   P = Φ((½ − a)/σ) − Φ((−½ − a)/σ), floored at 1e−9 with LowerBound's gradient rule.
//   Evaluating both Φ on the lower tail keeps precision far from the mean.
//
// Coding: 64 CDF tables, one per table scale, built once by finalize() (tail mass 1e−9, escape +
// bypass for values outside a table, codec/rans.h). The table index of each element is an integer
// computed from r by comparisons against fixed thresholds only:
//   TfIndex:    idx = round(clip(e^r, 0, 63)) (halves up) = #{i in 1..63 : r ≥ ln(i − ½)}
//   LowerBound: idx = the smallest i with σ_i ≥ max(r, 0.11) (CompressAI's build_indexes)
// so encoder and decoder agree exactly whenever they see the same r — which is why r must come
// from the decoded ẑ through a deterministic hyper-synthesis, never from z.
// Symbols are round(y − μ) (half to even); ŷ = symbol + μ.
#pragma once
#include <array>
#include <vector>

#include "codec/rans.h"
#include "lib/tensor.h"

namespace ntc::codec {

enum class ScaleMode { TfIndex, LowerBound };

constexpr int kNumScales = 64;
constexpr double kScaleMin = 0.11, kScaleMax = 256.0;
const std::array<double, kNumScales>& scale_table();  // σ_i, i = 0..63
// TfIndex thresholds on r: float(ln(i − ½)), i = 1..63; idx = how many are <= r.
const std::array<float, kNumScales - 1>& index_thresholds();

class GaussianConditional {
 public:
  explicit GaussianConditional(ScaleMode mode = ScaleMode::TfIndex) : mode_(mode) {}
  ScaleMode mode() const { return mode_; }

  // σ from the raw hyper-synthesis output r (differentiable).
  Tensor scales(const Tensor& r) const;
  // P(y | μ, σ) in the CompressAI form above (differentiable in y, σ, μ).
  static Tensor likelihood(const Tensor& y, const Tensor& scales, const Tensor& means);

  // ---- coding ----
  void finalize();  // the 64 Gaussian CDF tables
  void set_tables(std::vector<CdfTable> tables);  // as stored in a model file (exactly 64)
  bool finalized() const { return !tables_.empty(); }
  const std::vector<CdfTable>& tables() const { return tables_; }
  std::vector<int32_t> indexes(const Tensor& r) const;  // one table index per element of r
  void encode(const Tensor& y, const Tensor& means, const std::vector<int32_t>& idx, RansEncoder& enc) const;
  Tensor decode(const Tensor& means, const std::vector<int32_t>& idx, RansDecoder& dec) const;

 private:
  ScaleMode mode_;
  std::vector<CdfTable> tables_;
};

}  // namespace ntc::codec
