// The user-facing codec: SGA, metrics, BD-rate, and the `ntc` binary's behaviour on good and bad
// input (run through $NTC_BIN, which `make test` sets; skipped with a message otherwise).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "codec/container.h"
#include "kernels/kernels.h"
#include "lib/common.h"
#include "lib/fileio.h"
#include "lib/framed.h"
#include "lib/image.h"
#include "lib/json.h"
#include "lib/metrics.h"
#include "lib/ops/ops.h"
#include "lib/rng.h"
#include "nn/compress.h"
#include "nn/config.h"
#include "nn/model.h"
#include "nn/model_file.h"
#include "tests/gradcheck.h"
#include "train/sga.h"

namespace ntc {
namespace {
namespace fs = std::filesystem;

const char* kCfg =
    "name = tiny\nlatent_channels = 16\nanalysis = cnn\nanalysis.channels_base = 16\nanalysis.activation = gdn\n"
    "synthesis = jpeg_like\nhyper_analysis = hyper\nhyper_synthesis = hyper\nlambda = 0.01\n";

std::unique_ptr<nn::Model> tiny() {
  auto m = std::make_unique<nn::Model>(nn::Config::parse(kCfg));
  Rng rng(8);
  m->init(rng);
  m->finalize();
  return m;
}

Tensor picture(int h, int w) {
  Tensor t = Tensor::empty({1, 3, h, w});
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        t.data()[(c * h + y) * w + x] = float((x * 3 + y * (c + 1) + ((x / 8 + y / 8) % 2) * 60) % 256);
  return t;
}

TEST(Sga, TemperatureScheduleMatchesSpec) {
  EXPECT_FLOAT_EQ(sga_temperature(0), 0.5f);
  EXPECT_FLOAT_EQ(sga_temperature(200), 0.5f);
  EXPECT_NEAR(sga_temperature(1000), 0.335, 1e-3);
  EXPECT_NEAR(sga_temperature(2000), 0.203, 1e-3);
  EXPECT_NEAR(sga_temperature(2700), 0.143, 1e-3);
  EXPECT_NEAR(sga_temperature(2999), 0.1234, 1e-4);
}

TEST(Sga, RoundingGradientsAndLimits) {
  Rng rng(2);
  Tensor mu = Tensor::uniform({2, 3, 4, 5}, -3, 3, rng).set_requires_grad(true);
  for (int64_t i = 0; i < mu.numel(); ++i) {  // keep FD away from integers (floor/ceil jumps)
    float& v = mu.data()[i];
    const float f = v - std::floor(v);
    if (f < 0.1f || f > 0.9f) v = std::floor(v) + 0.5f;
  }
  Tensor off = Tensor::uniform({3}, -0.3f, 0.3f, rng).set_requires_grad(true);
  Tensor u = sga_noise(mu.shape(), rng);
  testing::GradCheckOpts o;
  o.h = 1e-3;
  o.tol = 2e-2;
  testing::gradcheck("sga_round", {mu, off}, [&](auto& v) { return sga_round(v[0], u, 0.4f, v[1]); }, o);
  // Low temperature: hard rounding; integers stay put.
  Tensor x = Tensor::from({4}, {0.2f, 1.7f, -2.0f, 3.0f});
  Tensor y = sga_round(x, sga_noise(x.shape(), rng), 1e-3f);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{0, 2, -2, 3}));
}

// SGA lowers the rate–distortion loss of what is actually coded, relative to the amortised encoder.
TEST(Sga, LowersTheRdLossOfATestImage) {
  auto m = tiny();
  const Tensor img = picture(64, 96);
  const nn::Latents amortised = nn::analyze(*m, img);
  train::SgaOptions o;
  o.iters = 120;
  const nn::Latents refined = train::sga_refine(*m, img, 0.01, 0, o);
  const double before = train::rd_loss_hard(*m, img, amortised, 0.01, 0);
  const double after = train::rd_loss_hard(*m, img, refined, 0.01, 0);
  EXPECT_LT(after, before) << "SGA " << before << " -> " << after;
  // The decoder is unchanged: the refined stream decodes to the encoder's reconstruction.
  nn::Encoded e = nn::encode_latents(*m, refined, 64, 96, 5);
  EXPECT_EQ(nn::decompress(*m, e.bytes.data(), e.bytes.size(), 5).to_vector(), e.recon.to_vector());
  for (auto& [n, p] : m->named_parameters()) EXPECT_TRUE(p.requires_grad()) << n << " left frozen";
  // An image whose SGA would need more than the limit is refused up front, saying what it needs.
  o.max_bytes = size_t(64 * 96) * train::kSgaBytesPerPixel - 1;
  try {
    (void)train::sga_refine(*m, img, 0.01, 0, o);
    ADD_FAILURE() << "SGA over its memory limit ran";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MiB of memory"), std::string::npos) << e.what();
  }
  o.max_bytes = size_t(64 * 96) * train::kSgaBytesPerPixel;
  o.iters = 1;
  EXPECT_NO_THROW((void)train::sga_refine(*m, img, 0.01, 0, o));
}

TEST(Metrics, MsSsimKnownValues) {
  const Tensor a = picture(200, 240);
  EXPECT_NEAR(ms_ssim(a, a), 1.0, 1e-12);
  EXPECT_NEAR(ssim(a, a), 1.0, 1e-12);
  // Constant images a, b: every contrast-structure term is 1 and luminance is
  // (2ab + C1)/(a² + b² + C1) at every scale, so MS-SSIM = l^0.1333 (last-scale weight).
  const Tensor x = Tensor::full({1, 3, 200, 200}, 100), y = Tensor::full({1, 3, 200, 200}, 120);
  const double c1 = (0.01 * 255) * (0.01 * 255), l = (2 * 100.0 * 120 + c1) / (100.0 * 100 + 120.0 * 120 + c1);
  EXPECT_NEAR(ms_ssim(x, y), std::pow(l, 0.1333), 1e-9);
  EXPECT_NEAR(ssim(x, y), l, 1e-9);
  // A published value: compare_gan's MS-SSIM test (github.com/google/compare_gan,
  // metrics/ms_ssim_score_test.py) expects 0.989989 (±0.001) for the mean MS-SSIM over the three
  // pairs of constant RGB images of value 1, 0.7 and 0 with max_val 255. It uses 64×64 images with
  // the window shrunk to fit; constant images make every scale's statistics size-independent, so
  // 200×200 (five full scales here) must give the same number.
  {
    const float v[] = {1.f, 0.7f, 0.f};
    double mean = 0;
    for (int i = 0; i < 3; ++i)
      for (int j = i + 1; j < 3; ++j)
        mean += ms_ssim(Tensor::full({1, 3, 200, 200}, v[i]), Tensor::full({1, 3, 200, 200}, v[j])) / 3;
    EXPECT_NEAR(mean, 0.989989, 1e-6);
  }
  Tensor noisy = a.clone();
  Rng rng(1);
  for (int64_t i = 0; i < noisy.numel(); ++i) noisy.data()[i] += 20 * (rng.uniform() - 0.5f);
  const double v = ms_ssim(a, noisy);
  EXPECT_GT(v, 0.5);
  EXPECT_LT(v, 0.999);
  EXPECT_NEAR(psnr(x, y), 10 * std::log10(255.0 * 255 / 400), 1e-9);
}

