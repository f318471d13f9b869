#include "codec/entropy_bottleneck.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"
#include "lib/common.h"
#include "lib/flops.h"
#include "lib/ops/ops.h"

namespace ntc::codec {
namespace {

constexpr int kMaxWidth = 16;  // widest hidden layer the fused op supports
constexpr double kTailMass = 1e-9;
constexpr float kLikelihoodBound = 1e-9f;

double softplus_d(double a) { return std::max(a, 0.0) + std::log1p(std::exp(-std::fabs(a))); }
double sigmoid_d(double a) { return a >= 0 ? 1 / (1 + std::exp(-a)) : std::exp(a) / (1 + std::exp(a)); }

// The MLP's effective per-channel parameters, in double.
struct ChannelMlp {
  int L = 0;                      // number of layers (K + 1)
  std::vector<int> d;             // widths d_0 = 1 ... d_L = 1
  std::vector<std::vector<double>> W, b, t;  // softplus(M_k), b_k, tanh(f_k)

  ChannelMlp(const std::vector<Tensor>& M, const std::vector<Tensor>& B, const std::vector<Tensor>& F, int c) {
    L = int(M.size());
    d.push_back(1);
    for (int k = 0; k < L; ++k) d.push_back(int(M[size_t(k)].dim(1)));
    for (int k = 0; k < L; ++k) {
      const int rows = d[size_t(k + 1)], cols = d[size_t(k)];
      const float* m = M[size_t(k)].data() + int64_t(c) * rows * cols;
      const float* bb = B[size_t(k)].data() + int64_t(c) * rows;
      std::vector<double> w(static_cast<size_t>(rows * cols)), bv(static_cast<size_t>(rows)), tv;
      for (int i = 0; i < rows * cols; ++i) w[size_t(i)] = softplus_d(m[i]);
      for (int i = 0; i < rows; ++i) bv[size_t(i)] = bb[i];
      if (k < L - 1) {
        const float* f = F[size_t(k)].data() + int64_t(c) * rows;
        for (int i = 0; i < rows; ++i) tv.push_back(std::tanh(double(f[i])));
      }
      W.push_back(w);
      b.push_back(bv);
      t.push_back(tv);
    }
  }

