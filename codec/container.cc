#include "codec/container.h"

#include <cstring>

#include "lib/common.h"
#include "lib/framed.h"

namespace ntc::codec {
namespace {
// Where the model identity sits in a stream: after the frame's magic (4 bytes), the version, the
// flags and the section count (codec/BITSTREAM.md). write_container checks it; peek_model_hash
// reads it without parsing the rest.
constexpr size_t kModelHashOffset = 8;
}  // namespace

std::vector<uint8_t> write_container(const Container& c) {
  NTC_CHECK(c.height >= 1 && c.height <= kMaxImageSide && c.width >= 1 && c.width <= kMaxImageSide,
            "container: image size ", c.width, "x", c.height);
  NTC_CHECK(c.sections.size() <= size_t(kMaxSections), "container: ", c.sections.size(), " sections");
  BinWriter w = open_frame_writer(kStreamFrame);
  w.put<uint8_t>(kBitstreamVersion);
  NTC_CHECK((c.flags & ~kKnownFlags) == 0, "container: unknown flags ", int(c.flags));
  w.put<uint8_t>(c.flags);
  w.put<uint16_t>(uint16_t(c.sections.size()));
  NTC_CHECK(w.out.size() == kModelHashOffset, "container: header layout");
  w.put<uint64_t>(c.model_hash);
  w.put<uint32_t>(c.height);
  w.put<uint32_t>(c.width);
  for (const auto& s : c.sections) {
    NTC_CHECK(s.size() < (1ull << 32), "container: section too large");
    w.put<uint32_t>(uint32_t(s.size()));
  }
  for (const auto& s : c.sections) w.raw(s.data(), s.size());
  return close_frame(std::move(w));
}

uint64_t peek_model_hash(const uint8_t* data, size_t size) {
  uint64_t h = 0;
  if (size >= kModelHashOffset + 8 && std::memcmp(data, kStreamFrame.magic, 4) == 0)
    std::memcpy(&h, data + kModelHashOffset, 8);
  return h;
}

Container read_container(const uint8_t* data, size_t size, const std::string& origin) {
  BinReader r = open_frame(data, size, kStreamFrame, origin);
  const uint8_t version = r.get<uint8_t>();
  if (version != kBitstreamVersion)
    fail(origin, ": unsupported ntc stream version ", int(version), " (this build reads version ", int(kBitstreamVersion), ")");
  const uint8_t flags = r.get<uint8_t>();
  if (flags & ~kKnownFlags) fail(origin, ": corrupt ntc stream: unknown flags ", int(flags), " (this build knows ", int(kKnownFlags), ")");
  const size_t nsec = r.get<uint16_t>();
  if (nsec > size_t(kMaxSections)) fail(origin, ": corrupt ntc stream: ", nsec, " sections");
  Container c;
  c.flags = flags;
  c.model_hash = r.get<uint64_t>();
  c.height = r.get<uint32_t>();
  c.width = r.get<uint32_t>();
  if (c.height < 1 || c.height > kMaxImageSide || c.width < 1 || c.width > kMaxImageSide)
    fail(origin, ": corrupt ntc stream: image size ", c.width, "x", c.height);
  uint64_t total = 0;
  std::vector<uint64_t> len(nsec);
  for (size_t i = 0; i < nsec; ++i) total += len[i] = r.get<uint32_t>();
  if (total != r.remaining())
    fail(origin, ": corrupt ntc stream: sections hold ", total, " bytes but the file has ", r.remaining());
  for (size_t i = 0; i < nsec; ++i) {
    const uint8_t* p = r.take(size_t(len[i]));
    c.sections.emplace_back(p, p + len[i]);
  }
  return c;
}

}  // namespace ntc::codec
