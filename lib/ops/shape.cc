// Channel concat / slice and depth-to-space: pure data movement; backward moves gradients back.
#include <cstring>

#include "kernels/kernels.h"
#include "lib/common.h"
#include "lib/flops.h"
#include "lib/ops/ops.h"

namespace ntc {

// xs: each [N, C_i, ...] with equal N and trailing dims -> [N, Σ C_i, ...]
Tensor concat_channels(const std::vector<Tensor>& xs) {
  NTC_CHECK(!xs.empty(), "concat_channels of nothing");
  Shape s = xs[0].shape();
  NTC_CHECK(s.size() >= 2, "concat_channels: shape ", shape_str(s));
  const int64_t N = s[0], inner = xs[0].numel() / (s[0] * s[1]);
  int64_t Ctot = 0;
  for (const Tensor& t : xs) {
    Shape ts = t.shape();
    ts[1] = s[1];
    NTC_CHECK(ts == s, "concat_channels: ", shape_str(t.shape()), " vs ", shape_str(xs[0].shape()));
    Ctot += t.dim(1);
  }
  s[1] = Ctot;
  Tensor y = Tensor::empty(s);
  int64_t c0 = 0;
  for (const Tensor& t : xs) {
    const int64_t blk = t.dim(1) * inner;
    for (int64_t n = 0; n < N; ++n)
      std::memcpy(y.data() + (n * Ctot + c0) * inner, t.data() + n * blk, size_t(blk) * sizeof(float));
    c0 += t.dim(1);
  }
  count_flops("concat", 0);
  bool any = false;
  for (const Tensor& t : xs) any |= needs_grad({&t});
  if (any)
    record(y, "concat", xs, [xs, N, Ctot, inner](const float* gy) {
      int64_t c0 = 0;
      for (const Tensor& t : xs) {
        const int64_t blk = t.dim(1) * inner;
        if (t.requires_grad())
          for (int64_t n = 0; n < N; ++n)
            k::add(t.grad_acc() + n * blk, gy + (n * Ctot + c0) * inner, t.grad_acc() + n * blk, size_t(blk));
        c0 += t.dim(1);
      }
    });
  return y;
}

Tensor slice_channels(const Tensor& x, int64_t start, int64_t len) {
  NTC_CHECK(x.ndim() >= 2 && start >= 0 && len > 0 && start + len <= x.dim(1), "slice_channels(",
            start, ", ", len, ") of ", shape_str(x.shape()));
  const int64_t N = x.dim(0), C = x.dim(1), inner = x.numel() / (N * C);
  Shape s = x.shape();
  s[1] = len;
  Tensor y = Tensor::empty(s);
  for (int64_t n = 0; n < N; ++n)
    std::memcpy(y.data() + n * len * inner, x.data() + (n * C + start) * inner,
                size_t(len * inner) * sizeof(float));
  count_flops("slice", 0);
  if (needs_grad({&x}))
    record(y, "slice", {&x}, [x, N, C, start, len, inner](const float* gy) {
      for (int64_t n = 0; n < N; ++n) {
        float* g = x.grad_acc() + (n * C + start) * inner;
        k::add(g, gy + n * len * inner, g, size_t(len * inner));
      }
    });
  return y;
}

Tensor depth_to_space(const Tensor& x, int r) {
  NTC_CHECK(x.ndim() == 4 && r >= 1 && x.dim(1) % (int64_t(r) * r) == 0, "depth_to_space(", r,
            ") of ", shape_str(x.shape()));
  const int64_t N = x.dim(0), Cin = x.dim(1), H = x.dim(2), W = x.dim(3), C = Cin / (r * r);
  Tensor y = Tensor::empty({N, C, H * r, W * r});
  // Visit every (input index, output index) pair once; f(in, out) moves one value.
  auto walk = [=](auto&& f) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t h = 0; h < H; ++h)
          for (int i = 0; i < r; ++i)
            for (int64_t w = 0; w < W; ++w)
              for (int j = 0; j < r; ++j) {
                int64_t in = ((n * Cin + (int64_t(i) * r + j) * C + c) * H + h) * W + w;
                int64_t out = ((n * C + c) * H * r + h * r + i) * W * r + w * r + j;
                f(in, out);
              }
  };
  const float* xv = x.data();
  float* yv = y.data();
  walk([&](int64_t in, int64_t out) { yv[out] = xv[in]; });
  count_flops("depth_to_space", 0);
  if (needs_grad({&x}))
    record(y, "depth_to_space", {&x}, [x, walk](const float* gy) {
      float* gx = x.grad_acc();
      walk([&](int64_t in, int64_t out) { gx[in] += gy[out]; });
    });
  return y;
}

}  // namespace ntc
