// binio — little-endian binary writing and bounds-checked reading for ntc's file formats
// (model files, checkpoints). The Reader never reads past its end: any shortfall is an
// ntc::Error naming the file ("truncated").
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "lib/common.h"

namespace ntc {

// FNV-1a 64 over n bytes, continuing from h: a model's identity in streams (nn/model_file.h), the
// fingerprints that ranks of a data-parallel run compare (train/trainer.cc, train/data.h).
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
inline uint64_t fnv1a(const void* p, size_t n, uint64_t h = kFnvOffset) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

class BinWriter {
 public:
  std::vector<uint8_t> out;
  void raw(const void* p, size_t n) {  // little-endian host (x86-64)
    const size_t at = out.size();
    out.resize(at + n);
    if (n) std::memcpy(out.data() + at, p, n);
  }
  template <class T>
  void put(T v) {
    raw(&v, sizeof(T));
  }
  void str(const std::string& s) {  // u32 length + bytes
    put<uint32_t>(uint32_t(s.size()));
    raw(s.data(), s.size());
  }
};

class BinReader {
 public:
  BinReader(const uint8_t* p, size_t n, std::string origin) : p_(p), end_(p + n), origin_(std::move(origin)) {}
  void need(size_t n) const {
    if (size_t(end_ - p_) < n) fail(origin_, ": truncated file");
  }
  template <class T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  std::string str(size_t n) {
    need(n);
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  std::string str() { return str(get<uint32_t>()); }  // u32 length + bytes
  const uint8_t* take(size_t n) {
    need(n);
    const uint8_t* r = p_;
    p_ += n;
    return r;
  }
  bool done() const { return p_ == end_; }
  size_t remaining() const { return size_t(end_ - p_); }
  const std::string& origin() const { return origin_; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  std::string origin_;
};

}  // namespace ntc
