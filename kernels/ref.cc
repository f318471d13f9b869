// kernels/ref.cc — scalar twins of the SIMD kernels (namespace ntc::k::ref).
//
// Plain loops, one element at a time, written to be read as the specification of each kernel.
// kernels/simd.cc performs the same IEEE operations in the same order, so that with
// -ffp-contract=off (set by the Makefile; no a*b+c is fused into an FMA) the arithmetic kernels
// agree bit-exactly with their SIMD twins. Transcendentals call std:: functions here and
// Highway's contrib/math there, so those agree to a few ulp only.
//
// Reductions accumulate in double. Channel reductions (sum_channel, dot_channel) add one plane
// sum per (o, c) into gb[c], in the order o = 0, 1, ...: gb[c] = float(gb[c] + plane_sum).
// Calling the kernel once, or once per outer index / channel range, therefore gives the same
// bits; kernels/dispatch.cc relies on that to thread over channels.
#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"

namespace ntc::k::ref {
namespace {

// erfc(x) for double x, used by erf_fwd, erfc_fwd and GELU.
//   erfc(z) = t * exp(P(t) - z^2),  t = 2 / (2 + z),  z = |x|,     erfc(-z) = 2 - erfc(z)
// (the form of Numerical Recipes' erfcc). P is a degree-13 Chebyshev fit on t in [0, 1] of
// log(erfc(z) / t) + z^2, made with mpmath.chebyfit at 40 digits; its error, which is the
// relative error of erfc, is below 1.4e-9 for all z >= 0. In double, z*z is exact for float
// inputs and the remaining rounding is ~1e-15, so after rounding to float the relative error of
// erfc_fwd is below 2^-24 + 1.4e-9 ~= 6.1e-8 (half an ulp plus the fit) wherever the result is a
// normal float (measured on [-10, 10]: 6.04e-8). Coefficients are highest degree first (Horner).
// kernels/simd.cc holds the same table; tests check both twins against std::erfc.
constexpr double kErfcPoly[14] = {
    0.17739250482128235,  -1.0990908345282022,  2.8124974890009815,   -3.7077934361193274,
    2.5037098797641439,   -0.74012631552580277, 0.18269988797733067,  -0.084861871673213837,
    -0.15307626229058977, -0.083991826101845191, 0.083144539334678788, 0.3750085101997892,
    0.99999985952214931,  -1.2655121231214337};

double erfc_d(double x) {
  const double z = std::fabs(x);
  const double t = 2.0 / (2.0 + z);
  double p = kErfcPoly[0];
  for (int k = 1; k < 14; ++k) p = p * t + kErfcPoly[k];
  const double r = t * std::exp(p - z * z);
  return x < 0.0 ? 2.0 - r : r;
}

// erf(x) for double x. For |x| < 0.5 the Taylor series
//   erf(x) = 2/sqrt(pi) * x * sum_n (-1)^n x^(2n) / (n! (2n+1)),   n = 0..8
// (truncation error < 6e-13 relative), so erf keeps its relative accuracy near 0; otherwise
// erf(x) = sign(x) * (1 - erfc(|x|)). Absolute error of erf_fwd: below 2^-25 + 1e-9 ~= 3.1e-8
// (measured: 2.98e-8), relative error below 6.1e-8 everywhere.
constexpr double kTwoOverSqrtPi = 1.1283791670955126;
constexpr double kErfTaylor[9] = {1.0,          -1.0 / 3.0,    1.0 / 10.0,
                                  -1.0 / 42.0,  1.0 / 216.0,   -1.0 / 1320.0,
                                  1.0 / 9360.0, -1.0 / 75600.0, 1.0 / 685440.0};

double erf_d(double x) {
  if (std::fabs(x) < 0.5) {
    const double x2 = x * x;
    double s = kErfTaylor[8];
    for (int k = 7; k >= 0; --k) s = s * x2 + kErfTaylor[k];
    return kTwoOverSqrtPi * x * s;
  }
  return std::copysign(1.0 - erfc_d(std::fabs(x)), x);
}

constexpr double kInvSqrt2 = 0.70710678118654752;    // 1/sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143268;  // 1/sqrt(2 pi)

// Phi(x), the standard normal CDF, via erfc so that it keeps relative accuracy for x << 0.
double normal_cdf(double x) { return 0.5 * erfc_d(-x * kInvSqrt2); }

// Numerically stable logistic function: exp is only ever taken of -|x|.
float sigmoid(float x) {
  const float e = std::exp(-std::fabs(x));
  const float s = 1.0f / (1.0f + e);
  return x >= 0.0f ? s : e * s;
}

double plane_sum(const float* x, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; ++i) s += x[i];
  return s;
}

double plane_dot(const float* a, const float* b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);  // product exact in double
  return s;
}

}  // namespace

