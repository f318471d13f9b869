// kernels/gemm_bf16.cc — ntc's bf16 GEMM (bf16 operands, fp32 accumulation) and its scalar twin;
// see kernels/gemm.h for the contract.
//
// Arithmetic, the same in the kernel and in the twin ref::sgemm_bf16: every operand value is
// rounded to bf16 by to_bf16 (nearest even; subnormals to zero; NaN stays NaN). Along k, values
// are taken in pairs (k0 + 2t, k0 + 2t + 1) within each k-block of kGemmKC (an odd block ends
// with a pair whose second value is 0). For every element of C and every k-block, from acc = 0:
//   acc = ftz(fma(a[2t+1], b[2t+1], acc));  acc = ftz(fma(a[2t], b[2t], acc))   for t ascending
// — exactly VDPBF16PS (Intel SDM: per lane, the odd product then the even product, each an FP32
// FMA with round-to-nearest-even, subnormal inputs as zero and subnormal results flushed to zero;
// measured bit-identical on this project's Zen 5 VMs, tests/test_gemm.cc). Products of two bf16
// values are exact in fp32, so only this order matters. The block is then folded into C exactly
// as the fp32 kernel does (alpha, then beta on the first block).
//
// The kernel: packed-panel blocking as in gemm_simd.cc, with op(A) and op(B) packed as bf16
// pairs (one 32-bit word per value pair) and a 12 × 32 micro-kernel of 24 zmm accumulators, one
// VDPBF16PS per (row, vector) per pair: twice the multiply-adds per instruction of the fp32
// kernel. It needs AVX512_BF16 (Zen 4 and later, Cooper Lake, Sapphire Rapids); bf16_supported()
// says whether this CPU has it.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "hwy/aligned_allocator.h"
#include "kernels/gemm.h"

// GCC 12 warns inside its own AVX-512 shift intrinsics (an "uninitialized" __Y: GCC PR105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace ntc::k {
namespace {

constexpr size_t kMR = 12, kNR = 32, kKC = kGemmKC, kMC = 144, kNC = 2048;
static_assert(kKC % 2 == 0, "k-blocks hold whole pairs");

float bf16_value(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float ftz(float v) { return std::fpclassify(v) == FP_SUBNORMAL ? std::copysign(0.f, v) : v; }

// A pair word holds two operand values as bf16: k0 + 2t in the low half (VDPBF16PS's even
// element), k0 + 2t + 1 in the high half.

// to_bf16 on 16 lanes, the result in the low 16 bits of each lane (the same integer rounding).
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i round_bf16(__m512i u) {
  const __m512i exp_mask = _mm512_set1_epi32(0x7F800000), zero = _mm512_setzero_si512();
  const __m512i e = _mm512_and_si512(u, exp_mask);
  const __mmask16 sub = _mm512_cmpeq_epi32_mask(e, zero);
  const __mmask16 nan = _mm512_cmpeq_epi32_mask(e, exp_mask) &
                        _mm512_cmpneq_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x007FFFFF)), zero);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb));
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x00400000)));
  r = _mm512_mask_mov_epi32(r, sub, _mm512_and_si512(u, _mm512_set1_epi32(int(0x80000000u))));
  return _mm512_srli_epi32(r, 16);
}

