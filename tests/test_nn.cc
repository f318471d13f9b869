// The paper's transforms and models: parameter counts and FLOPs against SPEC §1.8/§5.2, output
// shapes on odd sizes, the two-layer synthesis against its test vector through the Module, and
// model files (round trip, fp16, corruption, mismatch).
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>

#include "codec/container.h"
#include "lib/framed.h"
#include "lib/common.h"
#include "lib/ops/ops.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "nn/model_file.h"
#include "nn/profile.h"
#include "nn/transforms.h"

#include <map>
#include <set>

namespace ntc::nn {
namespace {

bool have_configs() { return std::ifstream(data_dir() + "/configs/jpegl.cfg").good(); }

std::unique_ptr<Model> make(const std::string& name, uint64_t seed = 1) {
  auto m = std::make_unique<Model>(Config::load(name));
  Rng rng(seed);
  m->init(rng);
  return m;
}

TEST(Models, ParameterCountsMatchPaper) {
  if (!have_configs()) GTEST_SKIP() << "configs not found in " << data_dir();
  struct Want {
    const char* cfg;
    int64_t f, g, f_h, g_h;
  };
  // SPEC §1.2–1.5, §1.8 (results/all_params.csv of mandt-lab/shallow-ntc).
  const Want want[] = {{"jpegl", 7337792, 311043, 6042560, 9166240},
                       {"two_layer_syn", 7337792, 1299003, 6042560, 9166240},
                       {"two_layer_syn2", 5345088, 1300347, 6042560, 9166240},
                       {"mbt2018", 3505664, 3505347, 6042560, 9166240},
                       {"bls2017", 3471104, 3471107, 0, 0}};
  for (const auto& w : want) {
    Model m(Config::load(w.cfg));
    EXPECT_EQ(m.g_a().num_parameters(), w.f) << w.cfg;
    EXPECT_EQ(m.g_s().num_parameters(), w.g) << w.cfg;
    EXPECT_EQ(m.h_a() ? m.h_a()->num_parameters() : 0, w.f_h) << w.cfg;
    EXPECT_EQ(m.h_s() ? m.h_s()->num_parameters() : 0, w.g_h) << w.cfg;
    EXPECT_EQ(m.downsampling(), m.hyperprior() ? 64 : 16) << w.cfg;
  }
}

// hyper_synthesis.channels sets the two inner widths of the hyper-synthesis; the campaign's
// family fits the 8 MB limit on model files in f16 (under 4M parameters).
TEST(Models, HyperSynthesisWidthsAndShippedFamilySize) {
  const std::string base = "latent_channels = 32\nhyper_channels = 8\nanalysis = cnn\nanalysis.channels_base = 8\n"
                           "synthesis = jpeg_like\nhyper_analysis = hyper\nhyper_synthesis = hyper\n";
  Model m(Config::parse(base + "hyper_synthesis.channels = 12,20\n"));
  // deconv1 8→12 k5, deconv2 12→20 k5, deconv3 20→64 k3, with biases.
  EXPECT_EQ(m.h_s()->num_parameters(), (8 * 12 * 25 + 12) + (12 * 20 * 25 + 20) + (20 * 64 * 9 + 64));
  Model d(Config::parse(base));  // default widths M, 1.5M
  EXPECT_EQ(d.h_s()->num_parameters(), (8 * 32 * 25 + 32) + (32 * 48 * 25 + 48) + (48 * 64 * 9 + 64));
  EXPECT_THROW(Model(Config::parse(base + "hyper_synthesis.channels = 12\n")), Error);
  EXPECT_THROW(Model(Config::parse(base + "hyper_synthesis.channels = 12,0\n")), Error);
  if (!have_configs()) GTEST_SKIP() << "configs not found in " << data_dir();
  Model f(Config::load("ntc_two_layer"));
  EXPECT_LT(f.num_parameters(), 3'990'000);
  EXPECT_TRUE(f.log_gains());
  // The JPEG-like family is the same model with a linear synthesis: every other parameter has the
  // two-layer family's name and shape, so `ntc derive` copies all of them.
  Model j(Config::load("ntc_jpeg_like"));
  EXPECT_TRUE(j.log_gains());
  std::map<std::string, Shape> two;
  for (const auto& [n, t] : f.named_parameters()) two[n] = t.shape();
  int64_t shared = 0;
  for (const auto& [n, t] : j.named_parameters()) {
    if (n.rfind("g_s.", 0) == 0) continue;
    ASSERT_TRUE(two.count(n)) << n;
    EXPECT_EQ(two[n], t.shape()) << n;
    shared += t.numel();
  }
  EXPECT_EQ(shared + j.g_s().num_parameters(), j.num_parameters());
  EXPECT_EQ(j.g_s().num_parameters(), 192 * 3 * 18 * 18 + 3);
}

TEST(Models, ParameterNamesAreSemantic) {
  if (!have_configs()) GTEST_SKIP() << "configs not found in " << data_dir();
  Model m(Config::load("two_layer_syn"));
  std::set<std::string> names;
  for (auto& [n, t] : m.named_parameters()) EXPECT_TRUE(names.insert(n).second) << "duplicate " << n;
  for (const char* n : {"g_a.conv1.weight", "g_a.res1.0.c2.bias", "g_a.attn2.trunk.2.c3.weight", "g_a.attn4.gate.bias",
                        "h_a.conv3.weight", "h_s.deconv3.bias", "g_s.base.weight", "g_s.act.gamma", "g_s.res.bias",
                        "g_s.out.weight", "eb.matrices.2", "eb.factors.1"})
    EXPECT_TRUE(names.count(n)) << n;
}

// SPEC §5.2: flops_per_pixel.csv of mandt-lab/shallow-ntc at 512×768, to the last digit.
TEST(Models, FlopsPerPixelMatchPaper) {
  if (!have_configs()) GTEST_SKIP() << "configs not found in " << data_dir();
  for (auto [cfg, g] : {std::pair{"jpegl", 2433.0}, std::pair{"two_layer_syn", 10680.00119}}) {
    auto m = make(cfg);
    ModelProfile p = profile_model(*m, 512, 768, false);
    EXPECT_DOUBLE_EQ(p.per_pixel(p.flops("f")), 510845.5) << cfg;
    EXPECT_DOUBLE_EQ(p.per_pixel(p.flops("f_h")), 13451.640625) << cfg;
    EXPECT_DOUBLE_EQ(p.per_pixel(p.flops("g_h")), 30354.6875) << cfg;
    EXPECT_NEAR(p.per_pixel(p.flops("g")), g, 1e-5) << cfg;
    for (const auto& part : p.parts) {  // the table's rows add up to the part
      int64_t sum = 0;
      for (const auto& r : part.layers) sum += r.leaf ? r.flops : r.self_flops;
      EXPECT_EQ(sum, part.flops) << cfg << " " << part.key;
    }
  }
}

TEST(Models, OutputShapesOnOddSizes) {
  if (!have_configs()) GTEST_SKIP() << "configs not found in " << data_dir();
  NoGrad ng;
  for (const char* cfg : {"jpegl", "two_layer_syn", "two_layer_syn2", "mbt2018", "bls2017"}) {
    auto m = make(cfg);
    for (auto [h, w] : {std::pair{1, 1}, std::pair{17, 33}, std::pair{511, 769}}) {
      if (h == 511 && std::string(cfg) != "jpegl" && std::string(cfg) != "bls2017") continue;  // time
      Rng rng(2);
      Tensor img = Tensor::uniform({1, 3, h, w}, 0, 255, rng);
      Tensor x = m->preprocess(img);
      const int64_t f = m->downsampling();
      ASSERT_EQ(x.dim(2), (h + f - 1) / f * f) << cfg;
      ASSERT_EQ(x.dim(3), (w + f - 1) / f * f) << cfg;
      Tensor y = m->g_a()(x);
      EXPECT_EQ(y.shape(), (Shape{1, m->latent_channels(), x.dim(2) / 16, x.dim(3) / 16})) << cfg;
      if (m->hyperprior()) {
        Tensor z = (*m->h_a())(y);
        EXPECT_EQ(z.shape(), (Shape{1, m->latent_channels(), x.dim(2) / 64, x.dim(3) / 64})) << cfg;
        Tensor hs = (*m->h_s())(z);
        EXPECT_EQ(hs.shape(), (Shape{1, 2 * m->latent_channels(), y.dim(2), y.dim(3)})) << cfg;
      }
      Tensor xh = m->g_s()(y);
      EXPECT_EQ(xh.shape(), x.shape()) << cfg;
      EXPECT_EQ(m->postprocess(xh, h, w).shape(), img.shape()) << cfg << " " << h << "x" << w;
    }
  }
}

TEST(Models, ReflectPadMirrorsWithoutRepeatingTheEdge) {
  Tensor x = Tensor::from({1, 1, 1, 3}, {1, 2, 3});
  EXPECT_EQ(reflect_pad(x, 1, 8).to_vector(), (std::vector<float>{1, 2, 3, 2, 1, 2, 3, 2}));
  Tensor one = Tensor::from({1, 1, 1, 1}, {5});
  EXPECT_EQ(reflect_pad(one, 2, 2).to_vector(), (std::vector<float>{5, 5, 5, 5}));
}

TEST(Models, UnknownKeysAndTransformsAreErrors) {
  EXPECT_THROW(Model(Config::parse("analysis = elic\nsynthesis = jpeg_like\nhyper_analysis = hyper\n"
                                   "hyper_synthesis = hyper\nsynthesis.kernal = 18\n")),
               Error);
  EXPECT_THROW(Model(Config::parse("analysis = elic\nsynthesis = nope\nhyper_analysis = hyper\nhyper_synthesis = hyper\n")),
               Error);
  EXPECT_THROW(Config::parse("analysis elic\n"), Error);
  EXPECT_THROW(Config::load("no_such_config"), Error);
}

// The paper's two-layer synthesis as built from its config, on the test vector's small shapes.
TEST(Models, TwoLayerResSynthesisMatchesTestVector) {
  const char* env = std::getenv("NTC_TESTVECTORS");
  const std::string dir = std::string(env && *env ? env : "../shared/testvectors") + "/two_layer_res_synthesis";
  auto load = [&](const std::string& name, size_t n) {
    std::ifstream f(dir + "/" + name + ".bin", std::ios::binary);
    std::vector<float> v(n);
    f.read(reinterpret_cast<char*>(v.data()), std::streamsize(4 * n));
    return f ? v : std::vector<float>();
  };
  if (load("y", 1 * 16 * 3 * 4).empty()) GTEST_SKIP() << "test vector not found: " << dir;
  Config cfg = Config::parse("synthesis = two_layer_res\nsynthesis.channels = 6\n");
  auto g = build_transform(cfg, "synthesis", "g_s", 16);
  for (auto& [name, t] : g->named_parameters()) {
    std::string key = name.substr(4);  // drop "g_s."
    if (key.rfind("act.", 0) == 0) key = "gdn." + key.substr(4);
    std::vector<float> v = load(key, size_t(t.numel()));
    ASSERT_FALSE(v.empty()) << key;
    if (key.rfind("gdn.", 0) == 0)  // the vector stores effective values; the module raw ones
      for (float& e : v) e = nonneg_reparam_init(e);
    std::memcpy(t.data(), v.data(), v.size() * 4);
  }
  NoGrad ng;
  Tensor xh = (*g)(Tensor::from({1, 16, 3, 4}, load("y", 192)));
  std::vector<float> want = load("x_hat", 3 * 48 * 64);
  ASSERT_EQ(xh.numel(), int64_t(want.size()));
  double mx = 0;
  for (float v : want) mx = std::max(mx, double(std::fabs(v)));
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(xh.data()[i], want[i], 1e-4 * std::fabs(want[i]) + 1e-5 * mx) << i;
}

class ModelFile : public ::testing::Test {
 protected:
  void SetUp() override {
    // A small model so that the file tests stay fast.
    cfg_ = "name = tiny\nlatent_channels = 16\nanalysis = cnn\nanalysis.channels_base = 8\nanalysis.activation = gdn\n"
           "synthesis = two_layer_res\nsynthesis.channels = 6\nhyper_analysis = hyper\nhyper_synthesis = hyper\n";
    model_ = std::make_unique<Model>(Config::parse(cfg_));
    Rng rng(4);
    model_->init(rng);
    model_->finalize();
  }
  std::vector<float> decode_out(Model& m) {
    NoGrad ng;
    Rng rng(5);
    Tensor x = m.preprocess(Tensor::uniform({1, 3, 40, 70}, 0, 255, rng));
    Tensor y = m.g_a()(x);
    std::vector<float> a = m.g_s()(y).to_vector(), b = (*m.h_s())((*m.h_a())(y)).to_vector();
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }
  std::string cfg_;
  std::unique_ptr<Model> model_;
};

TEST_F(ModelFile, Fp32RoundTripIsExact) {
  auto bytes = serialize_model(*model_, WeightFormat::F32);
  auto m2 = deserialize_model(bytes.data(), bytes.size());
  EXPECT_EQ(decode_out(*m2), decode_out(*model_));
  EXPECT_EQ(m2->entropy_bottleneck().medians(), model_->entropy_bottleneck().medians());
  EXPECT_EQ(serialize_model(*m2, WeightFormat::F32), bytes);  // tables stored, not recomputed
}

TEST_F(ModelFile, Fp16StorageIsStableAndClose) {
  auto bytes = serialize_model(*model_, WeightFormat::F16);
  auto m2 = deserialize_model(bytes.data(), bytes.size());
  EXPECT_EQ(serialize_model(*m2, WeightFormat::F16), bytes);
  auto a = decode_out(*model_), b = decode_out(*m2);
  double mx = 0, err = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    mx = std::max(mx, double(std::fabs(a[i])));
    err = std::max(err, double(std::fabs(a[i] - b[i])));
  }
  EXPECT_LT(err, 5e-3 * mx);
  // Two bytes saved per parameter, nothing else changes.
  EXPECT_EQ(serialize_model(*model_, WeightFormat::F32).size() - bytes.size(), size_t(2 * model_->num_parameters()));
}

// A weight that is not finite (inf, NaN; in f32 or f16, in the 8-wide conversion or its tail) is
// refused on load, naming the tensor.
TEST_F(ModelFile, NonFiniteWeightsAreRefused) {
  const auto params = model_->named_parameters();
  auto it = std::find_if(params.begin(), params.end(), [](const auto& p) { return p.second.numel() > 40; });
  ASSERT_NE(it, params.end());
  const Tensor& t = it->second;
  for (WeightFormat fmt : {WeightFormat::F32, WeightFormat::F16})
    for (int64_t k : {int64_t(3), int64_t(17), t.numel() - 1})
      for (float bad : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::quiet_NaN()}) {
        const float keep = t.data()[k];
        t.data()[k] = bad;
        const auto bytes = serialize_model(*model_, fmt);
        t.data()[k] = keep;
        try {
          deserialize_model(bytes.data(), bytes.size());
          ADD_FAILURE() << "loaded a model with " << bad << " at " << k;
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find(it->first), std::string::npos) << e.what();
        }
      }
  const auto bytes = serialize_model(*model_, WeightFormat::F16);
  EXPECT_NO_THROW(deserialize_model(bytes.data(), bytes.size()));
}

