// kernels/simd.cc — Highway SIMD kernels with run-time dispatch (namespace ntc::k::simd).
//
// Single-source Highway (see hwy/examples/skeleton.cc): foreach_target.h re-includes this file
// once per target (SSSE3, SSE4, AVX2, AVX3 with the Makefile's flags); the per-target code lives
// in ntc::k::simd::HWY_NAMESPACE and the HWY_ONCE section at the end exports one dispatching
// entry point per kernel. Each kernel mirrors its scalar twin in kernels/ref.cc operation for
// operation: arithmetic kernels use the same IEEE ops in the same order (Mul then Add, never
// MulAdd) so they match the twin bit-exactly; transcendentals use hwy/contrib/math (wrapped so
// that NaN and log's special cases come out as from std::). erf, erfc and GELU run in double
// lanes (promote, evaluate, demote) with the same formulas as the twin; in tests they agree
// bit-for-bit on 10^6 random inputs.
//
// Memory: pointers may be unaligned (LoadU/StoreU). The last n % Lanes elements are copied into
// a zero-padded stack buffer, run through the same vector code, and only the valid lanes are
// copied back, so no kernel reads or writes outside [p, p + n).
//
// Reductions (sum, dot, sum_squares, sum_channel, dot_channel) promote each float vector to
// double lanes and accumulate in double (products of two floats are exact in double), so a
// reduction of n elements has error <= n * 2^-53 * sum|term|, far below the float inputs' own
// precision; the dispatch layer additionally cuts long arrays into fixed 4096-element chunks.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <limits>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "kernels/kernels.h"

HWY_BEFORE_NAMESPACE();
namespace ntc::k::simd::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using D = hn::ScalableTag<float>;
using V = hn::Vec<D>;
using DH = hn::Half<D>;                // half a float vector ...
using DD = hn::Rebind<double, DH>;     // ... promoted to a full vector of doubles
using VD = hn::Vec<DD>;
constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);

// ---- loop helpers ------------------------------------------------------------------------------

// Loads the r < Lanes(d) floats at p into a vector whose remaining lanes are zero.
HWY_INLINE V LoadTail(D d, const float* p, size_t r) {
  HWY_ALIGN float buf[kMaxLanes] = {};
  std::copy_n(p, r, buf);
  return hn::Load(d, buf);
}

// Stores only the first r < Lanes(d) lanes of v to p.
HWY_INLINE void StoreTail(V v, D d, float* p, size_t r) {
  HWY_ALIGN float buf[kMaxLanes];
  hn::Store(v, d, buf);
  std::copy_n(buf, r, p);
}

// y[i] = f(in[i]...) for i < n. All inputs of a vector are loaded before its result is stored,
// so y may alias any input.
template <class F, class... In>
HWY_INLINE void Map(float* y, size_t n, F f, const In*... in) {
  const D d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(hn::LoadU(d, in + i)...), d, y + i);
  if (i < n) StoreTail(f(LoadTail(d, in + i, n - i)...), d, y + i, n - i);
}

HWY_INLINE VD PromoteLower(V v) { return hn::PromoteTo(DD(), hn::LowerHalf(DH(), v)); }
HWY_INLINE VD PromoteUpper(V v) { return hn::PromoteTo(DD(), hn::UpperHalf(DH(), v)); }

// Sum over i < n of f(in[i]...), with f applied to and accumulated in double lanes. Tail lanes
// are zero, so f must map zeros to zero (true for x, a*b, x*x).
template <class F, class... In>
HWY_INLINE double Reduce(size_t n, F f, const In*... in) {
  const D d;
  const DD dd;
  const size_t N = hn::Lanes(d);
  VD acc_lo = hn::Zero(dd), acc_hi = hn::Zero(dd);
  const auto step = [&](auto... v) {
    acc_lo = hn::Add(acc_lo, f(PromoteLower(v)...));
    acc_hi = hn::Add(acc_hi, f(PromoteUpper(v)...));
  };
  size_t i = 0;
  for (; i + N <= n; i += N) step(hn::LoadU(d, in + i)...);
  if (i < n) step(LoadTail(d, in + i, n - i)...);
  return hn::GetLane(hn::SumOfLanes(dd, hn::Add(acc_lo, acc_hi)));
}