// fp32 panels of op(B) (kernels/gemm.h BPanels layout, nr = 32: p[q·kc·32 + k·32 + c]) → pair
// panels dst[q·kc2·32 + t·32 + c]. Vectorised; the same bits as to_bf16.
__attribute__((target("avx512f,avx512bw"))) void convert_b_avx512(const float* src, size_t kc, size_t nc,
                                                                   uint32_t* dst) {
  const size_t kc2 = (kc + 1) / 2, panels = (nc + kNR - 1) / kNR;
  for (size_t q = 0; q < panels; ++q) {
    const float* s = src + q * kc * kNR;
    uint32_t* d = dst + q * kc2 * kNR;
    for (size_t t = 0; t < kc2; ++t)
      for (size_t c = 0; c < kNR; c += 16) {
        const __m512i lo = round_bf16(_mm512_loadu_si512(s + 2 * t * kNR + c));
        const __m512i hi = 2 * t + 1 < kc ? round_bf16(_mm512_loadu_si512(s + (2 * t + 1) * kNR + c)) : _mm512_setzero_si512();
        _mm512_storeu_si512(d + t * kNR + c, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
      }
  }
}

// op(A)[i0 : i0+m, k0 : k0+kc] → MR-row panels of pair words: panel p, pair t, row r at
// dst[p·kc2·MR + t·MR + r] = the pair word of a[r][k0+2t], a[r][k0+2t+1] (zero rows beyond m, a
// zero second value beyond kc). Vectorised with round_bf16 (the same bits as to_bf16).
__attribute__((target("avx512f,avx512bw"))) void pack_a(bool ta, const float* A, size_t lda, size_t i0, size_t m,
                                                         size_t k0, size_t kc, uint32_t* dst) {
  const size_t kc2 = (kc + 1) / 2;
  for (size_t p = 0; p < m; p += kMR, dst += kc2 * kMR) {
    const size_t rows = std::min(kMR, m - p);
    if (ta) {  // op(A)[i][k] = A[k·lda + i]: the MR rows of one k are contiguous
      const __mmask16 mask = __mmask16((1u << rows) - 1);
      for (size_t t = 0; t < kc2; ++t) {
        const float* src = A + (k0 + 2 * t) * lda + i0 + p;
        const __m512i lo = round_bf16(_mm512_maskz_loadu_epi32(mask, src));
        const __m512i hi = 2 * t + 1 < kc ? round_bf16(_mm512_maskz_loadu_epi32(mask, src + lda)) : _mm512_setzero_si512();
        _mm512_mask_storeu_epi32(dst + t * kMR, __mmask16((1u << kMR) - 1), _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
      }
      continue;
    }
    // op(A)[i][k] = A[i·lda + k]: 32 values of a row give 16 pair words in order (narrowed to 16
    // bits, two halves side by side); a 12 × 16 block of words is then transposed into the panel.
    alignas(64) uint32_t blk[kMR][16];
    for (size_t t0 = 0; t0 < kc2; t0 += 16) {
      const size_t k = 2 * t0, n = std::min<size_t>(32, kc - k), words = std::min<size_t>(16, kc2 - t0);
      const __mmask16 m0 = __mmask16(n >= 16 ? 0xFFFF : (1u << n) - 1), m1 = __mmask16(n >= 32 ? 0xFFFF : n > 16 ? (1u << (n - 16)) - 1 : 0);
      for (size_t r = 0; r < kMR; ++r) {
        if (r >= rows) {
          _mm512_store_si512(blk[r], _mm512_setzero_si512());
          continue;
        }
        const float* src = A + (i0 + p + r) * lda + k0 + k;
        const __m256i lo = _mm512_cvtepi32_epi16(round_bf16(_mm512_maskz_loadu_epi32(m0, src)));
        const __m256i hi = _mm512_cvtepi32_epi16(round_bf16(_mm512_maskz_loadu_epi32(m1, src + 16)));
        _mm512_store_si512(blk[r], _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
      }
      for (size_t j = 0; j < words; ++j)
        for (size_t r = 0; r < kMR; ++r) dst[(t0 + j) * kMR + r] = blk[r][j];
    }
  }
}

// The 12 × 32 tile of pair panels pa (kc2 pairs × 12 rows) and pb (kc2 pairs × 32 columns),
// from zero. A full tile is folded into C here (vector ops, the same IEEE operations as fold());
// an edge tile goes to acc[12·32] (row-major) for fold().
__attribute__((target("avx512f,avx512bf16"))) void micro_kernel(size_t kc2, const uint32_t* pa, const uint32_t* pb,
                                                                float* acc, float* c, size_t ldc, bool full,
                                                                float alpha, float beta, bool first) {
  __m512 c0[kMR], c1[kMR];
#pragma GCC unroll 12
  for (size_t r = 0; r < kMR; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
  for (size_t t = 0; t < kc2; ++t) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(pb), b1 = (__m512bh)_mm512_loadu_si512(pb + 16);
#pragma GCC unroll 12
    for (size_t r = 0; r < kMR; ++r) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(int(pa[r]));
      c0[r] = _mm512_dpbf16_ps(c0[r], a, b0);
      c1[r] = _mm512_dpbf16_ps(c1[r], a, b1);
    }
    pa += kMR;
    pb += kNR;
  }
  if (!full) {
#pragma GCC unroll 12
    for (size_t r = 0; r < kMR; ++r) {
      _mm512_storeu_ps(acc + r * kNR, c0[r]);
      _mm512_storeu_ps(acc + r * kNR + 16, c1[r]);
    }
    return;
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  auto store = [&](__m512 v, float* o) __attribute__((target("avx512f"))) {
    if (alpha != 1.f) v = _mm512_mul_ps(v, va);
    if (first && beta == 0.f) _mm512_storeu_ps(o, v);
    else if (!first || beta == 1.f) _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), v));
    else _mm512_storeu_ps(o, _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(o), vb), v));
  };