// boundary_ratio: about 1 on a smooth image and on noise, large on an image of flat 16×16 blocks,
// and exactly the ratio of the two differences on a constructed case.
TEST(Metrics, BoundaryRatioSeesBlocks) {
  Rng rng(5);
  Tensor smooth = Tensor::empty({1, 3, 64, 80}), blocks = smooth.clone(), noise = smooth.clone();
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 80; ++x) {
        const int64_t i = (int64_t(c) * 64 + y) * 80 + x;
        smooth.data()[i] = float(100 + 2 * x + y + 10 * c);
        blocks.data()[i] = float(((x / 16) * 37 + (y / 16) * 53 + c * 11) % 256);
        noise.data()[i] = float(rng.next_u64() % 256);
      }
  EXPECT_NEAR(boundary_ratio(smooth), 1.0, 1e-3);
  EXPECT_NEAR(boundary_ratio(noise), 1.0, 0.1);
  EXPECT_GT(boundary_ratio(blocks), 1000.0);
  // Columns only (H < 18): v(x) = 6·⌊x/16⌋ + 2·[x mod 16 ≥ 1], so |v(16k) − v(16k−1)| = 4 across each
  // boundary and |v(16k+1) − v(16k)| = 2 one pixel inside.
  Tensor t = Tensor::empty({1, 1, 4, 40});
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 40; ++x) t.data()[y * 40 + x] = float((x / 16) * 6 + (x % 16 >= 1 ? 2 : 0));
  EXPECT_NEAR(boundary_ratio(t), (4.0 + 1e-3) / (2.0 + 1e-3), 1e-9);
  EXPECT_TRUE(std::isnan(boundary_ratio(Tensor::zeros({1, 3, 10, 10}))));
}

TEST(Metrics, BdRateOfKnownShifts) {
  const RdCurve ref{{0.1, 0.25, 0.5, 1.0, 2.0}, {26, 29, 32, 35, 38.5}};
  EXPECT_NEAR(bd_rate(ref, ref), 0.0, 1e-9);
  EXPECT_NEAR(bd_psnr(ref, ref), 0.0, 1e-9);
  RdCurve cheaper = ref;
  for (double& b : cheaper.bpp) b *= 0.9;
  EXPECT_NEAR(bd_rate(ref, cheaper), -10.0, 1e-6);
  RdCurve better = ref;
  for (double& p : better.psnr) p += 0.5;
  EXPECT_NEAR(bd_psnr(ref, better), 0.5, 1e-6);
  EXPECT_THROW(bd_rate(ref, RdCurve{{5, 6}, {50, 51}}), Error);  // no overlap
}

// ---------------------------------------------------------------- the binary
struct Bin {
  std::string bin, dir;
  Bin() {
    const char* b = std::getenv("NTC_BIN");
    if (b && *b) bin = fs::absolute(b).string();
    dir = ::testing::TempDir() + "/ntc_cli_" + std::to_string(getpid());
    fs::create_directories(dir);
  }
  ~Bin() { fs::remove_all(dir); }
  // Exit status, or 128 + signal when killed by one. env: variable assignments for the command
  // ("A=1 B=2"); exe: another binary than NTC_BIN.
  int run(const std::string& args, const std::string& env = "", const std::string& exe = "") const {
    const std::string cmd = (env.empty() ? "" : env + " ") + (exe.empty() ? bin : exe) + " " + args;
    const int st = std::system((cmd + " >" + dir + "/out.txt 2>" + dir + "/err.txt").c_str());
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
  }
  std::string err() const {
    std::ifstream f(dir + "/err.txt");
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
};

// Image input (lib/image.h): PPM/PGM through ntc's own parser (comments, maxval below 255, gray
// replicated), PNG and JPEG through stb_image, every other format refused by its magic, and
// truncated or 16-bit PNM files refused with one line.
TEST(Image, ReadsPnmPngAndJpegOnly) {
  auto bytes = [](const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); };
  auto read = [](const std::vector<uint8_t>& b) { return read_image(b.data(), b.size(), "t", 0); };
  const Tensor a = read(bytes(std::string("P6 # a comment\n2 1\n255\n") + "\x01\x02\x03\xfa\xfb\xfc"));
  ASSERT_EQ(a.shape(), (Shape{1, 3, 1, 2}));
  EXPECT_EQ(a.to_vector(), (std::vector<float>{1, 250, 2, 251, 3, 252}));
  const Tensor g = read(bytes(std::string("P5\n1\n1\n15\n") + "\x0f"));  // maxval 15: 15 → 255
  EXPECT_EQ(g.to_vector(), (std::vector<float>{255, 255, 255}));
  const Tensor g7 = read(bytes(std::string("P5 1 1 15 ") + "\x07"));  // 7·255/15 = 119
  EXPECT_EQ(g7.to_vector()[0], 119.f);
  for (const std::string& badfile :
       {std::string("P6\n2 1\n255\n\x01\x02"), std::string("P5\n1 1\n65535\n\x01\x02"), std::string("P6\n0 1\n255\n"),
        std::string("P6\n2 1"), std::string("P6 9999999999 1 255 "), std::string("BM\x01\x02\x03\x04"),
        std::string("GIF89a"), std::string("\x89PNG\r\n\x1a\n garbage"), std::string("\xff\xd8\xff garbage"), std::string()})
    EXPECT_THROW(read(bytes(badfile)), Error) << badfile;
  // The limit is checked from the header, before the data is needed.
  EXPECT_THROW(read_image(bytes("P6 3000 3000 255 ").data(), 17, "t", 1000), Error);
  // Round trips through ntc's own writers (PNG: zlib with per-row filter choice), odd sizes too.
  const std::string dir = ::testing::TempDir();
  for (auto [h, w] : std::vector<std::pair<int, int>>{{3, 5}, {1, 1}, {1, 7}, {7, 1}, {33, 65}}) {
    Tensor x = Tensor::empty({1, 3, h, w});
    Rng rng(uint64_t(h * 100 + w));
    for (int64_t i = 0; i < x.numel(); ++i)  // smooth areas and noise: every PNG filter gets chosen
      x.data()[i] = float(i % 3 == 0 ? (i * 37) % 256 : (i / 7) % 252 + int64_t(rng.next_u64() % 4));
    for (const char* ext : {".ppm", ".png"}) {
      write_image(dir + "/rt" + ext, x);
      EXPECT_EQ(read_image(dir + "/rt" + ext).to_vector(), x.to_vector()) << ext << " " << h << "x" << w;
    }
  }
}

