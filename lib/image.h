// image — reading and writing 8-bit images: PNG/JPEG read by stb_image (PNG data pre-checked with
// zlib), PPM/PGM by ntc; PNG written with zlib, PPM directly; writes are atomic.
//
// Images are returned as float tensors [1, 3, H, W] with values 0..255 (NCHW). Grayscale input
// is replicated to three channels; an alpha channel is dropped (ntc codes RGB only).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lib/tensor.h"

namespace ntc {

Tensor read_image(const std::string& path);  // throws ntc::Error with the path on failure
// The same from bytes in memory (`origin` names them in errors). max_pixels > 0 refuses a larger
// image from its header, before the decoder allocates anything (tests/fuzz/fuzz_image.cc).
Tensor read_image(const uint8_t* data, size_t size, const std::string& origin, int64_t max_pixels = 0);
// Writes x [1,3,H,W] (clamped to 0..255 and rounded) as PNG (or PPM by extension), atomically.
// PNG output is limited to (3W + 1)·H < 2³¹ bytes (stb_image_write's int sizes): about 715
// megapixels; larger is an error that says so (PPM has no limit). Inputs are read by stb_image,
// which refuses images over 2³¹ bytes of RGB.
void write_image(const std::string& path, const Tensor& x);
// The bytes write_image() would write: PNG, or binary PPM when `ppm` (for stdout).
std::vector<uint8_t> image_file_bytes(const Tensor& x, bool ppm, const std::string& origin = "image");
bool png_writable(int64_t w, int64_t h);

}  // namespace ntc
