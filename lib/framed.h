// framed — the one framing shared by ntc's three file formats: .ntc streams (codec/BITSTREAM.md),
// .ntcm model files and .ntck checkpoints (data/MODELS.md). A framed file is
//
//   4-byte magic | body | CRC-32 (IEEE 802.3, little-endian) of every byte before it
//
// open_frame() is the only place where the magic, the minimum size and the checksum are checked;
// each format then reads its body (version first) with the bounds-checked BinReader it returns, so
// no reader can run past the body, and every check exists, and is fuzzed (tests/fuzz/), once.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lib/binio.h"

namespace ntc {

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0);

struct FrameFormat {
  char magic[4];
  const char* noun;  // for messages: "ntc stream", "ntc model file", "ntc checkpoint"
};
inline constexpr FrameFormat kStreamFrame{{'N', 'T', 'C', 'B'}, "ntc stream"};
inline constexpr FrameFormat kModelFrame{{'N', 'T', 'C', 'M'}, "ntc model file"};
inline constexpr FrameFormat kCheckpointFrame{{'N', 'T', 'C', 'K'}, "ntc checkpoint"};

// A writer that already holds the magic; close_frame() appends the CRC and returns the file.
BinWriter open_frame_writer(const FrameFormat& f);
std::vector<uint8_t> close_frame(BinWriter&& w);

// Checks size, magic and CRC (an ntc::Error naming `origin` otherwise) and returns a reader over
// the body. `data` must outlive the reader.
BinReader open_frame(const uint8_t* data, size_t size, const FrameFormat& f, const std::string& origin);

// Recomputes the CRC of a framed file in place (for tests and fuzzers that mutate bodies).
void reseal_frame(std::vector<uint8_t>& file);

}  // namespace ntc