// The model's identity in streams (data/MODELS.md): model_hash, a four-lane word hash, is not
// FNV-1a, reacts to every byte and to the length, and has no collisions over one-byte changes of a
// model file. A stream that carries the file's FNV-1a (as ntc 0.2 wrote) still decodes with
// `ntc decode` and the C API; one that carries neither is refused with a one-line error.
TEST(Cli, ModelIdentityAndStreamsOfNtc02) {
  const auto bytes = nn::serialize_model(*tiny(), nn::WeightFormat::F16);
  const uint64_t id = nn::model_hash(bytes.data(), bytes.size());
  EXPECT_NE(id, nn::legacy_model_hash(bytes.data(), bytes.size()));
  std::set<uint64_t> seen{id};
  for (size_t at : {size_t(0), size_t(7), size_t(31), size_t(32), bytes.size() / 2, bytes.size() - 33, bytes.size() - 1}) {
    auto v = bytes;
    for (uint8_t bit : {uint8_t(1), uint8_t(0x80)}) {
      v[at] ^= bit;
      EXPECT_TRUE(seen.insert(nn::model_hash(v.data(), v.size())).second) << "byte " << at << " bit " << int(bit);
      v[at] ^= bit;
    }
  }
  for (size_t n : {size_t(0), size_t(1), size_t(31), size_t(32), size_t(33), bytes.size() - 1})
    EXPECT_TRUE(seen.insert(nn::model_hash(bytes.data(), n)).second) << "length " << n;

  Bin b;
  if (b.bin.empty()) GTEST_SKIP() << "NTC_BIN not set (run through make test)";
  write_file_atomic(b.dir + "/m.ntcm", bytes);
  const Tensor img = picture(40, 56);
  const uint64_t legacy = nn::legacy_model_hash(bytes.data(), bytes.size());
  const nn::Encoded old = nn::compress(*nn::deserialize_model(bytes.data(), bytes.size()), img, legacy);
  write_file_atomic(b.dir + "/old.ntc", old.bytes);
  const std::string M = " --model " + b.dir + "/m.ntcm";
  ASSERT_EQ(b.run("decode " + b.dir + "/old.ntc -o " + b.dir + "/old.ppm" + M), 0) << b.err();
  EXPECT_EQ(read_image(b.dir + "/old.ppm").to_vector(), old.recon.to_vector());
  ASSERT_EQ(b.run("encode " + b.dir + "/old.ppm -o " + b.dir + "/new.ntc" + M), 0) << b.err();
  const auto fresh = read_file(b.dir + "/new.ntc");
  EXPECT_EQ(codec::peek_model_hash(fresh.data(), fresh.size()), id);  // new streams carry model_hash
  auto other = old.bytes;
  const uint64_t wrong = legacy ^ 1;
  std::memcpy(other.data() + 8, &wrong, 8);
  reseal_frame(other);
  write_file_atomic(b.dir + "/other.ntc", other);
  EXPECT_EQ(b.run("decode " + b.dir + "/other.ntc -o " + b.dir + "/x.ppm" + M), 1);
  EXPECT_NE(b.err().find("made with another model"), std::string::npos) << b.err();
}

// Pipes: '-' is stdin or stdout for encode and decode (the summary line moves to stderr, the
// format of a decoded image on stdout comes from --format), and `ntc info` reads a stream's header.
TEST(Cli, PipesAndInfo) {
  Bin b;
  if (b.bin.empty()) GTEST_SKIP() << "NTC_BIN not set (run through make test)";
  nn::save_model(b.dir + "/m.ntcm", *tiny(), nn::WeightFormat::F16);
  write_image(b.dir + "/in.png", picture(40, 56));
  const std::string M = " --model " + b.dir + "/m.ntcm";
  ASSERT_EQ(b.run("encode " + b.dir + "/in.png -o " + b.dir + "/f.ntc" + M), 0) << b.err();
  ASSERT_EQ(b.run("decode " + b.dir + "/f.ntc -o " + b.dir + "/f.ppm" + M), 0) << b.err();
  const std::string pipe = "cat " + b.dir + "/in.png | " + b.bin + " encode - -o -" + M + " 2>" + b.dir + "/e1.txt | " + b.bin +
                           " decode - -o - --format ppm" + M + " > " + b.dir + "/p.ppm 2>" + b.dir + "/e2.txt";
  ASSERT_EQ(std::system(pipe.c_str()), 0);
  EXPECT_EQ(read_file(b.dir + "/p.ppm"), read_file(b.dir + "/f.ppm"));
  const auto e1 = read_file(b.dir + "/e1.txt");
  EXPECT_NE(std::string(e1.begin(), e1.end()).find("bpp"), std::string::npos);  // the summary went to stderr
  ASSERT_EQ(b.run("decode " + b.dir + "/f.ntc -o -" + M), 0) << b.err();  // stdout: PNG by default
  const auto png = read_file(b.dir + "/out.txt");
  ASSERT_GE(png.size(), 8u);
  EXPECT_EQ(png[1], 'P');
  EXPECT_EQ(read_image(png.data(), png.size(), "stdout").to_vector(), read_image(b.dir + "/f.ppm").to_vector());
  EXPECT_EQ(b.run("decode " + b.dir + "/f.ntc -o " + b.dir + "/x.png --format ppm" + M), 2);  // format vs extension
  EXPECT_EQ(b.run("decode " + b.dir + "/f.ntc -o " + b.dir + "/x.bmp" + M), 2);
  EXPECT_EQ(b.run("info " + b.dir + "/f.ntc --json" + M), 0) << b.err();
  const auto info = read_file(b.dir + "/out.txt");
  const Json j = parse_json(std::string(info.begin(), info.end()), "info");
  EXPECT_EQ(j.get("width")->num, 56);
  EXPECT_EQ(j.get("height")->num, 40);
  EXPECT_EQ(j.get("bytes")->num, double(read_file(b.dir + "/f.ntc").size()));
  EXPECT_EQ(j.get("model")->str, b.dir + "/m.ntcm");
  EXPECT_EQ(j.get("sections")->numbers().size(), 2u);
  EXPECT_EQ(j.get("hyper_synthesis_form")->str, "winograd");  // flag bit 0, set in every new stream
  EXPECT_EQ(b.run("info " + b.dir + "/in.png"), 1);
}

