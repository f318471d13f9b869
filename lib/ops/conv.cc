// conv2d and conv_transpose2d: im2col/col2im + GEMM (lib/gemm.h).
//
// Padding (SPEC §1.0, testvectors/README.md): TF/Keras "SAME" via same_pad_conv /
// same_pad_conv_transpose, or any explicit Pad2 (e.g. the SignalConv alignment of the baselines).
// Weight layouts: conv2d w [Cout, Cin, kh, kw]; conv_transpose2d w [Cin, Cout, kh, kw].
//
// With col = im2col(x) of shape [Cin·kh·kw, columns] (geometry in kernels/im2col.h):
//   conv2d            y = W[Cout, Cin·k²] · col                 (+ bias)
//     backward        dW += dy · colᵀ;   dx += col2im(Wᵀ · dy);   db += Σ dy
//   conv_transpose2d  y = col2im(Wᵀ[Cout·k², Cin] · x)          (+ bias)
//     backward        g = im2col(dy);  dx += W · g;  dW += x · gᵀ;  db += Σ dy
// The columns of one GEMM are a "chunk" of about kChunkCols (work units, see Item): a band of
// output rows of one large image, so that col stays cache-sized, or several small images side by
// side, so that GEMMs on 8×8 latents are still wide. A 1x1 stride-1 unpadded conv2d skips im2col.
// Columns are recomputed in backward rather than stored (they are k² times larger than x).
// Implicit GEMM: where gemm() runs ntc's kernel (gemm_takes_panels()), col is never materialised:
// the kernel asks for each k-block of its B panels and k::im2col_panels(_t) builds them from x (or
// dy) in cache; conv2d's input gradient Wᵀ·dy is computed a few channels at a time (its columns
// cache-resident until col2im adds them up) from dy packed once. Measured (bench conv --set light,
// 2 threads): g_a.conv2 forward 291 against 252 GFLOP/s, backward 261 against 243. With OpenBLAS
// the columns are materialised as before; both paths are tested against each other.
// Bias costs no extra pass: y is first filled with the bias and the GEMM accumulates onto it
// (with beta = 0 OpenBLAS would spend the same pass zeroing y). In conv2d's backward the bias
// gradient rides along in the dW GEMM as one extra row of ones under col.
// 3×3 stride-1 convolutions with >= 128 channels in and out run Winograd F(2×2,3×3) forward
// (kernels/winograd.h); their backward stays on im2col.
// Precision: conv2d takes conv_precision() (lib/gemm.h) when it is called and uses it for all
// three products of that call, forward and backward (no Winograd in bf16). conv_transpose2d is
// always fp32 (it serves only synthesis transforms, which stay fp32).
// Threads: work items run in parallel when there are at least as many as threads (each item owns
// its images' outputs and its own weight-gradient partial sum); otherwise items run in order with
// the GEMM tiles and im2col/col2im rows spread over the threads. Every output element is computed
// by the same instructions either way, and partial sums are added in item order, so forward and
// backward results are bit-identical for any thread count.

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/conv3x3.h"
#include "kernels/im2col.h"
#include "kernels/kernels.h"
#include "kernels/pointwise.h"
#include "kernels/winograd.h"
#include "lib/common.h"
#include "lib/flops.h"
#include "lib/gemm.h"
#include "lib/ops/items.h"
#include "lib/ops/ops.h"

