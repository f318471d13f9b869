// image — reading and writing 8-bit images (stb_image / stb_image_write); writes are atomic.
//
// Images are returned as float tensors [1, 3, H, W] with values 0..255 (NCHW). Grayscale input
// is replicated to three channels; an alpha channel is dropped (ntc codes RGB only).
#pragma once
#include <string>
#include <vector>

#include "lib/tensor.h"

namespace ntc {

Tensor read_image(const std::string& path);  // throws ntc::Error with the path on failure
// Writes x [1,3,H,W] (clamped to 0..255 and rounded) as PNG (or PPM by extension), atomically.
void write_image(const std::string& path, const Tensor& x);

}  // namespace ntc
