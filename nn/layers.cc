#include "nn/layers.h"

#include <cmath>

#include "kernels/kernels.h"
#include "lib/common.h"

namespace ntc::nn {
namespace {

// tfc SignalConv "same_zeros" (SPEC §1.0c): kernel centre at k//2.
Pad2 signal_pad_conv(int k) { return {k / 2, (k - 1) / 2, k / 2, (k - 1) / 2}; }
Pad2 signal_pad_conv_transpose(int k, int s) { return {k / 2, k - s - k / 2, k / 2, k - s - k / 2}; }

void glorot(Tensor& w, int fan_in, int fan_out, Rng& rng) {
  const float lim = float(std::sqrt(6.0 / double(fan_in + fan_out)));
  rng.fill_uniform(w.data(), size_t(w.numel()), -lim, lim);
}

std::string conv_type(const char* base, int k, int s, Padding p) {
  return std::string(base) + " k" + std::to_string(k) + "s" + std::to_string(s) + (p == Padding::Signal ? " signal" : "");
}

}  // namespace

Padding parse_padding(const std::string& s) {
  if (s == "same") return Padding::Same;
  if (s == "signal") return Padding::Signal;
  fail("unknown padding '", s, "' (same or signal)");
}

// ---------------------------------------------------------------- Conv2d
Conv2d::Conv2d(std::string name, int cin, int cout, int k, int stride, Padding pad, bool bias)
    : Module(std::move(name)), cin_(cin), cout_(cout), k_(k), stride_(stride), pad_(pad), bias_(bias) {
  NTC_CHECK(cin > 0 && cout > 0 && k > 0 && stride > 0, "Conv2d ", this->name(), ": bad shape");
  param("weight", {cout, cin, k, k});
  if (bias) param("bias", {cout});
}
std::string Conv2d::type() const { return conv_type("Conv2d", k_, stride_, pad_); }
void Conv2d::init(Rng& rng) {
  glorot(params_[0].second, cin_ * k_ * k_, cout_ * k_ * k_, rng);
  if (bias_) k::fill(0.f, params_[1].second.data(), size_t(cout_));
}
Tensor Conv2d::forward(const Tensor& x) {
  const Tensor b = bias_ ? params_[1].second : Tensor();
  if (pad_ == Padding::Same) return conv2d_same(x, params_[0].second, b, stride_);
  return conv2d(x, params_[0].second, b, stride_, signal_pad_conv(k_));
}

// ---------------------------------------------------------------- ConvTranspose2d
ConvTranspose2d::ConvTranspose2d(std::string name, int cin, int cout, int k, int stride, Padding pad, bool bias)
    : Module(std::move(name)), cin_(cin), cout_(cout), k_(k), stride_(stride), pad_(pad), bias_(bias) {
  NTC_CHECK(cin > 0 && cout > 0 && k > 0 && stride > 0, "ConvTranspose2d ", this->name(), ": bad shape");
  param("weight", {cin, cout, k, k});
  if (bias) param("bias", {cout});
}
std::string ConvTranspose2d::type() const { return conv_type("ConvTranspose2d", k_, stride_, pad_); }
void ConvTranspose2d::init(Rng& rng) {
  glorot(params_[0].second, cout_ * k_ * k_, cin_ * k_ * k_, rng);  // Keras: fan_in = k²·Cout here
  if (bias_) k::fill(0.f, params_[1].second.data(), size_t(cout_));
}
Tensor ConvTranspose2d::forward(const Tensor& x) {
  const Tensor b = bias_ ? params_[1].second : Tensor();
  if (pad_ == Padding::Same) return conv_transpose2d_same(x, params_[0].second, b, stride_);
  return conv_transpose2d(x, params_[0].second, b, stride_, signal_pad_conv_transpose(k_, stride_));
}

// ---------------------------------------------------------------- GDN
GDN::GDN(std::string name, int channels, bool inverse) : Module(std::move(name)), C_(channels), inverse_(inverse) {
  param("beta", {channels});
  param("gamma", {channels, channels});
}
void GDN::init(Rng&) {
  k::fill(nonneg_reparam_init(1.f), params_[0].second.data(), size_t(C_));
  float* g = params_[1].second.data();
  for (int i = 0; i < C_; ++i)
    for (int j = 0; j < C_; ++j) g[i * C_ + j] = nonneg_reparam_init(i == j ? 0.1f : 0.f);
}
Tensor GDN::forward(const Tensor& x) {
  return gdn1(x, nonneg_reparam(params_[0].second, 1e-6f), nonneg_reparam(params_[1].second, 0.f), inverse_);
}

// ---------------------------------------------------------------- Act
Act::Act(std::string name, std::string kind) : Module(std::move(name)), kind_(std::move(kind)) {
  if (kind_ != "relu" && kind_ != "leaky_relu" && kind_ != "gelu" && kind_ != "sigmoid" && kind_ != "identity")
    fail("unknown activation '", kind_, "' (relu, leaky_relu, gelu, sigmoid, gdn, igdn, identity)");
}
Tensor Act::forward(const Tensor& x) {
  if (kind_ == "relu") return relu(x);
  if (kind_ == "leaky_relu") return leaky_relu(x, 0.2f);
  if (kind_ == "gelu") return gelu(x);
  if (kind_ == "sigmoid") return sigmoid(x);
  return x;
}

void append_activation(Sequential& s, const std::string& name, const std::string& act, int channels) {
  if (act == "gdn" || act == "gdn1") s.append<GDN>(name, channels, false);
  else if (act == "igdn" || act == "igdn1") s.append<GDN>(name, channels, true);
  else s.append<Act>(name, act);
}

// ---------------------------------------------------------------- blocks
ResidualBlock::ResidualBlock(std::string name, int c) : Module(std::move(name)) {
  NTC_CHECK(c % 2 == 0, "ResidualBlock needs an even channel count, got ", c);
  add<Conv2d>("c1", c, c / 2, 1, 1);
  add<Conv2d>("c2", c / 2, c / 2, 3, 1);
  add<Conv2d>("c3", c / 2, c, 1, 1);
}
Tensor ResidualBlock::forward(const Tensor& x) {
  Tensor h = relu((*children_[0])(x));
  h = relu((*children_[1])(h));
  return ntc::add(x, (*children_[2])(h));
}

SimpleAttention::SimpleAttention(std::string name, int c) : Module(std::move(name)) {
  auto* trunk = add<Sequential>("trunk");
  auto* branch = add<Sequential>("branch");
  for (int i = 0; i < 3; ++i) {
    trunk->append<ResidualBlock>(std::to_string(i), c);
    branch->append<ResidualBlock>(std::to_string(i), c);
  }
  trunk_ = trunk;
  branch_ = branch;
  gate_ = add<Conv2d>("gate", c, c, 1, 1);
}
Tensor SimpleAttention::forward(const Tensor& x) {
  return ntc::add(x, mul((*trunk_)(x), sigmoid((*gate_)((*branch_)(x)))));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& c : children_) h = (*c)(h);
  return h;
}

}  // namespace ntc::nn
