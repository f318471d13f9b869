// kernels/kernel_list.h — the one list of ntc's elementwise Highway kernels and their scalar
// twins: return type, name, parameter list, argument list. Three places expand it, so that a
// kernel is added by one line here plus its two bodies (kernels/simd.cc, kernels/ref.cc) and its
// public wrapper (kernels/dispatch.cc, documented in kernels/kernels.h):
//   kernels.h    the declarations of the twins, ntc::k::ref
//   dispatch.cc  the declarations of the Highway entry points, ntc::k::simd
//   simd.cc      HWY_EXPORT and the HWY_DYNAMIC_DISPATCH trampolines of those entry points
// The GEMM kernels have their own header (kernels/gemm.h).
#pragma once

#define NTC_KERNEL_LIST(X)                                                                                        \
  X(void, add, (const float* a, const float* b, float* y, size_t n), (a, b, y, n))                                \
  X(void, sub, (const float* a, const float* b, float* y, size_t n), (a, b, y, n))                                \
  X(void, mul, (const float* a, const float* b, float* y, size_t n), (a, b, y, n))                                \
  X(void, div, (const float* a, const float* b, float* y, size_t n), (a, b, y, n))                                \
  X(void, scale, (float alpha, const float* x, float* y, size_t n), (alpha, x, y, n))                             \
  X(void, add_scalar, (float c, const float* x, float* y, size_t n), (c, x, y, n))                                \
  X(void, axpy, (float alpha, const float* x, float* y, size_t n), (alpha, x, y, n))                              \
  X(void, fill, (float v, float* y, size_t n), (v, y, n))                                                         \
  X(void, mul_acc, (const float* a, const float* b, float* y, size_t n), (a, b, y, n))                            \
  X(void, div_acc, (const float* a, const float* b, float* y, size_t n), (a, b, y, n))                            \
  X(void, div_bwd_b, (const float* gy, const float* y, const float* b, float* gb, size_t n), (gy, y, b, gb, n))   \
  X(void, add_channel, (const float* x, const float* b, float* y, size_t outer, size_t C, size_t inner),         \
    (x, b, y, outer, C, inner))                                                                                   \
  X(void, mul_channel, (const float* x, const float* b, float* y, size_t outer, size_t C, size_t inner),         \
    (x, b, y, outer, C, inner))                                                                                   \
  X(void, sum_channel, (const float* g, float* gb, size_t outer, size_t C, size_t inner), (g, gb, outer, C, inner)) \
  X(void, dot_channel, (const float* g, const float* x, float* gb, size_t outer, size_t C, size_t inner),        \
    (g, x, gb, outer, C, inner))                                                                                  \
  X(double, sum, (const float* x, size_t n), (x, n))                                                              \
  X(double, dot, (const float* a, const float* b, size_t n), (a, b, n))                                           \
  X(double, sum_squares, (const float* x, size_t n), (x, n))                                                      \
  X(void, relu_fwd, (const float* x, float* y, size_t n), (x, y, n))                                              \
  X(void, relu_bwd, (const float* x, const float* gy, float* gx, size_t n), (x, gy, gx, n))                       \
  X(void, relu_mask, (const float* x, const float* gy, float* g, size_t n), (x, gy, g, n))                        \
  X(void, leaky_relu_fwd, (const float* x, float* y, size_t n, float slope), (x, y, n, slope))                    \
  X(void, leaky_relu_bwd, (const float* x, const float* gy, float* gx, size_t n, float slope), (x, gy, gx, n, slope)) \
  X(void, gelu_fwd, (const float* x, float* y, size_t n), (x, y, n))                                              \
  X(void, gelu_bwd, (const float* x, const float* gy, float* gx, size_t n), (x, gy, gx, n))                       \
  X(void, sigmoid_fwd, (const float* x, float* y, size_t n), (x, y, n))                                           \
  X(void, sigmoid_bwd, (const float* y, const float* gy, float* gx, size_t n), (y, gy, gx, n))                    \
  X(void, softplus_fwd, (const float* x, float* y, size_t n), (x, y, n))                                          \
  X(void, softplus_bwd, (const float* x, const float* gy, float* gx, size_t n), (x, gy, gx, n))                   \
  X(void, tanh_fwd, (const float* x, float* y, size_t n), (x, y, n))                                              \
  X(void, tanh_bwd, (const float* y, const float* gy, float* gx, size_t n), (y, gy, gx, n))                       \
  X(void, abs_fwd, (const float* x, float* y, size_t n), (x, y, n))                                               \
  X(void, abs_bwd, (const float* x, const float* gy, float* gx, size_t n), (x, gy, gx, n))                        \
  X(void, exp_fwd, (const float* x, float* y, size_t n), (x, y, n))                                               \
  X(void, exp_bwd, (const float* y, const float* gy, float* gx, size_t n), (y, gy, gx, n))                        \
  X(void, log_fwd, (const float* x, float* y, size_t n), (x, y, n))                                               \
  X(void, log_bwd, (const float* x, const float* gy, float* gx, size_t n), (x, gy, gx, n))                        \
  X(void, sqrt_fwd, (const float* x, float* y, size_t n), (x, y, n))                                              \
  X(void, sqrt_bwd, (const float* y, const float* gy, float* gx, size_t n), (y, gy, gx, n))                       \
  X(void, erf_fwd, (const float* x, float* y, size_t n), (x, y, n))                                               \
  X(void, erfc_fwd, (const float* x, float* y, size_t n), (x, y, n))                                              \
  X(void, gdn_fwd, (const float* x, const float* norm, float* y, size_t n, bool inverse), (x, norm, y, n, inverse)) \
  X(void, gdn_bwd, (const float* x, const float* norm, const float* gy, float* gx, float* gnorm, size_t n,       \
                    bool inverse),                                                                                \
    (x, norm, gy, gx, gnorm, n, inverse))                                                                         \
  X(void, adam, (float* p, const float* g, float* m, float* v, size_t n, float beta1, float beta2, float step,   \
                 float vs, float eps),                                                                            \
    (p, g, m, v, n, beta1, beta2, step, vs, eps))

// Expanders: a declaration, and a trampoline to HWY_DYNAMIC_DISPATCH (simd.cc, HWY_ONCE part).
#define NTC_KERNEL_DECLARE(ret, name, params, args) ret name params;
#define NTC_KERNEL_TRAMPOLINE(ret, name, params, args) \
  ret name params { return HWY_DYNAMIC_DISPATCH(name) args; }
#define NTC_KERNEL_EXPORT(ret, name, params, args) HWY_EXPORT(name);
