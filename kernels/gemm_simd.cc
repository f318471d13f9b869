// kernels/gemm_simd.cc — ntc's own single-threaded SGEMM in Highway (see kernels/gemm.h).
//
// Blocking follows the usual packed-panel scheme (Goto & van de Geijn, "Anatomy of
// high-performance matrix multiplication", 2008): for each block of kGemmKC along k, op(B) is
// packed into NR-column micro-panels and, for each block of kMC rows, op(A) into MR-row
// micro-panels (zero-padded at the edges); a register-blocked micro-kernel then computes each
// MR × NR tile of C with MR·2 vector accumulators, one FMA per (row, vector) per k.
//   AVX-512 (16 lanes, 32 registers): MR = 12, NR = 32 → 24 accumulators.
//   AVX2    ( 8 lanes, 16 registers): MR = 6,  NR = 16 → 12 accumulators.
// Packed buffers are per thread and allocated once (about 2.3 MB per thread).
//
// Arithmetic (what the scalar twin ref::sgemm reproduces bit for bit): for every element of C
// and every k-block, acc = fma(a_ik, b_kj, acc) for k ascending from acc = 0; then the block is
// folded into C as v = alpha·acc (skipped when alpha = 1) and C = v (beta = 0, first block),
// C + v (beta = 1 or any later block) or beta·C + v (first block). Edge tiles run the same
// vector code on zero padding and copy back only the valid part with the same scalar operations,
// so an element's value does not depend on where a caller cuts C into tiles (lib/gemm.cc).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gemm_simd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cstring>
#include <new>

#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"
#include "kernels/gemm.h"

HWY_BEFORE_NAMESPACE();
namespace ntc::k::gemm_simd::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using D = hn::ScalableTag<float>;
using V = hn::Vec<D>;
constexpr size_t kL = HWY_MAX_BYTES / sizeof(float);  // lanes of this target
constexpr size_t kMR = kL >= 16 ? 12 : 6;
constexpr size_t kNR = 2 * kL;
constexpr size_t kKC = kGemmKC;
constexpr size_t kMC = 144;   // rows of op(A) per packed block (multiple of both MRs)
constexpr size_t kNC = 2048;  // columns of op(B) per packed block (multiple of both NRs)

#if HWY_MAX_BYTES >= 32
// dst[k·ldd + i] = src[i·lds + k] for i, k < 8: eight rows of eight floats transposed in 256-bit
// registers (32-bit interleaves, 64-bit interleaves, then 128-bit halves).
HWY_INLINE void Transpose8x8(const float* HWY_RESTRICT src, size_t lds, float* HWY_RESTRICT dst, size_t ldd) {
  const hn::FixedTag<float, 8> d;
  const hn::Repartition<double, decltype(d)> dd;
  using VF = hn::Vec<decltype(d)>;
  VF r[8];
  for (size_t i = 0; i < 8; ++i) r[i] = hn::LoadU(d, src + i * lds);
  VF t[8];
  for (size_t i = 0; i < 4; ++i) {
    t[2 * i] = hn::InterleaveLower(d, r[2 * i], r[2 * i + 1]);      // a0 b0 a1 b1 | a4 b4 a5 b5
    t[2 * i + 1] = hn::InterleaveUpper(d, r[2 * i], r[2 * i + 1]);  // a2 b2 a3 b3 | a6 b6 a7 b7
  }
  VF u[8];
  for (size_t h = 0; h < 2; ++h) {  // rows 0-3, then rows 4-7
    const auto e0 = hn::BitCast(dd, t[4 * h]), e1 = hn::BitCast(dd, t[4 * h + 1]);
    const auto e2 = hn::BitCast(dd, t[4 * h + 2]), e3 = hn::BitCast(dd, t[4 * h + 3]);
    u[4 * h] = hn::BitCast(d, hn::InterleaveLower(dd, e0, e2));      // columns 0 | 4
    u[4 * h + 1] = hn::BitCast(d, hn::InterleaveUpper(dd, e0, e2));  // columns 1 | 5
    u[4 * h + 2] = hn::BitCast(d, hn::InterleaveLower(dd, e1, e3));  // columns 2 | 6
    u[4 * h + 3] = hn::BitCast(d, hn::InterleaveUpper(dd, e1, e3));  // columns 3 | 7
  }
  for (size_t k = 0; k < 4; ++k) {
    hn::StoreU(hn::ConcatLowerLower(d, u[4 + k], u[k]), d, dst + k * ldd);
    hn::StoreU(hn::ConcatUpperUpper(d, u[4 + k], u[k]), d, dst + (k + 4) * ldd);
  }
}
#endif