// Help, version and exit statuses: help goes to stdout with status 0; usage errors (unknown command
// or flag, missing arguments, bad flag values) exit 2; runtime errors (unreadable input) exit 1.
TEST(Cli, HelpVersionAndExitStatuses) {
  Bin b;
  if (b.bin.empty()) GTEST_SKIP() << "NTC_BIN not set (run through make test)";
  auto out = [&] {
    std::ifstream f(b.dir + "/out.txt");
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  for (const std::string& c : std::vector<std::string>{"--help", "-h", "help"}) {
    EXPECT_EQ(b.run(c), 0) << c;
    EXPECT_NE(out().find("commands:"), std::string::npos) << c;
  }
  for (const std::string& cmd : std::vector<std::string>{"encode", "decode", "info", "eval", "bdrate", "plot", "flops", "train", "derive", "bench", "demo"}) {
    for (const std::string& c : {cmd + " --help", cmd + " -h", "help " + cmd, "--threads 1 " + cmd + " --help"}) {
      EXPECT_EQ(b.run(c), 0) << c << ": " << b.err();
      EXPECT_EQ(out().rfind("usage: ntc [global flags] " + cmd, 0), 0u) << c << ": " << out();
    }
  }
  for (const std::string& c : std::vector<std::string>{"--version", "version"}) {
    EXPECT_EQ(b.run(c), 0) << c;
    EXPECT_EQ(out().rfind("ntc ", 0), 0u) << out();
    EXPECT_NE(out().find("GEMM"), std::string::npos) << out();
  }
  for (const std::string& c : std::vector<std::string>{"", "frobnicate", "help frobnicate", "encode", "encode a.png", "encode a.png -o b.ntc --frob",
                               "decode x.ntc", "--threads 0 version", "--threads", "eval --data d", "bdrate a.json",
                               "encode a.png -o b.ntc --quality", "bench", "bench nosuch", "version --frob", "derive --from x",
                               "derive --from a --config b --out c --crops x"}) {
    EXPECT_EQ(b.run(c), 2) << "'" << c << "': " << b.err();
    EXPECT_NE(b.err().find("ntc: error:"), std::string::npos) << c;
  }
  EXPECT_EQ(b.run("decode " + b.dir + "/missing.ntc -o " + b.dir + "/x.png"), 1) << b.err();
  EXPECT_EQ(b.run("encode " + b.dir + "/missing.png -o " + b.dir + "/x.ntc"), 1) << b.err();
  EXPECT_EQ(b.err().find('\n'), b.err().size() - 1) << "one line: " << b.err();
  // Progress bars (\r updates) only on a terminal, or with --progress; here stderr is a file.
  nn::save_model(b.dir + "/m.ntcm", *tiny(), nn::WeightFormat::F16);
  fs::create_directories(b.dir + "/imgs");
  write_image(b.dir + "/imgs/a.png", picture(32, 48));
  const std::string ev = "eval --data " + b.dir + "/imgs --json " + b.dir + "/ev.json --model " + b.dir + "/m.ntcm";
  ASSERT_EQ(b.run(ev), 0) << b.err();
  EXPECT_EQ(b.err().find('\r'), std::string::npos) << b.err();
  ASSERT_EQ(b.run("--progress " + ev), 0) << b.err();
  EXPECT_NE(b.err().find('\r'), std::string::npos) << b.err();
}

TEST(Cli, EncodeDecodeRoundTripAndBadInput) {
  Bin b;
  if (b.bin.empty()) GTEST_SKIP() << "NTC_BIN not set (run through make test)";
  auto m = tiny();
  nn::save_model(b.dir + "/m.ntcm", *m, nn::WeightFormat::F16);
  write_image(b.dir + "/in.png", picture(45, 70));
  const std::string M = " --model " + b.dir + "/m.ntcm";
  ASSERT_EQ(b.run("encode " + b.dir + "/in.png -o " + b.dir + "/a.ntc" + M), 0) << b.err();
  ASSERT_EQ(b.run("decode " + b.dir + "/a.ntc -o " + b.dir + "/a.png" + M), 0) << b.err();
  for (int t : {1, 2, 4}) {  // byte-identical decodes with any thread count
    ASSERT_EQ(b.run("--threads " + std::to_string(t) + " decode " + b.dir + "/a.ntc -o " + b.dir + "/t.ppm" + M), 0);
    if (t == 1) fs::copy_file(b.dir + "/t.ppm", b.dir + "/t1.ppm");
    EXPECT_EQ(read_file(b.dir + "/t.ppm"), read_file(b.dir + "/t1.ppm")) << t << " threads";
  }
  const Tensor dec = read_image(b.dir + "/a.png");
  EXPECT_EQ(dec.shape(), (Shape{1, 3, 45, 70}));
  // Without --model, decode takes the shipped family whose file the stream names (by its hash),
  // whichever it is: two model folders with the tiny model as the second family, then the first.
  {
    auto second = tiny();
    second->named_parameters()[0].second.data()[0] += 0.5f;
    for (int which = 0; which < 2; ++which) {
      const std::string dir = b.dir + "/models" + std::to_string(which);
      fs::create_directories(dir);
      nn::save_model(dir + (which ? "/ntc_two_layer.ntcm" : "/ntc_jpeg_like.ntcm"), *tiny(), nn::WeightFormat::F16);
      nn::save_model(dir + (which ? "/ntc_jpeg_like.ntcm" : "/ntc_two_layer.ntcm"), *second, nn::WeightFormat::F16);
      ASSERT_NE(read_file(dir + "/ntc_two_layer.ntcm"), read_file(dir + "/ntc_jpeg_like.ntcm"));
      ASSERT_EQ(b.run("decode " + b.dir + "/a.ntc -o " + b.dir + "/auto.ppm", "NTC_MODEL_DIR=" + dir), 0) << which << ": " << b.err();
      EXPECT_EQ(read_file(b.dir + "/auto.ppm"), read_file(b.dir + "/t1.ppm")) << which;
    }
    const std::string none = b.dir + "/models_none";  // neither family is the stream's: refused
    fs::create_directories(none);
    nn::save_model(none + "/ntc_two_layer.ntcm", *second, nn::WeightFormat::F16);
    EXPECT_EQ(b.run("decode " + b.dir + "/a.ntc -o " + b.dir + "/no.ppm", "NTC_MODEL_DIR=" + none), 1);
    EXPECT_NE(b.err().find("made with another model"), std::string::npos) << b.err();
  }
  // Bad input: one-line error, exit status 1, never a signal; outputs not half-written.
  std::ofstream(b.dir + "/garbage.ntc") << "garbage";
  std::ofstream(b.dir + "/empty.png");
  auto a = read_file(b.dir + "/a.ntc");
  a.resize(a.size() / 2);
  write_file_atomic(b.dir + "/half.ntc", a);
  auto other = tiny();
  other->named_parameters()[0].second.data()[0] += 1;
  nn::save_model(b.dir + "/other.ntcm", *other, nn::WeightFormat::F16);
  const std::vector<std::string> bad = {
      "decode " + b.dir + "/garbage.ntc -o " + b.dir + "/a.png" + M,
      "decode " + b.dir + "/half.ntc -o " + b.dir + "/a.png" + M,
      "decode " + b.dir + "/a.ntc -o " + b.dir + "/x.png --model " + b.dir + "/other.ntcm",
      "decode " + b.dir + "/missing.ntc -o " + b.dir + "/x.png" + M,
      "encode " + b.dir + "/empty.png -o " + b.dir + "/x.ntc" + M,
      "encode " + b.dir + "/garbage.ntc -o " + b.dir + "/x.ntc" + M,
      "encode " + b.dir + "/in.png -o " + b.dir + "/x.ntc --frobnicate" + M,
      "encode " + b.dir + "/in.png -o " + b.dir + "/x.ntc --quality 50" + M,  // fixed-rate model
      "encode " + b.dir + "/in.png" + M,
      "encode " + b.dir + "/in.png -o " + b.dir + "/x.ntc --model no-such-family",
      "nosuchcommand",
  };
  for (const std::string& c : bad) {
    const int rc = b.run(c);  // 1: bad input, 2: usage; never 0, never a signal
    EXPECT_TRUE(rc == 1 || rc == 2) << c << ": exit " << rc << ": " << b.err();
    EXPECT_NE(b.err().find("ntc: error:"), std::string::npos) << c;
  }
  EXPECT_EQ(read_image(b.dir + "/a.png").to_vector(), dec.to_vector());  // untouched by the failures
  EXPECT_FALSE(fs::exists(b.dir + "/x.png"));
}

// Portable streams (codec/BITSTREAM.md): Kodak crops encoded at three rates with the shipped
// default model decode to the same bytes under every target this CPU runs, the scalar twins,
// --gemm openblas and 1 or 2 threads. Needs ../shared/data/kodak (NTC_KODAK) and the model.
TEST(Cli, StreamsDecodeToTheSameBytesEverywhere) {
  Bin b;
  if (b.bin.empty()) GTEST_SKIP() << "NTC_BIN not set (run through make test)";
  const char* env = std::getenv("NTC_KODAK");
  const std::string kodak = env && *env ? env : "../shared/data/kodak";
  if (!fs::exists(kodak + "/kodim01.png")) GTEST_SKIP() << "Kodak images not found in " << kodak << " (NTC_KODAK)";
  const std::string model = nn::data_dir() + "/models/ntc_two_layer.ntcm";
  if (!fs::exists(model)) GTEST_SKIP() << "the shipped model " << model << " is missing";
  const std::string M = " --model " + model;
  std::vector<std::string> variants = {"--threads 1", "--threads 2", "--target avx2", "--target avx2 --threads 1",
                                       "--gemm openblas", "--kernels ref"};
  if (b.run("--target avx512 version") == 0) variants.push_back("--target avx512 --threads 1");
  int checked = 0;
  for (const char* name : {"kodim04", "kodim13", "kodim23"}) {
    const Tensor img = read_image(kodak + "/" + name + ".png");
    Tensor crop = Tensor::empty({1, 3, 160, 224});  // real photo content, small enough for the twins
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 160; ++y)
        for (int x = 0; x < 224; ++x)
          crop.data()[(c * 160 + y) * 224 + x] = img.data()[(c * img.dim(2) + 100 + y) * img.dim(3) + 150 + x];
    write_image(b.dir + "/crop.png", crop);
    for (const char* q : {"5", "50", "95"}) {
      ASSERT_EQ(b.run("encode " + b.dir + "/crop.png -o " + b.dir + "/c.ntc --quality " + q + M), 0) << b.err();
      ASSERT_EQ(b.run("decode " + b.dir + "/c.ntc -o " + b.dir + "/ref.ppm" + M), 0) << b.err();
      const auto want = read_file(b.dir + "/ref.ppm");
      for (const std::string& v : variants) {
        if (v == "--kernels ref" && std::string(q) != "50") continue;  // the twins are slow: one rate
        ASSERT_EQ(b.run(v + " decode " + b.dir + "/c.ntc -o " + b.dir + "/v.ppm" + M), 0) << v << ": " << b.err();
        EXPECT_EQ(read_file(b.dir + "/v.ppm"), want) << name << " quality " << q << " decoded with " << v;
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 3 * 3 * 5 + 3);
}

// PNG output holds at most (3W+1)·H < 2³¹ bytes (stb_image_write's ints): a stream of a larger
// image decoded to .png is refused at once, before decoding, with a one-line error; .ppm is fine.
TEST(Cli, OversizedOutputsAndDecompressionBombsAreRefused) {
  EXPECT_TRUE(png_writable(10000, 10000));
  EXPECT_TRUE(png_writable(715827882, 1));
  EXPECT_FALSE(png_writable(715827883, 1));
  EXPECT_FALSE(png_writable(43691, 32768));
  EXPECT_FALSE(png_writable(65536, 65536));
  Bin b;
  if (b.bin.empty()) GTEST_SKIP() << "NTC_BIN not set (run through make test)";
  auto m = tiny();
  nn::save_model(b.dir + "/m.ntcm", *m, nn::WeightFormat::F16);
  const auto mb = read_file(b.dir + "/m.ntcm");
  codec::Container c;
  c.model_hash = nn::model_hash(mb.data(), mb.size());
  c.height = 32768;
  c.width = 43691;
  c.sections = {{1, 2, 3, 4}, {5, 6, 7, 8}};
  write_file_atomic(b.dir + "/big.ntc", codec::write_container(c));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(b.run("decode " + b.dir + "/big.ntc -o " + b.dir + "/big.png --model " + b.dir + "/m.ntcm"), 1);
  EXPECT_NE(b.err().find("too large for PNG"), std::string::npos) << b.err();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  EXPECT_FALSE(fs::exists(b.dir + "/big.png"));
  // A decompression bomb: 65536² pixels declared in a few bytes (valid CRC), refused at once by the
  // pixel limit whatever the output format; --max-pixels lowers or raises the limit.
  c.height = c.width = 65536;
  write_file_atomic(b.dir + "/bomb.ntc", codec::write_container(c));
  const auto t1 = std::chrono::steady_clock::now();  // (a refusal takes milliseconds; a decode, minutes)
  EXPECT_EQ(b.run("decode " + b.dir + "/bomb.ntc -o " + b.dir + "/bomb.ppm --model " + b.dir + "/m.ntcm"), 1);
  EXPECT_NE(b.err().find("--max-pixels"), std::string::npos) << b.err();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count(), 10.0);
  write_image(b.dir + "/small.png", picture(40, 50));
  ASSERT_EQ(b.run("encode " + b.dir + "/small.png -o " + b.dir + "/s.ntc --model " + b.dir + "/m.ntcm"), 0) << b.err();
  EXPECT_EQ(b.run("decode " + b.dir + "/s.ntc -o " + b.dir + "/s.ppm --max-pixels 1999 --model " + b.dir + "/m.ntcm"), 1);
  EXPECT_EQ(b.run("decode " + b.dir + "/s.ntc -o " + b.dir + "/s.ppm --max-pixels 2000 --model " + b.dir + "/m.ntcm"), 0)
      << b.err();
  // The memory budget (--max-memory, MiB of tensors): too small a budget is the one-line error.
  write_image(b.dir + "/mid.png", picture(512, 640));
  ASSERT_EQ(b.run("encode " + b.dir + "/mid.png -o " + b.dir + "/mid.ntc --model " + b.dir + "/m.ntcm"), 0) << b.err();
  EXPECT_EQ(b.run("decode " + b.dir + "/mid.ntc -o " + b.dir + "/mid.ppm --max-memory 1 --model " + b.dir + "/m.ntcm"), 1);
  EXPECT_NE(b.err().find("out of memory budget"), std::string::npos) << b.err();
  EXPECT_FALSE(fs::exists(b.dir + "/mid.ppm"));
  EXPECT_EQ(b.run("decode " + b.dir + "/mid.ntc -o " + b.dir + "/mid.ppm --max-memory 0 --model " + b.dir + "/m.ntcm"), 1);
  EXPECT_EQ(b.run("decode " + b.dir + "/mid.ntc -o " + b.dir + "/mid.ppm --max-memory 256 --model " + b.dir + "/m.ntcm"), 0)
      << b.err();
}

// Out of memory anywhere — on the main thread or inside an OpenMP region (lib/threads.h) — is the
// one-line error with exit status 1, never SIGABRT: an encode of a 2400×1600 photo under a 700 MB
// address-space limit. (Under ASan, which reserves terabytes of address space, this cannot run.)
TEST(Cli, OutOfMemoryIsAOneLineError) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer build: ulimit -v cannot apply";
#endif
  Bin b;
  if (b.bin.empty()) GTEST_SKIP() << "NTC_BIN not set (run through make test)";
  auto m = tiny();
  nn::save_model(b.dir + "/m.ntcm", *m, nn::WeightFormat::F16);
  write_image(b.dir + "/big.png", picture(1600, 2400));
  // Under 700 MB of address space a plain encode of this 3.8-megapixel image fits (the analysis and
  // synthesis run in bands), while SGA, which differentiates through the decoder over the whole
  // image (about 2.3 GB here, its estimate limit lifted), runs out: a one-line error, exit 1.
  for (const char* threads : {"1", "2"}) {
    for (const bool sga : {false, true}) {
      const std::string cmd = "bash -c 'ulimit -v 700000; " + b.bin + " --threads " + threads + " encode " + b.dir +
                              "/big.png -o " + b.dir + "/big.ntc --model " + b.dir + "/m.ntcm" +
                              (sga ? " --sga 2 --lambda 0.01 --sga-max-memory 100000 --quiet" : "") + "'";
      const int st = std::system((cmd + " >" + b.dir + "/out.txt 2>" + b.dir + "/err.txt").c_str());
      ASSERT_TRUE(WIFEXITED(st)) << threads << " threads: " << b.err();
#if defined(NTC_SCALAR_DEFAULT) && NTC_SCALAR_DEFAULT
      // The scalar twins take no implicit column panels: their whole column matrices may not fit.
      const bool must_fit = false;
#else
      const bool must_fit = true;
#endif
      if (sga || !must_fit) {
        EXPECT_TRUE(WEXITSTATUS(st) == 1 || (!sga && WEXITSTATUS(st) == 0)) << threads << " threads: " << b.err();
      } else {
        EXPECT_EQ(WEXITSTATUS(st), 0) << threads << " threads: " << b.err();
      }
      if (WEXITSTATUS(st) != 0) {
        const std::string err = b.err();
        EXPECT_NE(err.find("ntc: error: out of memory"), std::string::npos) << err;
        EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
      }
    }
  }
}