  // Forward for one scalar; when `in`/`z` are given, stores each layer's input and pre-gate value.
  double eval(double u, double (*in)[kMaxWidth] = nullptr, double (*z)[kMaxWidth] = nullptr) const {
    double a[kMaxWidth] = {u}, h[kMaxWidth];
    for (int k = 0; k < L; ++k) {
      const int rows = d[size_t(k + 1)], cols = d[size_t(k)];
      if (in) std::copy(a, a + cols, in[k]);
      for (int i = 0; i < rows; ++i) {
        double s = b[size_t(k)][size_t(i)];
        for (int j = 0; j < cols; ++j) s += W[size_t(k)][size_t(i * cols + j)] * a[j];
        if (z) z[k][i] = s;
        h[i] = k < L - 1 ? s + t[size_t(k)][size_t(i)] * std::tanh(s) : s;
      }
      std::copy(h, h + rows, a);
    }
    return a[0];
  }
};

}  // namespace

// ---------------------------------------------------------------- the fused ℓ op
Tensor eb_logits_cumulative(const Tensor& x, const std::vector<Tensor>& M, const std::vector<Tensor>& B,
                            const std::vector<Tensor>& F) {
  NTC_CHECK(x.ndim() >= 2 && !M.empty() && B.size() == M.size() && F.size() + 1 == M.size(),
            "eb_logits_cumulative: x ", shape_str(x.shape()), ", ", M.size(), " matrices");
  const int C = int(x.dim(1)), L = int(M.size());
  const int64_t N = x.dim(0), inner = x.numel() / (N * C);
  int prev = 1;
  for (int k = 0; k < L; ++k) {
    const Tensor& m = M[size_t(k)];
    const int rows = int(m.dim(1));
    NTC_CHECK(m.ndim() == 3 && m.dim(0) == C && m.dim(2) == prev && rows <= kMaxWidth &&
                  (k < L - 1 || rows == 1) && B[size_t(k)].numel() == int64_t(C) * rows &&
                  (k == L - 1 || F[size_t(k)].numel() == int64_t(C) * rows),
              "eb_logits_cumulative: layer ", k, " matrix ", shape_str(m.shape()));
    prev = rows;
  }
  Tensor y = Tensor::empty(x.shape());
  int64_t flops = 0;
  for (const Tensor& m : M) flops += 2 * m.numel() / C;
  count_flops("eb_logits", flops * N * inner * C);
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; ++c) {
    const ChannelMlp mlp(M, B, F, c);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t base = (n * C + c) * inner;
      for (int64_t i = 0; i < inner; ++i) y.data()[base + i] = float(mlp.eval(x.data()[base + i]));
    }
  }
  std::vector<Tensor> inputs{x};
  for (const auto* v : {&M, &B, &F}) inputs.insert(inputs.end(), v->begin(), v->end());
  bool any = false;
  for (const Tensor& t : inputs) any |= needs_grad({&t});
  if (any)
    record(y, "eb_logits", inputs, [x, M, B, F, C, L, N, inner, inputs](const float* gy) {
      for (const Tensor& t : inputs)  // allocate gradients before the threads write into them
        if (t.requires_grad()) t.grad_acc();
      // Each thread owns whole channels: parameter gradients are summed in element order.
#pragma omp parallel for schedule(static)
      for (int c = 0; c < C; ++c) {
        const ChannelMlp mlp(M, B, F, c);
        std::vector<std::vector<double>> gW(static_cast<size_t>(L)), gb(gW), gt(gW);
        for (int k = 0; k < L; ++k) {
          gW[size_t(k)].assign(mlp.W[size_t(k)].size(), 0.0);
          gb[size_t(k)].assign(mlp.b[size_t(k)].size(), 0.0);
          gt[size_t(k)].assign(mlp.t[size_t(k)].size(), 0.0);
        }
        double in[8][kMaxWidth], z[8][kMaxWidth];
        NTC_CHECK(L <= 8, "eb_logits_cumulative: at most 8 layers");
        for (int64_t n = 0; n < N; ++n)
          for (int64_t i = 0; i < inner; ++i) {
            const int64_t idx = (n * C + c) * inner + i;
            mlp.eval(x.data()[idx], in, z);
            double g[kMaxWidth] = {gy[idx]}, gz[kMaxWidth];
            for (int k = L - 1; k >= 0; --k) {
              const int rows = mlp.d[size_t(k + 1)], cols = mlp.d[size_t(k)];
              for (int r = 0; r < rows; ++r) {
                if (k < L - 1) {  // through h = z + t ⊙ tanh(z)
                  const double th = std::tanh(z[k][r]), tr = mlp.t[size_t(k)][size_t(r)];
                  gt[size_t(k)][size_t(r)] += g[r] * th;
                  gz[r] = g[r] * (1 + tr * (1 - th * th));
                } else {
                  gz[r] = g[r];
                }
                gb[size_t(k)][size_t(r)] += gz[r];
                for (int j = 0; j < cols; ++j) gW[size_t(k)][size_t(r * cols + j)] += gz[r] * in[k][j];
              }
              for (int j = 0; j < cols; ++j) {
                double s = 0;
                for (int r = 0; r < rows; ++r) s += mlp.W[size_t(k)][size_t(r * cols + j)] * gz[r];
                g[j] = s;
              }
            }
            if (x.requires_grad()) x.grad_acc()[idx] += float(g[0]);
          }
        // Chain through the reparametrisations: softplus' = sigmoid, tanh' = 1 − tanh².
        for (int k = 0; k < L; ++k) {
          const Tensor& m = M[size_t(k)];
          const int64_t sz = int64_t(gW[size_t(k)].size());
          if (m.requires_grad())
            for (int64_t j = 0; j < sz; ++j)
              m.grad_acc()[c * sz + j] += float(gW[size_t(k)][size_t(j)] * sigmoid_d(m.data()[c * sz + j]));
          const int64_t rows = int64_t(gb[size_t(k)].size());
          if (B[size_t(k)].requires_grad())
            for (int64_t r = 0; r < rows; ++r) B[size_t(k)].grad_acc()[c * rows + r] += float(gb[size_t(k)][size_t(r)]);
          if (k < L - 1 && F[size_t(k)].requires_grad())
            for (int64_t r = 0; r < rows; ++r) {
              const double tr = mlp.t[size_t(k)][size_t(r)];
              F[size_t(k)].grad_acc()[c * rows + r] += float(gt[size_t(k)][size_t(r)] * (1 - tr * tr));
            }
        }
      }
    });
  return y;
}

