// laplace — what the overfitted codec (nn/overfit.h) needs below the model: a bank of Laplace
// coding tables for the rANS coder, selected by integer indexes only, and signed Exp-Golomb codes
// for the quantised network weights.
//
// Portability: the tables are computed by ntc's own exp (det_exp: range reduction and a fixed
// polynomial in double, IEEE basic operations only, no libm), so every x86-64 CPU and every build
// with -ffp-contract=off makes the same tables; nothing here depends on the SIMD target.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "codec/rans.h"

namespace ntc::codec {

// e^x for x <= 0 from +, −, ×, ÷ and exact scaling only (relative error < 3·10⁻¹⁶).
double det_exp(double x);

// A Laplace(μ, b) over the integers, μ in steps of 1/kLaplaceFrac and log b on a grid of
// kLaplaceScales points from kLaplaceLogbMin to kLaplaceLogbMax.
constexpr int kLaplaceFrac = 8;
constexpr int kLaplaceScales = 64;
constexpr double kLaplaceLogbMin = -3.0;  // b ≈ 0.05
constexpr double kLaplaceLogbMax = 4.5;   // b ≈ 90
constexpr double kLaplaceLogbStep = (kLaplaceLogbMax - kLaplaceLogbMin) / (kLaplaceScales - 1);

// How a symbol v is coded under a prediction (μ, log b): the table (scale s, fraction f) and the
// shift m such that v − m is the table's value. Pure float comparisons and rounding (portable).
struct LaplaceSlot {
  int scale = 0, frac = 0;
  int32_t shift = 0;
};
LaplaceSlot laplace_slot(float mu, float logb);

// Table (s, f): P(k) = ∫_{k−½}^{k+½} Laplace(f/F, b_s), k ∈ [−c, c + 1], c = ⌈11.2·b_s⌉ + 2, then
// the escape mass; frequencies 1 + ⌊P·(2¹⁶ − bins)⌋, the remainder to the most probable bin.
// Built on first use, once per process (thread-safe).
const CdfTable& laplace_table(int scale, int frac);

// Bits: most significant first.
class BitWriter {
 public:
  void put(uint64_t v, int n);  // the low n bits of v, n <= 57
  std::vector<uint8_t> finish();  // zero-padded to whole bytes
  size_t bits() const { return bits_; }

 private:
  std::vector<uint8_t> out_;
  uint64_t acc_ = 0;
  int nacc_ = 0;
  size_t bits_ = 0;
};
class BitReader {
 public:
  BitReader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  uint64_t get(int n);  // throws ntc::Error past the end
  size_t pos() const { return pos_; }
  size_t size_bits() const { return 8 * n_; }

 private:
  const uint8_t* p_;
  size_t n_, pos_ = 0;
};

// Signed Exp-Golomb of order k (0..24): u = 2|q| − (q > 0) (0, 1, −1, 2, −2 → 0, 1, 2, 3, 4... as
// q > 0 ↦ 2q − 1, q ≤ 0 ↦ −2q), then u + 2^k written as (bit length − k − 1) zeros and its bits.
// |q| < 2^30. The reader refuses more than 32 leading zeros.
void put_exp_golomb(BitWriter& w, int32_t q, int k);
int32_t get_exp_golomb(BitReader& r, int k);
size_t exp_golomb_bits(int32_t q, int k);

}  // namespace ntc::codec