// Golden streams (tests/golden/): small .ntc files made with the shipped default model and the
// images they decode to, so that an accidental change of the format or the decoder fails here.
// When the shipped model changes on purpose, regenerate them: NTC_REGENERATE_GOLDEN=1 with this
// test (scripts/campaign.sh ship does it).
TEST(Cli, GoldenStreamsDecodeToTheirImages) {
  const std::string dir = nn::data_dir() + "/../tests/golden", model = nn::data_dir() + "/models/ntc_two_layer.ntcm";
  if (!fs::exists(model)) GTEST_SKIP() << "the shipped model " << model << " is missing";
  auto loaded = nn::load_model(model);
  const auto mb = read_file(model);
  const uint64_t hash = nn::model_hash(mb.data(), mb.size());
  const char* const cases[] = {"q20", "q80"};  // --quality 20 and 80
  const auto& ls = loaded->rate_lambdas();
  ASSERT_FALSE(ls.empty());
  const char* regen = std::getenv("NTC_REGENERATE_GOLDEN");
  if (regen && *regen) {
    const Tensor sample = read_image(nn::data_dir() + "/samples/seeding.png");
    Tensor crop = Tensor::empty({1, 3, 72, 104});  // odd-sized: not a multiple of 64
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 72; ++y)
        for (int x = 0; x < 104; ++x)
          crop.data()[(c * 72 + y) * 104 + x] = sample.data()[(c * sample.dim(2) + 200 + y) * sample.dim(3) + 300 + x];
    fs::create_directories(dir);
    for (const char* name : cases) {
      const int q = std::atoi(name + 1);  // --quality q: log-spaced over the model's λ range
      const double lam = ls.front() * std::pow(ls.back() / ls.front(), q / 100.0);
      const nn::Encoded e = nn::compress(*loaded, crop, hash, lam);
      write_file_atomic(dir + "/" + name + ".ntc", e.bytes);
      write_image(dir + "/" + name + ".ppm", nn::decompress(*loaded, e.bytes.data(), e.bytes.size(), hash));
    }
    GTEST_SKIP() << "regenerated the golden streams in " << dir;
  }
  for (const char* name : cases) {
    const std::string ntc = dir + "/" + name + ".ntc", ppm = dir + "/" + name + ".ppm";
    ASSERT_TRUE(fs::exists(ntc) && fs::exists(ppm)) << ntc << " missing: regenerate with NTC_REGENERATE_GOLDEN=1";
    const auto bytes = read_file(ntc);
    const std::string out = ::testing::TempDir() + "/golden_" + name + ".ppm";
    // Streams made by ntc 0.2 carry the file's FNV-1a (nn::legacy_model_hash); both identities decode.
    const uint64_t legacy = nn::legacy_model_hash(mb.data(), mb.size()), carried = codec::peek_model_hash(bytes.data(), bytes.size());
    ASSERT_TRUE(carried == hash || carried == legacy) << name << ": made with another model";
    write_image(out, nn::decompress(*loaded, bytes.data(), bytes.size(), carried));
    EXPECT_EQ(read_file(out), read_file(ppm)) << name << ": the decoder no longer reproduces its golden image";
    fs::remove(out);
  }
}

