// Writes the image seeds of fuzz_image (run by tests/fuzz/make_seeds.sh, not part of any build):
// a W×H crop of an image as RGB/gray/RGBA PNG, baseline JPEG (two qualities, and gray), PPM and
// PGM, with stb_image_write, and the crop as a PPM for the stream seeds.
//   usage: image_seeds IN.png X Y W H OUTDIR
#include <stb_image.h>
#include <stb_image_write.h>

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 7) return std::fprintf(stderr, "usage: image_seeds IN.png X Y W H OUTDIR\n"), 2;
  int iw, ih, ic;
  unsigned char* px = stbi_load(argv[1], &iw, &ih, &ic, 3);
  if (!px) return std::fprintf(stderr, "cannot read %s\n", argv[1]), 1;
  const int x0 = std::atoi(argv[2]), y0 = std::atoi(argv[3]), w = std::atoi(argv[4]), h = std::atoi(argv[5]);
  if (x0 < 0 || y0 < 0 || w < 1 || h < 1 || x0 + w > iw || y0 + h > ih) return std::fprintf(stderr, "bad crop\n"), 1;
  const std::string out = argv[6];
  std::vector<unsigned char> rgb(size_t(w) * h * 3), gray(size_t(w) * h), rgba(size_t(w) * h * 4);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const unsigned char* p = px + (size_t(y0 + y) * iw + size_t(x0 + x)) * 3;
      const size_t i = size_t(y) * w + size_t(x);
      for (int c = 0; c < 3; ++c) rgb[i * 3 + c] = rgba[i * 4 + c] = p[c];
      rgba[i * 4 + 3] = (unsigned char)(x * 255 / w);
      gray[i] = (unsigned char)((p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8);
    }
  bool ok = stbi_write_png((out + "/rgb.png").c_str(), w, h, 3, rgb.data(), w * 3) &&
            stbi_write_png((out + "/gray.png").c_str(), w, h, 1, gray.data(), w) &&
            stbi_write_png((out + "/rgba.png").c_str(), w, h, 4, rgba.data(), w * 4) &&
            stbi_write_jpg((out + "/q90.jpg").c_str(), w, h, 3, rgb.data(), 90) &&
            stbi_write_jpg((out + "/q30.jpg").c_str(), w, h, 3, rgb.data(), 30) &&
            stbi_write_jpg((out + "/gray.jpg").c_str(), w, h, 1, gray.data(), 75);
  struct Pnm {
    const char* name;
    const unsigned char* data;
    int chans;
    const char* magic;
  };
  for (const Pnm& p : {Pnm{"/rgb.ppm", rgb.data(), 3, "P6"}, Pnm{"/gray.pgm", gray.data(), 1, "P5"}}) {
    const auto& [name, data, chans, magic] = p;
    FILE* f = std::fopen((out + name).c_str(), "wb");
    ok = ok && f && std::fprintf(f, "%s\n%d %d\n255\n", magic, w, h) > 0 &&
         std::fwrite(data, 1, size_t(w) * h * chans, f) == size_t(w) * h * chans && std::fclose(f) == 0;
  }
  stbi_image_free(px);
  return ok ? 0 : (std::fprintf(stderr, "write failed\n"), 1);
}