TEST_F(ModelFile, SaveIsAtomicAndLoadable) {
  const std::string path = ::testing::TempDir() + "/ntc_model_test.ntcm";
  save_model(path, *model_, WeightFormat::F32);
  auto m2 = load_model(path);
  EXPECT_EQ(decode_out(*m2), decode_out(*model_));
  std::remove(path.c_str());
  EXPECT_THROW(load_model(path), Error);
}

TEST_F(ModelFile, CorruptionAndTruncationAreErrors) {
  auto bytes = serialize_model(*model_, WeightFormat::F16);
  for (size_t n : {size_t(0), size_t(3), size_t(11), bytes.size() / 2, bytes.size() - 1})
    EXPECT_THROW(deserialize_model(bytes.data(), n), Error) << "truncated to " << n;
  Rng rng(6);
  for (int i = 0; i < 200; ++i) {
    auto t = bytes;
    t[size_t(rng.next_u64() % t.size())] ^= uint8_t(1 + rng.next_u64() % 255);
    EXPECT_THROW(deserialize_model(t.data(), t.size()), Error);
  }
}

// A file whose embedded config disagrees with its tensors (valid CRC) is rejected by name/shape.
TEST_F(ModelFile, MismatchedConfigIsRejected) {
  auto bytes = serialize_model(*model_, WeightFormat::F32);
  std::string text(bytes.begin() + 12, bytes.begin() + 12 + long(cfg_.size()));
  ASSERT_EQ(text, cfg_);
  for (auto [from, to] : {std::pair{"channels_base = 8", "channels_base = 9"}, std::pair{"channels = 6", "channels = 7"}}) {
    std::string bad = cfg_;
    bad.replace(bad.find(from), std::strlen(from), to);
    auto t = bytes;
    std::copy(bad.begin(), bad.end(), t.begin() + 12);
    const uint32_t crc = crc32(t.data(), t.size() - 4);
    std::memcpy(t.data() + t.size() - 4, &crc, 4);
    try {
      deserialize_model(t.data(), t.size());
      ADD_FAILURE() << "accepted " << to;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("shape"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace ntc::nn

namespace ntc::nn {
namespace {
// The Gaussian table count is checked before any table is read: 65 (with a 65th table appended
// and a valid CRC) and 63 are both rejected by name.
TEST_F(ModelFile, GaussianTableCountIsCheckedFirst) {
  auto bytes = serialize_model(*model_, WeightFormat::F16);
  size_t tables = 0;
  for (const auto& t : model_->gaussian_conditional().tables()) tables += 8 + 2 * (t.cdf.size() - 1);
  const size_t count_at = bytes.size() - 4 - tables - 4;
  uint32_t count;
  std::memcpy(&count, bytes.data() + count_at, 4);
  ASSERT_EQ(count, 64u);
  for (uint32_t n : {65u, 63u, 0xFFFFFFFFu}) {
    auto t = bytes;
    std::memcpy(t.data() + count_at, &n, 4);
    if (n == 65) {  // append a copy of the last table so that a reader could find 65
      const size_t last = 8 + 2 * (model_->gaussian_conditional().tables().back().cdf.size() - 1);
      t.insert(t.end() - 4, t.end() - 4 - long(last), t.end() - 4);
    }
    const uint32_t crc = crc32(t.data(), t.size() - 4);
    std::memcpy(t.data() + t.size() - 4, &crc, 4);
    try {
      deserialize_model(t.data(), t.size());
      ADD_FAILURE() << "accepted " << n << " Gaussian tables";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("Gaussian tables"), std::string::npos) << e.what();
    }
  }
}
}  // namespace
}  // namespace ntc::nn

namespace ntc::nn {
namespace {
// A model file's config may not ask for more parameters than the file can hold (2 bytes each at
// least): a few hundred bytes of config asking for gigabytes are refused before the allocation,
// as is a shape whose element count overflows.
TEST_F(ModelFile, ConfigCannotDemandMoreThanTheFileHolds) {
  auto bytes = serialize_model(*model_, WeightFormat::F16);
  for (const std::string& bad :
       {std::string("latent_channels = 4096\nanalysis = cnn\nanalysis.channels_base = 4000\nsynthesis = jpeg_like\n"
                    "hyper_analysis = hyper\nhyper_synthesis = hyper\n"),
        std::string("latent_channels = 16\nanalysis = cnn\nanalysis.channels_base = 8\nsynthesis = jpeg_like\n"
                    "synthesis.kernel = 100000\nhyper_analysis = hyper\nhyper_synthesis = hyper\n")}) {
    std::vector<uint8_t> t(bytes.begin(), bytes.begin() + 8);
    const uint32_t n = uint32_t(bad.size());
    t.insert(t.end(), reinterpret_cast<const uint8_t*>(&n), reinterpret_cast<const uint8_t*>(&n) + 4);
    t.insert(t.end(), bad.begin(), bad.end());
    t.insert(t.end(), bytes.begin() + 12 + long(cfg_.size()), bytes.end());
    const uint32_t crc = crc32(t.data(), t.size() - 4);
    std::memcpy(t.data() + t.size() - 4, &crc, 4);
    const auto t0 = std::chrono::steady_clock::now();
    try {
      deserialize_model(t.data(), t.size(), "bomb.ntcm");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind("bomb.ntcm", 0), 0u) << what;
      EXPECT_TRUE(what.find("more parameters than the file holds") != std::string::npos ||
                  what.find("out of range") != std::string::npos)
          << what;
    }
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  }
}
}  // namespace
}  // namespace ntc::nn