namespace ntc {
namespace {

// 1024: col of a 3×3 96-channel layer is 3.5 MB, cache-resident. Measured with ntc bench train
// (jpegl, 8×128², 2 threads, interleaved runs): 1–6% faster steps than 4096, and no change in
// bench decode or bench sga.
constexpr int64_t kChunkCols = 1024;
// Columns computed a few channels at a time (conv2d's input gradient, conv_transpose2d's forward)
// stay within this many floats: 512 KB, half of a Zen 5 core's L2.
constexpr int64_t kColumnBlockFloats = int64_t(1) << 17;

void check_bias(const Tensor& b, int64_t cout, const char* op) {
  if (b.defined())
    NTC_CHECK(b.numel() == cout, op, ": bias ", shape_str(b.shape()), " for ", cout, " channels");
}

// y[c, 0:cols] = bias[c] (or 0) for the C rows of y (row stride ld); the GEMM then accumulates.
void init_rows(float* y, const Tensor& b, int C, int64_t cols, int64_t ld) {
  for (int c = 0; c < C; ++c) k::fill(b.defined() ? b.data()[c] : 0.f, y + c * ld, size_t(cols));
}

// dst[i][c][0:P] (image stride dstride) <-> src[c][i·P : (i+1)·P] (row stride ld): the layout of
// G images side by side in one GEMM operand.
void gather(const float* src_images, int64_t istride, int G, int C, int64_t P, float* dst, int64_t ld) {
  for (int i = 0; i < G; ++i)
    for (int c = 0; c < C; ++c) std::memcpy(dst + c * ld + i * P, src_images + i * istride + c * P, size_t(P) * 4);
}
void scatter(const float* src, int64_t ld, int G, int C, int64_t P, float* dst_images, int64_t istride, bool accumulate) {
  for (int i = 0; i < G; ++i)
    for (int c = 0; c < C; ++c) {
      float* d = dst_images + i * istride + c * P;
      if (accumulate) k::add(d, src + c * ld + i * P, d, size_t(P));
      else std::memcpy(d, src + c * ld + i * P, size_t(P) * 4);
    }
}

// A work item: images [n0, n1). A single large image is processed in bands of `rows` output
// rows; several small images (P < kChunkCols) share one GEMM.
struct Item {
  int n0, n1;
};
struct Plan {
  std::vector<Item> items;
  int band_rows;       // output rows per band (single-image items)
  int64_t max_cols;    // widest GEMM
};
Plan plan(int N, int rows, int row_cols) {
  Plan p;
  const int64_t P = int64_t(rows) * row_cols;
  if (P >= kChunkCols) {
    p.band_rows = int(std::clamp<int64_t>((kChunkCols + row_cols - 1) / row_cols, 1, rows));
    for (int n = 0; n < N; ++n) p.items.push_back({n, n + 1});
    p.max_cols = int64_t(p.band_rows) * row_cols;
  } else {
    const int G = int(std::max<int64_t>(1, kChunkCols / P));
    for (int n = 0; n < N; n += G) p.items.push_back({n, std::min(N, n + G)});
    p.band_rows = rows;
    p.max_cols = int64_t(std::min(G, N)) * P;
  }
  return p;
}

// Sums per-item partial weight gradients [items][rows][ld] in item order into gw [rows][K] and,
// when ld = K + 1, the last column into gb.
void reduce_partials(const Buffer& part, size_t items, int rows, int K, int ld, float* gw, float* gb) {
  for (size_t j = 0; j < items; ++j) {
    const float* src = part.data() + j * size_t(rows) * size_t(ld);
    for (int o = 0; o < rows; ++o) {
      k::add(gw + int64_t(o) * K, src + int64_t(o) * ld, gw + int64_t(o) * K, size_t(K));
      if (gb) gb[o] += src[int64_t(o) * ld + K];
    }
  }
}

// 3×3, stride 1, one pixel of padding on every side, and wide enough that the 16 GEMMs (Cout × Cin
// each) run near full speed: measured (ntc bench conv) a loss at 96→96, a 2× gain at 480→640.
bool use_winograd(int kh, int kw, int stride, Pad2 p, int cin, int cout) {
  return kh == 3 && kw == 3 && stride == 1 && p.top == 1 && p.bottom == 1 && p.left == 1 && p.right == 1 && cin >= 128 &&
         cout >= 128;
}

// y [N, Cout, H, W] from x [N, Cin, H, W] and U [16, Cout, Cin]: groups of images side by side
// (about kChunkCols tiles), input tiles transformed, 16 GEMMs, transformed back plus bias.
void winograd_forward(const Tensor& x, const Buffer& U, int Cout, const Tensor& b, Tensor& y) {
  const int N = int(x.dim(0)), Cin = int(x.dim(1)), H = int(x.dim(2)), W = int(x.dim(3));
  const int T = k::winograd_tiles(H, W);
  const int G = int(std::clamp<int64_t>(kChunkCols / T, 1, N));
  const int64_t ld = int64_t(G) * T;
  Buffer V(size_t(16) * Cin * ld), M(size_t(16) * Cout * ld);
  for (int n0 = 0; n0 < N; n0 += G) {
    const int g = std::min(G, N - n0);
    const int64_t cols = int64_t(g) * T;
    for (int i = 0; i < g; ++i)
      k::winograd_input(x.data() + int64_t(n0 + i) * Cin * H * W, Cin, H, W, V.data(), ld, int64_t(i) * T);
    for (int e = 0; e < 16; ++e)
      gemm(false, false, Cout, int(cols), Cin, 1.f, U.data() + int64_t(e) * Cout * Cin, Cin,
           V.data() + int64_t(e) * Cin * ld, int(ld), 0.f, M.data() + int64_t(e) * Cout * ld, int(ld));
    for (int i = 0; i < g; ++i)
      k::winograd_output(M.data(), Cout, H, W, ld, int64_t(i) * T, b.defined() ? b.data() : nullptr,
                         y.data() + int64_t(n0 + i) * Cout * H * W);
  }
}

// The portable form of a Winograd transposed conv (kernels/winograd.h, lib/gemm.h's
// PortableWinograd): U transformed (and packed for ntc's kernel) once; then blocks of about
// kWinogradBlockTiles tiles (whole rows of tiles), each transformed into V (tiles × Cin), 16 GEMMs
// M[ξ] = V[ξ]·U[ξ] and transformed back: V and M of a block (1.7 MB for h_s's last layer on a
// Kodak image) stay in cache and are reused, instead of matrices of all tiles in fresh memory.
// Measured (h_s's last layer, 176 → 384 channels at 32×48, one Zen 4 thread): 10.3 ms against
// 18.6 for the direct form; blocks of 24 to 384 tiles all took 10.2–10.7 ms. Blocks go to the
// threads as items; every value is computed the same way whichever thread takes its block.
constexpr int kWinogradBlockTiles = 48;
bool is_portable_winograd(int kh, int kw, int stride, Pad2 p) {
  return kh == 3 && kw == 3 && stride == 1 && p.top == 1 && p.bottom == 1 && p.left == 1 && p.right == 1;
}
void winograd_transposed_portable(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
  const int N = int(x.dim(0)), Cin = int(x.dim(1)), H = int(x.dim(2)), W = int(x.dim(3)), Cout = int(w.dim(1));
  const int tw = (W + 1) / 2, T = k::winograd_tiles(H, W);
  const int nb = std::min(T, std::max(1, kWinogradBlockTiles / tw) * tw), blocks = (T + nb - 1) / nb;
  const bool panels = gemm_takes_panels();
  const int nr = panels ? int(k::sgemm_nr()) : 0;
  NTC_CHECK(nr % 16 == 0, "winograd: ", nr, "-column panels");
  const int64_t plane = panels ? int64_t(k::packed_b_floats(Cin, Cout)) : int64_t(Cin) * Cout;
  Buffer U(size_t(16 * plane));
  k::winograd_weights_transposed_kn(w.data(), Cin, Cout, U.data(), plane, nr);
  std::vector<k::PackedB> packed(16);  // (with panels)
  for (int e = 0; e < 16 && panels; ++e) packed[e] = {U.data() + e * plane, size_t((Cout + nr - 1) / nr * nr)};
  const int64_t xsz = int64_t(Cin) * H * W, ysz = int64_t(Cout) * H * W;
  const int64_t v_floats = int64_t(16) * nb * Cin, m_floats = int64_t(16) * nb * Cout;
  for_items(size_t(N) * blocks, size_t(v_floats + m_floats), [&](size_t j, float* s) {
    const int n = int(j / blocks), t0 = int(j % blocks) * nb, nt = std::min(nb, T - t0);
    float *V = s, *M = s + v_floats;
    k::winograd_input_tiles(x.data() + n * xsz, Cin, H, W, t0, nt, V);
    for (int e = 0; e < 16; ++e) {
      const float* a = V + int64_t(e) * nt * Cin;
      float* c = M + int64_t(e) * nt * Cout;
      if (panels) gemm_panels(false, nt, Cout, Cin, 1.f, a, Cin, {k::packed_b_panels, &packed[e]}, 0.f, c, Cout);
      else gemm(false, false, nt, Cout, Cin, 1.f, a, Cin, U.data() + e * plane, Cout, 0.f, c, Cout);
    }
    k::winograd_output_tiles(M, Cout, H, W, t0, nt, b.defined() ? b.data() : nullptr, y.data() + n * ysz);
  });
}

k::ConvGeom band(k::ConvGeom g, int oy0, int oy1) {
  g.oy0 = oy0;
  g.oy1 = oy1;
  return g;
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

namespace {

// 1×1 convolutions with at most this many weights (Cin·Cout) run the direct kernel
// (kernels/pointwise.h) in training: on the overfitted codec's five 1×1 layers over a Kodak-sized
// plane (Zen 4) the forwards took 11.3 ms against 17.8 on one thread and 5.2 against 19.9 on two,
// the backwards 25.6 against 56.7 and 13.2 against 58.5 (the GEMM path did not gain from a second
// thread on one image). The GEMM's register tiles win from about 1,024 weights on: 32→32 took
// 5.7 + 13.8 ms direct against 4.9 + 11.2 as a GEMM, 16→64 the same either way, 64→64 20.9 + 88.8
// against 13.4 + 32.1; 64→2 still 2.8 + 3.3 against 3.2 + 9.4 (one thread, 256×384).
constexpr int kPointwiseMaxWeights = 512;
// Pixels per chunk of rows of the direct 3×3 kernel (rows = this / width, at least one).
constexpr int64_t kChunkRowsPixels = 8192;

// y = conv2d(x, w, b) for a 1×1 kernel, stride 1, no padding: each image in chunks of
// k::kPointwiseChunk pixels, in parallel; the weight and bias gradients are per-chunk partial sums
// added in chunk order, so every result is the same for any thread count.
// relu: y = relu(conv2d(x, w, b)) in one op (pointwise_relu): each chunk's outputs are clipped
// while in cache, and the backward masks dy by y > 0 a chunk at a time into thread-local scratch,
// instead of a pre-activation tensor, a ReLU pass each way and a gradient buffer between them.
Tensor conv2d_pointwise(const Tensor& x, const Tensor& w, const Tensor& b, bool relu = false) {
  const int N = int(x.dim(0)), Cin = int(x.dim(1)), Cout = int(w.dim(0));
  const int64_t P = x.dim(2) * x.dim(3);
  const int64_t chunks = (P + k::kPointwiseChunk - 1) / k::kPointwiseChunk;
  const size_t items = size_t(N) * size_t(chunks);
  Tensor y = Tensor::empty({N, Cout, x.dim(2), x.dim(3)});
  auto span = [P, chunks](size_t j, int* n, int64_t* p0, int64_t* len) {
    *n = int(int64_t(j) / chunks);
    *p0 = (int64_t(j) % chunks) * k::kPointwiseChunk;
    *len = std::min(k::kPointwiseChunk, P - *p0);
  };
  for_items(items, 0, [&](size_t j, float*) {
    int n;
    int64_t p0, len;
    span(j, &n, &p0, &len);
    float* yj = y.data() + n * Cout * P + p0;
    k::pointwise_fwd(x.data() + n * Cin * P + p0, P, Cin, w.data(), b.defined() ? b.data() : nullptr, Cout, yj, P, len);
    if (relu)
      for (int o = 0; o < Cout; ++o) k::relu_fwd(yj + o * P, yj + o * P, size_t(len));
  });
  count_flops("conv2d", int64_t(N) * conv2d_flops(Cin, Cout, 1, 1, x.dim(2), x.dim(3), b.defined()));
  if (relu) count_flops("relu", 0);
  if (needs_grad({&x, &w, &b})) {
    const Buffer yb = relu ? y.buffer() : Buffer();  // the output's data, never the output Tensor (lib/tensor.h)
    record(y, relu ? "conv2d_relu" : "conv2d", {&x, &w, &b}, [x, w, b, N, Cin, Cout, P, items, span, yb](const float* gy_in) {
      const bool gw = w.requires_grad(), gb = b.defined() && b.requires_grad();
      bool dx_write = false;  // x has no gradient yet: every chunk sets its part, no zeroing first
      float* dx = x.requires_grad() ? x.grad_for_write(&dx_write) : nullptr;  // before the workers start
      const size_t stride = size_t(Cout) * size_t(Cin + 1);                  // one item's partial [gw | gb]
      Buffer part = gw || gb ? Buffer(items * stride) : Buffer();
      for_items(items, 0, [&](size_t j, float*) {
        int n;
        int64_t p0, len;
        span(j, &n, &p0, &len);
        float* pj = gw || gb ? part.data() + j * stride : nullptr;
        const float* gy = gy_in + n * Cout * P + p0;
        int64_t ldg = P;
        if (yb) {  // dy·[y > 0] for this chunk: the ReLU's backward, written in one pass
          thread_local std::vector<float> masked;
          if (masked.size() < size_t(Cout) * size_t(len)) masked.resize(size_t(Cout) * size_t(len));
          for (int o = 0; o < Cout; ++o)
            k::relu_mask(yb.data() + n * Cout * P + p0 + o * P, gy + o * P, masked.data() + o * len, size_t(len));
          gy = masked.data();
          ldg = len;
        }
        k::pointwise_bwd(x.data() + n * Cin * P + p0, P, Cin, w.data(), gy, ldg, Cout,
                         dx ? dx + n * Cin * P + p0 : nullptr, P, gw ? pj : nullptr, gb ? pj + size_t(Cout) * Cin : nullptr,
                         len, dx_write);
      });
      for (size_t j = 0; j < items && (gw || gb); ++j) {
        const float* pj = part.data() + j * stride;
        if (gw) k::add(w.grad_acc(), pj, w.grad_acc(), size_t(Cout) * Cin);
        if (gb) k::add(b.grad_acc(), pj + size_t(Cout) * Cin, b.grad_acc(), size_t(Cout));
      }
      count_flops("conv2d_backward", 2 * int64_t(N) * Cin * Cout * P * (int(gw) + int(dx != nullptr)));
    });
  }
  return y;
}

// y = conv2d(x, w, b) for a 3×3 kernel, stride 1, one pixel of padding, at most 4 channels in and
// out (kernels/conv3x3.h): each image in chunks of rows, in parallel; the weight and bias gradients
// are per-chunk partial sums added in chunk order (the same results for any thread count). The
// input gradient is the forward of the padded dy with the flipped kernel.
Tensor conv2d_3x3_small(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int N = int(x.dim(0)), Cin = int(x.dim(1)), H = int(x.dim(2)), W = int(x.dim(3)), Cout = int(w.dim(0));
  const int64_t plane = int64_t(H + 2) * (W + 2);
  const int rows = int(std::clamp<int64_t>(kChunkRowsPixels / W, 1, H));  // rows per chunk: by W only
  const int chunks = (H + rows - 1) / rows;
  const size_t items = size_t(N) * size_t(chunks);
  auto span = [rows, chunks, H](size_t j, int* n, int* r0, int* r1) {
    *n = int(j / size_t(chunks));
    *r0 = int(j % size_t(chunks)) * rows;
    *r1 = std::min(H, *r0 + rows);
  };
  auto padded = [N, H, W, plane](const float* src, int C) {  // (by value: the backward keeps it)
    Buffer p(size_t(N) * size_t(C) * size_t(plane));
    for (int n = 0; n < N; ++n) k::conv3x3_pad(src + int64_t(n) * C * H * W, C, H, W, p.data() + int64_t(n) * C * plane);
    return p;
  };
  Tensor y = Tensor::empty({N, Cout, H, W});
  {
    const Buffer xp = padded(x.data(), Cin);
    for_items(items, 0, [&](size_t j, float*) {
      int n, r0, r1;
      span(j, &n, &r0, &r1);
      k::conv3x3_rows(xp.data() + int64_t(n) * Cin * plane, Cin, H, W, w.data(), b.defined() ? b.data() : nullptr, Cout,
                      false, y.data() + int64_t(n) * Cout * H * W, r0, r1);
    });
  }
  count_flops("conv2d", int64_t(N) * conv2d_flops(Cin, Cout, 3, 3, H, W, b.defined()));
  if (needs_grad({&x, &w, &b}))
    record(y, "conv2d", {&x, &w, &b}, [x, w, b, N, Cin, Cout, H, W, plane, items, span, padded](const float* gy) {
      const bool gw = w.requires_grad(), gb = b.defined() && b.requires_grad();
      if (x.requires_grad()) {
        float* dx = x.grad_acc();
        const Buffer gp = padded(gy, Cout);
        std::vector<float> wt(size_t(Cin) * Cout * 9);
        k::conv3x3_flip(w.data(), Cout, Cin, wt.data());
        for_items(items, 0, [&](size_t j, float*) {
          int n, r0, r1;
          span(j, &n, &r0, &r1);
          k::conv3x3_rows(gp.data() + int64_t(n) * Cout * plane, Cout, H, W, wt.data(), nullptr, Cin, true,
                          dx + int64_t(n) * Cin * H * W, r0, r1);
        });
      }
      if (gw || gb) {
        const size_t stride = size_t(Cout) * size_t(Cin * 9 + 1);  // one item's partial [gw | gb]
        Buffer part(items * stride);
        const Buffer xp = padded(x.data(), Cin);
        for_items(items, 0, [&](size_t j, float*) {
          int n, r0, r1;
          span(j, &n, &r0, &r1);
          float* pj = part.data() + j * stride;
          k::conv3x3_grads(xp.data() + int64_t(n) * Cin * plane, Cin, H, W, gy + int64_t(n) * Cout * H * W, Cout,
                           gw ? pj : nullptr, gb ? pj + size_t(Cout) * Cin * 9 : nullptr, r0, r1);
        });
        for (size_t j = 0; j < items; ++j) {
          const float* pj = part.data() + j * stride;
          if (gw) k::add(w.grad_acc(), pj, w.grad_acc(), size_t(Cout) * Cin * 9);
          if (gb) k::add(b.grad_acc(), pj + size_t(Cout) * Cin * 9, b.grad_acc(), size_t(Cout));
        }
      }
      count_flops("conv2d_backward", 2 * int64_t(N) * Cin * Cout * 9 * H * W * (int(gw) + int(x.requires_grad())));
    });
  return y;
}

}  // namespace

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
  const int K = Cin * kh * kw;
  const int64_t P = int64_t(Ho) * Wo, xsz = int64_t(Cin) * H * W;
  const bool pw = is_pointwise(g);
  const Precision prec = conv_precision();  // bf16 products: forward and both gradients
  if (pw && prec == Precision::F32 && !portable_products() && Cin * Cout <= kPointwiseMaxWeights)
    return conv2d_pointwise(x, w, b);
  if (kh == 3 && kw == 3 && stride == 1 && pad.top == 1 && pad.bottom == 1 && pad.left == 1 && pad.right == 1 &&
      prec == Precision::F32 && !portable_products() && Cin <= k::kConv3x3MaxChannels && Cout <= k::kConv3x3MaxChannels)
    return conv2d_3x3_small(x, w, b);
  const Plan pl = plan(N, Ho, Wo);

  // The GEMM operand for images [n0, n1), output rows [oy0, oy1): im2col into col (row stride
  // cols), or x itself for a pointwise conv of one image. Returns the operand and its row stride.
  auto operand = [x, g, pw, P, xsz, Cin](int n0, int n1, int oy0, int oy1, float* col, int64_t cols,
                                         int64_t* ld) -> const float* {
    if (pw && n1 - n0 == 1) {
      *ld = P;
      return x.data() + n0 * xsz + int64_t(oy0) * g.Wo;
    }
    *ld = cols;
    if (pw) {
      gather(x.data() + n0 * xsz, xsz, n1 - n0, Cin, P, col, cols);
      return col;
    }
    k::ConvGeom gb = band(g, oy0, oy1);
    gb.ld = cols;
    for (int n = n0; n < n1; ++n) k::im2col(gb, x.data() + n * xsz, col + (n - n0) * P);
    return col;
  };

  Tensor y = Tensor::empty({N, Cout, Ho, Wo});
  if (prec == Precision::F32 && !portable_products() && use_winograd(kh, kw, stride, pad, Cin, Cout)) {
    Buffer U(size_t(16) * Cout * Cin);
    k::winograd_weights(w.data(), Cout, Cin, U.data());
    winograd_forward(x, U, Cout, b, y);
  } else {
    // scratch: col [K, max_cols] (unless the GEMM builds its columns itself) then, for grouped
    // images, the GEMM result [Cout, max_cols]
    const bool implicit = !pw && gemm_takes_panels(prec);
    const int64_t col_floats = implicit ? 0 : int64_t(K) * pl.max_cols;
    for_items(pl.items.size(), size_t(col_floats + int64_t(Cout) * pl.max_cols), [&](size_t j, float* s) {
      const Item it = pl.items[j];
      const int G = it.n1 - it.n0;
      for (int oy0 = 0; oy0 < Ho; oy0 += pl.band_rows) {
        const int oy1 = std::min(Ho, oy0 + pl.band_rows);
        const int64_t cols = int64_t(G) * (oy1 - oy0) * Wo;
        float* C = G == 1 ? y.data() + int64_t(it.n0) * Cout * P + int64_t(oy0) * Wo : s + col_floats;
        const int64_t ldc = G == 1 ? P : cols;
        init_rows(C, b, Cout, cols, ldc);
        if (implicit) {
          const k::Im2colSource src{band(g, oy0, oy1), x.data() + it.n0 * xsz, xsz, G};
          gemm_panels(false, Cout, int(cols), K, 1.f, w.data(), K, {k::im2col_panels, &src, 0, k::im2col_pairs}, 1.f, C,
                      int(ldc), prec);
        } else {
          int64_t ldb;
          const float* B = operand(it.n0, it.n1, oy0, oy1, s, cols, &ldb);
          gemm(false, false, Cout, int(cols), K, 1.f, w.data(), K, B, int(ldb), 1.f, C, int(ldc), prec);
        }
        if (G > 1) scatter(C, cols, G, Cout, P, y.data() + int64_t(it.n0) * Cout * P, int64_t(Cout) * P, false);
      }
    });
  }
  count_flops("conv2d", int64_t(N) * conv2d_flops(Cin, Cout, kh, kw, Ho, Wo, b.defined()));

  if (needs_grad({&x, &w, &b}))
    record(y, "conv2d", {&x, &w, &b}, [x, w, b, g, N, Cout, K, P, xsz, pw, pl, operand, prec](const float* gy) {
      const bool gb = b.defined() && b.requires_grad();
      // dW and db in one GEMM: [dW | db] += dy · [col; 1]ᵀ, with a row of ones under col.
      // (Not in bf16: the bias gradient stays an fp32 sum of dy.)
      const bool fused = gb && w.requires_grad() && !pw && prec == Precision::F32;
      const int Ka = fused ? K + 1 : K;
      const size_t n_items = pl.items.size();
      const bool implicit = !pw && gemm_takes_panels(prec);
      // per-item partial weight gradients; each item's first band overwrites its partial (beta 0)
      Buffer part = w.requires_grad() ? Buffer(n_items * size_t(Cout) * size_t(Ka)) : Buffer();
      if (x.requires_grad()) x.grad_acc();  // allocate before the workers start
      // scratch: col [Ka, max_cols], then dy of grouped images [Cout, max_cols]. Implicit: the
      // columns of a few channels' input gradient [dx_cols], packed dy, then grouped dy.
      const int64_t dx_cols = kColumnBlockFloats;
      const int64_t col_room = std::max<int64_t>(dx_cols, int64_t(g.kh) * g.kw * pl.max_cols);
      const int64_t scratch = implicit ? col_room + int64_t(k::packed_b_floats(Cout, int(pl.max_cols)))
                                       : int64_t(Ka) * pl.max_cols;
      for_items(n_items, size_t(scratch + int64_t(Cout) * pl.max_cols), [&](size_t j, float* s) {
        const Item it = pl.items[j];
        const int G = it.n1 - it.n0;
        float* gw = w.requires_grad() ? part.data() + j * size_t(Cout) * size_t(Ka) : nullptr;
        for (int oy0 = 0; oy0 < g.Ho; oy0 += pl.band_rows) {
          const int oy1 = std::min(g.Ho, oy0 + pl.band_rows);
          const int64_t cols = int64_t(G) * (oy1 - oy0) * g.Wo;
          const float* dy = gy + int64_t(it.n0) * Cout * P + int64_t(oy0) * g.Wo;
          int64_t ldg = P;
          if (G > 1) {
            float* buf = s + scratch;
            gather(dy, int64_t(Cout) * P, G, Cout, P, buf, cols);
            dy = buf;
            ldg = cols;
          }
          if (gw && implicit) {
            const k::Im2colSource src{band(g, oy0, oy1), x.data() + it.n0 * xsz, xsz, G, fused ? 1 : 0};
            gemm_panels(false, Cout, Ka, int(cols), 1.f, dy, int(ldg), {k::im2col_panels_t, &src, 0, k::im2col_pairs_t},
                        oy0 ? 1.f : 0.f, gw, Ka, prec);
          } else if (gw) {
            int64_t ldb;
            const float* B = operand(it.n0, it.n1, oy0, oy1, s, cols, &ldb);
            if (fused) k::fill(1.f, s + int64_t(K) * cols, size_t(cols));
            gemm(false, true, Cout, Ka, int(cols), 1.f, dy, int(ldg), B, int(ldb), oy0 ? 1.f : 0.f, gw, Ka, prec);
          }
          if (x.requires_grad()) {
            float* gx = x.grad_acc() + it.n0 * xsz;
            if (pw && G == 1) {
              gemm(true, false, K, int(cols), Cout, 1.f, w.data(), K, dy, int(ldg), 1.f, gx + int64_t(oy0) * g.Wo, int(P),
                   prec);
              continue;
            }
            if (implicit) {
              // dx a few channels at a time: their columns (Wᵀ·dy) stay in cache until col2im
              // adds them up; dy is packed once for all of them (as bf16 pair words for bf16 products).
              k::PackedB pdy{};
              k::PackedPairs pdy2{};
              k::BPanels dyp{k::packed_b_panels, &pdy};
              if (prec == Precision::Bf16) {
                check_bf16_available();  // before the AVX-512 packing
                pdy2 = k::pack_b_pairs_all(dy, int(ldg), Cout, int(cols), reinterpret_cast<uint32_t*>(s + col_room));
                dyp = {k::packed_pairs_panels, &pdy2, 0, k::packed_pairs};
              } else {
                pdy = k::pack_b_all(false, dy, int(ldg), Cout, int(cols), s + col_room);
              }
              const int kk = g.kh * g.kw;
              const int cb = std::clamp(int(dx_cols / (int64_t(kk) * cols)), 1, g.C);
              for (int c0 = 0; c0 < g.C; c0 += cb) {
                const int c1 = std::min(g.C, c0 + cb);
                gemm_panels(true, (c1 - c0) * kk, int(cols), Cout, 1.f, w.data() + c0 * kk, K, dyp, 0.f, s, int(cols), prec);
                k::ConvGeom gbd = band(g, oy0, oy1);
                gbd.C = c1 - c0;
                gbd.ld = cols;
                for (int i = 0; i < G; ++i) k::col2im(gbd, s + i * P, gx + i * xsz + int64_t(c0) * g.H * g.W);
              }
              continue;
            }
            gemm(true, false, K, int(cols), Cout, 1.f, w.data(), K, dy, int(ldg), 0.f, s, int(cols), prec);
            if (pw) {
              scatter(s, cols, G, K, P, gx, xsz, true);
            } else {
              k::ConvGeom gbd = band(g, oy0, oy1);
              gbd.ld = cols;
              for (int i = 0; i < G; ++i) k::col2im(gbd, s + i * P, gx + i * xsz);
            }
          }
        }
      });
      if (w.requires_grad()) reduce_partials(part, n_items, Cout, K, Ka, w.grad_acc(), fused ? b.grad_acc() : nullptr);
      if (gb && !fused) k::sum_channel(gy, b.grad_acc(), size_t(N), size_t(Cout), size_t(P));
      // GEMM FLOPs of this backward (counted only while a FlopCounter is active, e.g. bench train)
      const int64_t pass = 2 * int64_t(N) * K * Cout * P;
      count_flops("conv2d_backward", pass * (int(w.requires_grad()) + int(x.requires_grad())));
    });
  return y;
}

Tensor pointwise_relu(const Tensor& x, const Tensor& w, const Tensor& b) {
  NTC_CHECK(x.ndim() == 4 && w.ndim() == 4 && x.dim(1) == w.dim(1) && w.dim(2) == 1 && w.dim(3) == 1,
            "pointwise_relu: x ", shape_str(x.shape()), " w ", shape_str(w.shape()));
  if (conv_precision() == Precision::F32 && !portable_products() && w.dim(0) * w.dim(1) <= kPointwiseMaxWeights) {
    check_bias(b, int(w.dim(0)), "pointwise_relu");
    return conv2d_pointwise(x, w, b, true);
  }
  return relu(conv2d(x, w, b, 1, Pad2{}));
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
  const int K = Cout * kh * kw;
  const int64_t P = int64_t(H) * W, xsz = int64_t(Cin) * P, ysz = int64_t(Cout) * Ho * Wo;
  // Items group small inputs side by side; a large input is one item (no bands).
  Plan pl = plan(N, H, W);
  if (P >= kChunkCols) pl.band_rows = H, pl.max_cols = P;

  Tensor y = Tensor::empty({N, Cout, Ho, Wo});
  if (portable_products() && portable_winograd() && is_portable_winograd(kh, kw, stride, pad)) {
    winograd_transposed_portable(x, w, b, y);
  } else if (!portable_products() && use_winograd(kh, kw, stride, pad, Cin, Cout)) {
    Buffer U(size_t(16) * Cout * Cin);
    k::winograd_weights_transposed(w.data(), Cin, Cout, U.data());
    winograd_forward(x, U, Cout, b, y);
  } else {
    // With ntc's kernel, x is packed once and the output channels go a few at a time: their
    // columns (Wᵀ·x) stay in cache until col2im adds them up, as in conv2d's input gradient, instead
    // of a column matrix of all K rows (21 MB for the hyper-synthesis' last layer on a Kodak image,
    // fresh memory in a short decode process). Each output element still gets the same products
    // (the kernel's bits do not depend on how C is cut) and col2im adds its terms in the same order:
    // the same bits as the whole product. scratch: columns, packed x, then grouped inputs [Cin, max_cols]
    const bool blocked = gemm_takes_panels();
    const int kk = kh * kw;
    const int64_t col_room = blocked ? std::max<int64_t>(kColumnBlockFloats, int64_t(kk) * pl.max_cols) : int64_t(K) * pl.max_cols;
    const int64_t packed = blocked ? int64_t(k::packed_b_floats(Cin, int(pl.max_cols))) : 0;
    for_items(pl.items.size(), size_t(col_room + packed + int64_t(Cin) * pl.max_cols), [&](size_t j, float* s) {
      const Item it = pl.items[j];
      const int G = it.n1 - it.n0;
      const int64_t cols = int64_t(G) * P;
      const float* xs = x.data() + it.n0 * xsz;
      int64_t ldx = P;
      if (G > 1) {
        float* buf = s + col_room + packed;
        gather(xs, xsz, G, Cin, P, buf, cols);
        xs = buf;
        ldx = cols;
      }
      for (int i = 0; i < G; ++i) init_rows(y.data() + (it.n0 + i) * ysz, b, Cout, int64_t(Ho) * Wo, int64_t(Ho) * Wo);
      k::ConvGeom gc = g;
      gc.ld = cols;
      if (!blocked) {
        gemm(true, false, K, int(cols), Cin, 1.f, w.data(), K, xs, int(ldx), 0.f, s, int(cols));
        for (int i = 0; i < G; ++i) k::col2im(gc, s + i * P, y.data() + (it.n0 + i) * ysz);
        return;
      }
      k::PackedB px = k::pack_b_all(false, xs, int(ldx), Cin, int(cols), s + col_room);
      const int cb = std::clamp(int(col_room / (int64_t(kk) * cols)), 1, Cout);
      for (int c0 = 0; c0 < Cout; c0 += cb) {
        const int c1 = std::min(Cout, c0 + cb);
        gemm_panels(true, (c1 - c0) * kk, int(cols), Cin, 1.f, w.data() + c0 * kk, K, {k::packed_b_panels, &px}, 0.f, s,
                    int(cols));
        gc.C = c1 - c0;
        for (int i = 0; i < G; ++i) k::col2im(gc, s + i * P, y.data() + (it.n0 + i) * ysz + int64_t(c0) * Ho * Wo);
      }
    });
  }
  count_flops("conv_transpose2d",
              int64_t(N) * conv_transpose2d_flops(Cin, Cout, kh, kw, H, W, Ho, Wo, b.defined()));

  if (needs_grad({&x, &w, &b}))
    record(y, "conv_transpose2d", {&x, &w, &b}, [x, w, b, g, N, Cin, K, P, xsz, ysz, pl](const float* gy) {
      const size_t n_items = pl.items.size();
      Buffer part = w.requires_grad() ? Buffer(n_items * size_t(Cin) * size_t(K)) : Buffer();  // one GEMM per item
      if (x.requires_grad()) x.grad_acc();  // allocate before the workers start
      // scratch: gcol [K, max_cols] (unless the GEMMs build it themselves from dy: implicit), then
      // grouped inputs or input gradients [Cin, max_cols]
      const bool implicit = gemm_takes_panels();
      const int64_t gcol = implicit ? 0 : int64_t(K) * pl.max_cols;
      for_items(n_items, size_t(gcol + int64_t(Cin) * pl.max_cols), [&](size_t j, float* s) {
        const Item it = pl.items[j];
        const int G = it.n1 - it.n0;
        const int64_t cols = int64_t(G) * P;
        const k::Im2colSource src{g, gy + it.n0 * ysz, ysz, G};
        if (!implicit) {
          k::ConvGeom gc = g;
          gc.ld = cols;
          for (int i = 0; i < G; ++i) k::im2col(gc, gy + (it.n0 + i) * ysz, s + i * P);
        }
        float* buf = s + gcol;
        if (x.requires_grad()) {
          float* gx = x.grad_acc() + it.n0 * xsz;
          float* out = G == 1 ? gx : buf;
          const int ldo = G == 1 ? int(P) : int(cols);
          const float beta = G == 1 ? 1.f : 0.f;
          if (implicit)
            gemm_panels(false, Cin, int(cols), K, 1.f, w.data(), K, {k::im2col_panels, &src}, beta, out, ldo);
          else
            gemm(false, false, Cin, int(cols), K, 1.f, w.data(), K, s, int(cols), beta, out, ldo);
          if (G > 1) scatter(buf, cols, G, Cin, P, gx, xsz, true);
        }
        if (w.requires_grad()) {
          const float* xs = x.data() + it.n0 * xsz;
          int64_t ldx = P;
          if (G > 1) {
            gather(xs, xsz, G, Cin, P, buf, cols);
            xs = buf;
            ldx = cols;
          }
          float* gw = part.data() + j * size_t(Cin) * size_t(K);
          if (implicit)
            gemm_panels(false, Cin, K, int(cols), 1.f, xs, int(ldx), {k::im2col_panels_t, &src}, 0.f, gw, K);
          else
            gemm(false, true, Cin, K, int(cols), 1.f, xs, int(ldx), s, int(cols), 0.f, gw, K);
        }
      });
      if (w.requires_grad()) reduce_partials(part, n_items, Cin, K, K, w.grad_acc(), nullptr);
      if (b.defined() && b.requires_grad())
        k::sum_channel(gy, b.grad_acc(), size_t(N), size_t(g.C), size_t(g.H) * g.W);
      const int64_t pass = 2 * int64_t(N) * K * Cin * P;
      count_flops("conv_transpose2d_backward", pass * (int(w.requires_grad()) + int(x.requires_grad())));
    });
  return y;
}

Tensor conv_transpose2d_same(const Tensor& x, const Tensor& w, const Tensor& b, int stride) {
  NTC_CHECK(w.ndim() == 4, "conv_transpose2d_same: w ", shape_str(w.shape()));
  return conv_transpose2d(x, w, b, stride, same_pad_conv_transpose(int(w.dim(2)), int(w.dim(3)), stride));
}

}  // namespace ntc
