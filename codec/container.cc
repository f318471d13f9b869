#include "codec/container.h"

#include <array>
#include <cstring>

#include "lib/common.h"

namespace ntc::codec {
namespace {

constexpr uint8_t kMagic[4] = {'N', 'T', 'C', 'B'};
constexpr size_t kFixedHeader = 24;  // magic, version, flags, section count, hash, height, width

void put_u16(std::vector<uint8_t>& o, uint16_t v) {
  for (int i = 0; i < 2; ++i) o.push_back(uint8_t(v >> (8 * i)));
}
void put_u32(std::vector<uint8_t>& o, uint32_t v) {
  for (int i = 0; i < 4; ++i) o.push_back(uint8_t(v >> (8 * i)));
}
void put_u64(std::vector<uint8_t>& o, uint64_t v) {
  for (int i = 0; i < 8; ++i) o.push_back(uint8_t(v >> (8 * i)));
}
uint64_t get_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

std::vector<uint8_t> write_container(const Container& c) {
  NTC_CHECK(c.height >= 1 && c.height <= kMaxImageSide && c.width >= 1 && c.width <= kMaxImageSide,
            "container: image size ", c.width, "x", c.height);
  NTC_CHECK(c.sections.size() <= size_t(kMaxSections), "container: ", c.sections.size(), " sections");
  std::vector<uint8_t> o(kMagic, kMagic + 4);
  o.push_back(kBitstreamVersion);
  o.push_back(0);  // flags, reserved
  put_u16(o, uint16_t(c.sections.size()));
  put_u64(o, c.model_hash);
  put_u32(o, c.height);
  put_u32(o, c.width);
  for (const auto& s : c.sections) {
    NTC_CHECK(s.size() < (1ull << 32), "container: section too large");
    put_u32(o, uint32_t(s.size()));
  }
  for (const auto& s : c.sections) o.insert(o.end(), s.begin(), s.end());
  put_u32(o, crc32(o.data(), o.size()));
  return o;
}

Container read_container(const uint8_t* data, size_t size) {
  if (size < kFixedHeader + 4) fail("not an ntc stream: ", size, " bytes is shorter than the header");
  if (std::memcmp(data, kMagic, 4) != 0) fail("not an ntc stream (bad magic)");
  if (data[4] != kBitstreamVersion)
    fail("unsupported ntc stream version ", int(data[4]), " (this build reads version ", int(kBitstreamVersion), ")");
  if (data[5] != 0) fail("corrupt ntc stream: reserved flags set");
  const uint32_t stored_crc = uint32_t(get_le(data + size - 4, 4));
  if (crc32(data, size - 4) != stored_crc) fail("corrupt ntc stream: checksum mismatch");
  const size_t nsec = size_t(get_le(data + 6, 2));
  if (nsec > size_t(kMaxSections)) fail("corrupt ntc stream: ", nsec, " sections");
  Container c;
  c.model_hash = get_le(data + 8, 8);
  c.height = uint32_t(get_le(data + 16, 4));
  c.width = uint32_t(get_le(data + 20, 4));
  if (c.height < 1 || c.height > kMaxImageSide || c.width < 1 || c.width > kMaxImageSide)
    fail("corrupt ntc stream: image size ", c.width, "x", c.height);
  const size_t lengths_end = kFixedHeader + 4 * nsec;
  if (lengths_end + 4 > size) fail("corrupt ntc stream: truncated section table");
  uint64_t total = 0;
  std::vector<uint64_t> len(nsec);
  for (size_t i = 0; i < nsec; ++i) total += len[i] = get_le(data + kFixedHeader + 4 * i, 4);
  if (lengths_end + total + 4 != size)
    fail("corrupt ntc stream: sections hold ", total, " bytes but the file has ", size - lengths_end - 4);
  size_t pos = lengths_end;
  for (size_t i = 0; i < nsec; ++i) {
    c.sections.emplace_back(data + pos, data + pos + len[i]);
    pos += size_t(len[i]);
  }
  return c;
}

}  // namespace ntc::codec
