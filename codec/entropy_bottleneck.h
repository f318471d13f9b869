// EntropyBottleneck — the factorized ("deep factorized", Ballé et al. 2018) prior of the
// hyper-latent z (SPEC §2.1; CompressAI's EntropyBottleneck, tfc's NoisyDeepFactorized).
//
// Per channel c a monotone cumulative F_c(u) = sigmoid(ℓ_c(u)), ℓ a tiny MLP on scalars:
//   h = u;  for k = 0..K:  h = softplus(M_k[c])·h + b_k[c];  if k < K:  h += tanh(f_k[c]) ⊙ tanh(h)
// with widths d = (1, filters..., 1). Raw parameters (pre-softplus M, pre-tanh f) are stored:
//   matrices.k [C, d_{k+1}, d_k], biases.k [C, d_{k+1}, 1], factors.k [C, d_{k+1}, 1] (k < K).
// The paper's models use filters (3,3) (28 scalars per channel); CompressAI's default is (3,3,3,3).
//
// Likelihood of a value v convolved with U(−½, ½) (noise during training, integers when coding):
//   l = ℓ(v − ½), u = ℓ(v + ½), s = −sign(l + u) (constant), P = |σ(s·u) − σ(s·l)|, floored at 1e−9
//   with LowerBound's gradient rule. The sign flip evaluates the difference in the tail where both
//   sigmoids are small, so it keeps precision far right of the median.
//
// Coding (finalize()): per channel the median m (ℓ(m) = 0) and the tail quantiles
// ℓ(q) = ∓log(2/t − 1), t = 1e−9, found by bisection on the monotone ℓ in double precision; the
// CDF table covers the integers round-trip grid m + k for k ∈ [−ceil(m − q_lo), ceil(q_hi − m)], plus
// an escape bin with the two tails' mass. Symbols are round(z − m); ẑ = symbol + m (SPEC decision 4).
#pragma once
#include <vector>

#include "codec/rans.h"
#include "lib/rng.h"
#include "lib/tensor.h"

namespace ntc::codec {

// ℓ(x) for x [N, C, ...]: channel c uses parameter row c. Forward and backward in one op.
Tensor eb_logits_cumulative(const Tensor& x, const std::vector<Tensor>& matrices,
                            const std::vector<Tensor>& biases, const std::vector<Tensor>& factors);

// The likelihood above for explicit raw parameters (EntropyBottleneck::likelihood calls it).
Tensor eb_likelihood(const Tensor& x, const std::vector<Tensor>& matrices, const std::vector<Tensor>& biases,
                     const std::vector<Tensor>& factors);

class EntropyBottleneck {
 public:
  EntropyBottleneck() = default;
  EntropyBottleneck(int channels, std::vector<int> filters = {3, 3}, float init_scale = 10.f);
  void init(Rng& rng);  // tfc/CompressAI initialisation (SPEC §2.1)

  int channels() const { return C_; }
  const std::vector<int>& filters() const { return filters_; }
  Tensor logits_cumulative(const Tensor& x) const;
  Tensor likelihood(const Tensor& x) const;  // x [N, C, ...] -> P(x), same shape
  // All raw parameters, with semantic names ("matrices.0", "biases.0", "factors.0", ...).
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;

  // ---- coding (valid after finalize()) ----
  void finalize();  // medians, quantiles and per-channel CDF tables; call after training/loading
  // Tables stored in a model file (validated: one median and one table per channel).
  void set_tables(std::vector<float> medians, std::vector<CdfTable> tables);
  bool finalized() const { return !tables_.empty(); }
  const std::vector<float>& medians() const { return medians_; }
  const std::vector<CdfTable>& tables() const { return tables_; }
  Tensor quantize(const Tensor& z) const;  // round(z − m) + m, no graph
  void encode(const Tensor& z, RansEncoder& enc) const;  // z [N, C, H, W]; symbols round(z − m)
  Tensor decode(const Shape& shape, RansDecoder& dec) const;  // ẑ

  // Double-precision ℓ_c(u) from the current parameters (used by finalize and tests).
  double logit_scalar(int c, double u) const;

 private:
  int C_ = 0;
  std::vector<int> filters_;
  float init_scale_ = 10.f;
  std::vector<Tensor> matrices_, biases_, factors_;
  std::vector<float> medians_;
  std::vector<CdfTable> tables_;
};

}  // namespace ntc::codec
