// tensor — float32 NCHW tensors and the reverse-mode autodiff core.
//
// Read me first
// -------------
// * A Tensor is a cheap shared handle to a TensorImpl: a shape, a contiguous float32 Buffer
//   (row-major, last axis fastest; activations are NCHW) and, once something flows back into it,
//   a gradient Buffer of the same size. reshape() is a view that shares the data Buffer.
// * Autodiff: an op that has an input requiring grad (and grad mode on) attaches a Node to its
//   output: the inputs plus a backward closure written right next to the forward code in the op's
//   file (lib/ops/*.cc). The closure receives dL/d(output) and ACCUMULATES into each input's grad
//   (a closure that computes every element may set a gradient not allocated yet: grad_for_write).
//   Closures may capture inputs (Tensor) and the output's data Buffer, never the output Tensor
//   itself (that would be a reference cycle).
// * Tensor::backward() (on a one-element tensor) orders the graph topologically, runs every
//   closure once in reverse order, frees the gradients of intermediate tensors as soon as they are
//   consumed, and releases the graph. Leaf gradients (parameters, inputs) accumulate across calls
//   until zero_grad().
// * Parameters are leaves created with Tensor::param(); they always require grad. Activations
//   require grad only when derived from something that does.
// * NoGrad guard: inside it no graph is recorded (inference keeps nothing for backward).
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "lib/alloc.h"

namespace ntc {

using Shape = std::vector<int64_t>;
int64_t numel_of(const Shape& s);  // throws on a negative dimension or an int64 overflow

// While one is active on this thread, Tensor::param allocates at most `elements` values in all,
// and fails before allocating beyond that: a model file's loader sets it from the file's size, so
// a few bytes of config cannot demand gigabytes (nn/model_file.cc). With `unset`, parameters are
// not zeroed either: for a loader that then writes every one of them, or fails.
class ParamBudget {
 public:
  explicit ParamBudget(int64_t elements, bool unset = false);
  ~ParamBudget();
  ParamBudget(const ParamBudget&) = delete;
  ParamBudget& operator=(const ParamBudget&) = delete;

 private:
  int64_t saved_;
  bool saved_unset_;
};
std::string shape_str(const Shape& s);

class Rng;
struct TensorImpl;

// One recorded op: what it read and how to push a gradient back through it.
struct Node {
  const char* op = "";
  std::string layer;  // the module path that recorded it, while a record scope is set (profiling)
  std::vector<std::shared_ptr<TensorImpl>> inputs;
  std::function<void(const float* gy)> backward;  // gy: dL/d(output), numel(output) floats
};

struct TensorImpl {
  Shape shape;
  int64_t numel = 0;  // numel_of(shape), set with it (numel() is called in hot loops)
  Buffer data;
  Buffer grad;  // empty until a gradient is accumulated
  bool requires_grad = false;
  bool is_param = false;
  std::shared_ptr<Node> node;  // producer; null for leaves
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> p) : p_(std::move(p)) {}

  // ---- construction ----
  static Tensor empty(const Shape& s);  // uninitialised (cached memory)
  static Tensor zeros(const Shape& s);
  static Tensor full(const Shape& s, float v);
  static Tensor from(const Shape& s, const std::vector<float>& v);
  static Tensor uniform(const Shape& s, float lo, float hi, Rng& rng);
  static Tensor normal(const Shape& s, float mean, float stddev, Rng& rng);
  static Tensor param(const Shape& s);  // zeros, requires grad, flagged as parameter

  // ---- inspection ----
  bool defined() const { return p_ != nullptr; }
  const Shape& shape() const { return p_->shape; }
  int ndim() const { return int(p_->shape.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const { return p_->numel; }
  float* data() const { return p_->data.data(); }
  const Buffer& buffer() const { return p_->data; }
  float item() const;
  std::vector<float> to_vector() const;

  // ---- autodiff ----
  bool requires_grad() const { return p_->requires_grad; }
  bool is_param() const { return p_->is_param; }
  Tensor& set_requires_grad(bool on);
  bool has_grad() const { return bool(p_->grad); }
  float* grad() const { return p_->grad.data(); }   // null if no gradient yet
  float* grad_acc() const;                          // gradient buffer, zero-allocated on demand
  // For a backward that sets every element of the gradient: when there is none yet, allocates it
  // uninitialised and sets *fresh (write, as if adding into zeros); else grad_acc(), *fresh false.
  float* grad_for_write(bool* fresh) const;
  Tensor grad_tensor() const;                       // copy of the gradient (zeros if none)
  void zero_grad();
  void backward();                                  // from a one-element tensor, seed 1
  // The same, calling leaf_done(leaf) as soon as a leaf's gradient is final (after the last op
  // that reads it has run): lets gradients leave while backward goes on (train/dist.h).
  void backward(const std::function<void(TensorImpl*)>& leaf_done);
  Tensor detach() const;                            // shares data, no graph, no grad
  Tensor clone() const;                             // deep copy of data, no graph
  Tensor reshape(const Shape& s) const;             // view; one dim may be -1

  TensorImpl* impl() const { return p_.get(); }
  const std::shared_ptr<TensorImpl>& ptr() const { return p_; }

 private:
  std::shared_ptr<TensorImpl> p_;
};

// ---- grad mode ----
bool grad_enabled();
class NoGrad {
 public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool prev_;
};

// ---- profiling: while set (on this thread), backward() adds each node's time to ms[op] and,
// for nodes recorded under a record scope, to by_layer[layer path] ----
struct BackwardProfile {
  std::vector<std::pair<std::string, double>> ms;        // op -> milliseconds, in first-seen order
  std::vector<std::pair<std::string, double>> by_layer;  // layer path -> milliseconds
};
void set_backward_profile(BackwardProfile* p);
// While non-null (on this thread), record() copies *path into Node::layer. nn::Module points it
// at the current layer path while a LayerTrace is active; otherwise nodes carry no label.
void set_record_scope(const std::string* path);

// ---- for op implementers ----
// True when grad mode is on and any input requires grad: the op must then call record().
bool needs_grad(std::initializer_list<const Tensor*> inputs);
// Attach the backward closure to `out` (marks it as requiring grad).
void record(Tensor& out, const char* op, std::initializer_list<const Tensor*> inputs,
            std::function<void(const float* gy)> backward);
void record(Tensor& out, const char* op, const std::vector<Tensor>& inputs,
            std::function<void(const float* gy)> backward);

}  // namespace ntc
