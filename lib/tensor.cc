#include "lib/tensor.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "kernels/kernels.h"
#include "lib/common.h"
#include "lib/rng.h"

namespace ntc {

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s)
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) fail("tensor shape ", shape_str(s), " is out of range");
  return n;
}

namespace {
thread_local int64_t t_param_budget = -1;  // parameters Tensor::param may still allocate (-1: any)
thread_local bool t_param_unset = false;    // Tensor::param leaves values unset (a loader writes them)
}  // namespace

ParamBudget::ParamBudget(int64_t elements, bool unset) : saved_(t_param_budget), saved_unset_(t_param_unset) {
  t_param_budget = elements;
  t_param_unset = unset;
}
ParamBudget::~ParamBudget() {
  t_param_budget = saved_;
  t_param_unset = saved_unset_;
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

// ---------------------------------------------------------------- construction
Tensor Tensor::empty(const Shape& s) {
  for (int64_t d : s) NTC_CHECK(d >= 0, "negative dimension in ", shape_str(s));
  auto p = std::make_shared<TensorImpl>();
  p->shape = s;
  p->numel = numel_of(s);
  p->data = Buffer(size_t(p->numel));
  return Tensor(std::move(p));
}

Tensor Tensor::zeros(const Shape& s) { return full(s, 0.f); }

Tensor Tensor::full(const Shape& s, float v) {
  Tensor t = empty(s);
  k::fill(v, t.data(), size_t(t.numel()));
  return t;
}

Tensor Tensor::from(const Shape& s, const std::vector<float>& v) {
  NTC_CHECK(int64_t(v.size()) == numel_of(s), "from(): ", v.size(), " values for shape ", shape_str(s));
  Tensor t = empty(s);
  std::memcpy(t.data(), v.data(), v.size() * sizeof(float));
  return t;
}

Tensor Tensor::uniform(const Shape& s, float lo, float hi, Rng& rng) {
  Tensor t = empty(s);
  rng.fill_uniform(t.data(), size_t(t.numel()), lo, hi);
  return t;
}

Tensor Tensor::normal(const Shape& s, float mean, float stddev, Rng& rng) {
  Tensor t = empty(s);
  rng.fill_normal(t.data(), size_t(t.numel()), mean, stddev);
  return t;
}

Tensor Tensor::param(const Shape& s) {
  if (t_param_budget >= 0) {
    const int64_t n = numel_of(s);
    if (n > t_param_budget) fail("the config asks for more parameters than the file holds (at a ", shape_str(s), " tensor)");
    t_param_budget -= n;
  }
  Tensor t = t_param_unset ? empty(s) : zeros(s);
  t.p_->requires_grad = true;
  t.p_->is_param = true;
  return t;
}

// ---------------------------------------------------------------- inspection
int64_t Tensor::dim(int i) const {
  int n = ndim();
  if (i < 0) i += n;
  NTC_CHECK(i >= 0 && i < n, "dim ", i, " of a tensor of shape ", shape_str(shape()));
  return p_->shape[size_t(i)];
}

float Tensor::item() const {
  NTC_CHECK(numel() == 1, "item() of a tensor of shape ", shape_str(shape()));
  return data()[0];
}

std::vector<float> Tensor::to_vector() const { return std::vector<float>(data(), data() + numel()); }

// ---------------------------------------------------------------- autodiff
Tensor& Tensor::set_requires_grad(bool on) {
  NTC_CHECK(!p_->node, "set_requires_grad on a non-leaf tensor");
  p_->requires_grad = on;
  return *this;
}

float* Tensor::grad_acc() const {
  if (!p_->grad) p_->grad = Buffer::zeros(size_t(numel()));
  return p_->grad.data();
}

Tensor Tensor::grad_tensor() const {
  Tensor g = zeros(shape());
  if (p_->grad) std::memcpy(g.data(), p_->grad.data(), size_t(numel()) * sizeof(float));
  return g;
}

float* Tensor::grad_for_write(bool* fresh) const {
  *fresh = !p_->grad;
  if (*fresh) p_->grad = Buffer(size_t(numel()));
  return p_->grad.data();
}

void Tensor::zero_grad() { p_->grad = Buffer(); }

Tensor Tensor::detach() const {
  auto p = std::make_shared<TensorImpl>();
  p->shape = p_->shape;
  p->numel = p_->numel;
  p->data = p_->data;
  return Tensor(std::move(p));
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape());
  std::memcpy(t.data(), data(), size_t(numel()) * sizeof(float));
  return t;
}

