// add / sub / mul / div with broadcasting, and the scalar affine ops.
//
// Broadcast kinds (the only ones the paper's networks need):
//   Same     a and b have the same shape
//   Scalar   b has one element
//   Channel  b is [C] or [1,C,1,1]; a is [N,C,...]; b[c] applies to the whole plane (n, c)
// For add and mul a broadcast left operand is handled by swapping (they commute).
#include <vector>

#include "kernels/kernels.h"
#include "lib/common.h"
#include "lib/flops.h"
#include "lib/ops/ops.h"

namespace ntc {
namespace {

enum class Bcast { Same, Scalar, Channel };

struct Layout {  // a viewed as [outer, C, inner]
  size_t outer = 1, C = 1, inner = 1;
};

bool is_channel_vector(const Tensor& b, int64_t C) {
  if (b.numel() != C) return false;
  if (b.ndim() == 1) return true;
  for (int i = 0; i < b.ndim(); ++i)
    if (i != 1 && b.dim(i) != 1) return false;
  return b.ndim() >= 2;
}

Bcast classify(const Tensor& a, const Tensor& b, const char* op, Layout* L) {
  if (a.shape() == b.shape()) return Bcast::Same;
  if (b.numel() == 1) return Bcast::Scalar;
  if (a.ndim() >= 2 && is_channel_vector(b, a.dim(1))) {
    L->outer = size_t(a.dim(0));
    L->C = size_t(a.dim(1));
    L->inner = size_t(a.numel() / (a.dim(0) * a.dim(1)));
    return Bcast::Channel;
  }
  fail(op, ": cannot broadcast ", shape_str(b.shape()), " onto ", shape_str(a.shape()));
}

// Expand b (scalar or channel vector) to the full shape of a.
Buffer expand(const Tensor& b, Bcast kind, const Layout& L, size_t n) {
  Buffer e(n);
  if (kind == Bcast::Scalar) {
    k::fill(b.data()[0], e.data(), n);
  } else {
    k::fill(0.f, e.data(), n);
    k::add_channel(e.data(), b.data(), e.data(), L.outer, L.C, L.inner);
  }
  return e;
}

// gb += reduction of g (times x when x != null) to b's broadcast shape.
void reduce_into(const Tensor& b, Bcast kind, const Layout& L, const float* g, const float* x,
                 size_t n, float sign) {
  float* gb = b.grad_acc();
  if (kind == Bcast::Same) {
    if (x) k::mul_acc(g, x, gb, n);  // only mul passes x, with sign +1
    else k::axpy(sign, g, gb, n);
  } else if (kind == Bcast::Scalar) {
    gb[0] += float(sign * (x ? k::dot(g, x, n) : k::sum(g, n)));
  } else {
    std::vector<float> acc(L.C, 0.f);
    if (x) k::dot_channel(g, x, acc.data(), L.outer, L.C, L.inner);
    else k::sum_channel(g, acc.data(), L.outer, L.C, L.inner);
    for (size_t c = 0; c < L.C; ++c) gb[c] += sign * acc[c];
  }
}

Tensor add_sub(const Tensor& a0, const Tensor& b0, float sign) {
  const char* op = sign > 0 ? "add" : "sub";
  bool swap = sign > 0 && a0.numel() < b0.numel();
  const Tensor& a = swap ? b0 : a0;
  const Tensor& b = swap ? a0 : b0;
  Layout L;
  Bcast kind = classify(a, b, op, &L);
  size_t n = size_t(a.numel());
  Tensor y = Tensor::empty(a.shape());
  if (kind == Bcast::Same) {
    (sign > 0 ? k::add : k::sub)(a.data(), b.data(), y.data(), n);
  } else if (kind == Bcast::Scalar) {
    k::add_scalar(sign * b.data()[0], a.data(), y.data(), n);
  } else if (sign > 0) {
    k::add_channel(a.data(), b.data(), y.data(), L.outer, L.C, L.inner);
  } else {
    std::vector<float> nb(L.C);
    for (size_t c = 0; c < L.C; ++c) nb[c] = -b.data()[c];
    k::add_channel(a.data(), nb.data(), y.data(), L.outer, L.C, L.inner);
  }
  count_flops(op, elementwise_flops(int64_t(n)));
  if (needs_grad({&a, &b})) {
    record(y, op, {&a, &b}, [a, b, kind, L, n, sign](const float* gy) {
      if (a.requires_grad()) k::add(a.grad_acc(), gy, a.grad_acc(), n);
      if (b.requires_grad()) reduce_into(b, kind, L, gy, nullptr, n, sign);
    });
  }
  return y;
}

}  // namespace

int64_t elementwise_flops(int64_t n_out) { return n_out; }

Tensor add(const Tensor& a, const Tensor& b) { return add_sub(a, b, 1.f); }
Tensor sub(const Tensor& a, const Tensor& b) { return add_sub(a, b, -1.f); }

Tensor mul(const Tensor& a0, const Tensor& b0) {
  bool swap = a0.numel() < b0.numel();
  const Tensor& a = swap ? b0 : a0;
  const Tensor& b = swap ? a0 : b0;
  Layout L;
  Bcast kind = classify(a, b, "mul", &L);
  size_t n = size_t(a.numel());
  Tensor y = Tensor::empty(a.shape());
  if (kind == Bcast::Same) k::mul(a.data(), b.data(), y.data(), n);
  else if (kind == Bcast::Scalar) k::scale(b.data()[0], a.data(), y.data(), n);
  else k::mul_channel(a.data(), b.data(), y.data(), L.outer, L.C, L.inner);
  count_flops("mul", elementwise_flops(int64_t(n)));
  if (needs_grad({&a, &b})) {
    record(y, "mul", {&a, &b}, [a, b, kind, L, n](const float* gy) {
      if (a.requires_grad()) {  // ga += gy * b
        if (kind == Bcast::Same) {
          k::mul_acc(gy, b.data(), a.grad_acc(), n);
        } else {
          Buffer e = expand(b, kind, L, n);
          k::mul_acc(gy, e.data(), a.grad_acc(), n);
        }
      }
      if (b.requires_grad()) reduce_into(b, kind, L, gy, a.data(), n, 1.f);  // gb += Σ gy * a
    });
  }
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Layout L;
  Bcast kind = classify(a, b, "div", &L);
  size_t n = size_t(a.numel());
  Tensor y = Tensor::empty(a.shape());
  Buffer e;  // b expanded to a's shape (kept for backward)
  if (kind == Bcast::Same) {
    k::div(a.data(), b.data(), y.data(), n);
  } else {
    e = expand(b, kind, L, n);
    k::div(a.data(), e.data(), y.data(), n);
  }
  count_flops("div", elementwise_flops(int64_t(n)));
  if (needs_grad({&a, &b})) {
    Buffer yb = y.buffer();
    record(y, "div", {&a, &b}, [a, b, kind, L, n, e, yb](const float* gy) {
      const float* bb = kind == Bcast::Same ? b.data() : e.data();
      if (a.requires_grad()) k::div_acc(gy, bb, a.grad_acc(), n);  // ga += gy / b
      if (b.requires_grad()) {                                     // gb += -gy * y / b
        if (kind == Bcast::Same) {
          k::div_bwd_b(gy, yb.data(), bb, b.grad_acc(), n);
        } else {
          Buffer t = Buffer::zeros(n);
          k::div_bwd_b(gy, yb.data(), bb, t.data(), n);
          reduce_into(b, kind, L, t.data(), nullptr, n, 1.f);
        }
      }
    });
  }
  return y;
}

Tensor add_scalar(const Tensor& x, float c) {
  size_t n = size_t(x.numel());
  Tensor y = Tensor::empty(x.shape());
  k::add_scalar(c, x.data(), y.data(), n);
  count_flops("add_scalar", int64_t(n));
  if (needs_grad({&x}))
    record(y, "add_scalar", {&x}, [x, n](const float* gy) { k::add(x.grad_acc(), gy, x.grad_acc(), n); });
  return y;
}

Tensor mul_scalar(const Tensor& x, float c) {
  size_t n = size_t(x.numel());
  Tensor y = Tensor::empty(x.shape());
  k::scale(c, x.data(), y.data(), n);
  count_flops("mul_scalar", int64_t(n));
  if (needs_grad({&x}))
    record(y, "mul_scalar", {&x}, [x, n, c](const float* gy) { k::axpy(c, gy, x.grad_acc(), n); });
  return y;
}

}  // namespace ntc