#pragma GCC unroll 12
  for (size_t r = 0; r < kMR; ++r) {
    store(c0[r], c + r * ldc);
    store(c1[r], c + r * ldc + 16);
  }
}

// C[0:m, 0:n] (row stride ldc) ⊕= the tile acc, the fold of the fp32 kernel.
void fold(const float* acc, float* c, size_t ldc, size_t m, size_t n, float alpha, float beta, bool first) {
  for (size_t r = 0; r < m; ++r)
    for (size_t j = 0; j < n; ++j) fold_element(c[r * ldc + j], acc[r * kNR + j], alpha, beta, first);
}

struct Scratch {
  hwy::AlignedFreeUniquePtr<uint32_t[]> pa, pb;
  hwy::AlignedFreeUniquePtr<float[]> fb;  // fp32 panels of one k-block of op(B)
};
Scratch& scratch() {
  thread_local Scratch s;
  if (!s.pa) {
    s.pa = hwy::AllocateAligned<uint32_t>(kMC * kKC / 2);
    s.pb = hwy::AllocateAligned<uint32_t>(kKC / 2 * kNC);
    s.fb = hwy::AllocateAligned<float>(kKC * kNC);
  }
  if (!s.pa || !s.pb || !s.fb) {
    s = Scratch();
    throw std::bad_alloc();
  }
  return s;
}

// get_b(k0, kc, j0, nc, scratch) → the pair panels (nr = 32) of op(B)[k0 : k0+kc, j0 : j0+nc],
// in scratch.pb or held by the caller.
template <class GetB>
void gemm_blocked(bool ta, size_t M, size_t N, size_t K, float alpha, const float* A, size_t lda, const GetB& get_b,
                  float beta, float* C, size_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (size_t i = 0; i < M; ++i)
      for (size_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : C[i * ldc + j] * beta;
    return;
  }
  Scratch& s = scratch();
  alignas(64) float acc[kMR * kNR];
  // With more than one column block, op(A) is packed once for all of them (up to 16 MB a thread):
  // k-block k0 at (k0/2)·Mp words, its row block i0 at i0·kc2 within it.
  const size_t Mp = (M + kMR - 1) / kMR * kMR, a_words = Mp * (K / 2 + (K + kKC - 1) / kKC);
  const bool whole_a = N > kNC && a_words <= (size_t(4) << 20);
  thread_local std::vector<uint32_t> packed_a;
  if (whole_a) {
    if (packed_a.size() < a_words) packed_a.resize(a_words);
    for (size_t k0 = 0; k0 < K; k0 += kKC) {
      const size_t kc = std::min(kKC, K - k0);
      for (size_t i0 = 0; i0 < M; i0 += kMC)
        pack_a(ta, A, lda, i0, std::min(kMC, M - i0), k0, kc, packed_a.data() + k0 / 2 * Mp + i0 * ((kc + 1) / 2));
    }
  }
  for (size_t j0 = 0; j0 < N; j0 += kNC) {
    const size_t nc = std::min(kNC, N - j0);
    for (size_t k0 = 0; k0 < K; k0 += kKC) {
      const size_t kc = std::min(kKC, K - k0), kc2 = (kc + 1) / 2;
      const uint32_t* pb = get_b(k0, kc, j0, nc, s);
      for (size_t i0 = 0; i0 < M; i0 += kMC) {
        const size_t mc = std::min(kMC, M - i0);
        const uint32_t* pa = whole_a ? packed_a.data() + k0 / 2 * Mp + i0 * kc2 : s.pa.get();
        if (!whole_a) pack_a(ta, A, lda, i0, mc, k0, kc, s.pa.get());
        for (size_t q = 0; q < nc; q += kNR)
          for (size_t p = 0; p < mc; p += kMR) {
            const size_t m = std::min(kMR, mc - p), n = std::min(kNR, nc - q);
            float* c = C + (i0 + p) * ldc + j0 + q;
            micro_kernel(kc2, pa + p * kc2, pb + q * kc2, acc, c, ldc, m == kMR && n == kNR, alpha,
                         beta, k0 == 0);
            if (m < kMR || n < kNR) fold(acc, c, ldc, m, n, alpha, beta, k0 == 0);
          }
      }
    }
  }
}

