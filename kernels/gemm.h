// kernels/gemm.h — ntc's own single-threaded SGEMM (Highway, kernels/gemm_simd.cc) and its scalar
// twin: C[M,N] = alpha·op(A)[M,K]·op(B)[K,N] + beta·C, row-major, op = transpose when ta / tb.
//
// Why ntc has one next to OpenBLAS: lib/gemm.cc runs every product of the library and uses
// OpenBLAS by default. But where OpenBLAS runs AVX2 kernels on an AVX-512 CPU (this project's
// VMs: Zen 5 with OPENBLAS_CORETYPE pinned to Haswell by the environment, lib/blas.h), this
// kernel's 512-bit micro-kernel is much faster; lib/gemm.cc picks it then (measured numbers
// there). BLAS semantics: with beta = 0, C is not read (NaN in C does not propagate).
//
// The scalar twin ref::sgemm performs exactly the same floating-point operations in the same
// order (see gemm_simd.cc), so the two agree bit for bit on targets with FMA (AVX2, AVX-512; on
// SSE4 Highway's MulAdd rounds twice and they agree to rounding only); it is a test oracle (it is a plain
// triple loop: far too slow to run a model with), not a fallback.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ntc::k {

constexpr size_t kGemmKC = 256;  // k-block: partial sums are folded into C every kGemmKC terms

// How a k-block's sum acc is folded into an element o of C, in every GEMM kernel and twin (fp32
// and bf16): v = alpha·acc (skipped when alpha = 1), then o = v on the first block with beta = 0,
// o + v on later blocks or with beta = 1, and beta·o + v otherwise.
inline void fold_element(float& o, float acc, float alpha, float beta, bool first) {
  const float v = alpha != 1.f ? acc * alpha : acc;
  if (first && beta == 0.f) o = v;
  else if (!first || beta == 1.f) o = o + v;
  else o = o * beta + v;
}

void sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
           float beta, float* C, int ldc);
size_t sgemm_lanes();  // float lanes of the micro-kernel Highway dispatched to (8 AVX2, 16 AVX-512)
size_t sgemm_nr();     // columns of a B micro-panel: 2·sgemm_lanes()

// op(B) supplied panel by panel instead of read from a matrix — an implicit GEMM: a convolution
// builds its im2col columns straight into the panels, in cache, instead of writing and re-reading
// the whole column matrix. get(ctx, k0, kc, j0, nc, nr, scratch) returns the panels of
// op(B)[k0 : k0+kc, col0+j0 : col0+j0+nc]: for panel q (columns col0+j0+q·nr …),
// p[q·kc·nr + (k−k0)·nr + c] = op(B)[k][col0+j0+q·nr+c], and 0 for columns at or beyond
// col0+j0+nc. It may write them to scratch (room for kGemmKC × 2048 floats) and return scratch,
// or return panels it holds. nc <= 2048; k0 is a multiple of kGemmKC. col0 lets a caller split
// the columns of one product over threads. Every element of C gets the same bits as from sgemm
// on the materialised op(B).
struct BPanels {
  const float* (*get)(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr, float* scratch);
  const void* ctx;
  size_t col0 = 0;
  // Optional, read by the bf16 kernel only (sgemm_bf16_panels; its twin and the fp32 kernel use
  // get): the same panels as bf16 pair words, built without the fp32 ones. pairs(ctx, k0, kc, j0,
  // nc, scratch) returns, for panel q (nr = 32), w[q·kc2·32 + t·32 + c] (kc2 = ⌈kc/2⌉) = the pair
  // word of get's values at rows k0+2t and k0+2t+1 (0 beyond kc) of that column: exactly what the
  // kernel makes of get's panels. It may write scratch (room for kGemmKC/2 × 2048 words).
  const uint32_t* (*pairs)(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, uint32_t* scratch) = nullptr;
};
void sgemm_panels(bool ta, int M, int N, int K, float alpha, const float* A, int lda, const BPanels& b, float beta,
                  float* C, int ldc);
// The panels of op(B)[0 : kc, 0 : n] (the layout above, nr = sgemm_nr()) from a row-major B
// ([kc, n] with row stride ldb, or [n, kc] when tb).
void pack_panels(bool tb, const float* B, size_t ldb, size_t kc, size_t n, float* dst);

// A whole op(B) [K, N] packed once, for a B that meets many blocks of A (e.g. conv2d's input
// gradient, computed a few channels at a time so that its columns stay in cache). BPanels{
// packed_b_panels, &packed} then serves it; col0 must stay a multiple of sgemm_nr().
struct PackedB {
  const float* data;
  size_t n_pad;  // N rounded up to sgemm_nr()
};
size_t packed_b_floats(int K, int N);
PackedB pack_b_all(bool tb, const float* B, int ldb, int K, int N, float* dst);  // dst: packed_b_floats
const float* packed_b_panels(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr, float* scratch);

// ---- bf16 products (kernels/gemm_bf16.cc): bf16 operands, fp32 accumulation ----
// The same contract as sgemm / sgemm_panels, with every operand value rounded to bf16 (to_bf16)
// and products accumulated in fp32 pairwise along k as VDPBF16PS does (order in gemm_bf16.cc);
// the scalar twin ref::sgemm_bf16 gives the same bits. The kernel needs AVX512_BF16
// (bf16_supported()); panels come with nr = sgemm_bf16_nr() (32, = sgemm_nr() on AVX-512).
uint16_t to_bf16(float v);  // nearest even; subnormals to signed zero; NaN stays (quiet) NaN
bool bf16_supported();
size_t sgemm_bf16_nr();
void sgemm_bf16(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                float beta, float* C, int ldc);
void sgemm_bf16_panels(bool ta, int M, int N, int K, float alpha, const float* A, int lda, const BPanels& b, float beta,
                       float* C, int ldc);
// Pair words (the low half to_bf16(lo[i]), the high half to_bf16(hi[i]), or 0 where hi is null),
// i < n, into panel layout: for panel q = i / 32, dst[q·panel_words + i % 32]; columns of the last
// panel at or beyond n get 0. Needs AVX512BW (bf16_supported()).
void bf16_pair_rows(const float* lo, const float* hi, size_t n, size_t panel_words, uint32_t* dst);
// Pair words of neighbouring values: dst[t] = to_bf16(src[2t]) | to_bf16(src[2t+1]) << 16 for
// t < (n + 1) / 2 (the last word's high half 0 when n is odd); writes no further. AVX512BW.
void bf16_pairs_contiguous(const float* src, size_t n, uint32_t* dst);
// An op(B) [K, N] (row-major B, ldb) packed once as the kernel's pair panels, for a B that meets
// many blocks of A (conv2d's input gradient): BPanels{packed_pairs_panels, &p, 0, packed_pairs}
// serves it (get gives the bf16 values as fp32, which the twin rounds to themselves). col0 must
// stay a multiple of 32. dst: packed_b_floats(K, N) floats' room (as words). AVX512BW.
struct PackedPairs {
  const uint32_t* data;
  size_t n_pad;  // N rounded up to 32
};
PackedPairs pack_b_pairs_all(const float* B, int ldb, int K, int N, uint32_t* dst);
const float* packed_pairs_panels(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr, float* scratch);
const uint32_t* packed_pairs(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, uint32_t* scratch);

namespace ref {
void sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
           float beta, float* C, int ldc);
void sgemm_bf16(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                float beta, float* C, int ldc);
void sgemm_bf16_panels(bool ta, int M, int N, int K, float alpha, const float* A, int lda, const BPanels& b, float beta,
                       float* C, int ldc);
}  // namespace ref

}  // namespace ntc::k
