// Tests of codec/rans: CDF quantisation against hand-computed tables, table validation, the
// decode lookup against a linear search, round trips over the 64 Gaussian tables (escapes and
// int32 extremes included), the words against a plain CompressAI/ryg rans64 port, code length
// against the model's information content, and a hostile-stream battery (truncation, bit flips,
// garbage, wrong tables) that must end in ntc::Error or a clean decode — never a crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "codec/rans.h"
#include "lib/rng.h"

namespace ntc::codec {
namespace {

constexpr int32_t kI32Min = std::numeric_limits<int32_t>::min();
constexpr int32_t kI32Max = std::numeric_limits<int32_t>::max();

// The 64 scales of SPEC §2.2: sigma_i = exp(ln 0.11 + i (ln 256 - ln 0.11) / 63).
double scale(int i) { return std::exp(std::log(0.11) + i * (std::log(256.0) - std::log(0.11)) / 63); }

const std::vector<CdfTable>& gaussian_tables() {
  static const std::vector<CdfTable> t = [] {
    std::vector<CdfTable> v;
    for (int i = 0; i < 64; ++i) v.push_back(gaussian_table(scale(i)));
    return v;
  }();
  return t;
}

double uniform01(Rng& rng) { return double(rng.next_u64() >> 11) * 0x1p-53; }

// A value drawn by inverse CDF from the double pmf of a Gaussian table; a draw in the tail mass
// becomes an escape (a value beyond the centre c, either side).
int32_t draw(const std::vector<double>& cum, int32_t offset, Rng& rng) {
  const double u = uniform01(rng) * cum.back();
  const size_t k = size_t(std::upper_bound(cum.begin(), cum.end(), u) - cum.begin());
  const int32_t n = int32_t(cum.size()) - 1;  // values (the last cum entry closes the tail)
  if (k < size_t(n)) return int32_t(k) + offset;
  const int32_t c = -offset;
  return (rng.next_u64() & 1) ? c + 1 + int32_t(rng.next_u64() % 1000) : -c - 1 - int32_t(rng.next_u64() % 1000);
}

std::vector<double> cumulative(const std::vector<double>& pmf) {
  std::vector<double> c(pmf.size());
  std::partial_sum(pmf.begin(), pmf.end(), c.begin());
  return c;
}

struct Coded {
  std::vector<int32_t> values;
  std::vector<int> table;  // index into gaussian_tables()
  std::vector<uint8_t> stream;
};

// n values over random tables; roughly 1 in `escape_every` is a far out-of-range value.
Coded make_stream(size_t n, uint64_t seed, int escape_every = 50) {
  const auto& T = gaussian_tables();
  Rng rng(seed);
  Coded c;
  RansEncoder enc;
  for (size_t i = 0; i < n; ++i) {
    const int ti = int(rng.next_u64() % 64);
    const int32_t cen = -T[ti].offset;
    int32_t v = int32_t(int64_t(rng.next_u64() % uint64_t(2 * cen + 1)) - cen);
    if (rng.next_u64() % uint64_t(escape_every) == 0) v = int32_t(rng.next_u64());
    c.values.push_back(v);
    c.table.push_back(ti);
    enc.put(v, T[ti]);
  }
  EXPECT_EQ(enc.count(), n);
  c.stream = enc.finish();
  EXPECT_EQ(enc.count(), 0u);
  return c;
}

// Decodes with the given tables; returns the values or throws ntc::Error.
std::vector<int32_t> decode(const std::vector<uint8_t>& s, const std::vector<int>& tables) {
  const auto& T = gaussian_tables();
  RansDecoder dec(s.data(), s.data() + s.size());
  std::vector<int32_t> out;
  for (int ti : tables) out.push_back(dec.get(T[ti]));
  dec.finish();
  return out;
}

// ---- a plain port of CompressAI's RansEncoder/RansDecoder over ryg rans64, as the oracle ----

struct RefSym {
  uint32_t start, range;
  bool bypass;
};

std::vector<uint8_t> ref_encode(const std::vector<int32_t>& vals, const std::vector<const CdfTable*>& tabs) {
  std::vector<RefSym> syms;
  for (size_t i = 0; i < vals.size(); ++i) {
    const CdfTable& t = *tabs[i];
    const int64_t max = int64_t(t.cdf.size()) - 2;
    int64_t value = int64_t(vals[i]) - t.offset;
    uint64_t raw = 0;
    if (value < 0) {
      raw = uint64_t(-2 * value - 1);
      value = max;
    } else if (value >= max) {
      raw = uint64_t(2 * (value - max));
      value = max;
    }
    syms.push_back({t.cdf[value], t.cdf[value + 1] - t.cdf[value], false});
    if (value == max) {
      int n = 0;
      while (n < 16 && (raw >> (4 * n)) != 0) ++n;
      int v = n;
      while (v >= 15) {
        syms.push_back({15, 16, true});
        v -= 15;
      }
      syms.push_back({uint32_t(v), uint32_t(v + 1), true});
      for (int j = 0; j < n; ++j) syms.push_back({uint32_t(raw >> (4 * j)) & 15, 0, true});
    }
  }
  std::vector<uint32_t> out(syms.size() + 2);
  uint32_t* ptr = out.data() + out.size();
  uint64_t x = uint64_t(1) << 31;
  while (!syms.empty()) {
    const RefSym s = syms.back();
    syms.pop_back();
    const uint64_t freq = s.bypass ? 1 << 12 : s.range;
    if (x >= ((uint64_t(1) << 31 >> 16) << 32) * freq) {
      *--ptr = uint32_t(x);
      x >>= 32;
    }
    x = s.bypass ? (x << 4) | s.start : ((x / freq) << 16) + (x % freq) + s.start;
  }
  *--ptr = uint32_t(x >> 32);
  *--ptr = uint32_t(x);
  std::vector<uint8_t> bytes(size_t(out.data() + out.size() - ptr) * 4);
  std::memcpy(bytes.data(), ptr, bytes.size());
  return bytes;
}

// ---------------------------------------------------------------------------------------------

// min_bits() is a true lower bound, also in the tightest case: a long run of each table's most
// probable symbol (the cheapest stream there is), for peaked and wide tables. The decoder refuses
// sections shorter than the bound (stream_can_hold), so a loose bound would refuse real streams.
TEST(Rans, MinBitsBoundEvenTheCheapestStream) {
  for (double sigma : {0.11, 0.3, 1.0, 4.0, 60.0}) {
    const CdfTable t = gaussian_table(sigma);
    uint32_t widest = 0;
    int32_t mode = 0;
    for (size_t i = 0; i + 2 < t.cdf.size(); ++i)
      if (t.cdf[i + 1] - t.cdf[i] > widest) widest = t.cdf[i + 1] - t.cdf[i], mode = int32_t(i) + t.offset;
    EXPECT_NEAR(t.min_bits(), std::max(0.0, std::log2(65536.0 / widest) - 1e-4), 1e-12);
    for (size_t n : {size_t(1), size_t(100), size_t(100000)}) {
      RansEncoder enc;
      for (size_t i = 0; i < n; ++i) enc.put(mode, t);
      const std::vector<uint8_t> s = enc.finish();
      const double bits = double(n) * t.min_bits();
      EXPECT_TRUE(stream_can_hold(s.size(), bits)) << "σ " << sigma << ", " << n << " symbols: " << s.size() << " bytes";
      if (bits > 256) {
        EXPECT_LT(8.0 * double(s.size()), bits * 1.01 + 128) << "σ " << sigma << ": the bound is tight";
      }
    }
  }
  EXPECT_FALSE(stream_can_hold(8, 65));
}

TEST(Cdf, QuantizeExactPowersOfTwo) {
  EXPECT_EQ(pmf_to_quantized_cdf({0.5, 0.25, 0.125, 0.125}), (std::vector<uint32_t>{0, 32768, 49152, 57344, 65536}));
}

TEST(Cdf, QuantizeRescalesAndForcesTheEnd) {
  // f = round(p * 2^16) = {19661, 13107, 6554}, sum 39322; floor(2^16 f / 39322) = {32768, 21844,
  // 10923}, sum 65535; the forced end gives the escape bin the missing unit.
  EXPECT_EQ(pmf_to_quantized_cdf({0.3, 0.2, 0.1}), (std::vector<uint32_t>{0, 32768, 54612, 65536}));
}

TEST(Cdf, ZeroBinsStealFromTheSmallestWideBin) {
  // {49152, 0, 16384, 0}: bin 1 takes from bin 2 (smallest width > 1, to its right: later cdf
  // entries move up); bin 3 takes from bin 2 again (now to its left: entries move down).
  EXPECT_EQ(pmf_to_quantized_cdf({0.75, 0.0, 0.25, 0.0}), (std::vector<uint32_t>{0, 49152, 49153, 65535, 65536}));
  // Rounding to zero counts as zero: {0, 32768, 32768, 0}. Bin 0 takes from bin 1 (first of the
  // two equal smallest), then the escape takes from bin 1 (now the smallest, 32767).
  EXPECT_EQ(pmf_to_quantized_cdf({1e-7, 0.5, 0.5 - 1e-7 - 1e-9, 1e-9}),
            (std::vector<uint32_t>{0, 1, 32767, 65535, 65536}));
}

TEST(Cdf, EveryBinAtLeastOneAtTheLimit) {
  // 65535 values + escape = 2^16 bins: possible only with every width exactly 1.
  const std::vector<double> pmf(65536, 1.0 / 65536);
  const std::vector<uint32_t> cdf = pmf_to_quantized_cdf(pmf);
  ASSERT_EQ(cdf.size(), 65537u);
  for (size_t i = 0; i < cdf.size(); ++i) ASSERT_EQ(cdf[i], i);
  EXPECT_NO_THROW(CdfTable(cdf, -1));
}

TEST(Cdf, RejectsImpossiblePmfs) {
  EXPECT_THROW(pmf_to_quantized_cdf(std::vector<double>(65537, 1.0 / 65537)), Error);  // n + 1 > 2^16
  EXPECT_THROW(pmf_to_quantized_cdf({}), Error);
  EXPECT_THROW(pmf_to_quantized_cdf({1.0}), Error);                  // no tail entry
  EXPECT_THROW(pmf_to_quantized_cdf({0.0, 0.0, 0.0}), Error);        // nothing to rescale
  EXPECT_THROW(pmf_to_quantized_cdf({1e-6, 1e-6}), Error);           // rounds to all zero
  EXPECT_THROW(pmf_to_quantized_cdf({0.5, -0.1, 0.6}), Error);
  EXPECT_THROW(pmf_to_quantized_cdf({0.5, std::nan(""), 0.5}), Error);
  EXPECT_THROW(pmf_to_quantized_cdf({0.5, INFINITY, 0.5}), Error);
  EXPECT_NO_THROW(pmf_to_quantized_cdf({0.0, 1.0}));                 // the zero value bin steals
}

TEST(Cdf, ValidateRejectsMalformedTables) {
  auto bad = [](std::vector<uint32_t> c, int32_t off) {
    CdfTable t;
    t.cdf = std::move(c);
    t.offset = off;
    EXPECT_THROW(validate(t), Error);
    EXPECT_THROW(t.finalize(), Error);
    EXPECT_THROW(t.check_ready(), Error);
  };
  bad({}, 0);
  bad({0, 65536}, 0);                   // too short: no room for a value and the escape
  bad({1, 5, 65536}, 0);                // does not start at 0
  bad({0, 5, 65535}, 0);                // does not end at 2^16
  bad({0, 5, 65537}, 0);
  bad({0, 5, 5, 65536}, 0);             // zero-width bin
  bad({0, 7, 5, 65536}, 0);             // decreasing
  bad({0, 5, 9, 65536}, 1);             // offset > 0: 0 below the range
  bad({0, 5, 9, 65536}, -3);            // offset + max < 0: 0 above the range
  bad(std::vector<uint32_t>(65538, 0), 0);
  EXPECT_NO_THROW(CdfTable({0, 5, 9, 65536}, -2));
  EXPECT_NO_THROW(CdfTable({0, 5, 9, 65536}, 0));

  // put/get refuse a table that was never finalized or changed length since.
  CdfTable t({0, 5, 9, 65536}, 0);
  t.cdf.push_back(70000);
  RansEncoder enc;
  EXPECT_THROW(enc.put(0, t), Error);
  EXPECT_THROW(enc.put(0, CdfTable()), Error);
}

TEST(Cdf, GaussianTablesMatchSpec) {
  EXPECT_NEAR(-normal_quantile(1e-9 / 2), 6.10941, 1e-5);
  EXPECT_NEAR(normal_quantile(0.975), 1.959963984540054, 1e-12);
  EXPECT_NEAR(normal_quantile(0.5), 0.0, 1e-15);
  const auto& T = gaussian_tables();
  EXPECT_NEAR(scale(0), 0.11, 1e-12);
  EXPECT_NEAR(scale(63), 256.0, 1e-9);
  EXPECT_EQ(T[0].offset, -1);  // c = 1 for sigma = 0.11
  EXPECT_EQ(T[0].cdf.size(), 5u);
  EXPECT_EQ(T[63].offset, -1565);  // c = 1565 for sigma = 256
  EXPECT_EQ(T[63].cdf.size(), 2u * 1565 + 3);
  for (int i = 0; i < 64; ++i) {
    const GaussianPmf g = gaussian_pmf(scale(i));
    const int32_t c = -g.offset;
    ASSERT_EQ(c, int32_t(std::ceil(scale(i) * 6.109410204869))) << i;
    ASSERT_EQ(T[i].cdf.size(), size_t(2 * c + 3));
    EXPECT_NEAR(std::accumulate(g.pmf.begin(), g.pmf.end(), 0.0), 1.0, 1e-12);
    for (int k = 0; k <= c; ++k) ASSERT_EQ(g.pmf[size_t(c - k)], g.pmf[size_t(c + k)]);  // symmetric
    // Centre bin: Phi(0.5/s) - Phi(-0.5/s) = erf(0.5 / (s sqrt 2)).
    EXPECT_NEAR(g.pmf[size_t(c)], std::erf(0.5 / (scale(i) * std::sqrt(2.0))), 1e-15);
  }
  EXPECT_THROW(gaussian_pmf(0.0), Error);
  EXPECT_THROW(gaussian_pmf(-1.0), Error);
  EXPECT_THROW(gaussian_pmf(1e6), Error);  // needs more than 2^16 bins
  EXPECT_THROW(gaussian_pmf(1.0, 0.0), Error);
}

TEST(Cdf, LookupAgreesWithLinearSearchForEveryCum) {
  std::vector<CdfTable> tables = gaussian_tables();
  Rng rng(7);
  for (int r = 0; r < 20; ++r) {  // random pmfs with many zeros and spikes
    std::vector<double> pmf(1 + rng.next_u64() % 3000);
    for (double& p : pmf) p = (rng.next_u64() % 4 == 0) ? 0.0 : std::pow(uniform01(rng), 8);
    tables.emplace_back(pmf_to_quantized_cdf(pmf), -int32_t(pmf.size() / 2));
  }
  for (const CdfTable& t : tables) {
    uint32_t s = 0;
    for (uint32_t cum = 0; cum < 65536; ++cum) {
      while (t.cdf[s + 1] <= cum) ++s;
      ASSERT_EQ(t.lookup(cum), s) << "cum " << cum << " table length " << t.cdf.size();
    }
  }
}

TEST(Rans, RoundTripAllGaussianScales) {
  const Coded c = make_stream(200000, 1);
  EXPECT_EQ(decode(c.stream, c.table), c.values);
  EXPECT_EQ(c.stream.size() % 4, 0u);
}

TEST(Rans, RoundTripEachScaleAlone) {
  const auto& T = gaussian_tables();
  for (int i = 0; i < 64; ++i) {
    const GaussianPmf g = gaussian_pmf(scale(i));
    const std::vector<double> cum = cumulative(g.pmf);
    Rng rng(100 + i);
    std::vector<int32_t> v(5000);
    RansEncoder enc;
    for (int32_t& x : v) enc.put(x = draw(cum, g.offset, rng), T[i]);
    const std::vector<uint8_t> s = enc.finish();
    RansDecoder dec(s.data(), s.data() + s.size());
    for (int32_t x : v) ASSERT_EQ(dec.get(T[i]), x) << "scale " << i;
    EXPECT_NO_THROW(dec.finish());
  }
}

TEST(Rans, EmptyStream) {
  RansEncoder enc;
  const std::vector<uint8_t> s = enc.finish();
  EXPECT_EQ(s.size(), 8u);  // just the state, x = L
  RansDecoder dec(s.data(), s.data() + s.size());
  EXPECT_NO_THROW(dec.finish());
}

TEST(Rans, ExtremeValuesRoundTrip) {
  std::vector<CdfTable> tables = {gaussian_tables()[0], gaussian_tables()[30], gaussian_tables()[63],
                                  CdfTable({0, 100, 65536}, 0),          // range {0}, offset + max = 1
                                  CdfTable({0, 100, 200, 65536}, -2),    // range {-2, -1}, offset + max = 0
                                  CdfTable({0, 65535, 65536}, 0)};       // escape of width 1
  const std::vector<int32_t> vals = {0, 1, -1, 2, -2, 1000000, -1000000, kI32Min, kI32Max, kI32Min + 1,
                                     kI32Max - 1, 1565, 1566, -1565, -1566, 15, 16, -15, -16, 255, 256};
  std::vector<int32_t> in;
  std::vector<const CdfTable*> tab;
  RansEncoder enc;
  for (const CdfTable& t : tables)
    for (int32_t v : vals) {
      enc.put(v, t);
      in.push_back(v);
      tab.push_back(&t);
    }
  const std::vector<uint8_t> s = enc.finish();
  EXPECT_EQ(s, ref_encode(in, tab));
  RansDecoder dec(s.data(), s.data() + s.size());
  for (size_t i = 0; i < in.size(); ++i) ASSERT_EQ(dec.get(*tab[i]), in[i]) << i;
  EXPECT_NO_THROW(dec.finish());
}

TEST(Rans, AllEscapeStream) {
  const auto& T = gaussian_tables();
  Rng rng(3);
  std::vector<int32_t> v(20000);
  RansEncoder enc;
  for (size_t i = 0; i < v.size(); ++i) {
    const CdfTable& t = T[i % 64];
    const int32_t c = -t.offset;
    do v[i] = int32_t(rng.next_u64() >> (rng.next_u64() % 64));
    while (v[i] >= -c && v[i] <= c);
    enc.put(v[i], t);
  }
  const std::vector<uint8_t> s = enc.finish();
  RansDecoder dec(s.data(), s.data() + s.size());
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(dec.get(T[i % 64]), v[i]) << i;
  EXPECT_NO_THROW(dec.finish());
}

TEST(Rans, WordsMatchCompressAIPort) {
  const Coded c = make_stream(30000, 11, 20);
  std::vector<const CdfTable*> tab;
  for (int ti : c.table) tab.push_back(&gaussian_tables()[ti]);
  EXPECT_EQ(c.stream, ref_encode(c.values, tab));
}

TEST(Rans, CodeLengthNearInformationContent) {
  // 1.2M values, tables uniform over the 64 scales, values drawn from each table's double pmf.
  const auto& T = gaussian_tables();
  std::vector<GaussianPmf> g;
  std::vector<std::vector<double>> cum;
  for (int i = 0; i < 64; ++i) {
    g.push_back(gaussian_pmf(scale(i)));
    cum.push_back(cumulative(g.back().pmf));
  }
  Rng rng(5);
  const size_t n = 1200000;
  double info_pmf = 0, info_cdf = 0;
  RansEncoder enc;
  std::vector<int32_t> vals(n);
  std::vector<int> tabs(n);
  for (size_t i = 0; i < n; ++i) {
    const int ti = tabs[i] = int(rng.next_u64() % 64);
    const int32_t v = vals[i] = draw(cum[ti], g[ti].offset, rng);
    const int64_t k = std::clamp<int64_t>(int64_t(v) - g[ti].offset, 0, int64_t(g[ti].pmf.size()) - 1);
    info_pmf -= std::log2(g[ti].pmf[size_t(k)]);
    info_cdf -= std::log2((T[ti].cdf[size_t(k) + 1] - T[ti].cdf[size_t(k)]) / 65536.0);
    enc.put(v, T[ti]);
  }
  const std::vector<uint8_t> s = enc.finish();
  EXPECT_EQ(decode(s, tabs), vals);
  const double bits = 8.0 * double(s.size());
  std::printf("[ rans     ] %zu symbols: %.0f bits, -log2 pmf %.0f (overhead %+.3f%%), -log2 cdf %.0f (%+.4f%%)\n", n,
              bits, info_pmf, 100 * (bits / info_pmf - 1), info_cdf, 100 * (bits / info_cdf - 1));
  EXPECT_LT(bits, 1.005 * info_pmf);
  EXPECT_LT(bits, 1.001 * info_cdf);  // the coder itself adds almost nothing beyond the table
  EXPECT_GT(bits, 0.99 * info_cdf);
}

TEST(Rans, TruncationAtEveryLengthThrows) {
  for (uint64_t seed : {21, 22, 23}) {
    const Coded c = make_stream(40, seed, 5);
    for (size_t len = 0; len < c.stream.size(); ++len) {
      const std::vector<uint8_t> cut(c.stream.begin(), c.stream.begin() + std::ptrdiff_t(len));
      EXPECT_THROW(decode(cut, c.table), Error) << "length " << len << " of " << c.stream.size();
    }
    for (size_t extra : {1, 4, 8}) {  // trailing bytes: misaligned, or words left unread
      std::vector<uint8_t> longer = c.stream;
      longer.resize(c.stream.size() + extra, 0xAB);
      EXPECT_THROW(decode(longer, c.table), Error) << "extra " << extra;
    }
  }
  EXPECT_THROW(RansDecoder(nullptr, nullptr), Error);
}

TEST(Rans, HostileStreamsGiveErrorOrCleanDecode) {
  // Each mutated stream must throw ntc::Error or decode the right count and end cleanly. Clean
  // decodes are legitimate: bypass nibbles are raw bits without redundancy (a flipped bit there
  // is just another escape value), so the coder alone cannot detect every change; the container's
  // checksum does. These streams carry 10% escapes, so a fair share of mutations decode cleanly.
  std::vector<Coded> base;
  for (uint64_t seed = 31; seed < 35; ++seed) base.push_back(make_stream(300, seed, 10));
  Rng rng(77);
  int errors = 0, clean = 0;
  const int trials = 4000;
  for (int trial = 0; trial < trials; ++trial) {
    const Coded& c = base[size_t(trial) % base.size()];
    std::vector<uint8_t> s = c.stream;
    switch (trial % 5) {
      case 0:  // one bit flip
        s[rng.next_u64() % s.size()] ^= uint8_t(1u << (rng.next_u64() % 8));
        break;
      case 1:  // several bit flips
        for (int k = 0; k < 1 + int(rng.next_u64() % 8); ++k) s[rng.next_u64() % s.size()] ^= uint8_t(1u << (rng.next_u64() % 8));
        break;
      case 2:  // truncation to a random length, then maybe a flip
        s.resize(rng.next_u64() % s.size());
        if (!s.empty() && rng.next_u64() % 2) s[rng.next_u64() % s.size()] ^= 0x80;
        break;
      case 3:  // garbage of a random length
        s.resize(rng.next_u64() % (2 * c.stream.size()));
        for (uint8_t& b : s) b = uint8_t(rng.next_u64());
        break;
      case 4:  // garbage spliced into the middle, keeping a valid state at the front
        for (size_t i = 8 + rng.next_u64() % (s.size() - 8); i < s.size() && rng.next_u64() % 16; ++i) s[i] = uint8_t(rng.next_u64());
        break;
    }
    try {
      const std::vector<int32_t> out = decode(s, c.table);
      ASSERT_EQ(out.size(), c.values.size());
      ++clean;
    } catch (const Error&) {
      ++errors;
    }
  }
  std::printf("[ rans     ] %d hostile streams: %d errors, %d clean decodes\n", trials, errors, clean);
  EXPECT_GT(errors, trials / 2);
}

TEST(Rans, WrongTablesNeverCrash) {
  const auto& T = gaussian_tables();
  const Coded c = make_stream(2000, 41, 10);
  Rng rng(43);
  int errors = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<int> tabs = c.table;
    switch (trial % 4) {
      case 0: std::rotate(tabs.begin(), tabs.begin() + 1, tabs.end()); break;   // order shifted
      case 1: for (int& t : tabs) t = int(rng.next_u64() % 64); break;          // random tables
      case 2: tabs.resize(rng.next_u64() % tabs.size()); break;                 // too few gets
      case 3: for (int k = 0; k < 1 + trial; ++k) tabs.push_back(int(rng.next_u64() % 64)); break;  // too many
    }
    try {
      RansDecoder dec(c.stream.data(), c.stream.data() + c.stream.size());
      for (int ti : tabs) (void)dec.get(T[ti]);
      dec.finish();
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_EQ(errors, 200);
}

}  // namespace
}  // namespace ntc::codec