// Applies a double-precision function f to each lane of a float vector and rounds back to float.
template <class F>
HWY_INLINE V InDouble(V v, F f) {
  return hn::Combine(D(), hn::DemoteTo(DH(), f(PromoteUpper(v))),
                     hn::DemoteTo(DH(), f(PromoteLower(v))));
}

// ---- math helpers, twins of the ones in kernels/ref.cc -----------------------------------------

// hn::Exp returns 0 for NaN; std::exp returns NaN. Keep NaN so both twins propagate it.
HWY_INLINE V ExpF(V x) { return hn::IfThenElse(hn::IsNaN(x), x, hn::Exp(D(), x)); }

// hn::Log is only valid for finite x > 0 (it returns finite garbage for 0, x < 0, inf, NaN).
// Patch in std::log's IEEE special cases: log(+-0) = -inf, log(+inf) = +inf, log(x < 0) = NaN.
HWY_INLINE V LogF(V x) {
  const D d;
  const V zero = hn::Zero(d), inf = hn::Set(d, std::numeric_limits<float>::infinity());
  V y = hn::Log(d, x);
  y = hn::IfThenElse(hn::Eq(x, zero), hn::Neg(inf), y);
  y = hn::IfThenElse(hn::Eq(x, inf), inf, y);
  y = hn::IfThenElse(hn::Lt(x, zero), hn::Set(d, std::numeric_limits<float>::quiet_NaN()), y);
  return hn::IfThenElse(hn::IsNaN(x), x, y);
}

// Numerically stable logistic function: exp is only ever taken of -|x|.
HWY_INLINE V Sigmoid(V x) {
  const D d;
  const V e = ExpF(hn::Neg(hn::Abs(x)));
  const V s = hn::Div(hn::Set(d, 1.0f), hn::Add(hn::Set(d, 1.0f), e));
  return hn::IfThenElse(hn::Ge(x, hn::Zero(d)), s, hn::Mul(e, s));
}

// erfc in double: erfc(z) = t * exp(P(t) - z^2), t = 2 / (2 + z), z = |x|, erfc(-z) = 2 - erfc(z).
// Same coefficients and error analysis as kernels/ref.cc (fit error < 1.4e-9 relative).
// hn::Exp(-inf) = 0, so erfc(+-inf) = 0 / 2; NaN propagates through t.
constexpr double kErfcPoly[14] = {
    0.17739250482128235,  -1.0990908345282022,  2.8124974890009815,   -3.7077934361193274,
    2.5037098797641439,   -0.74012631552580277, 0.18269988797733067,  -0.084861871673213837,
    -0.15307626229058977, -0.083991826101845191, 0.083144539334678788, 0.3750085101997892,
    0.99999985952214931,  -1.2655121231214337};

HWY_INLINE VD ErfcD(VD x) {
  const DD dd;
  const VD z = hn::Abs(x);
  const VD t = hn::Div(hn::Set(dd, 2.0), hn::Add(hn::Set(dd, 2.0), z));
  VD p = hn::Set(dd, kErfcPoly[0]);
  for (int k = 1; k < 14; ++k) p = hn::Add(hn::Mul(p, t), hn::Set(dd, kErfcPoly[k]));
  const VD r = hn::Mul(t, hn::Exp(dd, hn::Sub(p, hn::Mul(z, z))));
  return hn::IfThenElse(hn::Lt(x, hn::Zero(dd)), hn::Sub(hn::Set(dd, 2.0), r), r);
}