// fp32 panels (nr = 32) of a materialised op(B)[k0 : k0+kc, j0 : j0+nc].
void pack_b_f32(bool tb, const float* B, size_t ldb, size_t k0, size_t kc, size_t j0, size_t nc, float* dst) {
  for (size_t q = 0; q < nc; q += kNR) {
    const size_t cols = std::min(kNR, nc - q);
    for (size_t k = 0; k < kc; ++k) {
      float* o = dst + q * kc + k * kNR;
      if (!tb) std::memcpy(o, B + (k0 + k) * ldb + j0 + q, cols * sizeof(float));
      else
        for (size_t c = 0; c < cols; ++c) o[c] = B[(j0 + q + c) * ldb + k0 + k];
      std::fill(o + cols, o + kNR, 0.f);
    }
  }
}

}  // namespace

uint16_t to_bf16(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7F800000u) == 0) return uint16_t((u & 0x80000000u) >> 16);  // zero and subnormals: signed zero
  if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu)) return uint16_t((u | 0x00400000u) >> 16);  // quiet NaN
  return uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

bool bf16_supported() {
  static const bool ok = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
  return ok;
}

void sgemm_bf16(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                float beta, float* C, int ldc) {
  gemm_blocked(
      ta, size_t(M), size_t(N), size_t(K), alpha, A, size_t(lda),
      [&](size_t k0, size_t kc, size_t j0, size_t nc, Scratch& s) {
        pack_b_f32(tb, B, size_t(ldb), k0, kc, j0, nc, s.fb.get());
        convert_b_avx512(s.fb.get(), kc, nc, s.pb.get());
        return static_cast<const uint32_t*>(s.pb.get());
      },
      beta, C, size_t(ldc));
}

void sgemm_bf16_panels(bool ta, int M, int N, int K, float alpha, const float* A, int lda, const BPanels& b, float beta,
                       float* C, int ldc) {
  gemm_blocked(
      ta, size_t(M), size_t(N), size_t(K), alpha, A, size_t(lda),
      [&](size_t k0, size_t kc, size_t j0, size_t nc, Scratch& s) {
        if (b.pairs) return b.pairs(b.ctx, k0, kc, b.col0 + j0, nc, s.pb.get());
        convert_b_avx512(b.get(b.ctx, k0, kc, b.col0 + j0, nc, kNR, s.fb.get()), kc, nc, s.pb.get());
        return static_cast<const uint32_t*>(s.pb.get());
      },
      beta, C, size_t(ldc));
}

__attribute__((target("avx512f,avx512bw"))) void bf16_pair_rows(const float* lo, const float* hi, size_t n,
                                                                 size_t panel_words, uint32_t* dst) {
  for (size_t q = 0; q * kNR < n; ++q)
    for (size_t h = 0; h < kNR; h += 16) {
      const size_t i = q * kNR + h, cnt = i < n ? std::min<size_t>(16, n - i) : 0;
      const __mmask16 m = __mmask16(cnt == 16 ? 0xFFFFu : (1u << cnt) - 1);
      const __m512i l = round_bf16(_mm512_maskz_loadu_epi32(m, lo + i));
      const __m512i u = hi ? round_bf16(_mm512_maskz_loadu_epi32(m, hi + i)) : _mm512_setzero_si512();
      _mm512_storeu_si512(dst + q * panel_words + h, _mm512_or_si512(l, _mm512_slli_epi32(u, 16)));
    }
}

// 32 consecutive values (two vectors) → their 16 pair words: each half rounded, narrowed to 16 bits
// (vpmovdw), the halves side by side.
__attribute__((target("avx512f,avx512bw"), always_inline)) static inline __m512i pair_words16(__m512i lo, __m512i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(round_bf16(lo))),
                            _mm512_cvtepi32_epi16(round_bf16(hi)), 1);
}

__attribute__((target("avx512f,avx512bw"))) void bf16_pairs_contiguous(const float* src, size_t n, uint32_t* dst) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    _mm512_storeu_si512(dst + i / 2, pair_words16(_mm512_loadu_si512(src + i), _mm512_loadu_si512(src + i + 16)));
  if (i < n) {
    const size_t r = n - i;  // 1 … 31 values left: (r + 1) / 2 words, the last one's high half 0 when r is odd
    const __mmask16 m0 = __mmask16(r >= 16 ? 0xFFFFu : (1u << r) - 1), m1 = __mmask16(r > 16 ? (1u << (r - 16)) - 1 : 0u);
    _mm512_mask_storeu_epi32(dst + i / 2, __mmask16((1u << ((r + 1) / 2)) - 1),
                             pair_words16(_mm512_maskz_loadu_epi32(m0, src + i), _mm512_maskz_loadu_epi32(m1, src + i + 16)));
  }
}

