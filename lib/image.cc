#include "lib/image.h"

#include <stb_image.h>
#include <zlib.h>

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

// stb_image's inflater (2022) reads zeros past the end of a truncated zlib stream and can grow its
// output without bound (fuzzing found 2 GB from a 500-byte PNG: tests/fuzz/regressions/image/). So
// a PNG's image data is inflated first with zlib, streaming, and the file is refused unless the
// data ends properly with no more bytes than its header implies. Memory: a 64 KiB window.
void check_png_data(const uint8_t* d, size_t n, const std::string& origin) {
  auto bad = [&](const char* why) { fail("cannot read image ", origin, ": ", why); };
  auto be32 = [](const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; };
  uint64_t w = 0, h = 0, bpp = 0;  // bits per pixel
  bool interlaced = false, have_header = false;
  std::vector<std::pair<const uint8_t*, size_t>> idat;
  for (size_t at = 8; at + 12 <= n;) {
    const size_t len = be32(d + at);
    if (len > n - at - 12) bad("truncated PNG chunk");
    const uint8_t* type = d + at + 4;
    const uint8_t* data = d + at + 8;
    if (std::memcmp(type, "IHDR", 4) == 0 && len >= 13) {
      w = be32(data);
      h = be32(data + 4);
      const int depth = data[8], color = data[9];
      const int ch = color == 0 ? 1 : color == 2 ? 3 : color == 3 ? 1 : color == 4 ? 2 : color == 6 ? 4 : 0;
      if (!ch || !(depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16)) bad("bad PNG header");
      bpp = uint64_t(ch) * uint64_t(depth);
      interlaced = data[12] != 0;
      have_header = true;
    } else if (std::memcmp(type, "IDAT", 4) == 0) {
      idat.emplace_back(data, len);
    } else if (std::memcmp(type, "IEND", 4) == 0) {
      break;
    }
    at += 12 + len;
  }
  if (!have_header || w == 0 || h == 0 || idat.empty()) bad("PNG without a header or image data");
  auto row_bytes = [&](uint64_t cols) { return cols ? 1 + (cols * bpp + 7) / 8 : 0; };
  uint64_t expected = 0;
  if (!interlaced) {
    expected = h * row_bytes(w);
  } else {  // Adam7: pass p covers columns x0 + k·dx and rows y0 + k·dy
    const int x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1}, dx[7] = {8, 8, 4, 4, 2, 2, 1},
              dy[7] = {8, 8, 8, 4, 4, 2, 2};
    for (int p = 0; p < 7; ++p) {
      const uint64_t cols = w > uint64_t(x0[p]) ? (w - x0[p] + dx[p] - 1) / dx[p] : 0;
      const uint64_t rows = h > uint64_t(y0[p]) ? (h - y0[p] + dy[p] - 1) / dy[p] : 0;
      expected += rows * row_bytes(cols);
    }
  }
  z_stream z{};
  if (inflateInit(&z) != Z_OK) fail("cannot read image ", origin, ": zlib failed to start");
  std::vector<uint8_t> window(1 << 16);
  uint64_t produced = 0;
  int rc = Z_OK;
  for (size_t i = 0; i < idat.size() && rc != Z_STREAM_END; ++i) {
    z.next_in = const_cast<Bytef*>(idat[i].first);
    z.avail_in = uInt(idat[i].second);
    while (z.avail_in > 0 && rc != Z_STREAM_END) {
      z.next_out = window.data();
      z.avail_out = uInt(window.size());
      rc = inflate(&z, Z_NO_FLUSH);
      produced += window.size() - z.avail_out;
      if ((rc != Z_OK && rc != Z_STREAM_END) || produced > expected) break;
    }
    if ((rc != Z_OK && rc != Z_STREAM_END) || produced > expected) break;
  }
  // A stream may need a last call with no new input to flush.
  while (rc == Z_OK && produced <= expected) {
    z.next_out = window.data();
    z.avail_out = uInt(window.size());
    rc = inflate(&z, Z_NO_FLUSH);
    produced += window.size() - z.avail_out;
    if (window.size() == z.avail_out) break;
  }
  inflateEnd(&z);
  if (produced > expected) bad("PNG image data larger than its header says");
  if (rc != Z_STREAM_END) bad("corrupt or truncated PNG image data");
}

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
  if (png) check_png_data(data, size, origin);
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

