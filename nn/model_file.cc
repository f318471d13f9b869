#include "nn/model_file.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <map>

#include "lib/binio.h"
#include "lib/common.h"
#include "lib/fileio.h"
#include "lib/framed.h"

namespace ntc::nn {
namespace {

constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxConfig = 1 << 20, kMaxTensors = 100000, kMaxTableLen = 1 << 17;

void write_table(BinWriter& w, const codec::CdfTable& t) {
  w.put<int32_t>(t.offset);
  w.put<uint32_t>(uint32_t(t.cdf.size() - 1));
  for (size_t i = 0; i + 1 < t.cdf.size(); ++i) w.put<uint16_t>(uint16_t(t.cdf[i + 1] - t.cdf[i]));
}

codec::CdfTable read_table(BinReader& r, const std::string& origin) {
  const int32_t offset = r.get<int32_t>();
  const uint32_t bins = r.get<uint32_t>();
  if (bins < 2 || bins > kMaxTableLen) fail(origin, ": bad CDF table length ", bins);
  r.need(size_t(bins) * 2);
  std::vector<uint32_t> cdf{0};
  for (uint32_t i = 0; i < bins; ++i) cdf.push_back(cdf.back() + r.get<uint16_t>());
  try {
    return codec::CdfTable(std::move(cdf), offset);
  } catch (const Error& e) {
    fail(origin, ": bad CDF table: ", e.what());
  }
}

}  // namespace

uint64_t model_hash(const uint8_t* data, size_t size) {
  constexpr uint64_t P1 = 0x9E3779B97F4A7C15ull, P2 = 0xC2B2AE3D27D4EB4Full;
  auto rotl = [](uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  // Lane i takes words i, i+4, i+8, …: a ← rotl(a ⊕ w·P2, 31)·P1. Each step is a bijection of w for a
  // given a, and the four lanes' chains run in parallel.
  uint64_t a[4] = {P1, P1 + 1, P1 + 2, P1 + 3};
  size_t i = 0;
  for (; i + 32 <= size; i += 32)
    for (int l = 0; l < 4; ++l) {
      uint64_t w;
      std::memcpy(&w, data + i + 8 * l, 8);  // little-endian (x86-64)
      a[l] = rotl(a[l] ^ (w * P2), 31) * P1;
    }
  uint64_t h = uint64_t(size) * P2;
  for (int l = 0; l < 4; ++l) h = rotl(h ^ a[l], 27) * P1;
  h = fnv1a(data + i, size - i, h);  // the last size mod 32 bytes
  h ^= h >> 33;  // avalanche: every input bit reaches every output bit
  h *= P2;
  h ^= h >> 29;
  h *= P1;
  return h ^ (h >> 32);
}

uint64_t legacy_model_hash(const uint8_t* data, size_t size) { return fnv1a(data, size); }

uint64_t accepted_model_hash(uint64_t stream_hash, uint64_t hash, const std::function<uint64_t()>& legacy) {
  if (stream_hash == hash) return hash;
  const uint64_t old = legacy();
  return stream_hash == old ? old : hash;
}

std::vector<uint8_t> serialize_model(const Model& m, WeightFormat fmt) {
  NTC_CHECK(m.finalized(), "save_model: finalize() the model first (entropy tables)");
  BinWriter w = open_frame_writer(kModelFrame);
  w.put<uint32_t>(kVersion);
  const std::string& cfg = m.config().text();
  w.str(cfg);
  const NamedTensors params = m.named_parameters();
  w.put<uint32_t>(uint32_t(params.size()));
  for (const auto& [name, t] : params) {
    w.put<uint16_t>(uint16_t(name.size()));
    w.raw(name.data(), name.size());
    w.put<uint8_t>(fmt == WeightFormat::F16 ? 1 : 0);
    w.put<uint8_t>(uint8_t(t.ndim()));
    for (int i = 0; i < t.ndim(); ++i) w.put<uint32_t>(uint32_t(t.dim(i)));
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (fmt == WeightFormat::F16) w.put<uint16_t>(_cvtss_sh(t.data()[i], _MM_FROUND_TO_NEAREST_INT));
      else w.put<float>(t.data()[i]);
    }
  }
  const auto& eb = m.entropy_bottleneck();
  w.put<uint32_t>(uint32_t(eb.channels()));
  for (float v : eb.medians()) w.put<float>(v);
  for (const auto& t : eb.tables()) write_table(w, t);
  const auto& gc = m.gaussian_conditional();
  w.put<uint32_t>(m.hyperprior() ? uint32_t(gc.tables().size()) : 0);
  if (m.hyperprior())
    for (const auto& t : gc.tables()) write_table(w, t);
  return close_frame(std::move(w));
}

std::unique_ptr<Model> deserialize_model(const uint8_t* data, size_t size, const std::string& origin) {
  BinReader r = open_frame(data, size, kModelFrame, origin);
  const uint32_t version = r.get<uint32_t>();
  if (version != kVersion) fail(origin, ": model format version ", version, ", this build reads ", kVersion);
  const uint32_t cfg_len = r.get<uint32_t>();
  if (cfg_len > kMaxConfig) fail(origin, ": config too large");
  std::unique_ptr<Model> m;
  {
    // Every parameter is stored with at least 2 bytes (f16): the config may not ask for more
    // parameters than the file could hold, checked before each allocation. Nor are they zeroed:
    // every one is read below, or loading fails.
    ParamBudget budget(int64_t(size / 2), true);
    try {
      m = std::make_unique<Model>(Config::parse(r.str(cfg_len), origin + " (embedded config)"));
    } catch (const Error& e) {
      const std::string what = e.what();
      if (what.rfind(origin, 0) == 0) throw;
      fail(origin, ": ", what);  // the budget's message does not know the file
    }
  }

  std::map<std::string, Tensor> want;
  for (const auto& [name, t] : m->named_parameters()) want[name] = t;
  const uint32_t count = r.get<uint32_t>();
  if (count > kMaxTensors) fail(origin, ": ", count, " tensors");
  for (uint32_t i = 0; i < count; ++i) {
    const std::string name = r.str(r.get<uint16_t>());
    const uint8_t dtype = r.get<uint8_t>(), nd = r.get<uint8_t>();
    if (dtype > 1) fail(origin, ": tensor ", name, " has unknown dtype ", int(dtype));
    Shape s;
    for (int d = 0; d < nd; ++d) s.push_back(r.get<uint32_t>());
    auto it = want.find(name);
    if (it == want.end()) fail(origin, ": tensor '", name, "' is not a parameter of this model's config");
    if (it->second.shape() != s)
      fail(origin, ": tensor '", name, "' has shape ", shape_str(s), ", the config wants ", shape_str(it->second.shape()));
    float* dst = it->second.data();
    const int64_t n = numel_of(s);
    const uint8_t* src = r.take(size_t(n) * (dtype ? 2 : 4));
    int64_t k = 0;
    if (dtype) {  // f16 → f32, 8 at a time (F16C), then the rest
      for (; k + 8 <= n; k += 8)
        _mm256_storeu_ps(dst + k, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * k))));
      for (; k < n; ++k) {
        uint16_t h;
        std::memcpy(&h, src + 2 * k, 2);
        dst[k] = _cvtsh_ss(h);
      }
    } else {
      std::memcpy(dst, src, size_t(n) * 4);
    }
    bool finite = true;  // no early exit: a loop the compiler vectorises
    for (k = 0; k < n; ++k) finite &= std::isfinite(dst[k]);
    if (!finite) fail(origin, ": tensor '", name, "' holds a non-finite value");
    want.erase(it);
  }
  if (!want.empty()) fail(origin, ": missing tensor '", want.begin()->first, "' (and ", want.size() - 1, " more)");

  const uint32_t C = r.get<uint32_t>();
  if (int(C) != m->entropy_bottleneck().channels()) fail(origin, ": entropy tables for ", C, " channels");
  std::vector<float> medians(C);
  for (auto& v : medians) v = r.get<float>();
  std::vector<codec::CdfTable> eb_tables;
  for (uint32_t c = 0; c < C; ++c) eb_tables.push_back(read_table(r, origin));
  m->entropy_bottleneck().set_tables(std::move(medians), std::move(eb_tables));
  const uint32_t ng = r.get<uint32_t>();
  if (m->hyperprior() != (ng > 0)) fail(origin, ": Gaussian tables do not fit the model's prior");
  if (ng) {
    if (ng != uint32_t(codec::kNumScales)) fail(origin, ": ", ng, " Gaussian tables (a hyperprior model has ", codec::kNumScales, ")");
    std::vector<codec::CdfTable> gt;
    for (uint32_t i = 0; i < ng; ++i) gt.push_back(read_table(r, origin));
    m->gaussian_conditional().set_tables(std::move(gt));
  }
  if (!r.done()) fail(origin, ": trailing bytes in model file");
  return m;
}

void save_model(const std::string& path, const Model& m, WeightFormat fmt) {
  write_file_atomic(path, serialize_model(m, fmt));
}

std::unique_ptr<Model> load_model(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  return deserialize_model(bytes.data(), bytes.size(), path);
}

}  // namespace ntc::nn