Tensor Tensor::reshape(const Shape& s) const {
  Shape ns = s;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < ns.size(); ++i) {
    if (ns[i] == -1) {
      NTC_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(s));
      infer = int64_t(i);
    } else {
      known *= ns[i];
    }
  }
  if (infer >= 0) ns[size_t(infer)] = known ? numel() / known : 0;
  NTC_CHECK(numel_of(ns) == numel(), "reshape ", shape_str(shape()), " -> ", shape_str(s));
  auto p = std::make_shared<TensorImpl>();
  p->shape = ns;
  p->numel = p_->numel;
  p->data = p_->data;
  Tensor out(std::move(p));
  if (needs_grad({this})) {
    Tensor x = *this;
    size_t n = size_t(numel());
    record(out, "reshape", {this}, [x, n](const float* gy) { k::add(x.grad_acc(), gy, x.grad_acc(), n); });
  }
  return out;
}

namespace {
thread_local bool g_grad_enabled = true;
thread_local BackwardProfile* g_bprof = nullptr;
thread_local const std::string* g_record_scope = nullptr;

void add_ms(std::vector<std::pair<std::string, double>>& v, const std::string& key, double ms) {
  auto it = std::find_if(v.begin(), v.end(), [&](const auto& e) { return e.first == key; });
  if (it == v.end()) v.push_back({key, ms});
  else it->second += ms;
}
}  // namespace

void set_backward_profile(BackwardProfile* p) { g_bprof = p; }
void set_record_scope(const std::string* path) { g_record_scope = path; }

bool grad_enabled() { return g_grad_enabled; }
NoGrad::NoGrad() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGrad::~NoGrad() { g_grad_enabled = prev_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void record(Tensor& out, const char* op, std::initializer_list<const Tensor*> inputs,
            std::function<void(const float* gy)> backward) {
  std::vector<Tensor> v;
  for (const Tensor* t : inputs)
    if (t) v.push_back(*t);
  record(out, op, v, std::move(backward));
}

void record(Tensor& out, const char* op, const std::vector<Tensor>& inputs,
            std::function<void(const float* gy)> backward) {
  auto n = std::make_shared<Node>();
  n->op = op;
  if (g_record_scope) n->layer = *g_record_scope;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) n->inputs.push_back(t.ptr());
  n->backward = std::move(backward);
  out.impl()->node = std::move(n);
  out.impl()->requires_grad = true;
}

void Tensor::backward() { backward(nullptr); }

void Tensor::backward(const std::function<void(TensorImpl*)>& leaf_done) {
  NTC_CHECK(numel() == 1, "backward() needs a one-element tensor, got ", shape_str(shape()));
  NTC_CHECK(requires_grad(), "backward() on a tensor that does not require grad");
  // Iterative post-order DFS: every tensor comes after all tensors it was computed from.
  std::vector<std::shared_ptr<TensorImpl>> order;
  std::unordered_set<TensorImpl*> seen;
  std::vector<std::pair<std::shared_ptr<TensorImpl>, size_t>> stack{{p_, 0}};
  seen.insert(p_.get());
  while (!stack.empty()) {
    auto& [t, i] = stack.back();
    if (t->node && i < t->node->inputs.size()) {
      auto next = t->node->inputs[i++];
      if (seen.insert(next.get()).second) stack.push_back({next, 0});
    } else {
      order.push_back(t);
      stack.pop_back();
    }
  }
  // For leaf_done: the leaves whose last reader is the node at reverse position k.
  std::vector<std::vector<TensorImpl*>> done_after;
  if (leaf_done) {
    std::unordered_map<TensorImpl*, size_t> last;
    for (size_t k = 0; k < order.size(); ++k) {
      const TensorImpl* t = order[order.size() - 1 - k].get();
      if (!t->node) continue;
      for (const auto& in : t->node->inputs)
        if (!in->node && in->requires_grad) last[in.get()] = k;
    }
    done_after.resize(order.size());
    for (size_t k = 0; k < order.size(); ++k) {  // in each node's input order: the same on every run
      const TensorImpl* t = order[order.size() - 1 - k].get();
      if (!t->node) continue;
      for (const auto& in : t->node->inputs) {
        auto it = last.find(in.get());
        if (it != last.end() && it->second == k) {
          done_after[k].push_back(in.get());
          last.erase(it);
        }
      }
    }
  }
  grad_acc()[0] += 1.f;
  for (size_t k = 0; k < order.size(); ++k) {
    TensorImpl* t = order[order.size() - 1 - k].get();
    if (!t->node) continue;  // leaf: keeps its accumulated gradient
    if (t->grad) {
      if (!g_bprof) {
        t->node->backward(t->grad.data());
      } else {
        const auto t0 = std::chrono::steady_clock::now();
        t->node->backward(t->grad.data());
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        add_ms(g_bprof->ms, t->node->op, ms);
        if (!t->node->layer.empty()) add_ms(g_bprof->by_layer, t->node->layer, ms);
      }
    }
    t->grad = Buffer();  // intermediate gradient consumed
    t->node.reset();     // release the graph as we go
    if (leaf_done)
      for (TensorImpl* leaf : done_after[k]) leaf_done(leaf);
  }
}

}  // namespace ntc
