// optim — Adam in both forms of the test vectors, global-norm clipping, and the paper's schedules
// (SPEC §3.1, §3.4).
//
//   PyTorch form: p -= lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)          (ε = 1e−8)
//   Keras form:   p -= lr·√(1−β2ᵗ)/(1−β1ᵗ) · m / (√v + ε̂)          (ε̂ = 1e−7; the paper's code)
// with m = β1·m + (1−β1)·g, v = β2·v + (1−β2)·g², t counting from 1.
// Learning rate: lr(step) = base · (step < D ? 1 : 0.1) · min(1, (step+1)/W), by default (the
// paper's) D = ⌊0.8·N⌋ and W = ⌊0.02·N⌋; a Schedule may set D and W explicitly (a warm-up–stable–
// decay run: D ≥ N never decays) and restart the warm-up at a step (moments reset on a resume
// from weights alone).
// λ: 10·λ for step < ⌊0.2·N⌋ when λ ≤ 0.01, else λ (the paper's boost; Schedule::lambda_boost
// turns it off). `step` = updates done before this one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lib/tensor.h"

namespace ntc::train {

enum class AdamForm { Torch, Keras };
AdamForm parse_adam_form(const std::string& s);  // "torch" | "keras"

// One Adam update of n values (t >= 1).
void adam_update(float* p, const float* g, float* m, float* v, size_t n, int64_t t, float lr, float beta1,
                 float beta2, float eps, AdamForm form);

class Adam {
 public:
  Adam(std::vector<Tensor> params, AdamForm form, float beta1 = 0.9f, float beta2 = 0.999f);
  // Applies one update with learning rate lr to every parameter that has a gradient.
  void step(float lr);
  int64_t t() const { return t_; }
  std::vector<Tensor>& params() { return params_; }
  // State for checkpoints: moments in parameter order, and t.
  std::vector<Tensor>& m() { return m_; }
  std::vector<Tensor>& v() { return v_; }
  void set_t(int64_t t) { t_ = t; }
  AdamForm form() const { return form_; }

 private:
  std::vector<Tensor> params_, m_, v_;
  AdamForm form_;
  float beta1_, beta2_, eps_;
  int64_t t_ = 0;
};

// Scales all gradients of `params` jointly so that their global L2 norm is at most clipnorm;
// returns the norm before clipping. (tf.clip_by_global_norm: g·c/max(‖g‖, c).)
double clip_grad_global_norm(const std::vector<Tensor>& params, double clipnorm);
// The same map as a differentiable op on explicit tensors (for the test vector): returns the
// clipped tensors followed by the global norm (shape {}).
std::vector<Tensor> clip_by_global_norm(const std::vector<Tensor>& gs, float clipnorm);

struct Schedule {
  int64_t total = 0;          // N, the planned steps
  int64_t decay_from = -1;    // D; -1: ⌊0.8·N⌋
  int64_t warmup = -1;        // W; -1: ⌊0.02·N⌋
  int64_t warm_from = 0;      // the warm-up counts from this step
  bool lambda_boost = true;   // 10·λ for the first 20% when λ ≤ 0.01
};
float learning_rate(int64_t step, const Schedule& s, float base_lr);
float lambda_schedule(int64_t step, const Schedule& s, float lambda);
// The paper's schedules for N steps.
inline float learning_rate(int64_t step, int64_t total, float base_lr) { return learning_rate(step, Schedule{total}, base_lr); }
inline float lambda_schedule(int64_t step, int64_t total, float lambda) { return lambda_schedule(step, Schedule{total}, lambda); }

}  // namespace ntc::train
