// layers — the paper's layers as Modules (SPEC §1). Shapes NCHW; weight layouts as lib/ops/ops.h.
//
//   Conv2d           k×k, stride s, padding Same (TF/Keras, the proposed models) or Signal
//                    (tfc SignalConv "same_zeros", the MBT2018/BLS2017 baselines); glorot-uniform
//                    init, zero bias (Keras defaults, SPEC §1.7).
//   ConvTranspose2d  the same for transposed convolutions; output = stride × input.
//   GDN              GDN1 / IGDN1 with raw parameters beta, gamma and the non-negative
//                    reparametrisation (beta ≥ 1e−6, gamma ≥ 0); init beta = 1, gamma = 0.1·I.
//   Act              relu | leaky_relu (0.2) | gelu | sigmoid | identity
//   ResidualBlock    ELIC bottleneck (c1 1x1 c→c/2, c2 3x3, c3 1x1 c/2→c) plus x, no final act
//   SimpleAttention  x + trunk(x) ⊙ sigmoid(gate(branch(x))), trunk/branch 3 residual blocks each
//   Sequential       runs its children in order
#pragma once
#include <string>

#include "lib/ops/ops.h"
#include "nn/module.h"

namespace ntc::nn {

enum class Padding { Same, Signal };
Padding parse_padding(const std::string& s);

class Conv2d : public Module {
 public:
  Conv2d(std::string name, int cin, int cout, int k, int stride, Padding pad = Padding::Same, bool bias = true);
  std::string type() const override;
  void init(Rng& rng) override;
  Tensor& weight() { return params_[0].second; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  int cin_, cout_, k_, stride_;
  Padding pad_;
  bool bias_;
};

class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(std::string name, int cin, int cout, int k, int stride, Padding pad = Padding::Same,
                  bool bias = true);
  std::string type() const override;
  void init(Rng& rng) override;

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  int cin_, cout_, k_, stride_;
  Padding pad_;
  bool bias_;
};

class GDN : public Module {
 public:
  GDN(std::string name, int channels, bool inverse);
  std::string type() const override { return inverse_ ? "IGDN1" : "GDN1"; }
  void init(Rng& rng) override;

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  int C_;
  bool inverse_;
};

class Act : public Module {
 public:
  Act(std::string name, std::string kind);  // relu, leaky_relu, gelu, sigmoid, identity
  std::string type() const override { return kind_; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  std::string kind_;
};

class ResidualBlock : public Module {
 public:
  ResidualBlock(std::string name, int channels);
  std::string type() const override { return "ResidualBlock"; }

 protected:
  Tensor forward(const Tensor& x) override;
};

class SimpleAttention : public Module {
 public:
  SimpleAttention(std::string name, int channels);
  std::string type() const override { return "SimpleAttention"; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  Module *trunk_, *branch_, *gate_;
};

class Sequential : public Module {
 public:
  explicit Sequential(std::string name, std::string type = "Sequential") : Module(std::move(name)), type_(std::move(type)) {}
  std::string type() const override { return type_; }
  template <class M, class... A>
  M* append(A&&... args) {
    return add<M>(std::forward<A>(args)...);
  }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  std::string type_;
};

// Adds `act` after a layer: GDN/IGDN layers need channels, the others do not.
void append_activation(Sequential& s, const std::string& name, const std::string& act, int channels);

}  // namespace ntc::nn
