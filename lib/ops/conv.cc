// conv2d and conv_transpose2d: im2col/col2im + one OpenBLAS sgemm per image.
//
// Padding (SPEC §1.0, testvectors/README.md): TF/Keras "SAME" via same_pad_conv /
// same_pad_conv_transpose, or any explicit Pad2 (e.g. the SignalConv alignment of the baselines).
// Weight layouts: conv2d w [Cout, Cin, kh, kw]; conv_transpose2d w [Cin, Cout, kh, kw].
//
// Per image n, with col = im2col(x_n) of shape [Cin·kh·kw, Ho·Wo] (geometry in kernels/im2col.h):
//   conv2d            y_n = W[Cout, Cin·k²] · col                 (+ bias)
//     backward        dW += dy_n · colᵀ;   dx_n += col2im(Wᵀ · dy_n);   db += Σ dy
//   conv_transpose2d  y_n = col2im(Wᵀ[Cout·k², Cin] · x_n)          (+ bias)
//     backward        g = im2col(dy_n);  dx_n += W · g;  dW += x_n · gᵀ;  db += Σ dy
// A 1x1 stride-1 unpadded conv skips im2col (col = x_n). Columns are recomputed in backward
// rather than stored (they are k² times larger than the activation).
// Threads: the GEMMs run on OpenBLAS's threads, im2col/col2im on OpenMP's; images are processed
// in order, so for a fixed thread count the result is deterministic.
#include <cblas.h>

#include <algorithm>

#include "kernels/im2col.h"
#include "kernels/kernels.h"
#include "lib/common.h"
#include "lib/flops.h"
#include "lib/ops/ops.h"

namespace ntc {
namespace {

void check_bias(const Tensor& b, int64_t cout, const char* op) {
  if (b.defined())
    NTC_CHECK(b.numel() == cout, op, ": bias ", shape_str(b.shape()), " for ", cout, " channels");
}

bool is_pointwise(const k::ConvGeom& g) {
  return g.kh == 1 && g.kw == 1 && g.stride == 1 && g.pad_t == 0 && g.pad_l == 0 && g.H == g.Ho &&
         g.W == g.Wo;
}

}  // namespace

Pad2 same_pad_conv(int64_t h, int64_t w, int kh, int kw, int s) {
  auto axis = [s](int64_t n, int k, int* before, int* after) {
    int64_t out = (n + s - 1) / s;
    int64_t p = std::max<int64_t>((out - 1) * s + k - n, 0);
    *before = int(p / 2);
    *after = int(p - p / 2);
  };
  Pad2 p;
  axis(h, kh, &p.top, &p.bottom);
  axis(w, kw, &p.left, &p.right);
  return p;
}

Pad2 same_pad_conv_transpose(int kh, int kw, int s) {
  Pad2 p;
  p.top = std::max(kh - s, 0) / 2;
  p.bottom = kh - s - p.top;
  p.left = std::max(kw - s, 0) / 2;
  p.right = kw - s - p.left;
  return p;
}

int64_t conv2d_flops(int64_t cin, int64_t cout, int kh, int kw, int64_t ho, int64_t wo, bool bias) {
  return 2 * int64_t(kh) * kw * cin * cout * ho * wo + (bias ? cout * ho * wo : 0);
}

int64_t conv_transpose2d_flops(int64_t cin, int64_t cout, int kh, int kw, int64_t hin, int64_t win,
                               int64_t hout, int64_t wout, bool bias) {
  return 2 * int64_t(kh) * kw * cin * cout * hin * win + (bias ? cout * hout * wout : 0);
}

// ---------------------------------------------------------------- conv2d
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, Pad2 pad) {
  NTC_CHECK(x.ndim() == 4 && w.ndim() == 4 && x.dim(1) == w.dim(1), "conv2d: x ",
            shape_str(x.shape()), " w ", shape_str(w.shape()));
  NTC_CHECK(stride >= 1 && pad.top >= 0 && pad.bottom >= 0 && pad.left >= 0 && pad.right >= 0,
            "conv2d: bad stride/padding");
  const int N = int(x.dim(0)), Cin = int(x.dim(1)), H = int(x.dim(2)), W = int(x.dim(3));
  const int Cout = int(w.dim(0)), kh = int(w.dim(2)), kw = int(w.dim(3));
  check_bias(b, Cout, "conv2d");
  const int Ho = (H + pad.top + pad.bottom - kh) / stride + 1;
  const int Wo = (W + pad.left + pad.right - kw) / stride + 1;
  NTC_CHECK(Ho > 0 && Wo > 0, "conv2d: empty output for input ", shape_str(x.shape()));
  const k::ConvGeom g{Cin, H, W, kh, kw, stride, pad.top, pad.left, Ho, Wo};
  const int K = Cin * kh * kw, P = Ho * Wo;
  const bool pw = is_pointwise(g);

  Tensor y = Tensor::empty({N, Cout, Ho, Wo});
  Buffer col(pw ? 0 : size_t(K) * P);
  for (int n = 0; n < N; ++n) {
    const float* xn = x.data() + int64_t(n) * Cin * H * W;
    if (!pw) k::im2col(g, xn, col.data());
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, P, K, 1.f, w.data(), K,
                pw ? xn : col.data(), P, 0.f, y.data() + int64_t(n) * Cout * P, P);
  }
  if (b.defined()) k::add_channel(y.data(), b.data(), y.data(), size_t(N), size_t(Cout), size_t(P));
  count_flops("conv2d", int64_t(N) * conv2d_flops(Cin, Cout, kh, kw, Ho, Wo, b.defined()));

  if (needs_grad({&x, &w, &b}))
    record(y, "conv2d", {&x, &w, &b}, [x, w, b, g, N, Cout, K, P, pw](const float* gy) {
      const int64_t xsz = int64_t(g.C) * g.H * g.W;
      Buffer col(pw ? 0 : size_t(K) * P);
      for (int n = 0; n < N; ++n) {
        const float* xn = x.data() + n * xsz;
        const float* gyn = gy + int64_t(n) * Cout * P;
        if (w.requires_grad()) {
          if (!pw) k::im2col(g, xn, col.data());
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cout, K, P, 1.f, gyn, P,
                      pw ? xn : col.data(), P, 1.f, w.grad_acc(), K);
        }
        if (x.requires_grad()) {
          float* gxn = x.grad_acc() + n * xsz;
          if (pw) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, Cout, 1.f, w.data(), K, gyn,
                        P, 1.f, gxn, P);
          } else {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, Cout, 1.f, w.data(), K, gyn,
                        P, 0.f, col.data(), P);
            k::col2im(g, col.data(), gxn);
          }
        }
      }
      if (b.defined() && b.requires_grad())
        k::sum_channel(gy, b.grad_acc(), size_t(N), size_t(Cout), size_t(P));
    });
  return y;
}

