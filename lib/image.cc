#include "lib/image.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "lib/common.h"
#include "lib/fileio.h"

namespace ntc {

Tensor read_image(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  return read_image(bytes.data(), bytes.size(), path);
}

Tensor read_image(const uint8_t* data, size_t size, const std::string& origin, int64_t max_pixels) {
  if (size > size_t(INT32_MAX)) fail("cannot read image ", origin, ": larger than 2 GiB");
  int w = 0, h = 0, c = 0;
  if (!stbi_info_from_memory(data, int(size), &w, &h, &c))
    fail("cannot read image ", origin, ": ", stbi_failure_reason());
  if (max_pixels > 0 && int64_t(w) * h > max_pixels)
    fail("cannot read image ", origin, ": ", w, "x", h, " is more than the limit of ", max_pixels, " pixels");
  if (w < 1 || h < 1) fail("cannot read image ", origin, ": its size is ", w, "x", h);
  const int info_w = w, info_h = h;
  unsigned char* px = stbi_load_from_memory(data, int(size), &w, &h, &c, 3);
  if (!px) fail("cannot read image ", origin, ": ", stbi_failure_reason());
  if (w != info_w || h != info_h) {  // the header read twice must agree (the limit was checked on the first)
    stbi_image_free(px);
    fail("cannot read image ", origin, ": inconsistent header");
  }
  Tensor t;
  try {
    t = Tensor::empty({1, 3, h, w});
  } catch (...) {
    stbi_image_free(px);
    throw;
  }
  const size_t plane = size_t(w) * size_t(h);
  for (size_t i = 0; i < plane; ++i)
    for (int ch = 0; ch < 3; ++ch) t.data()[size_t(ch) * plane + i] = px[i * 3 + size_t(ch)];
  stbi_image_free(px);
  return t;
}

// stb_image_write sizes its filter buffer as (3W + 1)·H in an int: what would overflow it is refused.
bool png_writable(int64_t w, int64_t h) { return w >= 1 && h >= 1 && (3 * w + 1) * h <= int64_t(INT32_MAX); }

void write_image(const std::string& path, const Tensor& x) {
  NTC_CHECK(x.ndim() == 4 && x.dim(0) == 1 && x.dim(1) == 3, "write_image: ", shape_str(x.shape()));
  const int h = int(x.dim(2)), w = int(x.dim(3));
  const size_t plane = size_t(w) * size_t(h);
  std::vector<unsigned char> px(plane * 3);
  for (size_t i = 0; i < plane; ++i)
    for (size_t ch = 0; ch < 3; ++ch) {
      float v = std::nearbyint(x.data()[ch * plane + i]);
      px[i * 3 + ch] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  std::vector<unsigned char> out;
  const bool ppm = path.size() >= 4 && path.compare(path.size() - 4, 4, ".ppm") == 0;
  if (ppm) {
    std::string hdr = "P6\n" + std::to_string(w) + " " + std::to_string(h) + "\n255\n";
    out.assign(hdr.begin(), hdr.end());
    out.insert(out.end(), px.begin(), px.end());
  } else {
    auto sink = [](void* ctx, void* data, int size) {
      auto* v = static_cast<std::vector<unsigned char>*>(ctx);
      v->insert(v->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + size);
    };
    if (!png_writable(w, h))
      fail("cannot write ", path, ": ", w, "x", h, " is too large for PNG output (at most (3W+1)·H < 2^31 bytes); "
           "write a .ppm instead");
    if (!stbi_write_png_to_func(sink, &out, w, h, 3, px.data(), w * 3)) fail("PNG encoding failed for ", path);
  }
  write_file_atomic(path, out);
}

}  // namespace ntc