// op(A)[i0 : i0+m, k0 : k0+kc] → MR-row micro-panels: panel p holds, for each k, the MR values
// of rows p·MR … p·MR+MR-1 (zero beyond m).
void PackA(bool ta, const float* A, size_t lda, size_t i0, size_t m, size_t k0, size_t kc, float* HWY_RESTRICT dst) {
  for (size_t p = 0; p < m; p += kMR) {
    const size_t rows = std::min(kMR, m - p);
    if (!ta && rows == kMR && kMR >= 8 && HWY_MAX_BYTES >= 32) {
#if HWY_MAX_BYTES >= 32
      // Rows 0-7 and rows MR-8 … MR-1 as 8×8 register transposes (the overlap is written twice
      // with the same values), the k tail element by element.
      const float* src = A + (i0 + p) * lda + k0;
      const size_t k8 = kc & ~size_t(7);
      for (size_t k = 0; k < k8; k += 8) {
        Transpose8x8(src + k, lda, dst + k * kMR, kMR);
        Transpose8x8(src + (kMR - 8) * lda + k, lda, dst + k * kMR + kMR - 8, kMR);
      }
      for (size_t k = k8; k < kc; ++k)
        for (size_t r = 0; r < kMR; ++r) dst[k * kMR + r] = src[r * lda + k];
#endif
    } else if (!ta) {
      for (size_t r = 0; r < rows; ++r) {
        const float* src = A + (i0 + p + r) * lda + k0;
        for (size_t k = 0; k < kc; ++k) dst[k * kMR + r] = src[k];
      }
    } else {
      for (size_t k = 0; k < kc; ++k) {
        const float* src = A + (k0 + k) * lda + i0 + p;
        for (size_t r = 0; r < rows; ++r) dst[k * kMR + r] = src[r];
      }
    }
    if (rows < kMR)
      for (size_t k = 0; k < kc; ++k)
        for (size_t r = rows; r < kMR; ++r) dst[k * kMR + r] = 0.f;
    dst += kc * kMR;
  }
}


// op(B)[k0 : k0+kc, j0 : j0+n] → NR-column micro-panels: panel q holds, for each k, the NR values
// of columns q·NR … q·NR+NR-1 (zero beyond n).
void PackB(bool tb, const float* B, size_t ldb, size_t k0, size_t kc, size_t j0, size_t n, float* HWY_RESTRICT dst) {
  const D d;
  if (!tb) {  // row by row (sequential reads), each row's NR-chunks to their panels
    const size_t full = n / kNR * kNR;
    for (size_t k = 0; k < kc; ++k) {
      const float* src = B + (k0 + k) * ldb + j0;
      float* o = dst + k * kNR;
      for (size_t q = 0; q < full; q += kNR) {
        hn::StoreU(hn::LoadU(d, src + q), d, o + q * kc);
        hn::StoreU(hn::LoadU(d, src + q + kL), d, o + q * kc + kL);
      }
      if (full < n) {
        std::memcpy(o + full * kc, src + full, (n - full) * sizeof(float));
        std::fill(o + full * kc + (n - full), o + full * kc + kNR, 0.f);
      }
    }
    return;
  }
  for (size_t q = 0; q < n; q += kNR) {
    const size_t cols = std::min(kNR, n - q);
    // A transposition: column c of the panel is row j0+q+c of B. Full 8×8 blocks go through
    // registers (Transpose8x8), the rest element by element.
    size_t c = 0;
#if HWY_MAX_BYTES >= 32
    const size_t k8 = kc & ~size_t(7);
    for (; c + 8 <= cols; c += 8) {
      const float* src = B + (j0 + q + c) * ldb + k0;
      for (size_t k = 0; k < k8; k += 8) Transpose8x8(src + k, ldb, dst + k * kNR + c, kNR);
      for (size_t k = k8; k < kc; ++k)
        for (size_t i = 0; i < 8; ++i) dst[k * kNR + c + i] = src[i * ldb + k];
    }
#endif
    for (; c < cols; ++c) {
      const float* src = B + (j0 + q + c) * ldb + k0;
      for (size_t k = 0; k < kc; ++k) dst[k * kNR + c] = src[k];
    }
    if (cols < kNR)
      for (size_t k = 0; k < kc; ++k) std::fill(dst + k * kNR + cols, dst + (k + 1) * kNR, 0.f);
    dst += kc * kNR;
  }
}