// erf in double: Taylor series for |x| < 0.5 (relative accuracy near 0), else sign(x)(1-erfc|x|).
constexpr double kTwoOverSqrtPi = 1.1283791670955126;
constexpr double kErfTaylor[9] = {1.0,          -1.0 / 3.0,    1.0 / 10.0,
                                  -1.0 / 42.0,  1.0 / 216.0,   -1.0 / 1320.0,
                                  1.0 / 9360.0, -1.0 / 75600.0, 1.0 / 685440.0};

HWY_INLINE VD ErfD(VD x) {
  const DD dd;
  const VD x2 = hn::Mul(x, x);
  VD s = hn::Set(dd, kErfTaylor[8]);
  for (int k = 7; k >= 0; --k) s = hn::Add(hn::Mul(s, x2), hn::Set(dd, kErfTaylor[k]));
  const VD small = hn::Mul(hn::Mul(hn::Set(dd, kTwoOverSqrtPi), x), s);
  const VD z = hn::Abs(x);
  const VD large = hn::CopySign(hn::Sub(hn::Set(dd, 1.0), ErfcD(z)), x);
  return hn::IfThenElse(hn::Lt(z, hn::Set(dd, 0.5)), small, large);
}

constexpr double kInvSqrt2 = 0.70710678118654752;    // 1/sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143268;  // 1/sqrt(2 pi)

// Phi(x) = 0.5 * erfc(-x / sqrt 2): keeps relative accuracy in the left tail.
HWY_INLINE VD NormalCdfD(VD x) {
  const DD dd;
  return hn::Mul(hn::Set(dd, 0.5), ErfcD(hn::Mul(hn::Neg(x), hn::Set(dd, kInvSqrt2))));
}

// ---- elementwise binary ------------------------------------------------------------------------
void add(const float* a, const float* b, float* y, size_t n) {
  Map(y, n, [](V a, V b) { return hn::Add(a, b); }, a, b);
}
void sub(const float* a, const float* b, float* y, size_t n) {
  Map(y, n, [](V a, V b) { return hn::Sub(a, b); }, a, b);
}
void mul(const float* a, const float* b, float* y, size_t n) {
  Map(y, n, [](V a, V b) { return hn::Mul(a, b); }, a, b);
}
void div(const float* a, const float* b, float* y, size_t n) {
  Map(y, n, [](V a, V b) { return hn::Div(a, b); }, a, b);
}

// ---- scalar forms ------------------------------------------------------------------------------
void scale(float alpha, const float* x, float* y, size_t n) {
  const V va = hn::Set(D(), alpha);
  Map(y, n, [va](V x) { return hn::Mul(va, x); }, x);
}
void add_scalar(float c, const float* x, float* y, size_t n) {
  const V vc = hn::Set(D(), c);
  Map(y, n, [vc](V x) { return hn::Add(x, vc); }, x);
}
void axpy(float alpha, const float* x, float* y, size_t n) {
  const V va = hn::Set(D(), alpha);
  Map(y, n, [va](V x, V y) { return hn::Add(y, hn::Mul(va, x)); }, x, y);
}
void fill(float v, float* y, size_t n) {
  const V vv = hn::Set(D(), v);
  Map(y, n, [vv]() { return vv; });
}

// ---- accumulating products ---------------------------------------------------------------------
void mul_acc(const float* a, const float* b, float* y, size_t n) {
  Map(y, n, [](V a, V b, V y) { return hn::Add(y, hn::Mul(a, b)); }, a, b, y);
}
void div_acc(const float* a, const float* b, float* y, size_t n) {
  Map(y, n, [](V a, V b, V y) { return hn::Add(y, hn::Div(a, b)); }, a, b, y);
}
void div_bwd_b(const float* gy, const float* y, const float* b, float* gb, size_t n) {
  Map(gb, n, [](V gy, V y, V b, V gb) { return hn::Add(gb, hn::Div(hn::Mul(hn::Neg(gy), y), b)); },
      gy, y, b, gb);
}

