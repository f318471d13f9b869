#include "train/optim.h"

#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"
#include "lib/common.h"
#include "lib/ops/ops.h"

namespace ntc::train {

AdamForm parse_adam_form(const std::string& s) {
  if (s == "torch") return AdamForm::Torch;
  if (s == "keras") return AdamForm::Keras;
  fail("unknown Adam form '", s, "' (torch or keras)");
}

void adam_update(float* p, const float* g, float* m, float* v, size_t n, int64_t t, float lr, float beta1,
                 float beta2, float eps, AdamForm form) {
  const double c1 = 1 - std::pow(double(beta1), double(t)), c2 = 1 - std::pow(double(beta2), double(t));
  // Torch: lr/c1 · m / (√v/√c2 + ε);  Keras: lr·√c2/c1 · m / (√v + ε̂).
  const float step = float(form == AdamForm::Torch ? lr / c1 : lr * std::sqrt(c2) / c1);
  const float vs = float(form == AdamForm::Torch ? 1 / std::sqrt(c2) : 1.0);
  k::adam(p, g, m, v, n, beta1, beta2, step, vs, eps);
}

Adam::Adam(std::vector<Tensor> params, AdamForm form, float beta1, float beta2)
    : params_(std::move(params)), form_(form), beta1_(beta1), beta2_(beta2),
      eps_(form == AdamForm::Torch ? 1e-8f : 1e-7f) {
  for (const Tensor& p : params_) {
    m_.push_back(Tensor::zeros(p.shape()));
    v_.push_back(Tensor::zeros(p.shape()));
  }
}

void Adam::step(float lr) {
  ++t_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    if (!p.has_grad()) continue;
    adam_update(p.data(), p.grad(), m_[i].data(), v_[i].data(), size_t(p.numel()), t_, lr, beta1_, beta2_, eps_, form_);
  }
}

double clip_grad_global_norm(const std::vector<Tensor>& params, double clipnorm) {
  double ss = 0;
  for (const Tensor& p : params)
    if (p.has_grad()) ss += k::sum_squares(p.grad(), size_t(p.numel()));
  const double norm = std::sqrt(ss);
  if (norm > clipnorm) {
    const float s = float(clipnorm / norm);
    for (const Tensor& p : params)
      if (p.has_grad()) k::scale(s, p.grad(), p.grad(), size_t(p.numel()));
  }
  return norm;
}

std::vector<Tensor> clip_by_global_norm(const std::vector<Tensor>& gs, float clipnorm) {
  Tensor ss;
  for (const Tensor& g : gs) {
    Tensor t = sum(square(g));
    ss = ss.defined() ? add(ss, t) : t;
  }
  Tensor norm = sqrt(ss);
  // c / max(G, c): clip passes the gradient of G only where G >= c.
  Tensor scale = div(Tensor::full({}, clipnorm), clip(norm, clipnorm, INFINITY));
  std::vector<Tensor> out;
  for (const Tensor& g : gs) out.push_back(mul(g, scale));
  out.push_back(norm);
  return out;
}

float learning_rate(int64_t step, const Schedule& s, float base) {
  const int64_t warm = s.warmup >= 0 ? s.warmup : int64_t(0.02 * double(s.total));
  const int64_t drop = s.decay_from >= 0 ? s.decay_from : int64_t(0.8 * double(s.total));
  const double w = warm > 0 ? std::clamp(double(step - s.warm_from + 1) / double(warm), 0.0, 1.0) : 1.0;
  return float(base * (step < drop ? 1.0 : 0.1) * w);
}

float lambda_schedule(int64_t step, const Schedule& s, float lambda) {
  return s.lambda_boost && lambda <= 0.01f && step < int64_t(0.2 * double(s.total)) ? 10 * lambda : lambda;
}

}  // namespace ntc::train
