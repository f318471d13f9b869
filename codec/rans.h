// rans — the rANS entropy coder behind every ntc bitstream (SPEC §2.3, CompressAI-compatible).
//
// Read me first
// -------------
// * Order is LIFO. RansEncoder::put() only buffers (start, freq) pairs; finish() encodes them in
//   reverse (last put first), so RansDecoder::get() returns symbols in the order they were put.
// * Buffer direction: finish() writes 32-bit words from the end of its buffer towards the front.
//   The finished stream starts with the final 64-bit state (low word first) and is read forwards.
// * State: 64-bit x kept in [L, 2^63), L = 2^31; renormalisation moves one 32-bit little-endian
//   word at a time (ryg_rans `rans64.h`), at most one word per coded symbol or nibble. The encoder
//   starts at x = L, so a stream ends exactly when the decoder has read every word and x == L again.
// * Precision: 16 bits (kCdfPrecision). A table's frequencies sum to 2^16; every bin is >= 1.
// * Escape / bypass (the tail of every table): symbol value v is coded as value = v - offset.
//     value < 0:    raw = -2*value - 1 (odd),       value = max
//     value >= max: raw = 2*(value - max) (even),   value = max       (max = cdf.size() - 2)
//   `value` is coded with the table; when value == max (the escape bin) the bypass follows: the
//   number n of 4-bit nibbles of raw, as 4-bit uniform symbols (runs of 15 plus a remainder), then
//   the n nibbles least-significant first, each a 4-bit uniform symbol coded through rANS
//   (Rans64EncPutBits). Arithmetic is 64-bit: every int32 round-trips, INT32_MIN/MAX included.
//   validate() demands offset <= 0 <= offset + max, which keeps raw < 2^32 (n <= 8) for any int32.
// * The words are those of CompressAI's RansEncoder for the same CDFs and symbols.
// * The decoder distrusts its input (STYLE 6): it holds [begin, end), checks every read, the
//   bypass count and the decoded range in release builds, and reports anything malformed,
//   truncated or coded with other tables as ntc::Error — from get() or, at the latest, finish().
//   It never reads outside the stream and allocates nothing.
// * CdfTable::finalize() (or the constructor) validates a table and builds its decode lookup;
//   call it again after changing `cdf` or `offset` (put/get refuse a table that was not finalized).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lib/common.h"

namespace ntc::codec {

constexpr int kCdfPrecision = 16;

// pmf: probabilities of the symbols 0..n-1 followed by ONE extra entry, the tail (escape) mass.
// CompressAI `pmf_to_quantized_cdf` (SPEC §2.3): f_j = round(p_j * 2^16); f_j <- floor(2^16 f_j / Σf);
// prefix sums with cdf[0] = 0; last entry forced to 2^16; then each zero-width bin, in order, takes
// one unit from the (first) bin of smallest width > 1. Returns n + 2 entries (values 0..n-1, escape n),
// every bin at least 1 wide. Throws ntc::Error when that is impossible (n + 1 > 2^16, Σf == 0) or
// the pmf is not finite and non-negative.
std::vector<uint32_t> pmf_to_quantized_cdf(const std::vector<double>& pmf);

// One coding distribution.
struct CdfTable {
  std::vector<uint32_t> cdf;  // length L >= 3, cdf[0] = 0, cdf[L-1] = 2^16, strictly increasing
  int32_t offset = 0;         // value v is coded as v - offset; the escape symbol is L-2

  CdfTable() = default;
  CdfTable(std::vector<uint32_t> cdf, int32_t offset);  // validates and finalizes
  void finalize();                                      // validate(*this), then build the lookup

  int32_t max_value() const { return int32_t(cdf.size()) - 2; }  // the escape symbol
  // A lower bound on the bits any symbol coded with this table adds to a stream: log2(2^16 / the
  // widest bin), less 10^-4 for rANS's rounding (x ≥ 2^31 and f < 2^16 lose under 5·10^-5 bits per
  // symbol), at least 0. Needs finalize().
  double min_bits() const { return min_bits_; }
  // The symbol s with cdf[s] <= cum < cdf[s+1], for any cum < 2^16. Needs finalize().
  uint32_t lookup(uint32_t cum) const {
    const uint32_t b = cum >> lut_shift_;
    uint32_t s = lut_[b];
    if (cdf[s + 1] <= cum) [[unlikely]] s = lookup_slow(s + 1, lut_[b + 1], cum);
    return s;
  }
  // Throws (NTC_CHECK) if the table was not finalized or `cdf` changed length since.
  void check_ready() const { NTC_CHECK(ready_len_ == cdf.size() && ready_len_ >= 3, "CdfTable used before finalize()"); }

