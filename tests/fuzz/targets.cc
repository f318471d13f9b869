#include "tests/fuzz/targets.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "codec/container.h"
#include "codec/entropy_bottleneck.h"
#include "codec/gaussian_conditional.h"
#include "codec/rans.h"
#include "lib/common.h"
#include "lib/fileio.h"
#include "lib/framed.h"
#include "lib/image.h"
#include "lib/json.h"
#include "lib/threads.h"
#include "nn/compress.h"
#include "nn/model_file.h"
#include "nn/overfit.h"
#include "train/trainer.h"

namespace ntc::fuzz {
namespace {

constexpr int64_t kMaxDecodePixels = 128 * 128;  // small images keep a decode at a few ms
constexpr int64_t kMaxImagePixels = 4 << 20;

struct Shipped {
  std::unique_ptr<nn::Model> model;
  uint64_t hash = 0;
};
const Shipped& shipped() {  // the default model, loaded once
  static const Shipped s = [] {
    const std::string file = repo_path("data/models/ntc_two_layer.ntcm");
    const std::vector<uint8_t> bytes = read_file(file);
    Shipped r;
    r.model = nn::deserialize_model(bytes.data(), bytes.size(), file);
    r.hash = nn::model_hash(bytes.data(), bytes.size());
    return r;
  }();
  return s;
}

void expect(bool ok, const char* what) {
  if (!ok) throw Finding(what);
}

// A copy with the framing's CRC recomputed, so that mutations reach the checks behind it.
std::vector<uint8_t> resealed(const uint8_t* data, size_t size) {
  std::vector<uint8_t> v(data, data + size);
  if (v.size() >= 8) reseal_frame(v);
  return v;
}

void container(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> v = resealed(data, size);
  const codec::Container c = codec::read_container(v.data(), v.size());
  expect(codec::write_container(c) == v, "container: an accepted stream does not write back the same");
}

// The whole decoder with the shipped model; the model hash field is set to the model's.
void decompress(const uint8_t* data, size_t size) {
  const Shipped& s = shipped();
  std::vector<uint8_t> v(data, data + size);
  if (v.size() >= 28) std::memcpy(v.data() + 8, &s.hash, 8);
  if (v.size() >= 8) reseal_frame(v);
  const Tensor x = nn::decompress(*s.model, v.data(), v.size(), s.hash, kMaxDecodePixels);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float p = x.data()[i];
    expect(p >= 0 && p <= 255 && p == std::nearbyint(p), "decompress: a pixel outside 0..255 integers");
  }
}

// Byte 0 picks the mode, byte 1 the tables the symbols use in turn (the shipped model's 64 Gaussian
// tables, then its factorized-prior tables). Even mode: the rest is a stream, decoded until an
// error, then finish(). Odd mode: the rest are values, encoded and decoded, which must give them back.
void rans(const uint8_t* data, size_t size) {
  if (size < 2) return;
  static const std::vector<const codec::CdfTable*> tables = [] {
    std::vector<const codec::CdfTable*> t;
    for (const auto& x : shipped().model->gaussian_conditional().tables()) t.push_back(&x);
    for (const auto& x : shipped().model->entropy_bottleneck().tables()) t.push_back(&x);
    return t;
  }();
  const size_t stride = size_t(data[1]) % 7 + 1;
  auto table = [&](size_t i) -> const codec::CdfTable& { return *tables[(i * stride + data[1]) % tables.size()]; };
  if (!(data[0] & 1)) {
    codec::RansDecoder dec(data + 2, data + size);
    for (size_t i = 0; i < (1u << 16); ++i) (void)dec.get(table(i));
    dec.finish();
    return;
  }
  std::vector<int32_t> vals;  // int16 pairs, spread so that escapes are common
  for (size_t i = 2; i + 1 < size; i += 2) {
    int16_t v;
    std::memcpy(&v, data + i, 2);
    vals.push_back(v % 64 == 0 ? int32_t(v) * 1024 : v % 40);
  }
  codec::RansEncoder enc;
  for (size_t i = 0; i < vals.size(); ++i) enc.put(vals[i], table(i));
  const std::vector<uint8_t> stream = enc.finish();
  codec::RansDecoder dec(stream.data(), stream.data() + stream.size());
  for (size_t i = 0; i < vals.size(); ++i) expect(dec.get(table(i)) == vals[i], "rans: a round trip changed a value");
  dec.finish();
}

// An overfitted stream (nn/overfit.h), resealed: decoded whole; an accepted stream must write back
// byte for byte (its symbols and weights have one coding) and give 0..255 integer pixels.
void overfit(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> v = resealed(data, size);
  const nn::overfit::Stream s = nn::overfit::read_stream(v.data(), v.size(), "fuzz.ntco", kMaxDecodePixels);
  expect(nn::overfit::write_stream(s) == v, "overfit: an accepted stream does not write back the same");
  const Tensor x = nn::overfit::synthesize(s.arch, s.net.dequantize(s.arch), s.latents);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float p = x.data()[i];
    expect(p >= 0 && p <= 255 && p == std::nearbyint(p), "overfit: a pixel outside 0..255 integers");
  }
}

void model(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> v = resealed(data, size);
  auto m = nn::deserialize_model(v.data(), v.size(), "fuzz.ntcm");
  (void)nn::serialize_model(*m, nn::WeightFormat::F32);
}

void checkpoint(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> v = resealed(data, size);
  (void)train::checkpoint_info(v, "fuzz.ntck");
}

void image(const uint8_t* data, size_t size) {
  const Tensor t = read_image(data, size, "fuzz image", kMaxImagePixels);
  expect(t.ndim() == 4 && t.dim(1) == 3 && t.dim(2) >= 1 && t.dim(3) >= 1 && t.dim(2) * t.dim(3) <= kMaxImagePixels,
         "image: a read image has an impossible shape");
}

void json(const uint8_t* data, size_t size) {
  (void)parse_json(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
}

struct Target {
  const char* name;
  void (*run)(const uint8_t*, size_t);
  bool needs_model;
};
constexpr Target kTargets[] = {{"container", container, false}, {"rans", rans, true},         {"decompress", decompress, true},
                               {"model", model, false},         {"checkpoint", checkpoint, false}, {"image", image, false},
                               {"json", json, false},           {"overfit", overfit, false}};

const Target& find(const std::string& name) {
  for (const Target& t : kTargets)
    if (name == t.name) return t;
  throw std::invalid_argument("no fuzz target '" + name + "'");
}

}  // namespace

const std::vector<std::string>& target_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const Target& t : kTargets) n.push_back(t.name);
    return n;
  }();
  return names;
}

std::string repo_path(const std::string& rel) {
  const char* root = std::getenv("NTC_ROOT");
  return (root && *root ? std::string(root) + "/" : std::string()) + rel;
}

void init_target(const std::string& name) {
  set_num_threads(1);
  if (find(name).needs_model) (void)shipped();
}

void run_target(const std::string& name, const uint8_t* data, size_t size, bool errors_are_findings) {
  const Target& t = find(name);
  try {
    t.run(data, size);
  } catch (const Error&) {
    if (errors_are_findings) throw;
    // else a clean one-line error: what hostile input should get
  }
}

}  // namespace ntc::fuzz