// C tile (m ≤ MR rows, n ≤ NR columns at c, row stride ldc) ⊕= packed A panel · packed B panel.
// first: this is the first k-block (then beta applies; afterwards blocks are added).
HWY_INLINE void Fold(V acc, float* c, float alpha, float beta, bool first, D d) {
  if (alpha != 1.f) acc = hn::Mul(acc, hn::Set(d, alpha));
  if (first && beta == 0.f) {
    hn::StoreU(acc, d, c);
  } else if (!first || beta == 1.f) {
    hn::StoreU(hn::Add(hn::LoadU(d, c), acc), d, c);
  } else {
    hn::StoreU(hn::Add(hn::Mul(hn::LoadU(d, c), hn::Set(d, beta)), acc), d, c);
  }
}

HWY_NOINLINE void MicroKernel(size_t kc, const float* HWY_RESTRICT pa, const float* HWY_RESTRICT pb, float* c,
                              size_t ldc, size_t m, size_t n, float alpha, float beta, bool first) {
  const D d;
  V a0[kMR], a1[kMR];
#pragma GCC unroll 16
  for (size_t r = 0; r < kMR; ++r) a0[r] = a1[r] = hn::Zero(d);
  for (size_t k = 0; k < kc; ++k) {
    const V b0 = hn::LoadU(d, pb), b1 = hn::LoadU(d, pb + kL);
#pragma GCC unroll 16
    for (size_t r = 0; r < kMR; ++r) {
      const V a = hn::Set(d, pa[r]);
      a0[r] = hn::MulAdd(a, b0, a0[r]);
      a1[r] = hn::MulAdd(a, b1, a1[r]);
    }
    pa += kMR;
    pb += kNR;
  }
  if (m == kMR && n == kNR) {
#pragma GCC unroll 16
    for (size_t r = 0; r < kMR; ++r) {
      Fold(a0[r], c + r * ldc, alpha, beta, first, d);
      Fold(a1[r], c + r * ldc + kL, alpha, beta, first, d);
    }
    return;
  }
  // Edge tile: the same operations, element by element, on the valid part only.
  HWY_ALIGN float t[kMR * kNR];
#pragma GCC unroll 16
  for (size_t r = 0; r < kMR; ++r) {
    hn::Store(a0[r], d, t + r * kNR);
    hn::Store(a1[r], d, t + r * kNR + kL);
  }
  for (size_t r = 0; r < m; ++r)
    for (size_t j = 0; j < n; ++j) fold_element(c[r * ldc + j], t[r * kNR + j], alpha, beta, first);
}

// The blocked product with op(B) panels from get_b(k0, kc, j0, nc, scratch) → pointer to the
// panels of op(B)[k0 : k0+kc, j0 : j0+nc] (PackB's layout), written to scratch or held elsewhere.
template <class GetB>
void SgemmBlocked(bool ta, size_t M, size_t N, size_t K, float alpha, const float* A, size_t lda, const GetB& get_b,
                  float beta, float* C, size_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // C = beta·C
    for (size_t i = 0; i < M; ++i)
      for (size_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : C[i * ldc + j] * beta;
    return;
  }
  thread_local hwy::AlignedFreeUniquePtr<float[]> buf;
  if (!buf) buf = hwy::AllocateAligned<float>(kMC * kKC + kKC * kNC);
  if (!buf) throw std::bad_alloc();  // lib/threads.h carries it out of a parallel region
  float* pa = buf.get();
  for (size_t j0 = 0; j0 < N; j0 += kNC) {
    const size_t nc = std::min(kNC, N - j0);
    for (size_t k0 = 0; k0 < K; k0 += kKC) {
      const size_t kc = std::min(kKC, K - k0);
      const bool first = k0 == 0;
      const float* pb = get_b(k0, kc, j0, nc, buf.get() + kMC * kKC);
      for (size_t i0 = 0; i0 < M; i0 += kMC) {
        const size_t mc = std::min(kMC, M - i0);
        PackA(ta, A, lda, i0, mc, k0, kc, pa);
        for (size_t q = 0; q < nc; q += kNR)
          for (size_t p = 0; p < mc; p += kMR)
            MicroKernel(kc, pa + p * kc, pb + q * kc, C + (i0 + p) * ldc + j0 + q, ldc, std::min(kMR, mc - p),
                        std::min(kNR, nc - q), alpha, beta, first);
      }
    }
  }
}

