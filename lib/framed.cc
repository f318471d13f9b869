#include "lib/framed.h"

#include <zlib.h>

#include <cstring>

#include "lib/common.h"

namespace ntc {

// zlib's CRC-32 (the same ISO-HDLC polynomial and conventions as the bitwise definition the tests
// check against): several GB/s, where a byte-table loop took 14% of decoding a Kodak image, most of
// it on the 7.6 MB model file.
uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc) {
  return uint32_t(::crc32_z(crc, size ? data : Z_NULL, size));
}

BinWriter open_frame_writer(const FrameFormat& f) {
  BinWriter w;
  w.raw(f.magic, 4);
  return w;
}

std::vector<uint8_t> close_frame(BinWriter&& w) {
  NTC_CHECK(w.out.size() >= 4, "close_frame: no magic");
  w.put<uint32_t>(crc32(w.out.data(), w.out.size()));
  return std::move(w.out);
}

BinReader open_frame(const uint8_t* data, size_t size, const FrameFormat& f, const std::string& origin) {
  if (size < 8 || std::memcmp(data, f.magic, 4) != 0) fail(origin, ": not an ", f.noun);
  uint32_t stored;
  std::memcpy(&stored, data + size - 4, 4);
  if (crc32(data, size - 4) != stored) fail(origin, ": corrupt ", f.noun, " (checksum mismatch)");
  return BinReader(data + 4, size - 8, origin);
}

void reseal_frame(std::vector<uint8_t>& file) {
  NTC_CHECK(file.size() >= 8, "reseal_frame: ", file.size(), " bytes");
  const uint32_t crc = crc32(file.data(), file.size() - 4);
  std::memcpy(file.data() + file.size() - 4, &crc, 4);
}

}  // namespace ntc