// --target forces every kernel's SIMD target (or the scalar twins); a target this CPU cannot run,
// or an unknown one, is a one-line error.
TEST(Cli, TargetFlagForcesTheSimdTarget) {
  Bin b;
  if (b.bin.empty()) GTEST_SKIP() << "NTC_BIN not set (run through make test)";
  auto out = [&] {
    const auto v = read_file(b.dir + "/out.txt");
    return std::string(v.begin(), v.end());
  };
  ASSERT_EQ(b.run("--target avx2 version"), 0) << b.err();
  EXPECT_NE(out().find("kernels AVX2"), std::string::npos) << out();
  ASSERT_EQ(b.run("--target scalar version"), 0) << b.err();
  EXPECT_NE(out().find("kernels scalar"), std::string::npos) << out();
  ASSERT_EQ(b.run("--target scalar --target avx2 version"), 0) << b.err();  // the last one decides
  EXPECT_NE(out().find("kernels AVX2"), std::string::npos) << out();
  ASSERT_EQ(b.run("--kernels ref --target avx2 version"), 0) << b.err();
  EXPECT_NE(out().find("kernels AVX2"), std::string::npos) << out();
  const int rc = b.run("--target avx512 version");
  if (rc == 0) EXPECT_NE(out().find("kernels AVX3"), std::string::npos) << out();
  else EXPECT_NE(b.err().find("cannot run"), std::string::npos) << b.err();
  for (const char* bad : {"--target neon version", "--target version"}) {  // usage errors
    EXPECT_EQ(b.run(bad), 2) << bad;
    EXPECT_NE(b.err().find("ntc: error:"), std::string::npos) << bad << ": " << b.err();
  }
  // By default the binary runs the target this process's Highway (libhwy.so) chooses, with its own
  // detection (cli/hwy_runtime.cc): it does not load libhwy.so.
  ASSERT_EQ(b.run("version"), 0) << b.err();
  EXPECT_NE(out().find(std::string("kernels ") + k::kernel_target_name() + ","), std::string::npos) << out();
  const std::string libs = b.dir + "/libs.txt";
  ASSERT_EQ(std::system(("LD_TRACE_LOADED_OBJECTS=1 " + b.bin + " >" + libs).c_str()), 0);
  const auto loaded = read_file(libs);
  const std::string loaded_s(loaded.begin(), loaded.end());
  EXPECT_NE(loaded_s.find("libc.so"), std::string::npos) << loaded_s;
  EXPECT_EQ(loaded_s.find("libhwy"), std::string::npos) << loaded_s;
  EXPECT_EQ(loaded_s.find("libopenblas"), std::string::npos) << loaded_s;  // opened when first used (lib/blas.h)
  EXPECT_EQ(loaded_s.find("libmpi"), std::string::npos) << loaded_s;       // opened under mpirun (cli/launch.cc)
  // A copy of the binary without the MPI plugin beside it, told by the environment that it is one
  // of two ranks: a one-line refusal that says why; as the only rank it runs alone.
  const std::string lone = b.dir + "/lone";
  fs::create_directories(lone);
  fs::copy_file(b.bin, lone + "/ntc", fs::copy_options::overwrite_existing);
  const std::string train = "bench train --config light --batch 1 --crop 64 --reps 1";
  EXPECT_EQ(b.run(train, "OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0", lone + "/ntc"), 1);
  {
    const std::string e = b.err();
    EXPECT_NE(e.find("ntc: error: this ntc cannot run as one of several ranks: libntc_mpi.so is not next to the binary"),
              std::string::npos) << e;
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
  }
  EXPECT_EQ(b.run(train, "OMPI_COMM_WORLD_SIZE=1 OMPI_COMM_WORLD_RANK=0", lone + "/ntc"), 0) << b.err();
  ASSERT_EQ(b.run("--gemm openblas version"), 0) << b.err();
  EXPECT_NE(out().find("GEMM openblas, OpenBLAS "), std::string::npos) << out();
  // A library of that name without OpenBLAS's functions (zlib under its name, found first through
  // LD_LIBRARY_PATH): a one-line error where OpenBLAS is needed, nothing where it is not.
  const std::string fake = b.dir + "/fakeblas";
  fs::create_directories(fake);
  std::error_code ec;
  fs::copy_file("/lib/x86_64-linux-gnu/libz.so.1", fake + "/libopenblas.so.0", ec);
  if (!ec) {
    const std::string env = "LD_LIBRARY_PATH=" + fake;
    EXPECT_EQ(b.run("--gemm openblas version", env), 1);
    const std::string e = b.err();
    EXPECT_NE(e.find("ntc: error: OpenBLAS (libopenblas.so.0) has no cblas_sgemm"), std::string::npos) << e;
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
    EXPECT_EQ(b.run("--gemm ntc bench overfit --size 32x32 --iters 10 --json", env), 1);  // reports OpenBLAS's kernels
    EXPECT_EQ(b.run("--gemm ntc flops --config light", env), 0) << b.err();  // never opens it
  }
  const char* cannot = "--target avx2 bench train --config light --batch 1 --crop 64 --reps 1 --precision bf16";
  EXPECT_EQ(b.run(cannot), 1);  // a runtime error: this target cannot run bf16 products
  EXPECT_NE(b.err().find("ntc: error:"), std::string::npos) << b.err();
}

