#include "lib/rng.h"

#include <cmath>

namespace ntc {
namespace {
// 24 random bits -> float in [0, 1), exactly representable.
inline float unit(uint64_t r) { return float(r >> 40) * (1.0f / 16777216.0f); }
}  // namespace

float Rng::uniform() { return unit(next_u64()); }

void Rng::fill_uniform(float* y, size_t n, float lo, float hi) {
  const uint64_t base = key_ + counter_;
  const float w = hi - lo;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; ++i) y[i] = lo + w * unit(mix(base + i));
  counter_ += n;
}

void Rng::fill_normal(float* y, size_t n, float mean, float stddev) {
  const uint64_t base = key_ + counter_;
  const size_t pairs = (n + 1) / 2;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t p = 0; p < pairs; ++p) {
    // u1 in (0, 1] so the log is finite.
    double u1 = (double((mix(base + 2 * p) >> 11)) + 1.0) * 0x1.0p-53;
    double u2 = double(mix(base + 2 * p + 1) >> 11) * 0x1.0p-53;
    double r = std::sqrt(-2.0 * std::log(u1)), a = 2.0 * M_PI * u2;
    y[2 * p] = float(mean + stddev * r * std::cos(a));
    if (2 * p + 1 < n) y[2 * p + 1] = float(mean + stddev * r * std::sin(a));
  }
  counter_ += 2 * pairs;
}

}  // namespace ntc
