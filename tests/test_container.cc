// The .ntc container: round trip, and every truncation, bit flip or forged length is an
// ntc::Error (never a crash or an over-read; this file also runs under `make asan`).
#include <gtest/gtest.h>

#include "codec/container.h"
#include "lib/common.h"
#include "lib/framed.h"
#include "lib/rng.h"

namespace ntc::codec {
namespace {

Container sample() {
  Container c;
  c.model_hash = 0x0123456789ABCDEFull;
  c.height = 512;
  c.width = 768;
  c.sections = {{1, 2, 3}, {}, std::vector<uint8_t>(1000, 7)};
  return c;
}

TEST(Container, RoundTrip) {
  auto bytes = write_container(sample());
  EXPECT_EQ(bytes.size(), 24 + 4 * 3 + 1003 + 4u);
  Container d = read_container(bytes.data(), bytes.size());
  EXPECT_EQ(d.model_hash, sample().model_hash);
  EXPECT_EQ(d.height, 512u);
  EXPECT_EQ(d.width, 768u);
  EXPECT_EQ(d.sections, sample().sections);
  EXPECT_EQ(d.flags, 0);
  Container f = sample();  // the one flag there is (codec/BITSTREAM.md): byte 5
  f.flags = kFlagWinogradHyperSynthesis;
  bytes = write_container(f);
  EXPECT_EQ(bytes[5], kFlagWinogradHyperSynthesis);
  EXPECT_EQ(read_container(bytes.data(), bytes.size()).flags, kFlagWinogradHyperSynthesis);
  f.flags = 2;  // not one the writer knows
  EXPECT_THROW(write_container(f), Error);
}

TEST(Container, Crc32KnownValue) {
  const char* s = "123456789";  // the standard check value of CRC-32/ISO-HDLC
  EXPECT_EQ(crc32(reinterpret_cast<const uint8_t*>(s), 9), 0xCBF43926u);
  // Against the bitwise definition (reflected polynomial 0xEDB88320, inverted in and out) on
  // lengths around zlib's word and braid sizes, whole and in two chained pieces.
  auto bitwise = [](const uint8_t* d, size_t n) {
    uint32_t c = ~0u;
    for (size_t i = 0; i < n; ++i) {
      c ^= d[i];
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
  };
  Rng rng(9);
  std::vector<uint8_t> v(5000);
  for (auto& b : v) b = uint8_t(rng.uniform() * 256);
  // (and around the carry-less path's sizes: 64 bytes and more, folded 64 and 16 at a time, the
  // rest by zlib; at every alignment of the start)
  for (size_t n : {0, 1, 7, 8, 31, 32, 33, 63, 64, 65, 79, 80, 127, 128, 129, 143, 144, 191, 255, 1000, 4999, 5000}) {
    EXPECT_EQ(crc32(v.data(), n), bitwise(v.data(), n)) << n;
    EXPECT_EQ(crc32(v.data() + n / 3, n - n / 3, crc32(v.data(), n / 3)), bitwise(v.data(), n)) << n;
    for (size_t off = 1; off < 16 && n + off <= v.size(); off += 5)
      EXPECT_EQ(crc32(v.data() + off, n), bitwise(v.data() + off, n)) << n << " at +" << off;
  }
  std::vector<uint8_t> zeros(300, 0), ones(300, 0xff);  // the stream of all zeros and all ones
  EXPECT_EQ(crc32(zeros.data(), 300), bitwise(zeros.data(), 300));
  EXPECT_EQ(crc32(ones.data(), 300), bitwise(ones.data(), 300));
  EXPECT_EQ(crc32(nullptr, 0), 0u);
  EXPECT_EQ(crc32(v.data(), 0, 0x1234abcdu), 0x1234abcdu);  // no bytes: the running value goes on
}

TEST(Container, EveryTruncationIsAnError) {
  auto bytes = write_container(sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> t(bytes.begin(), bytes.begin() + long(n));  // exact-size copy: ASan sees over-reads
    EXPECT_THROW(read_container(t.data(), t.size()), Error) << "length " << n;
  }
}

TEST(Container, EveryBitFlipIsAnError) {
  auto bytes = write_container(sample());
  for (size_t i = 0; i < bytes.size(); ++i)
    for (int b = 0; b < 8; ++b) {
      auto t = bytes;
      t[i] ^= uint8_t(1 << b);
      EXPECT_THROW(read_container(t.data(), t.size()), Error) << "byte " << i << " bit " << b;
    }
}

// Forged headers with a valid CRC: lengths, sizes, counts and versions are still checked.
TEST(Container, ForgedFieldsWithValidCrcAreErrors) {
  auto forge = [](std::vector<uint8_t> t, size_t at, uint8_t v) {
    t[at] = v;
    uint32_t crc = crc32(t.data(), t.size() - 4);
    for (int i = 0; i < 4; ++i) t[t.size() - 4 + size_t(i)] = uint8_t(crc >> (8 * i));
    return t;
  };
  auto bytes = write_container(sample());
  for (auto [at, v] : std::vector<std::pair<size_t, uint8_t>>{
           {4, 2}, {5, 2}, {5, 0x81}, {6, 17}, {6, 2}, {16, 0}, {17, 0}, {19, 1}, {24, 4}, {28, 1}, {35, 0xFF}}) {
    auto t = forge(bytes, at, v);
    if (at == 16 || at == 17) t = forge(forge(bytes, 16, 0), 17, 0);  // height 0
    EXPECT_THROW(read_container(t.data(), t.size()), Error) << "byte " << at << " = " << int(v);
  }
}

TEST(Container, RandomGarbageIsAnError) {
  Rng rng(3);
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> t(size_t(rng.next_u64() % 200));
    for (auto& b : t) b = uint8_t(rng.next_u64());
    if (t.size() >= 4 && i % 2) t[0] = 'N', t[1] = 'T', t[2] = 'C', t[3] = 'B';
    EXPECT_THROW(read_container(t.data(), t.size()), Error);
  }
}

}  // namespace
}  // namespace ntc::codec

