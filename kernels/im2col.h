// im2col / col2im — the data movement that turns a convolution into one GEMM.
//
// Geometry (one image): an "image" side x [C, H, W] and a "column" side col [C·kh·kw, Ho·Wo]:
//   col[(c·kh + ky)·kw + kx][oy·Wo + ox] = x[c][oy·s + ky − pad_t][ox·s + kx − pad_l]
// with zeros where the x index falls outside [0,H)×[0,W).
// conv2d forward uses im2col (x = input, col spatial = output); conv_transpose2d forward uses
// col2im (x = output, col spatial = input) — the two are exact adjoints of each other.
//
// im2col overwrites col; col2im ACCUMULATES into x (only from the band's rows). Both run on the OpenMP threads (rows of col for
// im2col, rows of x for col2im, so each thread owns what it writes: results do not depend on the
// thread count). `ref` versions are the naive per-element twins used by tests.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ntc::k {

struct ConvGeom {
  int C, H, W;       // image side
  int kh, kw;        // kernel
  int stride;
  int pad_t, pad_l;
  int Ho, Wo;        // column side spatial size
  // Band of column-side rows [oy0, oy1) actually held in col (oy1 < 0: up to Ho). col is then
  // [C·kh·kw, (oy1 − oy0)·Wo]; convolutions work band by band so that col stays cache-sized.
  int oy0 = 0, oy1 = -1;
  // Row stride of col (0: band_cols()); larger when several images share one col buffer side by
  // side, each at its own column offset.
  int64_t ld = 0;
  int band_end() const { return oy1 < 0 ? Ho : oy1; }
  int64_t band_cols() const { return int64_t(band_end() - oy0) * Wo; }
  int64_t col_ld() const { return ld ? ld : band_cols(); }
};

void im2col(const ConvGeom& g, const float* x, float* col);
void col2im(const ConvGeom& g, const float* col, float* x);

// Implicit im2col for the GEMM (kernels/gemm.h, BPanels): the column matrix of G images' bands
// side by side (column j = i·band_cols + position in image i's band; image i at x + i·x_stride),
// with `ones` extra rows of ones under its C·kh·kw rows (a fused bias gradient), produced a
// piece at a time in cache instead of materialised.
struct Im2colSource {
  ConvGeom g;
  const float* x;
  int64_t x_stride;
  int G;
  int ones = 0;
  int rows() const { return g.C * g.kh * g.kw + ones; }
};
// out[0 : n] = row r, columns [j0, j0 + n), of the column matrix.
void im2col_row(const Im2colSource& s, int r, int64_t j0, int64_t n, float* out);
// BPanels getters over an Im2colSource (ctx): op(B) = the column matrix (conv2d forward: W·col),
// or its transpose (conv2d weight gradient: dy·colᵀ).
const float* im2col_panels(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr, float* scratch);
const float* im2col_panels_t(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr, float* scratch);
// The same as bf16 pair panels (BPanels::pairs, for bf16 products): built from the rows without
// the fp32 panels (half the bytes written, and no second pass to round them). In the forward form
// a stride-2 pair of kernel columns (kx, kx + 1) reads neighbouring inputs, and its words are
// rounded straight from the input row; in the transposed form each row's neighbours are paired
// and the words transposed into the panel. Need AVX512BW.
const uint32_t* im2col_pairs(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, uint32_t* scratch);
const uint32_t* im2col_pairs_t(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, uint32_t* scratch);

namespace ref {
void im2col(const ConvGeom& g, const float* x, float* col);
void col2im(const ConvGeom& g, const float* col, float* x);
}  // namespace ref

}  // namespace ntc::k