Tensor conv2d_same(const Tensor& x, const Tensor& w, const Tensor& b, int stride) {
  NTC_CHECK(x.ndim() == 4 && w.ndim() == 4, "conv2d_same: x ", shape_str(x.shape()));
  return conv2d(x, w, b, stride, same_pad_conv(x.dim(2), x.dim(3), int(w.dim(2)), int(w.dim(3)), stride));
}

// ---------------------------------------------------------------- conv_transpose2d
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, Pad2 pad) {
  NTC_CHECK(x.ndim() == 4 && w.ndim() == 4 && x.dim(1) == w.dim(0), "conv_transpose2d: x ",
            shape_str(x.shape()), " w ", shape_str(w.shape()));
  NTC_CHECK(stride >= 1 && pad.top >= 0 && pad.left >= 0, "conv_transpose2d: bad stride/padding");
  const int N = int(x.dim(0)), Cin = int(x.dim(1)), H = int(x.dim(2)), W = int(x.dim(3));
  const int Cout = int(w.dim(1)), kh = int(w.dim(2)), kw = int(w.dim(3));
  check_bias(b, Cout, "conv_transpose2d");
  const int Ho = (H - 1) * stride + kh - pad.top - pad.bottom;
  const int Wo = (W - 1) * stride + kw - pad.left - pad.right;
  NTC_CHECK(Ho > 0 && Wo > 0, "conv_transpose2d: empty output for input ", shape_str(x.shape()));
  // The output plays the image side of the geometry, the input the column side.
  const k::ConvGeom g{Cout, Ho, Wo, kh, kw, stride, pad.top, pad.left, H, W};
  const int K = Cout * kh * kw, P = H * W;
  const bool pw = is_pointwise(g);
  const int64_t ysz = int64_t(Cout) * Ho * Wo;

  Tensor y = Tensor::empty({N, Cout, Ho, Wo});
  Buffer col(pw ? 0 : size_t(K) * P);
  for (int n = 0; n < N; ++n) {
    const float* xn = x.data() + int64_t(n) * Cin * P;
    float* yn = y.data() + n * ysz;
    if (pw) {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, Cin, 1.f, w.data(), K, xn, P, 0.f,
                  yn, P);
    } else {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, Cin, 1.f, w.data(), K, xn, P, 0.f,
                  col.data(), P);
      k::fill(0.f, yn, size_t(ysz));
      k::col2im(g, col.data(), yn);
    }
  }
  if (b.defined())
    k::add_channel(y.data(), b.data(), y.data(), size_t(N), size_t(Cout), size_t(Ho) * Wo);
  count_flops("conv_transpose2d",
              int64_t(N) * conv_transpose2d_flops(Cin, Cout, kh, kw, H, W, Ho, Wo, b.defined()));

  if (needs_grad({&x, &w, &b}))
    record(y, "conv_transpose2d", {&x, &w, &b}, [x, w, b, g, N, Cin, K, P, pw, ysz](const float* gy) {
      Buffer col(pw ? 0 : size_t(K) * P);
      for (int n = 0; n < N; ++n) {
        const float* gyn = gy + n * ysz;
        const float* gcol = gyn;
        if (!pw) {
          k::im2col(g, gyn, col.data());
          gcol = col.data();
        }
        if (x.requires_grad())
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cin, P, K, 1.f, w.data(), K, gcol,
                      P, 1.f, x.grad_acc() + int64_t(n) * Cin * P, P);
        if (w.requires_grad())
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cin, K, P, 1.f,
                      x.data() + int64_t(n) * Cin * P, P, gcol, P, 1.f, w.grad_acc(), K);
      }
      if (b.defined() && b.requires_grad())
        k::sum_channel(gy, b.grad_acc(), size_t(N), size_t(g.C), size_t(g.H) * g.W);
    });
  return y;
}

Tensor conv_transpose2d_same(const Tensor& x, const Tensor& w, const Tensor& b, int stride) {
  NTC_CHECK(w.ndim() == 4, "conv_transpose2d_same: w ", shape_str(w.shape()));
  return conv_transpose2d(x, w, b, stride, same_pad_conv_transpose(int(w.dim(2)), int(w.dim(3)), stride));
}

}  // namespace ntc
