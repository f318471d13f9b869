// The library as users embed it: the C API (nn/ntc.h) called directly, `make install` into a
// temporary prefix with the out-of-tree example built by pkg-config alone, and the Python module
// (python/test_ntc.py, with Debian's python3 and numpy).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "lib/fileio.h"
#include "lib/framed.h"
#include "lib/image.h"
#include "nn/compress.h"
#include "nn/config.h"
#include "nn/model_file.h"
#include "nn/ntc.h"
#include "nn/overfit.h"
#include "train/overfit.h"

namespace ntc {
namespace {

namespace fs = std::filesystem;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

std::vector<uint8_t> test_rgb(int w, int h) {
  std::vector<uint8_t> px(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) px[(size_t(y) * w + x) * 3 + c] = uint8_t((x * 5 + y * 3 + c * 70 + (x * y) % 17) % 256);
  return px;
}

std::string default_model() { return nn::model_dir() + "/ntc_two_layer.ntcm"; }

// An overfitted stream carries its own decoder: ntc_decode takes it with a NULL model (and with
// any model), and gives the C++ decoder's pixels; a model's stream still needs its model.
TEST(CApi, DecodesOverfittedStreamsWithoutAModel) {
  Tensor img = Tensor::empty({1, 3, 9, 14});
  for (int64_t i = 0; i < img.numel(); ++i) img.data()[i] = float((i * 7) % 200 + 20);
  train::OverfitOptions o;
  o.iters = 10;
  o.candidates = 1;
  const train::OverfitResult r = train::overfit_encode(img, o);
  uint8_t* px = nullptr;
  int w = 0, h = 0;
  ASSERT_EQ(ntc_decode(nullptr, r.bytes.data(), r.bytes.size(), &px, &w, &h), NTC_OK) << ntc_last_error();
  ASSERT_EQ(w, 14);
  ASSERT_EQ(h, 9);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < 9 * 14; ++i) ASSERT_EQ(float(px[i * 3 + c]), r.recon.data()[c * 9 * 14 + i]);
  ntc_free(px);
  const uint8_t junk[] = {'N', 'T', 'C', 'B', 1, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(ntc_decode(nullptr, junk, sizeof junk, &px, &w, &h), NTC_ERROR_ARGUMENT);
  EXPECT_EQ(px, nullptr);
}

TEST(CApi, RoundTripStatusesAndThreads) {
  if (!fs::exists(default_model())) GTEST_SKIP() << default_model() << " not found";
  EXPECT_EQ(ntc_api_version(), NTC_API_VERSION);
  ntc_model* m = nullptr;
  ASSERT_EQ(ntc_model_load(nullptr, &m), NTC_OK) << ntc_last_error();
  const int w = 70, h = 45;
  std::vector<uint8_t> rgb = test_rgb(w, h);
  // A padded stride encodes the same stream as the packed rows.
  std::vector<uint8_t> padded(size_t(w * 3 + 9) * h, 0xAB);
  for (int y = 0; y < h; ++y) std::copy_n(rgb.data() + size_t(y) * w * 3, w * 3, padded.data() + size_t(y) * (w * 3 + 9));
  uint8_t *s1 = nullptr, *s2 = nullptr, *px = nullptr;
  size_t n1 = 0, n2 = 0;
  ASSERT_EQ(ntc_encode(m, rgb.data(), w, h, size_t(w) * 3, 40, 0, &s1, &n1), NTC_OK) << ntc_last_error();
  ASSERT_EQ(ntc_encode(m, padded.data(), w, h, size_t(w) * 3 + 9, 40, 0, &s2, &n2), NTC_OK) << ntc_last_error();
  ASSERT_EQ(std::vector<uint8_t>(s1, s1 + n1), std::vector<uint8_t>(s2, s2 + n2));
  ntc_free(s2);  // the failing calls below set their outputs to NULL
  s2 = nullptr;
  int ow = 0, oh = 0;
  ASSERT_EQ(ntc_decode(m, s1, n1, &px, &ow, &oh), NTC_OK) << ntc_last_error();
  ASSERT_EQ(ow, w);
  ASSERT_EQ(oh, h);
  // The C++ decoder gives the same pixels.
  const std::vector<uint8_t> mb = read_file(default_model());
  auto cpp = nn::deserialize_model(mb.data(), mb.size());
  const Tensor ref = nn::decompress(*cpp, s1, n1, nn::model_hash(mb.data(), mb.size()));
  for (int i = 0; i < w * h; ++i)
    for (int c = 0; c < 3; ++c) ASSERT_EQ(px[i * 3 + c], uint8_t(ref.data()[c * w * h + i])) << i;
  {  // A stream that names the model as ntc 0.2 did (FNV-1a of the file) decodes the same.
    std::vector<uint8_t> legacy(s1, s1 + n1);
    const uint64_t fnv = nn::legacy_model_hash(mb.data(), mb.size());
    std::memcpy(legacy.data() + 8, &fnv, 8);
    reseal_frame(legacy);
    uint8_t* lp = nullptr;
    ASSERT_EQ(ntc_decode(m, legacy.data(), legacy.size(), &lp, &ow, &oh), NTC_OK) << ntc_last_error();
    EXPECT_EQ(std::vector<uint8_t>(lp, lp + size_t(w) * h * 3), std::vector<uint8_t>(px, px + size_t(w) * h * 3));
    ntc_free(lp);
    legacy[8] ^= 1;  // neither identity
    reseal_frame(legacy);
    EXPECT_EQ(ntc_decode(m, legacy.data(), legacy.size(), &lp, &ow, &oh), NTC_ERROR_CORRUPT);
  }
  // One model, several threads at once: the same bytes.
  std::vector<std::vector<uint8_t>> outs(4);
  std::vector<std::thread> ts;
  for (auto& o : outs)
    ts.emplace_back([&, po = &o] {
      uint8_t* p = nullptr;
      int a = 0, b = 0;
      if (ntc_decode(m, s1, n1, &p, &a, &b) == NTC_OK) po->assign(p, p + size_t(a) * b * 3);
      ntc_free(p);
    });
  for (auto& t : ts) t.join();
  for (const auto& o : outs) EXPECT_EQ(o, std::vector<uint8_t>(px, px + size_t(w) * h * 3));
  // Statuses and messages.
  uint8_t* junk = nullptr;
  int a = 0, b = 0;
  EXPECT_EQ(ntc_decode(m, s1, n1 / 2, &junk, &a, &b), NTC_ERROR_CORRUPT);
  EXPECT_NE(std::string(ntc_last_error()), "");
  EXPECT_EQ(junk, nullptr);
  EXPECT_EQ(ntc_decode(nullptr, s1, n1, &junk, &a, &b), NTC_ERROR_ARGUMENT);
  EXPECT_EQ(ntc_encode(m, rgb.data(), w, h, size_t(w) * 3 - 1, 40, 0, &s2, &n2), NTC_ERROR_ARGUMENT);
  EXPECT_EQ(ntc_encode(m, rgb.data(), 0, h, size_t(w) * 3, 40, 0, &s2, &n2), NTC_ERROR_ARGUMENT);
  EXPECT_EQ(ntc_encode(m, rgb.data(), w, h, size_t(w) * 3, 140, 0, &s2, &n2), NTC_ERROR_ARGUMENT);  // bad quality
  EXPECT_EQ(ntc_encode(m, rgb.data(), w, h, size_t(w) * 3, -1, 0, &s2, &n2), NTC_ERROR_ARGUMENT);  // no rate at all
  ntc_model* none = nullptr;
  EXPECT_EQ(ntc_model_load("/nonexistent/m.ntcm", &none), NTC_ERROR_IO);
  EXPECT_EQ(none, nullptr);
  EXPECT_EQ(ntc_model_load_memory(s1, n1, &none), NTC_ERROR_CORRUPT);
  ntc_set_limits(100, 0);
  EXPECT_EQ(ntc_decode(m, s1, n1, &junk, &a, &b), NTC_ERROR_LIMIT);
  {
    const std::vector<uint8_t> big = test_rgb(320, 256);
    uint8_t* bs = nullptr;
    size_t bn = 0;
    ASSERT_EQ(ntc_encode(m, big.data(), 320, 256, 320 * 3, 40, 0, &bs, &bn), NTC_OK) << ntc_last_error();
    ntc_set_limits(0, 1);  // 1 MiB of tensors cannot hold this decode
    EXPECT_EQ(ntc_decode(m, bs, bn, &junk, &a, &b), NTC_ERROR_LIMIT) << ntc_last_error();
    ntc_set_limits(0, 8192);
    EXPECT_EQ(ntc_decode(m, bs, bn, &junk, &a, &b), NTC_OK) << ntc_last_error();
    ntc_free(junk);
    ntc_free(bs);
  }
  ntc_free(s1);
  ntc_free(s2);
  ntc_free(px);
  ntc_model_free(m);
  ntc_model_free(nullptr);
}

int sh(const std::string& cmd) {
  const int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

std::string build_dir() {  // the build that `make test` runs (NTC_BIN's folder)
  const char* b = std::getenv("NTC_BIN");
  return b && *b ? fs::path(b).parent_path().string() : "";
}

// make install into a temporary prefix; the example, built out of tree with pkg-config alone,
// round-trips a PPM with the installed default model; the installed ntc finds that model from
// any directory; make uninstall removes everything.
TEST(Install, OutOfTreeExampleWithPkgConfig) {
  if (kSanitized) GTEST_SKIP() << "not under a sanitizer (the example links the plain library)";
  const std::string build = build_dir();
  if (build.empty() || !fs::exists("Makefile") || !fs::exists(default_model()))
    GTEST_SKIP() << "run through make test from the repository root";
  if (sh("command -v pkg-config >/dev/null && command -v cc >/dev/null") != 0) GTEST_SKIP() << "pkg-config or cc missing";
  const std::string tmp = ::testing::TempDir() + "/ntc_install_" + std::to_string(getpid());
  const std::string prefix = tmp + "/prefix";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  ASSERT_EQ(sh("make -s install BUILD=" + build + " PREFIX=" + prefix + " > " + tmp + "/make.log 2>&1"), 0);
  for (const char* f : {"bin/ntc", "lib/libntc.so.0", "lib/libntc.so", "lib/libntc.a", "include/ntc/ntc.h",
                        "lib/pkgconfig/ntc.pc", "share/ntc/models/ntc_two_layer.ntcm", "share/man/man1/ntc.1"})
    EXPECT_TRUE(fs::exists(prefix + "/" + f)) << f;
  const std::vector<uint8_t> rgb = test_rgb(64, 40);
  std::ofstream(tmp + "/in.ppm", std::ios::binary) << "P6\n64 40\n255\n"
                                                   << std::string(rgb.begin(), rgb.end());
  const std::string env = "PKG_CONFIG_PATH=" + prefix + "/lib/pkgconfig";
  ASSERT_EQ(sh("cd " + tmp + " && cc " + fs::absolute("examples/roundtrip.c").string() + " $(" + env +
               " pkg-config --cflags --libs ntc) -lm -o roundtrip > cc.log 2>&1"), 0);
  ASSERT_EQ(sh("cd / && LD_LIBRARY_PATH=" + prefix + "/lib " + tmp + "/roundtrip " + tmp + "/in.ppm > " + tmp + "/rt.txt 2>&1"), 0);
  const std::vector<uint8_t> out = read_file(tmp + "/rt.txt");
  EXPECT_NE(std::string(out.begin(), out.end()).find("bpp, PSNR"), std::string::npos) << std::string(out.begin(), out.end());
  // The installed CLI, run from elsewhere, finds its model in PREFIX/share/ntc.
  EXPECT_EQ(sh("cd / && " + prefix + "/bin/ntc encode " + tmp + "/in.ppm -o " + tmp + "/a.ntc > /dev/null 2>&1"), 0);
  EXPECT_EQ(sh("cd / && NTC_MODEL_DIR=/nonexistent " + prefix + "/bin/ntc encode " + tmp + "/in.ppm -o " + tmp +
               "/b.ntc > /dev/null 2>&1"), 1);
  ASSERT_EQ(sh("make -s uninstall PREFIX=" + prefix + " > /dev/null 2>&1"), 0);
  size_t left = 0;
  for (const auto& e : fs::recursive_directory_iterator(prefix)) left += e.is_regular_file() || e.is_symlink();
  EXPECT_EQ(left, 0u);
  fs::remove_all(tmp);
}

TEST(Python, ModuleRoundTripAndErrors) {
  if (kSanitized) GTEST_SKIP() << "not under a sanitizer (python loads the plain library)";
  const char* lib = std::getenv("NTC_LIBRARY");
  if (!lib || !*lib || !fs::exists("python/test_ntc.py")) GTEST_SKIP() << "run through make test from the repository root";
  if (sh("/usr/bin/python3 -c 'import numpy' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "Debian's python3 with numpy is missing (make deps installs python3-numpy)";
  EXPECT_EQ(sh("/usr/bin/python3 python/test_ntc.py"), 0);
}

}  // namespace
}  // namespace ntc
