// gemm — every matrix product of ntc: C[M,N] = alpha·op(A)·op(B) + beta·C (row-major).
//
// Why not just call a threaded cblas_sgemm: OpenBLAS splits the work by thread count, and the
// edge tiles of a split may round differently, so the same product could differ in the last bit
// between --threads 1 and --threads 2. A stream must decode bit-exactly with any thread count
// (the hyper-synthesis decides the CDF table of every symbol), so ntc runs OpenBLAS
// single-threaded (threads.cc) and parallelises here instead. With OpenBLAS, C is cut into a grid
// of tiles that depends only on M and N, each tile is one single-threaded sgemm over the full K
// (OpenBLAS's OpenMP build follows omp_get_max_threads() at every call, so each call runs with it
// set to 1), and the tiles run on the OpenMP threads: every element of C is then computed by the
// same instructions for any thread count. ntc's own kernel gives every element the same bits
// however C is cut, so with it C is cut by the thread count instead — one column (or row) block
// per thread, each packing its share of A and B once (the fixed 8-tile grid packed the operands
// up to 4 times and padded 64-row tiles to 72 micro-kernel rows). Inside an OpenMP region (a batch
// split over threads) a product runs as one serial call.
//
// Two back ends compute the tiles (kernels/gemm.h): OpenBLAS, and ntc's own Highway SGEMM. `auto`
// (the default) takes ntc's wherever Highway runs FMA vectors (AVX2 or AVX-512), OpenBLAS on older
// targets and with the scalar reference kernels (--kernels ref). The rule is measured, not a CPU
// name: on this project's Zen 5 VMs, light training step (8 × 128², 2 threads) on the AVX2 target
// 0.224–0.228 s with ntc's kernel against 0.238–0.245 s with OpenBLAS, decode 27.6 against 28.7 ms;
// on AVX-512 single-threaded conv GEMMs ran at 155–177 GFLOP/s against 87–103 (OpenBLAS pinned to
// Haswell kernels there), and on Zen 4, where OpenBLAS runs its Cooperlake AVX-512 kernels, a
// light step took 0.276 s with ntc's kernel against 0.358 s. `ntc --gemm openblas|ntc` overrides.
// With either back end results stay bit-identical for any thread count; the two back ends differ
// from each other in the last bits.
#pragma once

#include "kernels/gemm.h"

namespace ntc {

enum class GemmBackend { Auto, OpenBLAS, Ntc };
// Precision of a product. Bf16: bf16 operands, fp32 accumulation (kernels/gemm.h, sgemm_bf16),
// always on ntc's bf16 kernel whatever the back end, or on its scalar twin with --kernels ref
// (the same bits, slowly); on a CPU without AVX512_BF16 a bf16 product is an error that says so.
enum class Precision { F32, Bf16 };
// The precision conv2d takes for its products (forward and both gradients), set for a scope on
// this thread: `ntc train --precision bf16` runs the analysis transforms under it.
Precision conv_precision();
class ConvPrecisionScope {
 public:
  explicit ConvPrecisionScope(Precision p);
  ~ConvPrecisionScope();
  ConvPrecisionScope(const ConvPrecisionScope&) = delete;
  ConvPrecisionScope& operator=(const ConvPrecisionScope&) = delete;

 private:
  Precision saved_;
};
// Decoding's products. While a PortableProducts scope is active on this thread, every product runs
// ntc's kernel whatever --gemm says (its scalar twin ref::sgemm with --kernels ref, the same bits
// on every FMA target) and conv2d skips Winograd, so each element of a product is one fixed FMA
// chain on every target (AVX2, AVX-512, the twin) and thread count. nn/compress.cc runs the
// decoder side (h_s, g_s) of encoding and decoding under it: a stream decodes to the same bytes on
// every x86-64 CPU with AVX2 (codec/BITSTREAM.md).
bool portable_products();
// Sets one of this thread's switches (below) for its lifetime, then restores the value it found.
class ScopedSwitch {
 public:
  ScopedSwitch(const ScopedSwitch&) = delete;
  ScopedSwitch& operator=(const ScopedSwitch&) = delete;

 protected:
  ScopedSwitch(bool* flag, bool on) : flag_(flag), saved_(*flag) { *flag = on; }
  ~ScopedSwitch() { *flag_ = saved_; }

 private:
  bool* flag_;
  bool saved_;
};
class PortableProducts : ScopedSwitch {
 public:
  PortableProducts();
};
// Under PortableProducts, whether stride-1 3×3 transposed convolutions padded by one pixel on every
// side run Winograd F(2×2,3×3) in its portable form (kernels/winograd.h): 2.25× fewer products,
// other bits than the direct form but the same ones on every target and thread count. A stream
// says which form its hyper-synthesis used (codec/BITSTREAM.md, flags); nn/compress.cc sets it.
bool portable_winograd();
class PortableWinograd : ScopedSwitch {
 public:
  explicit PortableWinograd(bool on);
};
// Fails with a one-line error when bf16 products cannot run here (no AVX512_BF16 and not --kernels ref).
void check_bf16_available();
// Whether bf16 products run at full speed here: AVX512_BF16 and the 512-bit target in force.
bool bf16_products_available();
// OpenBLAS maps a working buffer (128 MB of address space) the first time each concurrent caller
// needs one, and under an address-space limit (ulimit -v) a refused mapping makes it retry forever
// instead of failing. Where OpenBLAS is the back end, this has every OpenMP thread call it once, so
// that its buffers are mapped while address space is plentiful and a later shortage is ntc's own
// one-line "out of memory" error. Model construction calls it; it costs one small product per
// thread, once per thread count.
void reserve_blas_buffers();
void set_gemm_backend(GemmBackend b);
const char* gemm_backend_name();  // the back end gemm() uses now: "openblas" or "ntc"

void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc, Precision p = Precision::F32);

// The implicit form (kernels/gemm.h, BPanels): op(B) produced panel by panel by the caller. Only
// ntc's kernel takes panels: callers check gemm_takes_panels() and otherwise materialise op(B) and
// call gemm(). Same threading and the same bits for any thread count.
// Bf16 products take panels wherever the fp32 ones do, except with the scalar twins (which read
// 32-column panels that a 16-lane target does not make): callers pass the product's precision.
bool gemm_takes_panels(Precision p = Precision::F32);
void gemm_panels(bool trans_a, int M, int N, int K, float alpha, const float* A, int lda, const k::BPanels& b,
                 float beta, float* C, int ldc, Precision p = Precision::F32);

}  // namespace ntc
