// Laplace tables and Exp-Golomb codes for the overfitted codec (codec/laplace.h).
#include "codec/laplace.h"

#include <algorithm>
#include <cmath>

#include "lib/common.h"

namespace ntc::codec {

double det_exp(double x) {
  if (!(x > -745.0)) return 0.0;  // NaN and underflow
  if (x > 709.0) x = 709.0;
  constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;
  const double k = std::nearbyint(x * 1.44269504088896338700);  // exact rounding: no libm
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;                // |r| <= ½·ln 2 (+ tiny)
  // Taylor series to degree 14 by Horner: the remainder is below 2^-60 on |r| <= 0.35.
  double p = 1.0 / 87178291200.0;
  static constexpr double kInvFact[14] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                                          1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,      1.0 / 720.0,
                                          1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,         0.5,
                                          1.0,                1.0};
  for (double c : kInvFact) p = p * r + c;
  return std::ldexp(p, int(k));  // exact scaling by 2^k
}

LaplaceSlot laplace_slot(float mu, float logb) {
  LaplaceSlot s;
  double m = double(mu);
  if (!(m == m)) m = 0;  // NaN (hostile weights) codes as 0; finite or not, the same everywhere
  m = std::clamp(m, -1048576.0, 1048576.0);
  const int64_t mq = int64_t(std::nearbyint(m * kLaplaceFrac));
  s.shift = int32_t(mq >= 0 ? mq / kLaplaceFrac : -((-mq + kLaplaceFrac - 1) / kLaplaceFrac));  // ⌊mq / F⌋
  s.frac = int(mq - int64_t(s.shift) * kLaplaceFrac);
  double l = double(logb);
  if (!(l == l)) l = kLaplaceLogbMin;
  const double si = std::nearbyint((std::clamp(l, kLaplaceLogbMin, kLaplaceLogbMax) - kLaplaceLogbMin) / kLaplaceLogbStep);
  s.scale = std::clamp(int(si), 0, kLaplaceScales - 1);
  return s;
}

namespace {

CdfTable make_laplace_table(int scale, int frac) {
  const double b = det_exp(kLaplaceLogbMin + scale * kLaplaceLogbStep), mu = double(frac) / kLaplaceFrac;
  const int c = int(std::ceil(11.2 * b)) + 2;
  const int n = 2 * c + 2;  // values −c … c + 1
  std::vector<double> p(size_t(n) + 1);
  double total = 0;
  for (int i = 0; i < n; ++i) {
    const double k = double(i - c), u = (k + 0.5 - mu) / b, l = (k - 0.5 - mu) / b;
    const double eu = det_exp(-std::abs(u)), el = det_exp(-std::abs(l));
    p[size_t(i)] = l >= 0 ? 0.5 * (el - eu) : u <= 0 ? 0.5 * (eu - el) : 1 - 0.5 * el - 0.5 * eu;
    total += p[size_t(i)];
  }
  p[size_t(n)] = std::max(0.0, 1 - total);  // the escape: both tails
  const uint32_t bins = uint32_t(n) + 1, spare = (1u << kCdfPrecision) - bins;
  std::vector<uint32_t> freq(bins);
  uint32_t sum = 0, best = 0;
  for (uint32_t i = 0; i < bins; ++i) {
    freq[i] = 1 + uint32_t(std::floor(p[i] * spare));
    sum += freq[i];
    if (freq[i] > freq[best]) best = i;
  }
  NTC_CHECK(sum <= (1u << kCdfPrecision), "laplace table ", scale, ",", frac, " overfull");
  freq[best] += (1u << kCdfPrecision) - sum;
  std::vector<uint32_t> cdf(bins + 1, 0);
  for (uint32_t i = 0; i < bins; ++i) cdf[i + 1] = cdf[i] + freq[i];
  return CdfTable(std::move(cdf), -c);
}

struct Bank {
  std::array<std::once_flag, kLaplaceScales * kLaplaceFrac> once;
  std::array<std::unique_ptr<CdfTable>, kLaplaceScales * kLaplaceFrac> tables;
};

}  // namespace

const CdfTable& laplace_table(int scale, int frac) {
  NTC_CHECK(scale >= 0 && scale < kLaplaceScales && frac >= 0 && frac < kLaplaceFrac, "laplace_table(", scale, ", ", frac, ")");
  static Bank bank;
  const int i = scale * kLaplaceFrac + frac;
  std::call_once(bank.once[size_t(i)], [&] { bank.tables[size_t(i)] = std::make_unique<CdfTable>(make_laplace_table(scale, frac)); });
  return *bank.tables[size_t(i)];
}

// ---- bits ----------------------------------------------------------------------------------

void BitWriter::put(uint64_t v, int n) {
  NTC_CHECK(n >= 0 && n <= 57, "BitWriter::put of ", n, " bits");
  if (n == 0) return;
  acc_ = (acc_ << n) | (v & ((uint64_t(1) << n) - 1));
  nacc_ += n;
  bits_ += size_t(n);
  while (nacc_ >= 8) {
    out_.push_back(uint8_t(acc_ >> (nacc_ - 8)));
    nacc_ -= 8;
  }
  acc_ &= (uint64_t(1) << nacc_) - 1;
}

std::vector<uint8_t> BitWriter::finish() {
  if (nacc_ > 0) out_.push_back(uint8_t(acc_ << (8 - nacc_)));
  acc_ = 0;
  nacc_ = 0;
  bits_ = 0;
  return std::move(out_);
}

uint64_t BitReader::get(int n) {
  NTC_CHECK(n >= 0 && n <= 57, "BitReader::get of ", n, " bits");
  if (pos_ + size_t(n) > 8 * n_) fail("corrupt overfitted stream: the weights end early");
  uint64_t v = 0;
  for (int i = 0; i < n; ++i, ++pos_) v = (v << 1) | ((p_[pos_ >> 3] >> (7 - (pos_ & 7))) & 1u);
  return v;
}

namespace {
uint64_t eg_map(int32_t q) { return q > 0 ? 2 * uint64_t(q) - 1 : 2 * uint64_t(-int64_t(q)); }
int bit_length(uint64_t v) { return v ? 64 - __builtin_clzll(v) : 0; }
}  // namespace

size_t exp_golomb_bits(int32_t q, int k) {
  const uint64_t v = eg_map(q) + (uint64_t(1) << k);
  return size_t(2 * bit_length(v) - k - 1);
}

void put_exp_golomb(BitWriter& w, int32_t q, int k) {
  NTC_CHECK(k >= 0 && k <= 24 && q > -(1 << 30) && q < (1 << 30), "exp-golomb: q ", q, ", k ", k);
  const uint64_t v = eg_map(q) + (uint64_t(1) << k);
  const int len = bit_length(v);
  w.put(0, len - k - 1);
  w.put(v, len);
}

int32_t get_exp_golomb(BitReader& r, int k) {
  NTC_CHECK(k >= 0 && k <= 24, "exp-golomb order ", k);
  int zeros = 0;
  while (r.get(1) == 0)
    if (++zeros > 32) fail("corrupt overfitted stream: a weight code is too long");  // |q| < 2^30 needs <= 31
  const int len = zeros + k + 1;  // the leading 1 is read
  const uint64_t v = (uint64_t(1) << (len - 1)) | r.get(len - 1);
  const uint64_t u = v - (uint64_t(1) << k);
  if (u >= (uint64_t(1) << 31)) fail("corrupt overfitted stream: a weight is out of range");
  return (u & 1) ? int32_t((u + 1) / 2) : -int32_t(u / 2);
}

}  // namespace ntc::codec