// ---------------------------------------------------------------- the model
EntropyBottleneck::EntropyBottleneck(int channels, std::vector<int> filters, float init_scale)
    : C_(channels), filters_(std::move(filters)), init_scale_(init_scale) {
  NTC_CHECK(C_ > 0, "EntropyBottleneck: channels");
  std::vector<int> d{1};
  for (int f : filters_) {
    NTC_CHECK(f >= 1 && f <= kMaxWidth, "EntropyBottleneck: filter width ", f);
    d.push_back(f);
  }
  d.push_back(1);
  NTC_CHECK(d.size() <= 9, "EntropyBottleneck: at most 7 hidden layers");
  for (size_t k = 0; k + 1 < d.size(); ++k) {
    matrices_.push_back(Tensor::param({C_, d[k + 1], d[k]}));
    biases_.push_back(Tensor::param({C_, d[k + 1], 1}));
    if (k + 2 < d.size()) factors_.push_back(Tensor::param({C_, d[k + 1], 1}));
  }
}

void EntropyBottleneck::init(Rng& rng) {
  const double s = std::pow(double(init_scale_), 1.0 / double(matrices_.size()));
  for (size_t k = 0; k < matrices_.size(); ++k) {
    const double v = std::log(std::expm1(1.0 / s / double(matrices_[k].dim(1))));
    k::fill(float(v), matrices_[k].data(), size_t(matrices_[k].numel()));
    rng.fill_uniform(biases_[k].data(), size_t(biases_[k].numel()), -0.5f, 0.5f);
  }
  for (Tensor& f : factors_) k::fill(0.f, f.data(), size_t(f.numel()));
  medians_.clear();
  tables_.clear();
}

std::vector<std::pair<std::string, Tensor>> EntropyBottleneck::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> r;
  for (size_t k = 0; k < matrices_.size(); ++k) {
    r.push_back({"matrices." + std::to_string(k), matrices_[k]});
    r.push_back({"biases." + std::to_string(k), biases_[k]});
    if (k < factors_.size()) r.push_back({"factors." + std::to_string(k), factors_[k]});
  }
  return r;
}

Tensor EntropyBottleneck::logits_cumulative(const Tensor& x) const {
  return eb_logits_cumulative(x, matrices_, biases_, factors_);
}

Tensor EntropyBottleneck::likelihood(const Tensor& x) const {
  NTC_CHECK(x.ndim() >= 2 && x.dim(1) == C_, "EntropyBottleneck(", C_, ") on ", shape_str(x.shape()));
  return eb_likelihood(x, matrices_, biases_, factors_);
}

Tensor eb_likelihood(const Tensor& x, const std::vector<Tensor>& M, const std::vector<Tensor>& B,
                     const std::vector<Tensor>& F) {
  Tensor lower = eb_logits_cumulative(add_scalar(x, -0.5f), M, B, F);
  Tensor upper = eb_logits_cumulative(add_scalar(x, 0.5f), M, B, F);
  Tensor s = Tensor::empty(x.shape());  // −sign(lower + upper), a constant
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float v = lower.data()[i] + upper.data()[i];
    s.data()[i] = v > 0 ? -1.f : v < 0 ? 1.f : 0.f;
  }
  Tensor lik = abs(sub(sigmoid(mul(s, upper)), sigmoid(mul(s, lower))));
  return lower_bound(lik, kLikelihoodBound);
}

double EntropyBottleneck::logit_scalar(int c, double u) const {
  return ChannelMlp(matrices_, biases_, factors_, c).eval(u);
}