 private:
  uint32_t lookup_slow(uint32_t lo, uint32_t hi, uint32_t cum) const;
  // Bucket b = cum >> lut_shift_ covers cum in [b << lut_shift_, (b+1) << lut_shift_); lut_[b] is the
  // symbol holding its first cum, lut_[b+1] bounds the symbol of its last; one extra final entry.
  std::vector<uint16_t> lut_;
  int lut_shift_ = 16;
  size_t ready_len_ = 0;
  double min_bits_ = 0;
};

// Throws ntc::Error naming the first defect: length, cdf[0], last entry, monotonicity, offset range.
void validate(const CdfTable& t);

// Whether a rANS stream of `bytes` can hold symbols whose min_bits() sum to `bits`: a stream's
// 8·bytes bits hold at least the information of its symbols, so a shorter one is corrupt. Checked
// before decoding, so a few bytes cannot ask the decoder to produce a canvas of symbols.
inline bool stream_can_hold(size_t bytes, double bits) { return 8.0 * double(bytes) >= bits; }

// CompressAI GaussianConditional.update() table for one scale (SPEC §2.3): m = -Phi^-1(tail/2),
// c = ceil(sigma*m), pmf over d = |k - c|, k = 0..2c: Phi((0.5-d)/sigma) - Phi((-0.5-d)/sigma),
// then the tail 2*Phi((-0.5-c)/sigma); offset = -c. Computed in double (the frozen ntc path).
struct GaussianPmf {
  std::vector<double> pmf;  // 2c+1 values then the tail mass
  int32_t offset = 0;       // -c
};
GaussianPmf gaussian_pmf(double sigma, double tail_mass = 1e-9);
CdfTable gaussian_table(double sigma, double tail_mass = 1e-9);
double normal_quantile(double p);  // Phi^-1(p), p in (0, 1), ~1e-15 relative accuracy

class RansEncoder {
 public:
  void put(int32_t v, const CdfTable& t);
  std::vector<uint8_t> finish();            // the stream; the encoder is empty again afterwards
  size_t count() const { return count_; }   // values put since the last finish()

 private:
  void put_escape(int64_t value, const CdfTable& t);
  // One entry per coded symbol: start | freq << 16 (freq in 1..2^16-1), or freq 0 for a 4-bit
  // bypass nibble whose value is in the low bits.
  std::vector<uint32_t> syms_;
  size_t count_ = 0;
};

class RansDecoder {
 public:
  RansDecoder(const uint8_t* begin, const uint8_t* end);  // throws if too short or misaligned
  int32_t get(const CdfTable& t);
  // Throws ntc::Error unless the stream ended exactly: every byte consumed and x back at L.
  void finish();

 private:
  static constexpr uint64_t kL = uint64_t(1) << 31;
  void renorm() {
    const bool r = x_ < kL;
    if (r & (pos_ >= nwords_)) [[unlikely]] fail_overread();
    const size_t i = pos_ < nwords_ ? pos_ : nwords_ - 1;  // in bounds even when unused
    uint32_t w;
    std::memcpy(&w, words_ + 4 * i, 4);  // little-endian hosts only (static_assert in rans.cc)
    x_ = r ? (x_ << 32) | w : x_;
    pos_ += r;
  }
  [[noreturn]] void fail_overread() const;
  int32_t get_escape(const CdfTable& t);
  uint32_t get_nibble();

  const uint8_t* words_;
  size_t nwords_, pos_ = 2;
  uint64_t x_ = 0;
};

// ---- hot paths, inline ----------------------------------------------------------------------

inline void RansEncoder::put(int32_t v, const CdfTable& t) {
  t.check_ready();
  const int64_t value = int64_t(v) - t.offset;
  ++count_;
  if (value >= 0 && value < t.max_value()) [[likely]] {
    const uint32_t start = t.cdf[size_t(value)], freq = t.cdf[size_t(value) + 1] - start;
    syms_.push_back(start | freq << 16);
  } else {
    put_escape(value, t);
  }
}

inline int32_t RansDecoder::get(const CdfTable& t) {
  t.check_ready();
  const uint32_t cum = uint32_t(x_) & ((1u << kCdfPrecision) - 1);
  const uint32_t s = t.lookup(cum);
  const uint32_t start = t.cdf[s], freq = t.cdf[s + 1] - start;
  x_ = freq * (x_ >> kCdfPrecision) + (cum - start);
  renorm();
  if (int32_t(s) == t.max_value()) [[unlikely]] return get_escape(t);
  return int32_t(int64_t(s) + t.offset);  // in range for a finalized table (offset <= 0, s < 2^16)
}

}  // namespace ntc::codec
