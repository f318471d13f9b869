#include "kernels/overfit_math.h"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

#include "kernels/kernels.h"

namespace ntc::k {
namespace {

// exp: x = n·ln 2 + r with ln 2 = kLn2Hi + kLn2Lo (kLn2Hi has 9 significant bits).
constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kExpMin = -87.f, kExpMax = 88.f;  // 2^n stays a normal float
// The Taylor coefficients 1/k! for k = 7 … 2 (then 1, 1).
constexpr float kE7 = 1.f / 5040, kE6 = 1.f / 720, kE5 = 1.f / 120, kE4 = 1.f / 24, kE3 = 1.f / 6, kE2 = 0.5f;
// log: ln m = 2·atanh(s) = 2s·(1 + s²/3 + s⁴/5 + s⁶/7 + s⁸/9), s = (m − 1)/(m + 1), |s| ≤ 0.172.
constexpr float kSqrt2 = 1.41421356237309505f, kL9 = 1.f / 9, kL7 = 1.f / 7, kL5 = 1.f / 5, kL3 = 1.f / 3;
constexpr float kLn2 = 0.693147180559945309f;
constexpr float kMinP = 1e-9f;  // the floor of a symbol's probability (about 30 bits)

// One element of soft rounding (the form of every lane of the vector loop).
inline void soft_round_one(float v, float invT, float norm, float* y, float* d) {
  const float fl = std::floor(v), r = (v - fl) - 0.5f, z = r * invT;
  const float e = exp_approx(-2.f * std::fabs(z));
  const float q = 1.f + e, t = std::copysign((1.f - e) / q, z);  // tanh z
  *y = (fl + 0.5f) + t * norm;
  *d = (((4.f * e) / (q * q)) * invT) * norm;  // 1 − tanh² z, without 1 − t²'s cancellation
}

inline void laplace_one(float yv, float mv, float lv, float lo, float hi, float* bits, float* gy, float* gmu, float* gl) {
  const bool inside = lv >= lo && lv <= hi;
  const float lb = std::min(std::max(lv, lo), hi);
  const float b = exp_approx(lb), ib = 1.f / b;
  const float d = yv - mv, u = (d + 0.5f) * ib, l = (d - 0.5f) * ib;  // the interval's ends in units of b
  const float eu = exp_approx(-std::fabs(u)), el = exp_approx(-std::fabs(l));
  const float P = l >= 0.f ? 0.5f * (el - eu) : u <= 0.f ? 0.5f * (eu - el) : (1.f - 0.5f * el) - 0.5f * eu;
  if (!(P >= kMinP)) {
    *bits = -log2_approx(kMinP);
    *gy = *gmu = *gl = 0.f;
    return;
  }
  *bits = -log2_approx(P);
  const float dbdP = -1.f / (P * kLn2);
  const float fu = (0.5f * eu) * ib, fl = (0.5f * el) * ib;  // the density at the ends
  const float dPdy = fu - fl;                                 // ∂P/∂y = −∂P/∂μ
  const float dPdlb = l * (0.5f * el) - u * (0.5f * eu);     // ∂P/∂log b
  *gy = dbdP * dPdy;
  *gmu = -*gy;
  *gl = inside ? dbdP * dPdlb : 0.f;
}

// The vector forms, lane by lane the operations above.
inline __m256 set(float v) { return _mm256_set1_ps(v); }

inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, set(kExpMin)), set(kExpMax));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, set(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fmadd_ps(n, set(-kLn2Hi), x);
  r = _mm256_fmadd_ps(n, set(-kLn2Lo), r);
  __m256 p = set(kE7);
  for (float c : {kE6, kE5, kE4, kE3, kE2, 1.f, 1.f}) p = _mm256_fmadd_ps(p, r, set(c));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline __m256 log2_8(__m256 x) {
  const __m256i ix = _mm256_castps_si256(x);
  __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(ix, 23), _mm256_set1_epi32(127));
  __m256 m = _mm256_castsi256_ps(
      _mm256_or_si256(_mm256_and_si256(ix, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f800000)));
  const __m256 big = _mm256_cmp_ps(m, set(kSqrt2), _CMP_GT_OQ);
  m = _mm256_blendv_ps(m, _mm256_mul_ps(m, set(0.5f)), big);
  e = _mm256_sub_epi32(e, _mm256_castps_si256(big));  // + 1 where halved
  const __m256 s = _mm256_div_ps(_mm256_sub_ps(m, set(1.f)), _mm256_add_ps(m, set(1.f))), s2 = _mm256_mul_ps(s, s);
  __m256 q = set(kL9);
  for (float c : {kL7, kL5, kL3, 1.f}) q = _mm256_fmadd_ps(q, s2, set(c));
  const __m256 lnm = _mm256_mul_ps(_mm256_mul_ps(set(2.f), s), q);
  return _mm256_fmadd_ps(lnm, set(kLog2e), _mm256_cvtepi32_ps(e));
}

inline __m256 abs8(__m256 v) { return _mm256_andnot_ps(set(-0.f), v); }
inline __m256 neg8(__m256 v) { return _mm256_xor_ps(v, set(-0.f)); }

}  // namespace

float exp_approx(float x) {
  x = std::min(std::max(x, kExpMin), kExpMax);
  const float n = std::nearbyint(x * kLog2e);
  float r = std::fma(n, -kLn2Hi, x);
  r = std::fma(n, -kLn2Lo, r);
  float p = kE7;
  for (float c : {kE6, kE5, kE4, kE3, kE2, 1.f, 1.f}) p = std::fma(p, r, c);
  return p * std::bit_cast<float>(uint32_t(int32_t(n) + 127) << 23);
}

