// module — the building block of every transform: named parameters, named children, and a
// forward pass. Parameter names are semantic paths ("g_s.conv1.weight"), built from the names
// given when children and parameters are registered — never from positions in a list.
//
// Calling a module (operator()) opens a FlopScope with its name, so every op's FLOPs are labelled
// with the layer that ran it, and, while a LayerTrace is active, appends one record per call
// (name, type, shapes, own parameters, FLOPs, time) for `ntc flops`.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lib/rng.h"
#include "lib/tensor.h"

namespace ntc::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  explicit Module(std::string name) : name_(std::move(name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  Tensor operator()(const Tensor& x);
  virtual std::string type() const = 0;
  const std::string& name() const { return name_; }

  NamedTensors named_parameters() const;  // recursive, "child.param" paths
  int64_t num_parameters() const;
  int64_t own_parameters() const;         // this module's own, not its children's
  virtual void init(Rng& rng);            // default: children in order

 protected:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor& param(const std::string& name, const Shape& shape);
  template <class M, class... A>
  M* add(A&&... args) {
    auto m = std::make_unique<M>(std::forward<A>(args)...);
    M* p = m.get();
    children_.push_back(std::move(m));
    return p;
  }
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::unique_ptr<Module>> children_;

 private:
  void collect(NamedTensors& out, const std::string& prefix) const;
  std::string name_;
};

// One module call as seen by a LayerTrace.
struct LayerRecord {
  std::string path, type;
  Shape in, out;
  int64_t params = 0;       // own parameters
  int64_t flops = 0;        // everything inside the call
  int64_t self_flops = 0;   // flops minus the flops of child calls (e.g. a block's residual add)
  double ms = 0;
  int depth = 0;
  bool leaf = false;
};

// Collects LayerRecords for module calls on this thread while alive.
class LayerTrace {
 public:
  LayerTrace();
  ~LayerTrace();
  const std::vector<LayerRecord>& records() const { return records_; }

 private:
  friend class Module;
  std::vector<LayerRecord> records_;
  LayerTrace* prev_;
};

}  // namespace ntc::nn
