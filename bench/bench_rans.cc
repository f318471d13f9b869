// `ntc bench rans [--n N] [--reps R] [--json]` (global `--threads T`) — rANS encode and decode
// throughput in Msymbols/s and the code length against the model's information content.
//
// Symbols: N values (default 2^22), each from one of the 64 Gaussian tables of SPEC §2.3 picked
// uniformly (scales 0.11..256), drawn by inverse CDF from the table's double pmf; 0.1% are then
// replaced by escapes far outside their table (|v| up to 2^24 beyond the centre). With T threads
// the values are cut into T contiguous chunks, one independent stream per thread (one thread is
// the figure of merit). The round trip is checked before anything is timed; times are medians.
//
// Code length: bits = 8 × stream bytes (the 8-byte final state of each stream included).
//   info_bits_cdf = Σ −log2(freq/2^16) of the coded table bins (escapes: the escape bin only);
//   info_bits_pmf = Σ −log2 p of the double pmf (escapes: the tail mass);
//   bypass_bits   = 4 × bypass nibbles (escape counts and raw nibbles), paid on top of both.
//   bits_overhead = bits / info_bits_cdf − 1 (coder + bypass), bits_overhead_pmf = bits /
//   info_bits_pmf − 1 (adds the 16-bit quantisation of the tables), coder_overhead = (bits −
//   bypass_bits) / info_bits_cdf − 1 (the rANS coder alone).
#include <omp.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numeric>

#include "bench/bench.h"
#include "lib/args.h"
#include "codec/rans.h"
#include "lib/common.h"
#include "lib/json.h"
#include "lib/rng.h"
#include "lib/threads.h"

namespace ntc::bench {
namespace {

using codec::CdfTable;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median seconds of fn over `reps` runs after one warm-up.
double median_time(const std::function<void()>& fn, int reps) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_s();
    fn();
    t.push_back(now_s() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double scale(int i) { return std::exp(std::log(0.11) + i * (std::log(256.0) - std::log(0.11)) / 63); }

}  // namespace

int bench_rans(const std::vector<std::string>& argv) {
  cli::Args args(argv, {"n", "reps"}, {"json"});
  const bool json = args.has("json");
  const long n_arg = args.integer("n", 4194304);
  const int reps = int(args.integer("reps", 7));
  if (n_arg < 1 || n_arg > (1l << 28)) fail("--n wants 1..2^28 symbols, got ", n_arg);
  if (reps < 1) fail("--reps wants >= 1");
  const size_t n = size_t(n_arg);
  const int T = std::max(1, std::min(num_threads(), int(n)));

  // Tables and the double pmfs they came from.
  std::vector<CdfTable> tables;
  std::vector<codec::GaussianPmf> pmfs;
  std::vector<std::vector<double>> cums;
  for (int i = 0; i < 64; ++i) {
    pmfs.push_back(codec::gaussian_pmf(scale(i)));
    tables.emplace_back(codec::pmf_to_quantized_cdf(pmfs.back().pmf), pmfs.back().offset);
    cums.emplace_back(pmfs.back().pmf.size());
    std::partial_sum(pmfs.back().pmf.begin(), pmfs.back().pmf.end(), cums.back().begin());
  }

  // Symbols.
  Rng rng(2024);
  std::vector<int32_t> vals(n);
  std::vector<const CdfTable*> tab(n);
  double info_cdf = 0, info_pmf = 0, bypass_bits = 0;
  size_t escapes = 0;
  for (size_t i = 0; i < n; ++i) {
    const int ti = int(rng.next_u64() % 64);
    const std::vector<double>& cum = cums[size_t(ti)];
    const int32_t c = -tables[size_t(ti)].offset, max = tables[size_t(ti)].max_value();
    const double u = double(rng.next_u64() >> 11) * 0x1p-53 * cum.back();
    int64_t k = std::upper_bound(cum.begin(), cum.end(), u) - cum.begin();
    if (k >= max || rng.next_u64() % 1000 == 0) {  // escape: 1..2^24 beyond the centre, either side
      const int32_t far = c + 1 + int32_t(rng.next_u64() % (1u << 24));
      vals[i] = (rng.next_u64() & 1) ? far : -far;
      k = max;
    } else {
      vals[i] = int32_t(k) - c;
    }
    tab[i] = &tables[size_t(ti)];
    info_cdf -= std::log2((tab[i]->cdf[size_t(k) + 1] - tab[i]->cdf[size_t(k)]) * 0x1p-16);
    info_pmf -= std::log2(pmfs[size_t(ti)].pmf[size_t(k)]);
    if (k == max) {
      ++escapes;
      const int64_t value = int64_t(vals[i]) + c;
      const uint64_t raw = value < 0 ? uint64_t(-2 * value - 1) : uint64_t(2 * (value - max));
      const int nib = int(std::bit_width(raw) + 3) / 4;
      bypass_bits += 4.0 * (nib + 1);  // count nibble (nib < 15) + raw nibbles
    }
  }

  // One stream per thread over contiguous chunks.
  std::vector<size_t> lo(static_cast<size_t>(T) + 1);
  for (int t = 0; t <= T; ++t) lo[size_t(t)] = n * size_t(t) / size_t(T);
  std::vector<codec::RansEncoder> enc(static_cast<size_t>(T));
  std::vector<std::vector<uint8_t>> streams(static_cast<size_t>(T));
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(T));
  for (int t = 0; t < T; ++t) out[size_t(t)].resize(lo[size_t(t) + 1] - lo[size_t(t)]);

