// metrics — image quality and rate–distortion comparisons (SPEC §3.7, decision 7).
//
//   psnr:    10·log10(255² / MSE) over all pixels and channels of two 8-bit-range images.
//   ms_ssim: Wang et al. 2003 with TensorFlow's defaults (tf.image.ssim_multiscale, max_val 255):
//            11×11 Gaussian window σ 1.5 (VALID), k1 0.01, k2 0.03, 5 scales weighted
//            0.0448/0.2856/0.3001/0.2363/0.1333, 2×2 average pooling after symmetric padding of odd
//            sizes; per channel, then averaged. Images smaller than 161 px on either side — too
//            small for five scales — get single-scale SSIM (as the reference code's fallback).
//   bd_rate / bd_psnr: Bjøntegaard deltas with monotone piecewise-cubic (PCHIP) interpolation of
//            log-rate against PSNR (resp. PSNR against log-rate), integrated over the overlapping
//            range; bd_rate is a percentage (negative = fewer bits than the reference).
#pragma once
#include <vector>

#include "lib/tensor.h"

namespace ntc {

double mse(const Tensor& a, const Tensor& b);      // mean squared difference, [1,3,H,W] each
double psnr(const Tensor& a, const Tensor& b);     // [1,3,H,W] each
double ms_ssim(const Tensor& a, const Tensor& b);  // [1,3,H,W] each, values 0..255
// Blockiness (issue: ntc analyze blocking): the mean absolute difference between neighbouring
// pixels across block boundaries (columns/rows block·k − 1 and block·k, k ≥ 1), over the same
// statistic one pixel inside the blocks (block·k and block·k + 1), horizontal and vertical pooled,
// all channels. About 1 for an image without blocking; large when blocks show. An image smaller
// than block + 2 on both sides has no boundary: NaN.
double boundary_ratio(const Tensor& img, int block = 16);
double ssim(const Tensor& a, const Tensor& b);     // single scale

struct RdCurve {
  std::vector<double> bpp, psnr;
};
double bd_rate(const RdCurve& ref, const RdCurve& test);  // percent
double bd_psnr(const RdCurve& ref, const RdCurve& test);  // dB

}  // namespace ntc