// ---- channel broadcast over [outer, C, inner] --------------------------------------------------
void add_channel(const float* x, const float* b, float* y, size_t outer, size_t C, size_t inner) {
  for (size_t p = 0; p < outer * C; ++p) {
    const V vb = hn::Set(D(), b[p % C]);
    Map(y + p * inner, inner, [vb](V x) { return hn::Add(x, vb); }, x + p * inner);
  }
}
void mul_channel(const float* x, const float* b, float* y, size_t outer, size_t C, size_t inner) {
  for (size_t p = 0; p < outer * C; ++p) {
    const V vb = hn::Set(D(), b[p % C]);
    Map(y + p * inner, inner, [vb](V x) { return hn::Mul(x, vb); }, x + p * inner);
  }
}
// gb[c] = float(gb[c] + plane sum), plane by plane in order o = 0, 1, ... (as in kernels/ref.cc).
void sum_channel(const float* g, float* gb, size_t outer, size_t C, size_t inner) {
  for (size_t p = 0; p < outer * C; ++p)
    gb[p % C] = float(double(gb[p % C]) + Reduce(inner, [](VD g) { return g; }, g + p * inner));
}
void dot_channel(const float* g, const float* x, float* gb, size_t outer, size_t C, size_t inner) {
  for (size_t p = 0; p < outer * C; ++p)
    gb[p % C] = float(double(gb[p % C]) +
                      Reduce(inner, [](VD g, VD x) { return hn::Mul(g, x); }, g + p * inner,
                             x + p * inner));
}

// ---- reductions --------------------------------------------------------------------------------
double sum(const float* x, size_t n) {
  return Reduce(n, [](VD x) { return x; }, x);
}
double dot(const float* a, const float* b, size_t n) {
  return Reduce(n, [](VD a, VD b) { return hn::Mul(a, b); }, a, b);
}
double sum_squares(const float* x, size_t n) {
  return Reduce(n, [](VD x) { return hn::Mul(x, x); }, x);
}

// ---- activations -------------------------------------------------------------------------------
void relu_fwd(const float* x, float* y, size_t n) {
  Map(y, n, [](V x) { return hn::IfThenElseZero(hn::Gt(x, hn::Zero(D())), x); }, x);
}
void relu_bwd(const float* x, const float* gy, float* gx, size_t n) {
  Map(gx, n,
      [](V x, V gy, V gx) { return hn::Add(gx, hn::IfThenElseZero(hn::Gt(x, hn::Zero(D())), gy)); },
      x, gy, gx);
}
void relu_mask(const float* x, const float* gy, float* g, size_t n) {
  Map(g, n, [](V x, V gy) { return hn::Add(hn::Zero(D()), hn::IfThenElseZero(hn::Gt(x, hn::Zero(D())), gy)); }, x, gy);
}
void leaky_relu_fwd(const float* x, float* y, size_t n, float slope) {
  const V vs = hn::Set(D(), slope);
  Map(y, n, [vs](V x) { return hn::IfThenElse(hn::Gt(x, hn::Zero(D())), x, hn::Mul(vs, x)); }, x);
}
void leaky_relu_bwd(const float* x, const float* gy, float* gx, size_t n, float slope) {
  const V vs = hn::Set(D(), slope);
  Map(gx, n,
      [vs](V x, V gy, V gx) {
        const V dydx = hn::IfThenElse(hn::Gt(x, hn::Zero(D())), hn::Set(D(), 1.0f), vs);
        return hn::Add(gx, hn::Mul(gy, dydx));
      },
      x, gy, gx);
}

