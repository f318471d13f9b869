#include "nn/module.h"

#include <chrono>

#include "lib/common.h"
#include "lib/flops.h"

namespace ntc::nn {
namespace {
thread_local LayerTrace* g_trace = nullptr;
thread_local int g_depth = 0;
thread_local std::string g_path;
}  // namespace

LayerTrace::LayerTrace() : prev_(g_trace) { g_trace = this; }
LayerTrace::~LayerTrace() { g_trace = prev_; }

Tensor Module::operator()(const Tensor& x) {
  FlopScope scope(name_);
  if (!g_trace) return forward(x);
  const size_t len = g_path.size();
  g_path += (len ? "." : "") + name_;
  set_record_scope(&g_path);
  LayerRecord r;
  r.path = g_path;
  r.type = type();
  r.in = x.shape();
  r.params = own_parameters();
  r.depth = g_depth;
  r.leaf = children_.empty();
  const size_t slot = g_trace->records_.size();
  g_trace->records_.push_back(r);
  Tensor y;
  int64_t flops = 0;
  const auto t0 = std::chrono::steady_clock::now();
  {
    FlopCounter local;  // this call's FLOPs, re-reported to any outer counter below
    ++g_depth;
    y = forward(x);
    --g_depth;
    flops = local.total();
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  count_flops(name_.c_str(), flops);
  int64_t child_flops = 0;
  auto& recs = g_trace->records_;
  for (size_t i = slot + 1; i < recs.size(); ++i)
    if (recs[i].depth == r.depth + 1) child_flops += recs[i].flops;
  recs[slot].out = y.shape();
  recs[slot].flops = flops;
  recs[slot].self_flops = flops - child_flops;
  recs[slot].ms = ms;
  g_path.resize(len);
  set_record_scope(len ? &g_path : nullptr);
  return y;
}

Tensor& Module::param(const std::string& name, const Shape& shape) {
  for (auto& [n, t] : params_) NTC_CHECK(n != name, "parameter ", name, " registered twice in ", name_);
  params_.push_back({name, Tensor::param(shape)});
  return params_.back().second;
}

void Module::collect(NamedTensors& out, const std::string& prefix) const {
  const std::string p = prefix.empty() ? name_ : prefix + "." + name_;
  for (const auto& [n, t] : params_) out.push_back({p + "." + n, t});
  for (const auto& c : children_) c->collect(out, p);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect(out, "");
  return out;
}

int64_t Module::own_parameters() const {
  int64_t n = 0;
  for (const auto& [name, t] : params_) n += t.numel();
  return n;
}

int64_t Module::num_parameters() const {
  int64_t n = own_parameters();
  for (const auto& c : children_) n += c->num_parameters();
  return n;
}

void Module::init(Rng& rng) {
  for (auto& c : children_) c->init(rng);
}

}  // namespace ntc::nn
