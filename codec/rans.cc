// rans — see rans.h for the stream layout. This file: CDF quantisation (CompressAI semantics),
// table validation and decode lookup, Gaussian tables, the encoder's backward pass and the
// decoder's cold paths (bypass, errors).
#include "codec/rans.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace ntc::codec {

static_assert(std::endian::native == std::endian::little,
              "rans: the stream is little-endian 32-bit words; add byte swaps for big-endian hosts");

namespace {

constexpr uint32_t kOne = 1u << kCdfPrecision;  // 2^16, the sum of a table's frequencies
constexpr uint64_t kL = uint64_t(1) << 31;      // lower bound of the normalised state
constexpr int kNibbleBits = 4;                  // bypass symbols are 4-bit uniform
constexpr uint32_t kNibbleMax = (1u << kNibbleBits) - 1;
constexpr uint32_t kMaxNibbles = 8;             // raw < 2^32 (see validate())

void store_le32(uint8_t* p, uint32_t w) { std::memcpy(p, &w, 4); }
uint32_t load_le32(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

}  // namespace

// ---- CDF quantisation ----------------------------------------------------------------------

std::vector<uint32_t> pmf_to_quantized_cdf(const std::vector<double>& pmf) {
  if (pmf.size() < 2) fail("pmf_to_quantized_cdf: need at least one value and the tail mass, got ", pmf.size(), " entries");
  if (pmf.size() > kOne)
    fail("pmf_to_quantized_cdf: ", pmf.size(), " bins (values + escape) cannot each get a frequency >= 1 out of 2^16");
  // f_j = round(p_j * 2^16). Entries are bounded so that every product below fits in 64 bits.
  std::vector<uint64_t> f(pmf.size());
  uint64_t total = 0;
  for (size_t j = 0; j < pmf.size(); ++j) {
    const double p = pmf[j];
    if (!std::isfinite(p) || p < 0 || p > 65536.0)
      fail("pmf_to_quantized_cdf: entry ", j, " is ", p, " (want a finite probability >= 0)");
    f[j] = uint64_t(std::round(p * kOne));
    total += f[j];
  }
  if (total == 0) fail("pmf_to_quantized_cdf: every probability rounds to zero at 16-bit precision");

  // Rescale to sum <= 2^16, prefix-sum, force the last entry to 2^16.
  std::vector<uint32_t> cdf(pmf.size() + 1);
  cdf[0] = 0;
  for (size_t j = 0; j < f.size(); ++j) cdf[j + 1] = cdf[j] + uint32_t(uint64_t(kOne) * f[j] / total);
  cdf.back() = kOne;

  // Give every zero-width bin one unit, taken from the first bin of smallest width > 1 (CompressAI).
  // Possible because there are at most 2^16 bins sharing 2^16 units.
  const int nb = int(cdf.size()) - 1;  // number of bins
  for (int i = 0; i < nb; ++i) {
    if (cdf[i] != cdf[i + 1]) continue;
    uint32_t best_freq = ~0u;
    int best = -1;
    for (int j = 0; j < nb; ++j) {
      const uint32_t w = cdf[j + 1] - cdf[j];
      if (w > 1 && w < best_freq) {
        best_freq = w;
        best = j;
      }
    }
    NTC_CHECK(best >= 0, "no bin to steal from (bins ", nb, ")");
    if (best < i) {
      for (int j = best + 1; j <= i; ++j) --cdf[j];
    } else {
      for (int j = i + 1; j <= best; ++j) ++cdf[j];
    }
  }
  for (int i = 0; i < nb; ++i) NTC_CHECK(cdf[i] < cdf[i + 1], "zero-width bin ", i, " survived");
  return cdf;
}

// ---- tables --------------------------------------------------------------------------------

void validate(const CdfTable& t) {
  const std::vector<uint32_t>& c = t.cdf;
  if (c.size() < 3) fail("CDF table has ", c.size(), " entries; needs at least 3 (one value, the escape, the end)");
  if (c.size() > size_t(kOne) + 1) fail("CDF table has ", c.size(), " entries; at most 2^16 + 1 fit 16-bit precision");
  if (c[0] != 0) fail("CDF table starts at ", c[0], ", not 0");
  if (c.back() != kOne) fail("CDF table ends at ", c.back(), ", not 2^16 = ", kOne);
  for (size_t i = 0; i + 1 < c.size(); ++i)
    if (c[i] >= c[i + 1]) fail("CDF table bin ", i, " has width <= 0 (cdf[", i, "] = ", c[i], ", cdf[", i + 1, "] = ", c[i + 1], ")");
  const int64_t max = int64_t(c.size()) - 2;
  if (t.offset > 0 || int64_t(t.offset) + max < 0)
    fail("CDF table offset ", t.offset, " leaves 0 outside [offset, offset + ", max,
         "]; the escape code needs it inside (so every int32 escapes in at most 8 nibbles)");
}

CdfTable::CdfTable(std::vector<uint32_t> c, int32_t off) : cdf(std::move(c)), offset(off) { finalize(); }

void CdfTable::finalize() {
  ready_len_ = 0;
  validate(*this);
  // Buckets: about 4 per symbol (so the central bins of a Gaussian table mostly fill their own
  // bucket and lookup() needs one compare), at most 2^12 (8 KiB) so the 64 tables stay in cache.
  const uint32_t nsym = uint32_t(cdf.size()) - 1;  // symbols incl. escape
  const int bits = std::clamp(int(std::bit_width(nsym)) + 2, 4, 12);
  lut_shift_ = kCdfPrecision - bits;
  lut_.assign((size_t(1) << bits) + 1, 0);
  uint32_t s = 0;
  for (size_t b = 0; b + 1 < lut_.size(); ++b) {
    const uint32_t cum = uint32_t(b) << lut_shift_;
    while (cdf[s + 1] <= cum) ++s;
    lut_[b] = uint16_t(s);
  }
  lut_.back() = uint16_t(nsym - 1);
  uint32_t widest = 0;
  for (size_t i = 0; i + 1 < cdf.size(); ++i) widest = std::max(widest, cdf[i + 1] - cdf[i]);
  min_bits_ = std::max(0.0, std::log2(65536.0 / widest) - 1e-4);
  ready_len_ = cdf.size();
}

// Largest s in [lo, hi] with cdf[s] <= cum, given cdf[lo] <= cum (binary search).
uint32_t CdfTable::lookup_slow(uint32_t lo, uint32_t hi, uint32_t cum) const {
  while (lo < hi) {
    const uint32_t mid = (lo + hi + 1) / 2;
    if (cdf[mid] <= cum) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

double normal_quantile(double p) {
  if (!(p > 0 && p < 1)) fail("normal_quantile: p = ", p, " is not in (0, 1)");
  // Acklam's rational approximation (rel. error 1.15e-9), then one Halley step on erfc.
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double plow = 0.02425;
  double x;
  if (p < plow || p > 1 - plow) {
    const double q = std::sqrt(-2 * std::log(p < plow ? p : 1 - p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    if (p > 1 - plow) x = -x;
  } else {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

GaussianPmf gaussian_pmf(double sigma, double tail_mass) {
  if (!(sigma > 0) || !std::isfinite(sigma)) fail("gaussian_pmf: scale ", sigma, " is not a positive number");
  if (!(tail_mass > 0 && tail_mass < 1)) fail("gaussian_pmf: tail mass ", tail_mass, " is not in (0, 1)");
  const double m = -normal_quantile(tail_mass / 2);
  const double cd = std::ceil(sigma * m);
  if (!(cd <= 32766)) fail("gaussian_pmf: scale ", sigma, " needs ", 2 * cd + 2, " bins; at most 2^16 fit");
  const int c = std::max(int(cd), 0);
  auto Phi = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  GaussianPmf g;
  g.offset = -c;
  g.pmf.resize(size_t(2 * c + 2));
  for (int k = 0; k <= 2 * c; ++k) {
    const double a = std::abs(k - c);
    g.pmf[size_t(k)] = Phi((0.5 - a) / sigma) - Phi((-0.5 - a) / sigma);
  }
  g.pmf.back() = 2 * Phi((-0.5 - c) / sigma);
  return g;
}

CdfTable gaussian_table(double sigma, double tail_mass) {
  GaussianPmf g = gaussian_pmf(sigma, tail_mass);
  return CdfTable(pmf_to_quantized_cdf(g.pmf), g.offset);
}

// ---- encoder -------------------------------------------------------------------------------

void RansEncoder::put_escape(int64_t value, const CdfTable& t) {
  const int64_t max = t.max_value();
  // value is in (-2^32, 2^32); validate() keeps raw below 2^32.
  const uint64_t raw = value < 0 ? uint64_t(-2 * value - 1) : uint64_t(2 * (value - max));
  NTC_CHECK(raw >> 32 == 0, "escape raw ", raw, " needs more than 8 nibbles");
  const uint32_t start = t.cdf[size_t(max)], freq = t.cdf[size_t(max) + 1] - start;
  syms_.push_back(start | freq << 16);
  uint32_t n = 0;
  while (n < kMaxNibbles && (raw >> (kNibbleBits * n)) != 0) ++n;
  for (uint32_t left = n;; left -= kNibbleMax) {  // the count: runs of 15, then the remainder
    syms_.push_back(std::min(left, kNibbleMax));
    if (left < kNibbleMax) break;
  }
  for (uint32_t j = 0; j < n; ++j) syms_.push_back(uint32_t(raw >> (kNibbleBits * j)) & kNibbleMax);
}

std::vector<uint8_t> RansEncoder::finish() {
  // Each symbol emits at most one word, plus two for the final state.
  const size_t nwords = syms_.size() + 2;
  std::vector<uint8_t> buf(4 * nwords);
  size_t w = nwords;  // next word goes to index w-1 (we write backwards)
  uint64_t x = kL;
  for (size_t i = syms_.size(); i-- > 0;) {
    const uint32_t sym = syms_[i], start = sym & 0xFFFF, freq = sym >> 16;
    if (freq != 0) [[likely]] {
      // Rans64EncPut: x_max = ((L >> 16) << 32) * freq.
      if (x >= (uint64_t(freq) << (63 - kCdfPrecision))) {
        store_le32(&buf[4 * --w], uint32_t(x));
        x >>= 32;
      }
      x = ((x / freq) << kCdfPrecision) + (x % freq) + start;
    } else {
      // Rans64EncPutBits(start, 4): a uniform symbol of 4 bits.
      if (x >= (uint64_t(1) << (63 - kNibbleBits))) {
        store_le32(&buf[4 * --w], uint32_t(x));
        x >>= 32;
      }
      x = (x << kNibbleBits) | start;
    }
  }
  w -= 2;
  store_le32(&buf[4 * w], uint32_t(x));
  store_le32(&buf[4 * w + 4], uint32_t(x >> 32));
  syms_.clear();
  count_ = 0;
  return std::vector<uint8_t>(buf.begin() + std::ptrdiff_t(4 * w), buf.end());
}

// ---- decoder -------------------------------------------------------------------------------

RansDecoder::RansDecoder(const uint8_t* begin, const uint8_t* end) {
  NTC_CHECK(begin <= end || (begin == nullptr && end == nullptr), "RansDecoder: end before begin");
  const size_t n = size_t(end - begin);
  if (n < 8) fail("rANS stream is ", n, " bytes; it needs at least 8 (the final state)");
  if (n % 4) fail("rANS stream is ", n, " bytes, not a whole number of 32-bit words (truncated?)");
  words_ = begin;
  nwords_ = n / 4;
  x_ = load_le32(begin) | uint64_t(load_le32(begin + 4)) << 32;
  if (x_ < kL || x_ >> 63) fail("rANS stream starts with state ", x_, ", outside [2^31, 2^63) (corrupt stream)");
}

void RansDecoder::fail_overread() const {
  fail("rANS stream ends early (", nwords_ * 4, " bytes read; truncated stream or wrong tables)");
}

uint32_t RansDecoder::get_nibble() {  // Rans64DecGetBits(4)
  const uint32_t v = uint32_t(x_) & kNibbleMax;
  x_ >>= kNibbleBits;
  renorm();
  return v;
}

int32_t RansDecoder::get_escape(const CdfTable& t) {
  uint32_t n = 0, nib;
  do {
    nib = get_nibble();
    n += nib;
    if (n > kMaxNibbles) fail("rANS escape claims ", n, "+ nibbles (at most ", kMaxNibbles, "; corrupt stream)");
  } while (nib == kNibbleMax);
  uint64_t raw = 0;
  for (uint32_t j = 0; j < n; ++j) raw |= uint64_t(get_nibble()) << (kNibbleBits * j);
  const int64_t max = t.max_value();
  const int64_t value = (raw & 1) ? -int64_t(raw >> 1) - 1 : int64_t(raw >> 1) + max;
  const int64_t v = value + t.offset;
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
    fail("rANS escape decodes to ", v, ", outside int32 (corrupt stream)");
  return int32_t(v);
}

void RansDecoder::finish() {
  if (pos_ != nwords_)
    fail("rANS stream has ", 4 * (nwords_ - pos_), " unread bytes at the end (corrupt stream or wrong tables)");
  if (x_ != kL) fail("rANS stream does not end in the initial state (corrupt stream or wrong tables)");
}

}  // namespace ntc::codec
