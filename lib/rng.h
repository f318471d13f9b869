// rng — seeded, reproducible, counter-based random numbers.
//
// Value i of a stream is splitmix64(seed-derived key + counter + i): every fill is a pure function
// of (seed, counter), so large fills run on all threads and still give the same numbers for any
// thread count, and the whole generator state is two integers (easy to checkpoint).
#pragma once
#include <cstddef>
#include <cstdint>

namespace ntc {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : key_(mix(seed ^ 0x9E3779B97F4A7C15ull)) {}
  uint64_t next_u64() { return mix(key_ + counter_++); }
  float uniform();                                        // [0, 1)
  void fill_uniform(float* y, size_t n, float lo, float hi);  // [lo, hi)
  void fill_normal(float* y, size_t n, float mean, float stddev);  // Box-Muller
  uint64_t counter() const { return counter_; }
  void set_counter(uint64_t c) { counter_ = c; }
  uint64_t key() const { return key_; }
  void set_key(uint64_t k) { key_ = k; }

  static uint64_t mix(uint64_t z) {  // splitmix64 finaliser
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
};

}  // namespace ntc
