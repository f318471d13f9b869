// overfit_math — the element-wise transcendental work of the overfitted encoder's training
// (train/overfit.h): soft rounding (a tanh per latent, twice per iteration) and the Laplace rate of
// every latent (two exps and a log2, and their gradients). With libm's scalar tanhf, exp and log2
// in double they took about a sixth of an iteration.
//
// Here in fp32 with their own exp and log2: exp as 2^n·p(r), r = x − n·ln 2 in ±½ ln 2 (the
// ln 2 split in two, Cody–Waite) and p the degree-7 Taylor polynomial; log2 from the exponent
// and atanh's series of (m − 1)/(m + 1), m ∈ [√½, √2). Both are within a few ulp of the true
// value on the ranges used (tested against double). AVX2 + FMA, 8 elements a step; the scalar
// twins in ref:: do each lane's operations in the same order with std::fma, so they give the
// same bits (tested); --kernels ref runs them. Training only: the decoder never calls these (its
// Laplace tables are built in integer-exact double arithmetic, codec/laplace.h).
#pragma once
#include <cstddef>

namespace ntc::k {

// y[i] = ⌊x⌋ + ½ + tanh((x − ⌊x⌋ − ½)/T) / (2·tanh(1/(2T))) and dydx[i] its derivative, for
// 0 < T; the result is within about 1e-6 of the exact value (absolute).
void soft_round(const float* x, size_t n, float T, float* y, float* dydx);

// The bits −log2 P of y[i] under a Laplace of centre mu[i] and scale exp(clamp(logb[i], lo, hi))
// integrated over [y − ½, y + ½], and their derivatives in y, mu and logb (0 in logb where it is
// clamped). Where P < 1e-9 the bits are −log2 1e-9 and every derivative 0 (a floor that keeps
// the gradient finite).
void laplace_bits(const float* y, const float* mu, const float* logb, size_t n, float lo, float hi, float* bits,
                  float* gy, float* gmu, float* glogb);

// exp and log2 of one value, the scalar forms used above (exp_approx: x clamped to [−87, 88];
// log2_approx: x a positive normal float).
float exp_approx(float x);
float log2_approx(float x);

namespace ref {
void soft_round(const float* x, size_t n, float T, float* y, float* dydx);
void laplace_bits(const float* y, const float* mu, const float* logb, size_t n, float lo, float hi, float* bits,
                  float* gy, float* gmu, float* glogb);
}  // namespace ref

}  // namespace ntc::k