// Every benchmark prints one JSON object with the fields its issue names (tiny sizes: this checks
// the output, not the speed).
TEST(Cli, BenchmarksPrintOneJsonObjectWithTheirFields) {
  Bin b;
  if (b.bin.empty()) GTEST_SKIP() << "NTC_BIN not set (run through make test)";
  struct Case {
    std::string args;
    std::vector<std::string> fields;
  };
  nn::save_model(b.dir + "/m.ntcm", *tiny(), nn::WeightFormat::F16);
  write_image(b.dir + "/p.png", picture(48, 64));
  const std::vector<Case> cases = {
      {"bench decode --model " + b.dir + "/m.ntcm --image " + b.dir + "/p.png --reps 1 --json",
       {"load_ms", "z_ms", "hs_ms", "y_ms", "gs_ms", "decode_ms", "write_png_ms", "write_ppm_ms", "process_cpu_ms_ppm",
        "process_cpu_ms_png", "dwebp_cpu_ms", "ratio_vs_dwebp"}},
      {"bench train --config ntc_two_layer --batch 1 --crop 64 --reps 1 --precision fp32 --json",
       {"step_s", "precision", "peak_rss_mb", "sgemm_gflops", "step_gflops", "fresh_mb_per_step", "forward_ms_by_layer_type",
        "backward_ms_by_op", "backward_ms_by_layer"}},
      {"bench sga --config jpegl --size 64x64 --json", {"iter_s", "peak_rss_mb"}},
      {"bench overfit --size 24x40 --iters 12 --json", {"iter_s", "us_per_pixel_iter", "decode_s", "decode_flops_per_pixel"}},
      {"bench overfit --size 24x40 --iters 12 --upsample learned --json", {"iter_s", "decode_s", "upsampling"}},
      {"bench decode --config jpegl --size 64x64 --json", {"decode_ms", "flops_per_pixel"}},
  };
  for (const Case& c : cases) {
    ASSERT_EQ(b.run(c.args), 0) << c.args << ": " << b.err();
    const std::vector<uint8_t> out = read_file(b.dir + "/out.txt");
    const Json j = parse_json(std::string(out.begin(), out.end()), c.args);
    ASSERT_EQ(j.kind, Json::Object) << c.args;
    for (const std::string& f : c.fields) EXPECT_NE(j.get(f), nullptr) << c.args << ": no " << f;
    for (const char* f : {"gemm", "blas", "kernels", "threads"}) EXPECT_NE(j.get(f), nullptr) << c.args << ": no " << f;
  }
}

// The JSON reader is strict RFC 8259 (nlohmann-json): escapes decoded, no NaN/Infinity/hex/comments
// or trailing commas, nesting bounded; the writer turns non-finite numbers into null and escapes
// strings, so what ntc writes always reads back.
TEST(Json, StrictReaderAndValidWriter) {
  const Json e = parse_json(R"({"s": "a\r\b\f\t\n\"\\\/\u00e9\ud83d\ude00", "n": [1, -2.5e3, 0.125], "t": true, "z": null})");
  EXPECT_EQ(e.get("s")->str, "a\r\b\f\t\n\"\\/\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(e.get("n")->numbers(), (std::vector<double>{1, -2500, 0.125}));
  EXPECT_TRUE(e.get("t")->b);
  EXPECT_EQ(e.get("z")->kind, Json::Null);
  for (const std::string& bad : std::vector<std::string>{"NaN", "[NaN]", "[Infinity]", "[-Infinity]", "[0x10]", "[1,]", "{\"a\":1,}", "[01]",
                                 "// c\n[1]", "[1] x", "\"\\x\"", "\"\\u12\"", "{\"a\" 1}", "", "[\"\x01\"]", "'a'",
                                 std::string(300, '[') + std::string(300, ']')})
    EXPECT_THROW(parse_json(bad, "t"), Error) << bad.substr(0, 40);
  EXPECT_NO_THROW(parse_json(std::string(150, '[') + std::string(150, ']'), "t"));
  const std::string w = json_line(JsonOut{{"inf", INFINITY}, {"nan", NAN}, {"s", "q\"\\\n\x01\xff"}, {"x", 0.1}});
  EXPECT_EQ(w.find("inf\":null"), 2u) << w;
  EXPECT_NE(w.find("\"nan\":null"), std::string::npos) << w;
  const Json back = parse_json(w, "w");
  EXPECT_EQ(back.get("s")->str, "q\"\\\n\x01\xef\xbf\xbd");  // invalid UTF-8 replaced by U+FFFD
  EXPECT_EQ(back.get("x")->num, 0.1);
  EXPECT_EQ(json_line(JsonOut{{"v", json_round(1.2361860275268555, 6)}}), "{\"v\":1.236186}");
}