// GELU, exact form: y = x * Phi(x); y' = Phi(x) + x * phi(x). Evaluated in double.
void gelu_fwd(const float* x, float* y, size_t n) {
  Map(y, n, [](V x) { return InDouble(x, [](VD x) { return hn::Mul(x, NormalCdfD(x)); }); }, x);
}
void gelu_bwd(const float* x, const float* gy, float* gx, size_t n) {
  const auto dydx = [](VD x) {
    const DD dd;
    const VD pdf = hn::Mul(hn::Exp(dd, hn::Mul(hn::Mul(hn::Set(dd, -0.5), x), x)),
                           hn::Set(dd, kInvSqrt2Pi));
    return hn::Add(NormalCdfD(x), hn::Mul(x, pdf));
  };
  Map(gx, n, [dydx](V x, V gy, V gx) { return hn::Add(gx, hn::Mul(gy, InDouble(x, dydx))); }, x,
      gy, gx);
}

void sigmoid_fwd(const float* x, float* y, size_t n) { Map(y, n, Sigmoid, x); }
void sigmoid_bwd(const float* y, const float* gy, float* gx, size_t n) {
  Map(gx, n,
      [](V y, V gy, V gx) {
        return hn::Add(gx, hn::Mul(gy, hn::Mul(y, hn::Sub(hn::Set(D(), 1.0f), y))));
      },
      y, gy, gx);
}

// softplus(x) = max(x, 0) + log1p(exp(-|x|)): no overflow for large |x|.
void softplus_fwd(const float* x, float* y, size_t n) {
  Map(y, n,
      [](V x) {
        const V tail = hn::Log1p(D(), ExpF(hn::Neg(hn::Abs(x))));
        return hn::Add(hn::Max(x, hn::Zero(D())), tail);
      },
      x);
}
void softplus_bwd(const float* x, const float* gy, float* gx, size_t n) {
  Map(gx, n, [](V x, V gy, V gx) { return hn::Add(gx, hn::Mul(gy, Sigmoid(x))); }, x, gy, gx);
}

void tanh_fwd(const float* x, float* y, size_t n) {
  Map(y, n, [](V x) { return hn::Tanh(D(), x); }, x);
}
void tanh_bwd(const float* y, const float* gy, float* gx, size_t n) {
  Map(gx, n,
      [](V y, V gy, V gx) {
        return hn::Add(gx, hn::Mul(gy, hn::Sub(hn::Set(D(), 1.0f), hn::Mul(y, y))));
      },
      y, gy, gx);
}

void abs_fwd(const float* x, float* y, size_t n) {
  Map(y, n, [](V x) { return hn::Abs(x); }, x);
}
void abs_bwd(const float* x, const float* gy, float* gx, size_t n) {
  Map(gx, n,
      [](V x, V gy, V gx) {
        const V zero = hn::Zero(D());
        const V neg = hn::IfThenElseZero(hn::Lt(x, zero), hn::Neg(gy));
        const V dx = hn::IfThenElse(hn::Gt(x, zero), gy, neg);
        return hn::Add(gx, dx);
      },
      x, gy, gx);
}

void exp_fwd(const float* x, float* y, size_t n) { Map(y, n, ExpF, x); }
void exp_bwd(const float* y, const float* gy, float* gx, size_t n) {
  Map(gx, n, [](V y, V gy, V gx) { return hn::Add(gx, hn::Mul(gy, y)); }, y, gy, gx);
}
void log_fwd(const float* x, float* y, size_t n) {
  Map(y, n, LogF, x);
}
void log_bwd(const float* x, const float* gy, float* gx, size_t n) {
  Map(gx, n, [](V x, V gy, V gx) { return hn::Add(gx, hn::Div(gy, x)); }, x, gy, gx);
}
void sqrt_fwd(const float* x, float* y, size_t n) {
  Map(y, n, [](V x) { return hn::Sqrt(x); }, x);
}
void sqrt_bwd(const float* y, const float* gy, float* gx, size_t n) {
  Map(gx, n,
      [](V y, V gy, V gx) { return hn::Add(gx, hn::Div(hn::Mul(hn::Set(D(), 0.5f), gy), y)); }, y,
      gy, gx);
}

