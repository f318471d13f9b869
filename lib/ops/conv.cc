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
// A 1x1 stride-1 unpadded conv skips im2col (col = x_n). conv2d runs band by band over output
// rows (band_rows) so col stays cache-sized. Columns are recomputed in backward rather than
// stored (they are k² times larger than the activation).
// Bias costs no extra pass: y_n is first filled with the bias and the GEMM accumulates onto it
// (beta = 1; with beta = 0 OpenBLAS would spend the same pass zeroing y_n). In conv2d's backward
// the bias gradient rides along in the dW GEMM as one extra row of ones appended to col.
// Threads: with at least as many images as threads, images run in parallel (see for_images);
// otherwise the GEMM tiles (lib/gemm.h) and im2col/col2im rows are spread over the threads.
// Forward and backward results are bit-identical for any thread count (weight gradients are
// summed per image, then over images in order).

#include <omp.h>

#include <algorithm>

#include "kernels/im2col.h"
#include "kernels/kernels.h"
#include "kernels/winograd.h"
#include "lib/common.h"
#include "lib/gemm.h"
#include "lib/flops.h"
#include "lib/ops/ops.h"

namespace ntc {
namespace {

void check_bias(const Tensor& b, int64_t cout, const char* op) {
  if (b.defined())
    NTC_CHECK(b.numel() == cout, op, ": bias ", shape_str(b.shape()), " for ", cout, " channels");
}

// y[c, 0:cols] = bias[c] for the C rows of y (row stride ld); the GEMM then accumulates onto it.
void init_bias(float* y, const Tensor& b, int C, int64_t cols, int64_t ld) {
  for (int c = 0; c < C; ++c) k::fill(b.data()[c], y + c * ld, size_t(cols));
}

// conv2d works on bands of about kBandCols output columns (whole output rows), so that the
// band's columns stay in cache between im2col and the GEMM; GEMMs this wide run at full speed.
constexpr int64_t kBandCols = 4096;
int band_rows(int Ho, int Wo) { return int(std::clamp<int64_t>((kBandCols + Wo - 1) / Wo, 1, Ho)); }
k::ConvGeom band(const k::ConvGeom& g, int oy0, int rows) {
  k::ConvGeom b = g;
  b.oy0 = oy0;
  b.oy1 = std::min(g.Ho, oy0 + rows);
  return b;
}

// Images of a batch run on separate threads when there are at least as many images as threads;
// otherwise one image at a time with im2col and the GEMM tiles (lib/gemm.h) on all threads. Both
// ways compute every output element with the same instructions (gemm's tile grid depends only on
// the shape), so results are identical for any thread count.
int image_workers(int N) {
  const int T = omp_in_parallel() ? 1 : omp_get_max_threads();
  return N >= T && T > 1 ? T : 1;
}
template <typename F>  // f(n, col, worker)
void for_images(int N, size_t col_floats, F&& f) {
  const int workers = image_workers(N);
  if (workers == 1) {
    Buffer col(col_floats);
    for (int n = 0; n < N; ++n) f(n, col.data(), 0);
    return;
  }
#pragma omp parallel num_threads(workers)
  {
    Buffer col(col_floats);
    const int t = omp_get_thread_num();
    // Contiguous static blocks: worker t gets images [t·N/workers, (t+1)·N/workers).
    for (int n = int(int64_t(t) * N / workers); n < int(int64_t(t + 1) * N / workers); ++n)
      f(n, col.data(), t);
  }
}

// 3×3, stride 1, one pixel of padding on every side, wide enough to pay for the transforms: the
// forward pass runs Winograd F(2×2, 3×3) (kernels/winograd.h), 2.25× fewer multiplies. Backward
// passes stay on im2col (the gradient of the same function; the two agree to rounding).
bool use_winograd(int kh, int kw, int stride, Pad2 p, int cin, int cout) {
  return kh == 3 && kw == 3 && stride == 1 && p.top == 1 && p.bottom == 1 && p.left == 1 && p.right == 1 && cin >= 16 &&
         cout >= 16;
}

// y [N, Cout, H, W] from x [N, Cin, H, W] and U [16, Cout, Cin]: per image, transform the input
// tiles, 16 GEMMs (lib/gemm.h), transform back and add the bias.
void winograd_forward(const Tensor& x, const Buffer& U, int Cout, const Tensor& b, Tensor& y) {
  const int N = int(x.dim(0)), Cin = int(x.dim(1)), H = int(x.dim(2)), W = int(x.dim(3));
  const int T = k::winograd_tiles(H, W);
  Buffer V(size_t(16) * Cin * T), M(size_t(16) * Cout * T);
  for (int n = 0; n < N; ++n) {
    k::winograd_input(x.data() + int64_t(n) * Cin * H * W, Cin, H, W, V.data(), T, 0);
    for (int e = 0; e < 16; ++e)
      gemm(false, false, Cout, T, Cin, 1.f, U.data() + int64_t(e) * Cout * Cin, Cin,
           V.data() + int64_t(e) * Cin * T, T, 0.f, M.data() + int64_t(e) * Cout * T, T);
    k::winograd_output(M.data(), Cout, H, W, T, 0, b.defined() ? b.data() : nullptr,
                       y.data() + int64_t(n) * Cout * H * W);
  }
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
  const int K = Cin * kh * kw, P = Ho * Wo, br = band_rows(Ho, Wo);
  const bool pw = is_pointwise(g);
  const float beta = b.defined() ? 1.f : 0.f;

  Tensor y = Tensor::empty({N, Cout, Ho, Wo});
  // One image with im2col + GEMM; col: this thread's band buffer.
  auto image = [&](int n, float* col) {
    const float* xn = x.data() + int64_t(n) * Cin * H * W;
    float* yn = y.data() + int64_t(n) * Cout * P;
    if (pw) {
      if (b.defined()) init_bias(yn, b, Cout, P, P);
      gemm(false, false, Cout, P, K, 1.f, w.data(), K, xn, P, beta, yn, P);
      return;
    }
    for (int oy0 = 0; oy0 < Ho; oy0 += br) {
      const k::ConvGeom gb = band(g, oy0, br);
      const int cols = int(gb.band_cols());
      float* yb = yn + int64_t(oy0) * Wo;
      k::im2col(gb, xn, col);
      if (b.defined()) init_bias(yb, b, Cout, cols, P);  // band by band: stays in cache
      gemm(false, false, Cout, cols, K, 1.f, w.data(), K, col, cols, beta, yb, P);
    }
  };
  if (use_winograd(kh, kw, stride, pad, Cin, Cout)) {
    Buffer U(size_t(16) * Cout * Cin);
    k::winograd_weights(w.data(), Cout, Cin, U.data());
    winograd_forward(x, U, Cout, b, y);
  } else {
    for_images(N, pw ? 0 : size_t(K) * size_t(br) * Wo, [&](int n, float* col, int) { image(n, col); });
  }
  count_flops("conv2d", int64_t(N) * conv2d_flops(Cin, Cout, kh, kw, Ho, Wo, b.defined()));

  if (needs_grad({&x, &w, &b}))
    record(y, "conv2d", {&x, &w, &b}, [x, w, b, g, N, Cout, K, P, br, pw](const float* gy) {
      const int64_t xsz = int64_t(g.C) * g.H * g.W;
      const bool gb = b.defined() && b.requires_grad();
      // dW and db in one GEMM: [dW | db] += dy · [col; 1]ᵀ, with a row of ones under col.
      const bool fused = gb && w.requires_grad() && !pw;
      const int Ka = fused ? K + 1 : K;
      // Per-image [dW | db] partial sums, added in image order at the end: the result does not
      // depend on how images were spread over threads.
      Buffer gwb = w.requires_grad() ? Buffer::zeros(size_t(N) * Cout * Ka) : Buffer();
      auto image = [&](int n, float* col, int) {
        const float* xn = x.data() + n * xsz;
        const float* gyn = gy + int64_t(n) * Cout * P;
        float* gw = w.requires_grad() ? gwb.data() + int64_t(n) * Cout * Ka : nullptr;
        float* gxn = x.requires_grad() ? x.grad_acc() + n * xsz : nullptr;
        if (pw) {
          if (gw)
            gemm(false, true, Cout, K, P, 1.f, gyn, P, xn, P, 1.f, gw, K);
          if (gxn)
            gemm(true, false, K, P, Cout, 1.f, w.data(), K, gyn, P, 1.f, gxn, P);
          return;
        }
        for (int oy0 = 0; oy0 < g.Ho; oy0 += br) {
          const k::ConvGeom gbd = band(g, oy0, br);
          const int cols = int(gbd.band_cols());
          const float* gyb = gyn + int64_t(oy0) * g.Wo;
          if (gw) {
            k::im2col(gbd, xn, col);
            if (fused) k::fill(1.f, col + int64_t(K) * cols, size_t(cols));
            gemm(false, true, Cout, Ka, cols, 1.f, gyb, P, col, cols, 1.f, gw, Ka);
          }
          if (gxn) {
            gemm(true, false, K, cols, Cout, 1.f, w.data(), K, gyb, P, 0.f, col, cols);
            k::col2im(gbd, col, gxn);
          }
        }
      };
      if (x.requires_grad()) x.grad_acc();  // allocate before the workers start
      for_images(N, pw ? 0 : size_t(Ka) * size_t(br) * g.Wo, image);
      if (w.requires_grad()) {
        float* gwo = w.grad_acc();
        float* gbias = fused ? b.grad_acc() : nullptr;
        for (int n = 0; n < N; ++n) {
          const float* src = gwb.data() + int64_t(n) * Cout * Ka;
          for (int o = 0; o < Cout; ++o) {
            k::add(gwo + int64_t(o) * K, src + int64_t(o) * Ka, gwo + int64_t(o) * K, size_t(K));
            if (fused) gbias[o] += src[int64_t(o) * Ka + K];
          }
        }
      }
      if (gb && !fused) k::sum_channel(gy, b.grad_acc(), size_t(N), size_t(Cout), size_t(P));
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
  const bool wino = use_winograd(kh, kw, stride, pad, Cin, Cout);
  if (wino) {
    Buffer U(size_t(16) * Cout * Cin);
    k::winograd_weights_transposed(w.data(), Cin, Cout, U.data());
    winograd_forward(x, U, Cout, b, y);
  }
  for (int n = 0; n < N && !wino; ++n) {
    const float* xn = x.data() + int64_t(n) * Cin * P;
    float* yn = y.data() + n * ysz;
    if (b.defined()) init_bias(yn, b, Cout, int64_t(Ho) * Wo, int64_t(Ho) * Wo);
    else k::fill(0.f, yn, size_t(ysz));
    if (pw) {
      gemm(true, false, K, P, Cin, 1.f, w.data(), K, xn, P, 1.f, yn, P);
    } else {
      gemm(true, false, K, P, Cin, 1.f, w.data(), K, xn, P, 0.f, col.data(), P);
      k::col2im(g, col.data(), yn);
    }
  }
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
          gemm(false, false, Cin, P, K, 1.f, w.data(), K, gcol, P, 1.f, x.grad_acc() + int64_t(n) * Cin * P, P);
        if (w.requires_grad())
          gemm(false, true, Cin, K, P, 1.f, x.data() + int64_t(n) * Cin * P, P, gcol, P, 1.f, w.grad_acc(), K);
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