// Every JSON file or line ntc writes parses strictly: eval, bdrate, flops, training logs and
// checkpoint info (the benchmarks above).
TEST(Cli, EveryJsonOutputIsValid) {
  Bin b;
  if (b.bin.empty()) GTEST_SKIP() << "NTC_BIN not set (run through make test)";
  auto strict = [&](const std::string& what) {
    const std::vector<uint8_t> out = read_file(what);
    std::string text(out.begin(), out.end());
    size_t lines = 0;
    for (size_t at = 0; at < text.size();) {  // one JSON value per line (JSON Lines) or one document
      const size_t nl = text.find('\n', at);
      const std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
      if (!line.empty()) {
        EXPECT_NO_THROW(parse_json(line, what)) << what << ": " << line.substr(0, 200);
      }
      ++lines;
      if (nl == std::string::npos) break;
      at = nl + 1;
    }
    EXPECT_GT(lines, 0u) << what;
  };
  auto m = tiny();
  nn::save_model(b.dir + "/m.ntcm", *m, nn::WeightFormat::F16);
  fs::create_directories(b.dir + "/imgs");
  write_image(b.dir + "/imgs/a.png", picture(32, 48));
  const std::string M = " --model " + b.dir + "/m.ntcm";
  ASSERT_EQ(b.run("eval --data " + b.dir + "/imgs --json " + b.dir + "/ev.json --quiet" + M), 0) << b.err();
  strict(b.dir + "/ev.json");
  ASSERT_EQ(b.run("analyze blocking --data " + b.dir + "/imgs --json " + b.dir + "/bl.json" + M), 0) << b.err();
  strict(b.dir + "/bl.json");
  const auto bl = read_file(b.dir + "/bl.json");
  const Json blj = parse_json(std::string(bl.begin(), bl.end()), "bl.json");
  ASSERT_NE(blj.get("boundary_ratio"), nullptr);
  EXPECT_GT(blj.get("boundary_ratio")->num, 0.0);
  EXPECT_EQ(blj.get("per_image")->arr.size(), 1u);
  // analyze manifold: JSON, the Fig. 4 SVG (well-formed enough to hold its panels) and the strip.
  write_image(b.dir + "/imgs/b.png", picture(40, 56));
  ASSERT_EQ(b.run("analyze manifold --data " + b.dir + "/imgs --crop 32 --pairs 2 --steps 5 --sub 2 --json " + b.dir +
                  "/mf.json -o " + b.dir + "/mf.svg --strip " + b.dir + "/mf.png" + M), 0) << b.err();
  strict(b.dir + "/mf.json");
  {
    const auto mf = read_file(b.dir + "/mf.json");
    const Json mj = parse_json(std::string(mf.begin(), mf.end()), "mf.json");
    ASSERT_NE(mj.get("length_ratio_mean"), nullptr);
    EXPECT_GE(mj.get("length_ratio_mean")->num, 1.0 - 1e-9);  // a path is never shorter than its chord
    EXPECT_EQ(mj.get("per_pair")->arr.size(), 2u);
    EXPECT_EQ(mj.get("t")->arr.size(), 5u);
    const auto svg = read_file(b.dir + "/mf.svg");
    EXPECT_NE(std::string(svg.begin(), svg.end()).find("</svg>"), std::string::npos);
    const Tensor strip = read_image(b.dir + "/mf.png");
    EXPECT_EQ(strip.dim(2), 64);
    EXPECT_EQ(strip.dim(3), 6 * 32);
  }
  ASSERT_EQ(b.run("analyze filters --images " + b.dir + "/imgs -o " + b.dir + "/basis.png --json " + b.dir +
                  "/basis.json --overlap " + b.dir + "/ov.png" + M), 0) << b.err();
  strict(b.dir + "/basis.json");
  {
    const Tensor basis = read_image(b.dir + "/basis.png");  // 16 channels of 48² tiles, 4 × 4 with 2-pixel gaps
    EXPECT_EQ(basis.dim(2), 4 * 50 + 2);
    EXPECT_EQ(basis.dim(3), 4 * 50 + 2);
    const auto bj = read_file(b.dir + "/basis.json");
    EXPECT_EQ(parse_json(std::string(bj.begin(), bj.end()), "basis.json").get("channels")->arr.size(), 16u);
  }
  EXPECT_EQ(b.run("analyze filters -o " + b.dir + "/basis.png --channels 999" + M), 2);
  EXPECT_EQ(b.run("analyze manifold --data " + b.dir + "/imgs --crop 64 --json " + b.dir + "/x.json" + M), 1);
  EXPECT_NE(b.err().find("smaller than --crop"), std::string::npos) << b.err();
  // analyze gap on a model whose amortised encoder is deliberately poor (its last analysis layer's
  // bias shifted by 0.4, so y rounds to the wrong side often): SGA recovers part of the RD cost, so
  // the gap is positive.
  {
    auto poor = tiny();
    for (auto& [n, t] : poor->named_parameters())
      if (n == "g_a.conv4.bias")
        for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] += 0.4f;
    poor->finalize();
    nn::save_model(b.dir + "/poor.ntcm", *poor, nn::WeightFormat::F32);
    fs::create_directories(b.dir + "/gapimgs");
    write_image(b.dir + "/gapimgs/a.png", picture(64, 96));
    ASSERT_EQ(b.run("analyze gap --model " + b.dir + "/poor.ntcm --data " + b.dir + "/gapimgs --sga 150 --json " + b.dir +
                    "/gap.json"), 0) << b.err();
    strict(b.dir + "/gap.json");
    const auto g = read_file(b.dir + "/gap.json");
    const Json gj = parse_json(std::string(g.begin(), g.end()), "gap.json");
    EXPECT_GT(gj.get("gap_percent")->num, 0.0);
    EXPECT_LT(gj.get("sga_rd")->num, gj.get("amortised_rd")->num);
  }
  std::ofstream(b.dir + "/r.json") << R"({"name": "r\"ef", "bpp": [0.2, 0.5, 1, 2], "psnr_rgb": [27, 30, 33, 36]})";
  std::ofstream(b.dir + "/t.json") << R"({"bpp": [0.18, 0.45, 0.9, 1.8], "psnr_rgb": [27, 30, 33, 36]})";
  ASSERT_EQ(b.run("bdrate " + b.dir + "/r.json " + b.dir + "/t.json --json"), 0) << b.err();
  strict(b.dir + "/out.txt");
  ASSERT_EQ(b.run("flops --config two_layer_syn --json"), 0) << b.err();
  strict(b.dir + "/out.txt");
  const int demo = b.run("demo --steps 5");  // 1 when 5 steps gain too little PSNR; the JSON is out either way
  EXPECT_TRUE(demo == 0 || demo == 1) << b.err();
  strict(b.dir + "/out.txt");
  const std::string cfg = b.dir + "/t.cfg";
  std::ofstream(cfg) << kCfg;
  fs::create_directories(b.dir + "/train");
  write_image(b.dir + "/train/a.png", picture(64, 96));
  ASSERT_EQ(b.run("train --config " + cfg + " --data " + b.dir + "/train --lambda 0.01 --steps 20 --crop 64 --batch 1 --out " +
                  b.dir + "/run"), 0) << b.err();
  strict(b.dir + "/run/log.jsonl");
  ASSERT_EQ(b.run("train --info --out " + b.dir + "/run"), 0) << b.err();
  strict(b.dir + "/out.txt");
}

}  // namespace
}  // namespace ntc