namespace {

// PNG writing with zlib (stb_image_write's own deflate took about 0.1 s per Kodak image): each
// row is filtered with the filter of smallest sum of absolute values among None, Sub, Up, Average
// and Paeth (libpng's heuristic), then deflated at level 1, streaming row by row. On a Kodak image
// (ntc decode, Zen 4, 2026-12-01) level 1 wrote 696 KB where level 3 wrote 690 KB (+0.9%), and the
// whole decode to PNG took 73 ms of CPU instead of 87; Z_RLE and Huffman-only were no faster here
// and 10% larger.
std::vector<uint8_t> png_encode(const uint8_t* rgb, int64_t w, int64_t h, const std::string& origin) {
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  auto put32 = [&](uint32_t v) {
    for (int i = 3; i >= 0; --i) out.push_back(uint8_t(v >> (8 * i)));
  };
  auto chunk = [&](const char* type, const uint8_t* data, size_t n) {
    put32(uint32_t(n));
    const size_t at = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), data, data + n);
    put32(uint32_t(::crc32(::crc32(0, nullptr, 0), out.data() + at, uInt(n + 4))));
  };
  uint8_t ihdr[13];
  for (int i = 0; i < 4; ++i) ihdr[i] = uint8_t(uint32_t(w) >> (24 - 8 * i)), ihdr[4 + i] = uint8_t(uint32_t(h) >> (24 - 8 * i));
  ihdr[8] = 8, ihdr[9] = 2, ihdr[10] = ihdr[11] = ihdr[12] = 0;  // 8-bit RGB, no interlace
  chunk("IHDR", ihdr, 13);
  z_stream z{};
  if (deflateInit(&z, 1) != Z_OK) fail("PNG encoding failed for ", origin);
  const size_t stride = size_t(w) * 3;
  std::vector<uint8_t> cand(5 * (stride + 1)), zero(stride, 0), idat;
  std::vector<uint8_t> buf(1 << 16);
  auto paeth = [](int a, int b, int c) {
    const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
  };
  for (int64_t y = 0; y < h; ++y) {
    const uint8_t* row = rgb + size_t(y) * stride;
    const uint8_t* up = y ? row - stride : zero.data();
    int best = 0;
    uint64_t best_sum = ~uint64_t(0);
    for (int f = 0; f < 5; ++f) {
      uint8_t* c = cand.data() + size_t(f) * (stride + 1);
      c[0] = uint8_t(f);
      uint64_t sum = 0;
      for (size_t i = 0; i < stride; ++i) {
        const int a = i >= 3 ? row[i - 3] : 0, b = up[i], cc = i >= 3 ? up[i - 3] : 0;
        const int pred = f == 0 ? 0 : f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) / 2 : paeth(a, b, cc);
        const uint8_t v = uint8_t(row[i] - pred);
        c[i + 1] = v;
        sum += v < 128 ? v : 256 - v;
      }
      if (sum < best_sum) best_sum = sum, best = f;
    }
    z.next_in = cand.data() + size_t(best) * (stride + 1);
    z.avail_in = uInt(stride + 1);
    const int flush = y + 1 == h ? Z_FINISH : Z_NO_FLUSH;
    int rc;
    do {
      z.next_out = buf.data();
      z.avail_out = uInt(buf.size());
      rc = deflate(&z, flush);
      idat.insert(idat.end(), buf.data(), buf.data() + (buf.size() - z.avail_out));
    } while (z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
  }
  deflateEnd(&z);
  for (size_t at = 0; at < idat.size(); at += size_t(1) << 30)  // chunks of at most 1 GiB
    chunk("IDAT", idat.data() + at, std::min(idat.size() - at, size_t(1) << 30));
  chunk("IEND", nullptr, 0);
  return out;
}

}  // namespace

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
  if (!ppm) out = png_encode(px.data(), w, h, origin);
  return out;
}

void write_image(const std::string& path, const Tensor& x) {
  const bool ppm = path.size() >= 4 && path.compare(path.size() - 4, 4, ".ppm") == 0;
  write_file_atomic(path, image_file_bytes(x, ppm, path));
}

}  // namespace ntc