// ---------------------------------------------------------------- coding
namespace {
// The u with mlp(u) = target (mlp is increasing), by bracketing then bisection in double.
double solve(const ChannelMlp& mlp, double target) {
  double lo = -1, hi = 1;
  while (mlp.eval(lo) > target && lo > -1e9) lo *= 2;
  while (mlp.eval(hi) < target && hi < 1e9) hi *= 2;
  for (int it = 0; it < 200 && hi - lo > 1e-9 * (1 + std::fabs(lo)); ++it) {
    const double mid = 0.5 * (lo + hi);
    (mlp.eval(mid) < target ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// P(v) of the noisy density, with the sign trick, in double.
double noisy_prob(const ChannelMlp& mlp, double v) {
  const double l = mlp.eval(v - 0.5), u = mlp.eval(v + 0.5);
  const double s = l + u > 0 ? -1 : 1;
  return std::fabs(sigmoid_d(s * u) - sigmoid_d(s * l));
}
}  // namespace

void EntropyBottleneck::finalize() {
  medians_.assign(size_t(C_), 0.f);
  tables_.assign(size_t(C_), CdfTable());
  const double target = std::log(2 / kTailMass - 1);
  for (int c = 0; c < C_; ++c) {
    const ChannelMlp mlp(matrices_, biases_, factors_, c);
    const float m = float(solve(mlp, 0.0));
    medians_[size_t(c)] = m;
    const int64_t lo = std::max<int64_t>(0, int64_t(std::ceil(m - solve(mlp, -target))));
    const int64_t hi = std::max<int64_t>(0, int64_t(std::ceil(solve(mlp, target) - m)));
    NTC_CHECK(lo + hi + 1 < 60000, "EntropyBottleneck channel ", c, ": tails too wide (", lo, ", ", hi, ")");
    std::vector<double> pmf;
    for (int64_t k = -lo; k <= hi; ++k) pmf.push_back(noisy_prob(mlp, double(m) + double(k)));
    const double tail = sigmoid_d(mlp.eval(double(m) - double(lo) - 0.5)) +
                        sigmoid_d(-mlp.eval(double(m) + double(hi) + 0.5));
    pmf.push_back(tail);
    tables_[size_t(c)] = CdfTable(pmf_to_quantized_cdf(pmf), int32_t(-lo));
  }
}

void EntropyBottleneck::set_tables(std::vector<float> medians, std::vector<CdfTable> tables) {
  if (int(medians.size()) != C_ || int(tables.size()) != C_)
    fail("entropy bottleneck: ", medians.size(), " medians and ", tables.size(), " tables for ", C_, " channels");
  for (float m : medians)
    if (!std::isfinite(m) || std::fabs(m) > 1e6f) fail("entropy bottleneck: bad median ", m);
  medians_ = std::move(medians);
  tables_ = std::move(tables);
}

Tensor EntropyBottleneck::quantize(const Tensor& z) const {
  NTC_CHECK(finalized(), "EntropyBottleneck::quantize before finalize()");
  NTC_CHECK(z.ndim() >= 2 && z.dim(1) == C_, "EntropyBottleneck::quantize on ", shape_str(z.shape()));
  Tensor q = Tensor::empty(z.shape());
  const int64_t N = z.dim(0), inner = z.numel() / (N * C_);
  for (int64_t n = 0; n < N; ++n)
    for (int c = 0; c < C_; ++c) {
      const float m = medians_[size_t(c)];
      const int64_t base = (n * C_ + c) * inner;
      for (int64_t i = 0; i < inner; ++i) q.data()[base + i] = std::nearbyint(z.data()[base + i] - m) + m;
    }
  return q;
}

void EntropyBottleneck::encode(const Tensor& z, RansEncoder& enc) const {
  NTC_CHECK(finalized(), "EntropyBottleneck::encode before finalize()");
  NTC_CHECK(z.ndim() >= 2 && z.dim(1) == C_, "EntropyBottleneck::encode on ", shape_str(z.shape()));
  const int64_t N = z.dim(0), inner = z.numel() / (N * C_);
  for (int64_t n = 0; n < N; ++n)
    for (int c = 0; c < C_; ++c) {
      const float m = medians_[size_t(c)];
      const int64_t base = (n * C_ + c) * inner;
      for (int64_t i = 0; i < inner; ++i) {
        const float v = std::nearbyint(z.data()[base + i] - m);
        NTC_CHECK(std::fabs(v) < 2e9f, "EntropyBottleneck::encode: value out of range");
        enc.put(int32_t(v), tables_[size_t(c)]);
      }
    }
}

Tensor EntropyBottleneck::decode(const Shape& shape, RansDecoder& dec) const {
  NTC_CHECK(finalized(), "EntropyBottleneck::decode before finalize()");
  NTC_CHECK(shape.size() >= 2 && shape[1] == C_, "EntropyBottleneck::decode to ", shape_str(shape));
  Tensor z = Tensor::empty(shape);
  const int64_t N = shape[0], inner = z.numel() / (N * C_);
  for (int64_t n = 0; n < N; ++n)
    for (int c = 0; c < C_; ++c) {
      const float m = medians_[size_t(c)];
      const int64_t base = (n * C_ + c) * inner;
      for (int64_t i = 0; i < inner; ++i) z.data()[base + i] = float(dec.get(tables_[size_t(c)])) + m;
    }
  return z;
}

}  // namespace ntc::codec