// ---- elementwise binary ----------------------------------------------------------------------
void add(const float* a, const float* b, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}
void sub(const float* a, const float* b, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] - b[i];
}
void mul(const float* a, const float* b, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}
void div(const float* a, const float* b, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] / b[i];
}

// ---- scalar forms ------------------------------------------------------------------------------
void scale(float alpha, const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = alpha * x[i];
}
void add_scalar(float c, const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i] + c;
}
void axpy(float alpha, const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = y[i] + alpha * x[i];
}
void fill(float v, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = v;
}

// ---- accumulating products ---------------------------------------------------------------------
void mul_acc(const float* a, const float* b, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = y[i] + a[i] * b[i];
}
void div_acc(const float* a, const float* b, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = y[i] + a[i] / b[i];
}
void div_bwd_b(const float* gy, const float* y, const float* b, float* gb, size_t n) {
  for (size_t i = 0; i < n; ++i) gb[i] = gb[i] + (-gy[i] * y[i]) / b[i];
}

// ---- channel broadcast over [outer, C, inner] --------------------------------------------------
void add_channel(const float* x, const float* b, float* y, size_t outer, size_t C, size_t inner) {
  for (size_t o = 0; o < outer; ++o)
    for (size_t c = 0; c < C; ++c) {
      const size_t p = (o * C + c) * inner;
      for (size_t i = 0; i < inner; ++i) y[p + i] = x[p + i] + b[c];
    }
}
void mul_channel(const float* x, const float* b, float* y, size_t outer, size_t C, size_t inner) {
  for (size_t o = 0; o < outer; ++o)
    for (size_t c = 0; c < C; ++c) {
      const size_t p = (o * C + c) * inner;
      for (size_t i = 0; i < inner; ++i) y[p + i] = x[p + i] * b[c];
    }
}
void sum_channel(const float* g, float* gb, size_t outer, size_t C, size_t inner) {
  for (size_t o = 0; o < outer; ++o)
    for (size_t c = 0; c < C; ++c)
      gb[c] = float(double(gb[c]) + plane_sum(g + (o * C + c) * inner, inner));
}
void dot_channel(const float* g, const float* x, float* gb, size_t outer, size_t C, size_t inner) {
  for (size_t o = 0; o < outer; ++o)
    for (size_t c = 0; c < C; ++c) {
      const size_t p = (o * C + c) * inner;
      gb[c] = float(double(gb[c]) + plane_dot(g + p, x + p, inner));
    }
}

// ---- reductions (double accumulators) ----------------------------------------------------------
double sum(const float* x, size_t n) { return plane_sum(x, n); }
double dot(const float* a, const float* b, size_t n) { return plane_dot(a, b, n); }
double sum_squares(const float* x, size_t n) { return plane_dot(x, x, n); }

// ---- activations -------------------------------------------------------------------------------
void relu_fwd(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
void relu_bwd(const float* x, const float* gy, float* gx, size_t n) {
  for (size_t i = 0; i < n; ++i) gx[i] = gx[i] + (x[i] > 0.0f ? gy[i] : 0.0f);
}
void relu_mask(const float* x, const float* gy, float* g, size_t n) {
  for (size_t i = 0; i < n; ++i) g[i] = 0.0f + (x[i] > 0.0f ? gy[i] : 0.0f);
}
void leaky_relu_fwd(const float* x, float* y, size_t n, float slope) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
}
void leaky_relu_bwd(const float* x, const float* gy, float* gx, size_t n, float slope) {
  for (size_t i = 0; i < n; ++i) gx[i] = gx[i] + gy[i] * (x[i] > 0.0f ? 1.0f : slope);
}