void Sgemm(bool ta, bool tb, size_t M, size_t N, size_t K, float alpha, const float* A, size_t lda, const float* B,
           size_t ldb, float beta, float* C, size_t ldc) {
  SgemmBlocked(
      ta, M, N, K, alpha, A, lda,
      [&](size_t k0, size_t kc, size_t j0, size_t nc, float* pb) {
        PackB(tb, B, ldb, k0, kc, j0, nc, pb);
        return static_cast<const float*>(pb);
      },
      beta, C, ldc);
}

void SgemmPanels(bool ta, size_t M, size_t N, size_t K, float alpha, const float* A, size_t lda, const BPanels& b,
                 float beta, float* C, size_t ldc) {
  SgemmBlocked(
      ta, M, N, K, alpha, A, lda,
      [&](size_t k0, size_t kc, size_t j0, size_t nc, float* pb) { return b.get(b.ctx, k0, kc, b.col0 + j0, nc, kNR, pb); },
      beta, C, ldc);
}

void PackPanels(bool tb, const float* B, size_t ldb, size_t kc, size_t n, float* dst) {
  PackB(tb, B, ldb, 0, kc, 0, n, dst);
}

size_t Lanes() { return kL; }

}  // namespace ntc::k::gemm_simd::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ntc::k {
namespace gemm_simd {
HWY_EXPORT(Sgemm);
HWY_EXPORT(SgemmPanels);
HWY_EXPORT(PackPanels);
HWY_EXPORT(Lanes);
}  // namespace gemm_simd

void sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
           float beta, float* C, int ldc) {
  HWY_DYNAMIC_DISPATCH(gemm_simd::Sgemm)
  (ta, tb, size_t(M), size_t(N), size_t(K), alpha, A, size_t(lda), B, size_t(ldb), beta, C, size_t(ldc));
}
void sgemm_panels(bool ta, int M, int N, int K, float alpha, const float* A, int lda, const BPanels& b, float beta,
                  float* C, int ldc) {
  HWY_DYNAMIC_DISPATCH(gemm_simd::SgemmPanels)
  (ta, size_t(M), size_t(N), size_t(K), alpha, A, size_t(lda), b, beta, C, size_t(ldc));
}
void pack_panels(bool tb, const float* B, size_t ldb, size_t kc, size_t n, float* dst) {
  HWY_DYNAMIC_DISPATCH(gemm_simd::PackPanels)(tb, B, ldb, kc, n, dst);
}
size_t sgemm_lanes() { return HWY_DYNAMIC_DISPATCH(gemm_simd::Lanes)(); }
size_t sgemm_nr() { return 2 * sgemm_lanes(); }

static size_t padded_to_nr(int N) {
  const size_t nr = sgemm_nr();
  return (size_t(N) + nr - 1) / nr * nr;
}
size_t packed_b_floats(int K, int N) { return size_t(K) * padded_to_nr(N); }
PackedB pack_b_all(bool tb, const float* B, int ldb, int K, int N, float* dst) {
  const size_t n_pad = padded_to_nr(N);
  for (size_t k0 = 0; k0 < size_t(K); k0 += kGemmKC) {  // k-block k0: kc × n_pad floats at k0·n_pad
    const size_t kc = std::min(kGemmKC, size_t(K) - k0);
    pack_panels(tb, tb ? B + k0 : B + k0 * size_t(ldb), size_t(ldb), kc, size_t(N), dst + k0 * n_pad);
  }
  return {dst, n_pad};
}
const float* packed_b_panels(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr, float* scratch) {
  const auto& p = *static_cast<const PackedB*>(ctx);
  // Panel j0/nr of k-block k0 (j0 is a multiple of nr: BPanels' col0 and the kernel's column blocks).
  return p.data + k0 * p.n_pad + j0 * kc;
}
}  // namespace ntc::k
#endif  // HWY_ONCE