void erf_fwd(const float* x, float* y, size_t n) {
  Map(y, n, [](V x) { return InDouble(x, ErfD); }, x);
}
void erfc_fwd(const float* x, float* y, size_t n) {
  Map(y, n, [](V x) { return InDouble(x, ErfcD); }, x);
}

// ---- GDN pointwise part ------------------------------------------------------------------------
void gdn_fwd(const float* x, const float* norm, float* y, size_t n, bool inverse) {
  if (inverse)
    Map(y, n, [](V x, V norm) { return hn::Mul(x, norm); }, x, norm);
  else
    Map(y, n, [](V x, V norm) { return hn::Div(x, norm); }, x, norm);
}
// Two outputs, so two passes; gx first (it accumulates), then gnorm (overwritten scratch).
void gdn_bwd(const float* x, const float* norm, const float* gy, float* gx, float* gnorm, size_t n,
             bool inverse) {
  if (inverse) {  // y = x * norm
    Map(gx, n, [](V gy, V norm, V gx) { return hn::Add(gx, hn::Mul(gy, norm)); }, gy, norm, gx);
    Map(gnorm, n, [](V gy, V x) { return hn::Mul(gy, x); }, gy, x);
  } else {  // y = x / norm
    Map(gx, n, [](V gy, V norm, V gx) { return hn::Add(gx, hn::Div(gy, norm)); }, gy, norm, gx);
    Map(gnorm, n,
        [](V gy, V x, V norm) { return hn::Neg(hn::Div(hn::Mul(gy, x), hn::Mul(norm, norm))); },
        gy, x, norm);
  }
}

const char* target_name() { return hwy::TargetName(HWY_TARGET); }

// ---- optimiser ---------------------------------------------------------------------------------
// The operations of ref::adam in the same order (IEEE mul, add, sqrt, div: the same bits); the
// tail runs ref::adam itself.
void adam(float* p, const float* g, float* m, float* v, size_t n, float beta1, float beta2, float step, float vs,
          float eps) {
  const D d;
  const size_t N = hn::Lanes(d);
  const float b1c = 1 - beta1, b2c = 1 - beta2;
  const V vb1 = hn::Set(d, beta1), vb1c = hn::Set(d, b1c), vb2 = hn::Set(d, beta2), vb2c = hn::Set(d, b2c);
  const V vstep = hn::Set(d, step), vvs = hn::Set(d, vs), veps = hn::Set(d, eps);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const V gi = hn::LoadU(d, g + i);
    const V mi = hn::Add(hn::Mul(vb1, hn::LoadU(d, m + i)), hn::Mul(vb1c, gi));
    const V vi = hn::Add(hn::Mul(vb2, hn::LoadU(d, v + i)), hn::Mul(hn::Mul(vb2c, gi), gi));
    hn::StoreU(mi, d, m + i);
    hn::StoreU(vi, d, v + i);
    const V den = hn::Add(hn::Mul(hn::Sqrt(vi), vvs), veps);
    hn::StoreU(hn::Sub(hn::LoadU(d, p + i), hn::Div(hn::Mul(vstep, mi), den)), d, p + i);
  }
  if (i < n) ref::adam(p + i, g + i, m + i, v + i, n - i, beta1, beta2, step, vs, eps);
}

}  // namespace ntc::k::simd::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ntc::k::simd {
// One exported table and one dispatching wrapper per kernel, from the one kernel list
// (kernels/kernel_list.h). Declared in kernels/dispatch.cc, the only caller.
NTC_KERNEL_LIST(NTC_KERNEL_EXPORT)
HWY_EXPORT(target_name);
NTC_KERNEL_LIST(NTC_KERNEL_TRAMPOLINE)
const char* target_name() { return HWY_DYNAMIC_DISPATCH(target_name)(); }
}  // namespace ntc::k::simd
#endif  // HWY_ONCE
