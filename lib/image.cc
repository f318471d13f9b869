#include "lib/image.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
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

namespace {

// Binary PPM (P6) and PGM (P5) with maxval 1..255, parsed here rather than by stb_image, whose PNM
// reader crashed under fuzzing on a short 16-bit file (tests/fuzz/regressions/image/). Comments
// (# to the end of a line) may stand wherever whitespace may; one whitespace byte ends the header.
Tensor read_pnm(const uint8_t* data, size_t size, const std::string& origin, int64_t max_pixels) {
  auto bad = [&](const std::string& why) { fail("cannot read image ", origin, ": ", why); };
  const int channels = data[1] == '6' ? 3 : 1;
  size_t pos = 2;
  auto number = [&](const char* what) {
    for (;;) {  // whitespace and comments
      if (pos >= size) bad("truncated PNM header");
      if (data[pos] == '#') {
        while (pos < size && data[pos] != '\n' && data[pos] != '\r') ++pos;
      } else if (data[pos] == ' ' || data[pos] == '\t' || data[pos] == '\n' || data[pos] == '\r' ||
                 data[pos] == '\v' || data[pos] == '\f') {
        ++pos;
      } else {
        break;
      }
    }
    int64_t v = 0;
    size_t digits = 0;
    while (pos < size && data[pos] >= '0' && data[pos] <= '9') {
      v = v * 10 + (data[pos++] - '0');
      if (++digits > 9) bad(std::string("PNM ") + what + " too large");
    }
    if (digits == 0) bad(std::string("bad PNM ") + what);
    return v;
  };
  const int64_t w = number("width"), h = number("height"), maxval = number("maxval");
  if (w < 1 || h < 1 || w > 65536 || h > 65536) bad("PNM size " + std::to_string(w) + "x" + std::to_string(h));
  if (maxval < 1 || maxval > 255) bad("PNM maxval " + std::to_string(maxval) + " (ntc reads 8-bit PPM/PGM)");
  if (max_pixels > 0 && w * h > max_pixels)
    bad(std::to_string(w) + "x" + std::to_string(h) + " is more than the limit of " + std::to_string(max_pixels) + " pixels");
  if (pos >= size) bad("truncated PNM header");
  ++pos;  // the single whitespace byte before the samples
  const size_t plane = size_t(w) * size_t(h);
  if (size - pos < plane * size_t(channels)) bad("truncated PNM data");
  Tensor t = Tensor::empty({1, 3, h, w});
  const uint8_t* px = data + pos;
  for (size_t i = 0; i < plane; ++i)
    for (size_t ch = 0; ch < 3; ++ch) {
      const int v = px[i * size_t(channels) + (channels == 3 ? ch : 0)];
      t.data()[ch * plane + i] = float(maxval == 255 ? v : (std::min<int64_t>(v, maxval) * 255 + maxval / 2) / maxval);
    }
  return t;
}

}  // namespace

// Formats are sniffed from their magic: PNG and JPEG go to stb_image, binary PPM/PGM to read_pnm.
// Everything else stb_image could read (BMP, TGA, GIF, PSD, HDR, PIC) is refused: ntc documents
// PNG, JPEG and PPM, and fewer parsers mean fewer ways in.
Tensor read_image(const uint8_t* data, size_t size, const std::string& origin, int64_t max_pixels) {
  if (size > size_t(INT32_MAX)) fail("cannot read image ", origin, ": larger than 2 GiB");
  const bool png = size >= 8 && std::memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0;
  const bool jpeg = size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
  const bool pnm = size >= 2 && data[0] == 'P' && (data[1] == '5' || data[1] == '6');
  if (pnm) return read_pnm(data, size, origin, max_pixels);
  if (!png && !jpeg) fail("cannot read image ", origin, ": not a PNG, JPEG or binary PPM/PGM file");
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

std::vector<uint8_t> image_file_bytes(const Tensor& x, bool ppm, const std::string& origin) {
  NTC_CHECK(x.ndim() == 4 && x.dim(0) == 1 && x.dim(1) == 3, "write_image: ", shape_str(x.shape()));
  const int64_t h = x.dim(2), w = x.dim(3);
  if (!ppm && !png_writable(w, h))
    fail("cannot write ", origin, ": ", w, "x", h, " is too large for PNG output (at most (3W+1)·H < 2^31 bytes); "
         "write a .ppm instead");
  const size_t plane = size_t(w) * size_t(h);
  std::vector<unsigned char> out;
  std::vector<unsigned char> px;
  size_t at = 0;
  if (ppm) {  // the header, then the samples written in place
    const std::string hdr = "P6\n" + std::to_string(w) + " " + std::to_string(h) + "\n255\n";
    out.resize(hdr.size() + plane * 3);
    std::copy(hdr.begin(), hdr.end(), out.begin());
    at = hdr.size();
  } else {
    px.resize(plane * 3);
  }
  unsigned char* dst = ppm ? out.data() + at : px.data();
  for (size_t i = 0; i < plane; ++i)
    for (size_t ch = 0; ch < 3; ++ch) {
      const float v = std::nearbyint(x.data()[ch * plane + i]);
      dst[i * 3 + ch] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  if (!ppm) {
    auto sink = [](void* ctx, void* data, int size) {
      auto* v = static_cast<std::vector<unsigned char>*>(ctx);
      v->insert(v->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + size);
    };
    if (!stbi_write_png_to_func(sink, &out, int(w), int(h), 3, px.data(), int(w) * 3)) fail("PNG encoding failed for ", origin);
  }
  return out;
}

void write_image(const std::string& path, const Tensor& x) {
  const bool ppm = path.size() >= 4 && path.compare(path.size() - 4, 4, ".ppm") == 0;
  write_file_atomic(path, image_file_bytes(x, ppm, path));
}

}  // namespace ntc
