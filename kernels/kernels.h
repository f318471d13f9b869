// kernels — elementwise, activation, reduction and GDN kernels over raw float pointers.
//
// Read me first
// -------------
// * Every kernel exists twice with the same signature: a Highway SIMD version
//   (kernels/simd.cc, runtime-dispatched to AVX2 / AVX-512) and an always-compiled scalar
//   twin (kernels/ref.cc, namespace ntc::k::ref). The public functions below dispatch to one
//   of them according to `use_reference_kernels()`; tests compare the two on odd sizes and
//   unaligned pointers (tests/test_kernels.cc).
// * Kernels are single-threaded and know nothing about tensors. Threading (chunking of long
//   arrays over OpenMP threads) happens in the public dispatch layer (kernels/dispatch.cc) with
//   chunk boundaries that do not depend on the thread count, so results are identical for any
//   thread count.
// * Naming: `*_fwd` computes an output; `*_bwd` ACCUMULATES a gradient (gx += ...), because the
//   autodiff core accumulates gradients into buffers that may already hold contributions.
// * Pointers may alias only where stated (y == x for the forward maps is allowed).
// * Transcendentals: SIMD versions use Highway's contrib/math (Exp, Log, Tanh, Log1p; wrapped so
//   that 0, negative, inf and NaN inputs behave like std::) and agree with the scalar twins to a
//   few ulp, not bit-exactly. erf/erfc/GELU are our own (erfc = t·exp(P(t) − z²), t = 2/(2+z),
//   Taylor series for |x| < 0.5) evaluated in double lanes; they match the twins bit for bit.
//   Arithmetic kernels (add, mul, relu, ...) agree bit-exactly; this relies on -ffp-contract=off.
// * relu(NaN) = 0 (x > 0 ? x : 0), unlike PyTorch which propagates the NaN.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/kernel_list.h"