namespace ntc {
namespace {

// The framing all three file formats share (lib/framed.h): magic, size and CRC are checked in
// one place, and each format refuses the others' files by their magic.
TEST(Framed, RoundTripAndEveryFramingCheck) {
  BinWriter w = open_frame_writer(kModelFrame);
  w.put<uint32_t>(0xDEADBEEF);
  w.str("body");
  const std::vector<uint8_t> file = close_frame(std::move(w));
  ASSERT_EQ(file.size(), 4 + 4 + 4 + 4 + 4u);
  BinReader r = open_frame(file.data(), file.size(), kModelFrame, "m.ntcm");
  EXPECT_EQ(r.get<uint32_t>(), 0xDEADBEEFu);
  EXPECT_EQ(r.str(), "body");
  EXPECT_TRUE(r.done());
  auto message = [&](const std::vector<uint8_t>& f, const FrameFormat& fmt) -> std::string {
    try {
      open_frame(f.data(), f.size(), fmt, "m.ntcm");
    } catch (const Error& e) {
      return e.what();
    }
    return "accepted";
  };
  EXPECT_EQ(message(file, kStreamFrame), "m.ntcm: not an ntc stream");
  EXPECT_EQ(message(file, kCheckpointFrame), "m.ntcm: not an ntc checkpoint");
  for (size_t n = 0; n < 8; ++n)
    EXPECT_EQ(message(std::vector<uint8_t>(file.begin(), file.begin() + long(n)), kModelFrame), "m.ntcm: not an ntc model file");
  auto flipped = file;
  flipped[9] ^= 1;
  EXPECT_EQ(message(flipped, kModelFrame), "m.ntcm: corrupt ntc model file (checksum mismatch)");
  reseal_frame(flipped);
  EXPECT_EQ(message(flipped, kModelFrame), "accepted");
  // The reader stops at the body's end: the CRC is not readable as data.
  BinReader r2 = open_frame(file.data(), file.size(), kModelFrame, "m.ntcm");
  r2.take(12);
  EXPECT_THROW(r2.get<uint8_t>(), Error);
}

TEST(Framed, ContainerErrorsNameTheirOrigin) {
  codec::Container c;
  c.height = c.width = 1;
  auto bytes = codec::write_container(c);
  bytes[4] = 9;
  reseal_frame(bytes);
  try {
    codec::read_container(bytes.data(), bytes.size(), "x.ntc");
    ADD_FAILURE() << "accepted version 9";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("x.ntc: unsupported ntc stream version 9", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace ntc