  auto encode_all = [&] {
#pragma omp parallel for num_threads(T) schedule(static, 1)
    for (int t = 0; t < T; ++t) {
      codec::RansEncoder& e = enc[size_t(t)];
      for (size_t i = lo[size_t(t)]; i < lo[size_t(t) + 1]; ++i) e.put(vals[i], *tab[i]);
      streams[size_t(t)] = e.finish();
    }
  };
  auto decode_all = [&] {
#pragma omp parallel for num_threads(T) schedule(static, 1)
    for (int t = 0; t < T; ++t) {
      const std::vector<uint8_t>& s = streams[size_t(t)];
      codec::RansDecoder d(s.data(), s.data() + s.size());
      int32_t* o = out[size_t(t)].data();
      for (size_t i = lo[size_t(t)]; i < lo[size_t(t) + 1]; ++i) *o++ = d.get(*tab[i]);
      d.finish();
    }
  };

  // Check first.
  encode_all();
  decode_all();
  for (int t = 0; t < T; ++t)
    if (!std::equal(out[size_t(t)].begin(), out[size_t(t)].end(), vals.begin() + std::ptrdiff_t(lo[size_t(t)])))
      fail("bench rans: decode(encode(x)) != x in stream ", t);

  const double t_enc = median_time(encode_all, reps);
  const double t_dec = median_time(decode_all, reps);
  double bits = 0;
  for (const auto& s : streams) bits += 8.0 * double(s.size());
  const double enc_ms = double(n) / t_enc * 1e-6, dec_ms = double(n) / t_dec * 1e-6;
  const double ovh = bits / info_cdf - 1, ovh_pmf = bits / info_pmf - 1,
               ovh_coder = (bits - bypass_bits) / info_cdf - 1;

  if (json) {
    std::printf("%s\n", json_line(JsonOut{{"bench", "rans"}, {"threads", T}, {"n_symbols", n}, {"escapes", escapes},
                                          {"reps", reps}, {"encode_msym_per_s", enc_ms}, {"decode_msym_per_s", dec_ms},
                                          {"encode_ms", t_enc * 1e3}, {"decode_ms", t_dec * 1e3}, {"bits", bits},
                                          {"info_bits_cdf", info_cdf}, {"info_bits_pmf", info_pmf},
                                          {"bypass_bits", bypass_bits}, {"bits_per_symbol", bits / double(n)},
                                          {"bits_overhead", ovh}, {"bits_overhead_pmf", ovh_pmf},
                                          {"coder_overhead", ovh_coder}}).c_str());
  } else {
    std::printf("rANS, %zu symbols over the 64 Gaussian tables, %zu escapes, %d thread%s (one stream each)\n", n,
                escapes, T, T == 1 ? "" : "s");
    std::printf("  %-8s %10s %12s\n", "", "ms", "Msym/s");
    std::printf("  %-8s %10.2f %12.1f\n", "encode", t_enc * 1e3, enc_ms);
    std::printf("  %-8s %10.2f %12.1f\n", "decode", t_dec * 1e3, dec_ms);
    std::printf("  bits %.0f (%.4f/symbol); -log2 cdf %.0f, -log2 pmf %.0f, bypass %.0f\n", bits, bits / double(n),
                info_cdf, info_pmf, bypass_bits);
    std::printf("  overhead vs cdf %+.4f%%, vs pmf %+.4f%%, coder alone %+.5f%%\n", 100 * ovh, 100 * ovh_pmf,
                100 * ovh_coder);
  }
  return 0;
}

}  // namespace ntc::bench