PackedPairs pack_b_pairs_all(const float* B, int ldb, int K, int N, uint32_t* dst) {
  const size_t n_pad = (size_t(N) + kNR - 1) / kNR * kNR;
  for (size_t k0 = 0; k0 < size_t(K); k0 += kKC) {  // k-block k0: kc2 × n_pad words at (k0/2)·n_pad
    const size_t kc = std::min(kKC, size_t(K) - k0), kc2 = (kc + 1) / 2;
    for (size_t t = 0; t < kc2; ++t)
      bf16_pair_rows(B + (k0 + 2 * t) * size_t(ldb), 2 * t + 1 < kc ? B + (k0 + 2 * t + 1) * size_t(ldb) : nullptr,
                     size_t(N), kc2 * kNR, dst + k0 / 2 * n_pad + t * kNR);
  }
  return {dst, n_pad};
}

const uint32_t* packed_pairs(const void* ctx, size_t k0, size_t kc, size_t j0, size_t, uint32_t*) {
  const auto& p = *static_cast<const PackedPairs*>(ctx);
  // Panel j0/32 of k-block k0 (j0 is a multiple of 32: BPanels' col0 and the kernel's column blocks).
  return p.data + k0 / 2 * p.n_pad + j0 * ((kc + 1) / 2);
}

const float* packed_pairs_panels(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr, float* scratch) {
  if (nr != kNR) std::abort();  // bf16 panels are 32 columns wide (gemm_panels checks)
  const uint32_t* w = packed_pairs(ctx, k0, kc, j0, nc, nullptr);
  const size_t kc2 = (kc + 1) / 2;
  for (size_t q = 0; q < nc; q += kNR)
    for (size_t k = 0; k < kc; ++k)
      for (size_t c = 0; c < kNR; ++c) {
        const uint32_t word = w[q * kc2 + k / 2 * kNR + c];
        scratch[q * kc + k * kNR + c] = bf16_value(uint16_t(k % 2 ? word >> 16 : word & 0xFFFFu));
      }
  return scratch;
}

size_t sgemm_bf16_nr() { return kNR; }

namespace ref {

void sgemm_bf16(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                float beta, float* C, int ldc) {
  auto a_at = [&](int i, int k) { return bf16_value(to_bf16(ta ? A[size_t(k) * lda + i] : A[size_t(i) * lda + k])); };
  auto b_at = [&](int k, int j) { return bf16_value(to_bf16(tb ? B[size_t(j) * ldb + k] : B[size_t(k) * ldb + j])); };
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float& o = C[size_t(i) * size_t(ldc) + size_t(j)];
      if (K == 0) {
        o = beta == 0.f ? 0.f : o * beta;
        continue;
      }
      for (int k0 = 0; k0 < K; k0 += int(kGemmKC)) {
        const int k1 = std::min(K, k0 + int(kGemmKC));
        float acc = 0.f;
        for (int k = k0; k < k1; k += 2) {
          const float a1 = k + 1 < k1 ? a_at(i, k + 1) : 0.f, b1 = k + 1 < k1 ? b_at(k + 1, j) : 0.f;
          acc = ftz(std::fma(a1, b1, acc));
          acc = ftz(std::fma(a_at(i, k), b_at(k, j), acc));
        }
        fold_element(o, acc, alpha, beta, k0 == 0);
      }
    }
}

void sgemm_bf16_panels(bool ta, int M, int N, int K, float alpha, const float* A, int lda, const BPanels& b, float beta,
                       float* C, int ldc) {
  // Materialise op(B) [K, N] from its panels (nr = 32), then the element-wise twin.
  std::vector<float> dense(size_t(K) * size_t(N)), fb(kKC * kNC);
  for (size_t j0 = 0; j0 < size_t(N); j0 += kNC) {
    const size_t nc = std::min(kNC, size_t(N) - j0);
    for (size_t k0 = 0; k0 < size_t(K); k0 += kKC) {
      const size_t kc = std::min(kKC, size_t(K) - k0);
      const float* p = b.get(b.ctx, k0, kc, b.col0 + j0, nc, kNR, fb.data());
      for (size_t k = 0; k < kc; ++k)
        for (size_t j = 0; j < nc; ++j) dense[(k0 + k) * size_t(N) + j0 + j] = p[j / kNR * kc * kNR + k * kNR + j % kNR];
    }
  }
  sgemm_bf16(ta, false, M, N, K, alpha, A, lda, dense.data(), N, beta, C, ldc);
}

}  // namespace ref
}  // namespace ntc::k