// GELU, exact form: y = x * Phi(x); y' = Phi(x) + x * phi(x). Evaluated in double.
void gelu_fwd(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = float(x[i] * normal_cdf(x[i]));
}
void gelu_bwd(const float* x, const float* gy, float* gx, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const double xd = x[i];
    const double pdf = std::exp(-0.5 * xd * xd) * kInvSqrt2Pi;
    const float dydx = float(normal_cdf(xd) + xd * pdf);
    gx[i] = gx[i] + gy[i] * dydx;
  }
}

void sigmoid_fwd(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = sigmoid(x[i]);
}
void sigmoid_bwd(const float* y, const float* gy, float* gx, size_t n) {
  for (size_t i = 0; i < n; ++i) gx[i] = gx[i] + gy[i] * (y[i] * (1.0f - y[i]));
}

// softplus(x) = max(x, 0) + log1p(exp(-|x|)): no overflow for large |x|.
void softplus_fwd(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i)
    y[i] = std::max(x[i], 0.0f) + std::log1p(std::exp(-std::fabs(x[i])));
}
void softplus_bwd(const float* x, const float* gy, float* gx, size_t n) {
  for (size_t i = 0; i < n; ++i) gx[i] = gx[i] + gy[i] * sigmoid(x[i]);
}

void tanh_fwd(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}
void tanh_bwd(const float* y, const float* gy, float* gx, size_t n) {
  for (size_t i = 0; i < n; ++i) gx[i] = gx[i] + gy[i] * (1.0f - y[i] * y[i]);
}

void abs_fwd(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = std::fabs(x[i]);
}
void abs_bwd(const float* x, const float* gy, float* gx, size_t n) {
  for (size_t i = 0; i < n; ++i)
    gx[i] = gx[i] + (x[i] > 0.0f ? gy[i] : x[i] < 0.0f ? -gy[i] : 0.0f);
}

void exp_fwd(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}
void exp_bwd(const float* y, const float* gy, float* gx, size_t n) {
  for (size_t i = 0; i < n; ++i) gx[i] = gx[i] + gy[i] * y[i];
}
void log_fwd(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = std::log(x[i]);
}
void log_bwd(const float* x, const float* gy, float* gx, size_t n) {
  for (size_t i = 0; i < n; ++i) gx[i] = gx[i] + gy[i] / x[i];
}
void sqrt_fwd(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = std::sqrt(x[i]);
}
void sqrt_bwd(const float* y, const float* gy, float* gx, size_t n) {
  for (size_t i = 0; i < n; ++i) gx[i] = gx[i] + (0.5f * gy[i]) / y[i];
}

void erf_fwd(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = float(erf_d(x[i]));
}
void erfc_fwd(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = float(erfc_d(x[i]));
}

// ---- GDN pointwise part ------------------------------------------------------------------------
void gdn_fwd(const float* x, const float* norm, float* y, size_t n, bool inverse) {
  if (inverse)
    for (size_t i = 0; i < n; ++i) y[i] = x[i] * norm[i];
  else
    for (size_t i = 0; i < n; ++i) y[i] = x[i] / norm[i];
}
void gdn_bwd(const float* x, const float* norm, const float* gy, float* gx, float* gnorm, size_t n,
             bool inverse) {
  if (inverse) {  // y = x * norm
    for (size_t i = 0; i < n; ++i) {
      gx[i] = gx[i] + gy[i] * norm[i];
      gnorm[i] = gy[i] * x[i];
    }
  } else {  // y = x / norm
    for (size_t i = 0; i < n; ++i) {
      gx[i] = gx[i] + gy[i] / norm[i];
      gnorm[i] = -(gy[i] * x[i]) / (norm[i] * norm[i]);
    }
  }
}

// ---- optimiser ---------------------------------------------------------------------------------
void adam(float* p, const float* g, float* m, float* v, size_t n, float beta1, float beta2, float step, float vs,
          float eps) {
  const float b1c = 1 - beta1, b2c = 1 - beta2;
  for (size_t i = 0; i < n; ++i) {
    m[i] = beta1 * m[i] + b1c * g[i];
    v[i] = beta2 * v[i] + b2c * g[i] * g[i];
    p[i] -= step * m[i] / (std::sqrt(v[i]) * vs + eps);
  }
}

}  // namespace ntc::k::ref