float log2_approx(float x) {
  const uint32_t ix = std::bit_cast<uint32_t>(x);
  int32_t e = int32_t(ix >> 23) - 127;
  float m = std::bit_cast<float>((ix & 0x007fffffu) | 0x3f800000u);
  if (m > kSqrt2) {
    m = m * 0.5f;
    e += 1;
  }
  const float s = (m - 1.f) / (m + 1.f), s2 = s * s;
  float q = kL9;
  for (float c : {kL7, kL5, kL3, 1.f}) q = std::fma(q, s2, c);
  const float lnm = (2.f * s) * q;
  return std::fma(lnm, kLog2e, float(e));
}

namespace {
float soft_round_norm(float T) { return float(1.0 / (2.0 * std::tanh(0.5 / double(T)))); }
}  // namespace

void soft_round(const float* x, size_t n, float T, float* y, float* dydx) {
  if (use_reference_kernels()) return ref::soft_round(x, n, T, y, dydx);
  const float norm = soft_round_norm(T), invT = 1.f / T;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i), fl = _mm256_floor_ps(v);
    const __m256 z = _mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(v, fl), set(0.5f)), set(invT));
    const __m256 e = exp8(_mm256_mul_ps(set(-2.f), abs8(z)));
    const __m256 q = _mm256_add_ps(set(1.f), e), ta = _mm256_div_ps(_mm256_sub_ps(set(1.f), e), q);
    const __m256 t = _mm256_or_ps(abs8(ta), _mm256_and_ps(z, set(-0.f)));  // copysign(ta, z)
    const __m256 sech2 = _mm256_div_ps(_mm256_mul_ps(set(4.f), e), _mm256_mul_ps(q, q));
    _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_add_ps(fl, set(0.5f)), _mm256_mul_ps(t, set(norm))));
    _mm256_storeu_ps(dydx + i, _mm256_mul_ps(_mm256_mul_ps(sech2, set(invT)), set(norm)));
  }
  for (; i < n; ++i) soft_round_one(x[i], invT, norm, y + i, dydx + i);
}

void laplace_bits(const float* y, const float* mu, const float* logb, size_t n, float lo, float hi, float* bits,
                  float* gy, float* gmu, float* glogb) {
  if (use_reference_kernels()) return ref::laplace_bits(y, mu, logb, n, lo, hi, bits, gy, gmu, glogb);
  const __m256 zero = _mm256_setzero_ps(), floor_bits = set(-log2_approx(kMinP));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 lv = _mm256_loadu_ps(logb + i);
    const __m256 inside = _mm256_and_ps(_mm256_cmp_ps(lv, set(lo), _CMP_GE_OQ), _mm256_cmp_ps(lv, set(hi), _CMP_LE_OQ));
    const __m256 lb = _mm256_min_ps(_mm256_max_ps(lv, set(lo)), set(hi));
    const __m256 b = exp8(lb), ib = _mm256_div_ps(set(1.f), b);
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(mu + i));
    const __m256 u = _mm256_mul_ps(_mm256_add_ps(d, set(0.5f)), ib), l = _mm256_mul_ps(_mm256_sub_ps(d, set(0.5f)), ib);
    const __m256 eu = exp8(neg8(abs8(u))), el = exp8(neg8(abs8(l)));
    const __m256 hu = _mm256_mul_ps(set(0.5f), eu), hl = _mm256_mul_ps(set(0.5f), el);
    __m256 P = _mm256_sub_ps(_mm256_sub_ps(set(1.f), hl), hu);
    P = _mm256_blendv_ps(P, _mm256_mul_ps(set(0.5f), _mm256_sub_ps(eu, el)), _mm256_cmp_ps(u, zero, _CMP_LE_OQ));
    P = _mm256_blendv_ps(P, _mm256_mul_ps(set(0.5f), _mm256_sub_ps(el, eu)), _mm256_cmp_ps(l, zero, _CMP_GE_OQ));
    const __m256 ok = _mm256_cmp_ps(P, set(kMinP), _CMP_GE_OQ);
    const __m256 dbdP = _mm256_div_ps(set(-1.f), _mm256_mul_ps(P, set(kLn2)));
    const __m256 dPdy = _mm256_sub_ps(_mm256_mul_ps(hu, ib), _mm256_mul_ps(hl, ib));
    const __m256 dPdlb = _mm256_sub_ps(_mm256_mul_ps(l, hl), _mm256_mul_ps(u, hu));
    const __m256 g = _mm256_and_ps(_mm256_mul_ps(dbdP, dPdy), ok);
    _mm256_storeu_ps(bits + i, _mm256_blendv_ps(floor_bits, neg8(log2_8(P)), ok));
    _mm256_storeu_ps(gy + i, g);
    _mm256_storeu_ps(gmu + i, _mm256_blendv_ps(zero, neg8(g), ok));
    _mm256_storeu_ps(glogb + i, _mm256_and_ps(_mm256_mul_ps(dbdP, dPdlb), _mm256_and_ps(ok, inside)));
  }
  for (; i < n; ++i) laplace_one(y[i], mu[i], logb[i], lo, hi, bits + i, gy + i, gmu + i, glogb + i);
}

namespace ref {

void soft_round(const float* x, size_t n, float T, float* y, float* dydx) {
  const float norm = soft_round_norm(T), invT = 1.f / T;
  for (size_t i = 0; i < n; ++i) soft_round_one(x[i], invT, norm, y + i, dydx + i);
}

void laplace_bits(const float* y, const float* mu, const float* logb, size_t n, float lo, float hi, float* bits,
                  float* gy, float* gmu, float* glogb) {
  for (size_t i = 0; i < n; ++i) laplace_one(y[i], mu[i], logb[i], lo, hi, bits + i, gy + i, gmu + i, glogb + i);
}

}  // namespace ref
}  // namespace ntc::k