namespace ntc::k {

// Run-time selection: true = scalar twins. Default false, or true when built with
// -DNTC_SCALAR_DEFAULT=1 (`make scalar`). Also set by the CLI flag --kernels=ref|simd.
void set_reference_kernels(bool on);
bool use_reference_kernels();
// Name of the SIMD target Highway picked at run time ("AVX3", "AVX2", ...), or "scalar".
const char* kernel_target_name();
// Forces the SIMD target of every Highway kernel (ntc's GEMM included): "avx2", "avx512", or
// "auto" (the best this CPU runs; the default); "scalar" selects the scalar twins as
// set_reference_kernels(true) does (and the others turn the twins off: of --kernels and
// --target, the last given decides). The CLI flag --target. Returns false, changing nothing, for
// an unknown name or a target this CPU cannot run. The bf16 kernel (kernels/gemm.h) runs only
// where 512-bit vectors are in force.
bool set_simd_target(const std::string& target);

// ---- elementwise binary, same length n; y may alias a or b ------------------------------
void add(const float* a, const float* b, float* y, size_t n);   // y = a + b
void sub(const float* a, const float* b, float* y, size_t n);   // y = a - b
void mul(const float* a, const float* b, float* y, size_t n);   // y = a * b
void div(const float* a, const float* b, float* y, size_t n);   // y = a / b
// ---- scalar forms -------------------------------------------------------------------------
void scale(float alpha, const float* x, float* y, size_t n);      // y = alpha * x
void add_scalar(float c, const float* x, float* y, size_t n);     // y = x + c
void axpy(float alpha, const float* x, float* y, size_t n);       // y += alpha * x
void fill(float v, float* y, size_t n);                           // y = v
// ---- accumulating products used by backward passes ----------------------------------------
void mul_acc(const float* a, const float* b, float* y, size_t n);      // y += a * b
void div_acc(const float* a, const float* b, float* y, size_t n);      // y += a / b
// gb += -gy * y / b   (d(a/b)/db with y = a/b)
void div_bwd_b(const float* gy, const float* y, const float* b, float* gb, size_t n);

// ---- channel broadcast over x laid out [outer, C, inner] (NCHW: outer=N, inner=H*W) --------
// y = x + b[c]  /  y = x * b[c]; y may alias x.
void add_channel(const float* x, const float* b, float* y, size_t outer, size_t C, size_t inner);
void mul_channel(const float* x, const float* b, float* y, size_t outer, size_t C, size_t inner);
// gb[c] += sum over outer, inner of g        (bias / broadcast-add gradient)
void sum_channel(const float* g, float* gb, size_t outer, size_t C, size_t inner);
// gb[c] += sum over outer, inner of g * x    (broadcast-mul gradient)
void dot_channel(const float* g, const float* x, float* gb, size_t outer, size_t C, size_t inner);

// ---- reductions (the dispatch layer sums fixed 4096-element chunks in double, in order) ----
double sum(const float* x, size_t n);
double dot(const float* a, const float* b, size_t n);
double sum_squares(const float* x, size_t n);

// ---- activations: fwd y = f(x) (y may alias x); bwd gx += gy * f'(.) ----------------------
void relu_fwd(const float* x, float* y, size_t n);
void relu_bwd(const float* x, const float* gy, float* gx, size_t n);            // f'(0) = 0
// g = 0 + (x > 0 ? gy : 0), written, not added: relu_bwd into a zeroed g (the same bits, −0 → +0
// included) in one pass instead of a fill and an accumulate.
void relu_mask(const float* x, const float* gy, float* g, size_t n);
void leaky_relu_fwd(const float* x, float* y, size_t n, float slope);
void leaky_relu_bwd(const float* x, const float* gy, float* gx, size_t n, float slope);  // x>0 ? 1 : slope
void gelu_fwd(const float* x, float* y, size_t n);                               // exact erf form
void gelu_bwd(const float* x, const float* gy, float* gx, size_t n);
void sigmoid_fwd(const float* x, float* y, size_t n);
void sigmoid_bwd(const float* y, const float* gy, float* gx, size_t n);          // uses output y
void softplus_fwd(const float* x, float* y, size_t n);                           // log1p(exp(-|x|)) + max(x,0)
void softplus_bwd(const float* x, const float* gy, float* gx, size_t n);         // sigmoid(x)
void tanh_fwd(const float* x, float* y, size_t n);
void tanh_bwd(const float* y, const float* gy, float* gx, size_t n);             // uses output y
void abs_fwd(const float* x, float* y, size_t n);
void abs_bwd(const float* x, const float* gy, float* gx, size_t n);              // sign(x), 0 at 0
void exp_fwd(const float* x, float* y, size_t n);
void exp_bwd(const float* y, const float* gy, float* gx, size_t n);              // uses output y
void log_fwd(const float* x, float* y, size_t n);
void log_bwd(const float* x, const float* gy, float* gx, size_t n);              // 1/x
void sqrt_fwd(const float* x, float* y, size_t n);
void sqrt_bwd(const float* y, const float* gy, float* gx, size_t n);             // 0.5/y, uses output
// erf / erfc, |relative error of erfc| < 2e-7 for erfc(x) > 1e-37 and |absolute error of erf| < 2e-7
void erf_fwd(const float* x, float* y, size_t n);
void erfc_fwd(const float* x, float* y, size_t n);

// ---- GDN1 pointwise part (the channel mixing gamma·|x| is a GEMM done by the op) ----------
// y = x / norm (GDN) or y = x * norm (inverse GDN)
void gdn_fwd(const float* x, const float* norm, float* y, size_t n, bool inverse);
// Given gy: gx += dy/dx|direct (gy/norm or gy*norm), and gnorm = dy/dnorm * gy
// (-gy*x/norm^2 or gy*x), gnorm is OVERWRITTEN (it is a scratch buffer).
void gdn_bwd(const float* x, const float* norm, const float* gy, float* gx, float* gnorm, size_t n,
             bool inverse);

// ---- optimiser: one Adam update of n values (train/optim.cc derives step and vs) -----------------
// m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g·g;  p = p − step·m / (√v·vs + eps)
void adam(float* p, const float* g, float* m, float* v, size_t n, float beta1, float beta2, float step, float vs,
          float eps);

// ---- scalar twins, same signatures (always compiled; used by tests and --kernels=ref) ------
// (declared from the one kernel list, kernels/kernel_list.h)
namespace ref {
NTC_KERNEL_LIST(NTC_KERNEL_DECLARE)
}  // namespace ref

}  // namespace ntc::k
