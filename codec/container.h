// container — the .ntc file: a fixed header, length-prefixed sections and a CRC-32.
// The byte layout is specified in codec/BITSTREAM.md; this file is its only reader and writer, on
// the framing (magic, CRC-32) that .ntc shares with model files and checkpoints (lib/framed.h).
// read_container() distrusts its input: every field is range-checked and every length validated
// against the actual size before anything is allocated or read; any mismatch is an ntc::Error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ntc::codec {

constexpr uint8_t kBitstreamVersion = 1;
constexpr uint32_t kMaxImageSide = 1u << 16;
constexpr int kMaxSections = 16;

// Flags (codec/BITSTREAM.md): bit 0, the hyper-synthesis' stride-1 3×3 transposed convolutions
// ran Winograd F(2×2,3×3) in its portable form (lib/gemm.h, PortableWinograd). Other bits are
// refused.
constexpr uint8_t kFlagWinogradHyperSynthesis = 1;
constexpr uint8_t kKnownFlags = kFlagWinogradHyperSynthesis;

struct Container {
  uint8_t flags = 0;
  uint64_t model_hash = 0;  // identifies the model the stream was made with (data/MODELS.md)
  uint32_t height = 0, width = 0;
  std::vector<std::vector<uint8_t>> sections;  // e.g. [z stream, y stream]
};

std::vector<uint8_t> write_container(const Container& c);
// `origin` (a path, or "stream") begins every error message.
Container read_container(const uint8_t* data, size_t size, const std::string& origin = "stream");
// The model hash field of what looks like a stream's header (magic and size only; no checks):
// for choosing which of a model's identities to expect. 0 when there is no such header.
uint64_t peek_model_hash(const uint8_t* data, size_t size);

}  // namespace ntc::codec
