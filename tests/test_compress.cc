// Images through .ntc streams: the decoder reproduces the encoder's reconstruction exactly, with
// any thread count; streams of another model, truncated or damaged streams are errors; a
// variable-rate model codes any λ in its range.
#include <gtest/gtest.h>

#include <cstring>

#include <chrono>

#include "codec/container.h"
#include "lib/alloc.h"
#include "codec/gaussian_conditional.h"
#include "kernels/kernels.h"
#include "lib/gemm.h"
#include "lib/threads.h"
#include "tests/targets.h"

#include <cmath>

#include "lib/common.h"
#include "lib/ops/ops.h"
#include "lib/threads.h"
#include "nn/compress.h"
#include "nn/model.h"
#include "nn/transforms.h"

namespace ntc::nn {
namespace {

const char* kCfg =
    "name = tiny\nlatent_channels = 16\nanalysis = cnn\nanalysis.channels_base = 16\nanalysis.activation = gdn\n"
    "synthesis = two_layer_res\nsynthesis.channels = 6\nhyper_analysis = hyper\nhyper_synthesis = hyper\n";

std::unique_ptr<Model> tiny(const std::string& extra = "", uint64_t seed = 3) {
  auto m = std::make_unique<Model>(Config::parse(std::string(kCfg) + extra));
  Rng rng(seed);
  m->init(rng);
  for (auto& [n, t] : m->named_parameters())  // move off the identity-like init a little
    if (n.rfind("gain", 0) != 0)
      for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] *= 1.f + 0.1f * (rng.uniform() - 0.5f);
  m->finalize();
  return m;
}

Tensor picture(int h, int w, uint64_t seed) {
  Rng rng(seed);
  Tensor t = Tensor::empty({1, 3, h, w});
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = std::nearbyint(128 + 100 * std::sin(0.05 * double(i % w)) * rng.uniform());
  return t;
}

// Streams of both h_s forms: flag 1 (the portable Winograd form of h_s's stride-1 3×3 layer, which
// every stream is written with now) and flag 0 (the direct form of earlier streams), each decoded
// as its encoder computed it.
TEST(Compress, DecoderReproducesEncoderExactlyAnyThreads) {
  auto m = tiny();
  for (bool winograd : {true, false})
    for (auto [h, w] : {std::pair{1, 1}, std::pair{37, 90}, std::pair{130, 70}}) {
      Tensor img = picture(h, w, 1);
      Encoded e = compress(*m, img, 42, 0, winograd);
      EXPECT_GT(e.bytes.size(), 24u);
      EXPECT_EQ(e.bytes[5], winograd ? codec::kFlagWinogradHyperSynthesis : 0);  // the flags byte
      for (int threads : {1, 2, 3}) {
        set_num_threads(threads);
        Tensor d = decompress(*m, e.bytes.data(), e.bytes.size(), 42);
        EXPECT_EQ(d.to_vector(), e.recon.to_vector()) << h << "x" << w << ", " << threads << " threads, flag " << winograd;
      }
      set_num_threads(0);
      EXPECT_EQ(e.recon.shape(), img.shape());
    }
}

// hyper_channels: z narrower than y (CompressAI's N < M), variable rate so gain.z has Z columns.
TEST(Compress, NarrowHyperLatentRoundTrips) {
  auto m = tiny("hyper_channels = 10\nrate.lambdas = 0.004, 0.03\n");
  EXPECT_EQ(m->hyper_channels(), 10);
  EXPECT_EQ(m->z_shape(64, 64)[1], 10);
  for (auto& [n, t] : m->named_parameters()) {
    if (n == "gain.z") {
      EXPECT_EQ(t.shape(), (Shape{2, 10}));
    }
    if (n == "gain.y") {
      EXPECT_EQ(t.shape(), (Shape{2, 16}));
    }
  }
  Tensor img = picture(70, 90, 4);
  Encoded e = compress(*m, img, 7, 0.01);
  EXPECT_EQ(decompress(*m, e.bytes.data(), e.bytes.size(), 7).to_vector(), e.recon.to_vector());
}

// Trained gains can cross zero; interpolation must stay finite and hit the ends.
TEST(Compress, GainInterpolationHandlesNegativeGains) {
  EXPECT_NEAR(interpolate_gain(0.5, 2.0, 0.5), 1.0, 1e-12);
  EXPECT_NEAR(interpolate_gain(-0.5, -2.0, 0.5), -1.0, 1e-12);
  EXPECT_NEAR(interpolate_gain(-0.5, 1.5, 0.5), 0.5, 1e-12);
  EXPECT_NEAR(interpolate_gain(0.0, 1.5, 0.25), 0.375, 1e-12);
  for (double t : {0.0, 1e-7, 0.3, 1 - 1e-7, 1.0}) {
    const double v = interpolate_gain(-0.002, 0.7, t);
    EXPECT_TRUE(std::isfinite(v));
  }
  EXPECT_DOUBLE_EQ(interpolate_gain(-0.3, 0.7, 0.0), -0.3);
  EXPECT_DOUBLE_EQ(interpolate_gain(-0.3, 0.7, 1.0), 0.7);
  // A variable-rate model with a gain that changed sign between rate points still codes every λ
  // in range (the float λ of a stream is never exactly a rate point).
  auto m = tiny("rate.lambdas = 0.004, 0.03\n");
  for (auto& [n, t] : m->named_parameters())
    if (n == "gain.z") {
      t.data()[3] = -0.01f;  // rate point 0, channel 3
      t.data()[16 + 5] = -0.02f;  // rate point 1, channel 5
    }
  m->finalize();
  Tensor img = picture(64, 64, 6);
  for (double lam : {0.004, 0.01, 0.03}) {
    Encoded e = compress(*m, img, 9, lam);
    EXPECT_EQ(decompress(*m, e.bytes.data(), e.bytes.size(), 9).to_vector(), e.recon.to_vector()) << lam;
  }
}

TEST(Compress, ActualBitsCloseToTheEstimate) {
  auto m = tiny();
  Tensor img = picture(128, 192, 2);
  Encoded e = compress(*m, img, 1);
  const double bits = 8.0 * double(e.bytes.size());
  // Header (≈ 40 bytes), CDF quantisation and index rounding make real streams a little larger.
  EXPECT_GT(bits, 0.8 * e.est_bits);
  EXPECT_LT(bits, 1.25 * e.est_bits + 400);
}

TEST(Compress, BadStreamsAreErrors) {
  auto m = tiny();
  Encoded e = compress(*m, picture(40, 50, 3), 7);
  EXPECT_THROW(decompress(*m, e.bytes.data(), e.bytes.size(), 8), Error);  // another model
  for (size_t n = 0; n < e.bytes.size(); n += 7) EXPECT_THROW(decompress(*m, e.bytes.data(), n, 7), Error);
  Rng rng(4);
  for (int i = 0; i < 300; ++i) {
    auto t = e.bytes;
    t[size_t(rng.next_u64() % t.size())] ^= uint8_t(1 + rng.next_u64() % 255);
    EXPECT_THROW(decompress(*m, t.data(), t.size(), 7), Error);
  }
}

// Mutations behind a valid CRC (the container is rewritten, so the checksum passes and the deep
// checks are reached): dimensions, λ, section lengths and contents, symbol data. Each decodes to
// an image of the declared size or is a one-line ntc::Error, quickly and never with a crash.
// Banded synthesis (nn::synthesize): bands of 1, 2, 3 and 5 latent rows give the very bytes of one
// whole-image pass, for the shallow syntheses, on odd sizes; and the bands bound the memory.
TEST(Compress, BandedSynthesisIsExactAndBoundsMemory) {
  const char* syn[] = {"synthesis = two_layer\nsynthesis.channels = 12\nsynthesis.kernels = 13,5\nsynthesis.strides = 8,2\n"
                       "synthesis.activation = igdn\n",
                       "synthesis = two_layer_res\nsynthesis.channels = 6\n", "synthesis = jpeg_like\n"};
  for (const char* sc : syn) {
    Model m(Config::parse(std::string("latent_channels = 24\nanalysis = cnn\nanalysis.channels_base = 8\n") + sc +
                          "hyper_analysis = hyper\nhyper_synthesis = hyper\n"));
    Rng rng(31);
    m.init(rng);
    for (auto& [n, t] : m.named_parameters())
      for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] *= 1.f + 0.2f * (rng.uniform() - 0.5f);
    PortableProducts portable;
    for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{17, 70}, {130, 33}, {100, 150}, {1, 1}, {64, 16}}) {
      const int64_t Hy = (h + 15) / 16, Wy = (w + 15) / 16;
      Tensor y = Tensor::empty({1, 24, Hy, Wy});
      for (int64_t i = 0; i < y.numel(); ++i) y.data()[i] = std::nearbyint(6 * (rng.uniform() - 0.5f));
      const std::vector<float> whole = synthesize(m, y, h, w, 1 << 30).to_vector();
      ASSERT_EQ(whole.size(), size_t(3 * h * w));
      for (int64_t band : {1, 2, 3, 5})
        EXPECT_EQ(synthesize(m, y, h, w, band).to_vector(), whole) << sc << h << "x" << w << ", bands of " << band;
    }
  }
  // The hyper-synthesis in bands of hyper-latent rows: the same (μ, r) as one pass.
  {
    Model m(Config::parse(std::string("latent_channels = 24\nhyper_channels = 12\nanalysis = cnn\nanalysis.channels_base = 8\n") +
                          syn[0] + "hyper_analysis = hyper\nhyper_synthesis = hyper\n"));
    Rng rng(33);
    m.init(rng);
    for (auto& [n, t] : m.named_parameters())
      for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] *= 1.f + 0.2f * (rng.uniform() - 0.5f);
    PortableProducts portable;
    for (bool winograd : {false, true})  // both forms of the stride-1 3×3 layer (stream flag 1)
    for (auto [hz, wz] : std::vector<std::pair<int64_t, int64_t>>{{9, 3}, {13, 5}, {17, 1}, {4, 4}}) {
      PortableWinograd form(winograd);
      Tensor z = Tensor::empty({1, 12, hz, wz});
      for (int64_t i = 0; i < z.numel(); ++i) z.data()[i] = std::nearbyint(6 * (rng.uniform() - 0.5f));
      const std::vector<float> whole = hyper_synthesize(m, z, 1 << 30).to_vector();
      NoGrad ng;
      ASSERT_EQ(whole, (*m.h_s())(z).to_vector());
      for (int64_t band : {1, 2, 3})
        EXPECT_EQ(hyper_synthesize(m, z, band).to_vector(), whole) << "h_s " << hz << "x" << wz << ", bands of " << band;
    }
  }
  // Memory: bands of 2 latent rows of a 1024 × 256 image work in far less than the whole pass.
  Model m(Config::parse(std::string("latent_channels = 24\nanalysis = cnn\nanalysis.channels_base = 8\n") + syn[0] +
                        "hyper_analysis = hyper\nhyper_synthesis = hyper\n"));
  Rng rng(32);
  m.init(rng);
  Tensor y = Tensor::empty({1, 24, 64, 16});
  for (int64_t i = 0; i < y.numel(); ++i) y.data()[i] = std::nearbyint(6 * (rng.uniform() - 0.5f));
  PortableProducts portable;
  auto peak = [&](int64_t band) {
    mem_reset_peak();
    const size_t base = mem_stats().in_use;
    (void)synthesize(m, y, 1024, 256, band);
    return mem_stats().peak_in_use - base;
  };
  // Both hold the output image (3 MB); beyond it, the bands' working memory is a fraction of the
  // whole pass's.
  const size_t out = size_t(3) * 1024 * 256 * sizeof(float);
  const size_t whole = peak(1 << 30), banded = peak(2);
  ASSERT_GT(banded, out);
  EXPECT_LT((banded - out) * 4, whole - out) << banded << " bytes in bands, " << whole << " whole, both with the "
                                             << out << "-byte output";
}

// The analysis in bands of latent rows, each from a window of image rows with its receptive field:
// the same y as one pass, for every purely convolutional analysis, band size and GEMM back end.
TEST(Compress, BandedAnalysisIsExactAndBoundsMemory) {
  const char* ana[] = {"analysis = cnn\nanalysis.channels_base = 8\nanalysis.activation = gdn\n",
                       "analysis = cnn\nanalysis.channels_base = 8\nanalysis.kernel = 7\n",
                       "analysis = mbt2018\nanalysis.channels_base = 8\n", "analysis = bls2017\n"};
  for (const char* ac : ana) {
    Model m(Config::parse(std::string("latent_channels = 16\n") + ac +
                          "synthesis = jpeg_like\nhyper_analysis = hyper\nhyper_synthesis = hyper\n"));
    ASSERT_TRUE(analysis_row_reach(m.config()).ok) << ac;
    Rng rng(41);
    m.init(rng);
    for (auto& [n, t] : m.named_parameters())
      for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] *= 1.f + 0.2f * (rng.uniform() - 0.5f);
    for (GemmBackend gb : {GemmBackend::Ntc, GemmBackend::OpenBLAS}) {
      set_gemm_backend(gb);
      for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{130, 33}, {200, 70}, {17, 70}, {1, 1}, {4099, 17}}) {
        const Tensor img = Tensor::uniform({1, 3, h, w}, 0, 255, rng);
        NoGrad ng;
        std::vector<float> whole;
        {
          PortableProducts portable;
          whole = m.g_a()(m.preprocess(img)).to_vector();
        }
        ASSERT_EQ(analysis(m, img, 1 << 30).to_vector(), whole);
        for (int64_t band : {1, 2, 3, 5}) {
          if (h > 1000 && band != 3) continue;  // time
          EXPECT_EQ(analysis(m, img, band).to_vector(), whole) << ac << h << "x" << w << ", bands of " << band;
        }
      }
    }
    set_gemm_backend(GemmBackend::Auto);
  }
  // The hyper-analysis in bands of hyper-latent rows: the same z as one pass.
  for (const char* ha : {"hyper", "hyper_small"}) {
    Model m(Config::parse(std::string("latent_channels = 16\nhyper_channels = 8\nanalysis = cnn\nanalysis.channels_base = 8\n"
                                      "synthesis = jpeg_like\nhyper_synthesis = hyper\nhyper_analysis = ") + ha + "\n"));
    ASSERT_TRUE(hyper_analysis_row_reach(m.config()).ok) << ha;
    Rng rng(43);
    m.init(rng);
    for (GemmBackend gb : {GemmBackend::Ntc, GemmBackend::OpenBLAS}) {
      set_gemm_backend(gb);
      for (auto [hy, wy] : std::vector<std::pair<int64_t, int64_t>>{{36, 5}, {52, 12}, {4, 4}, {12, 1}}) {
        const Tensor y = Tensor::uniform({1, 16, hy, wy}, -3, 3, rng);
        NoGrad ng;
        std::vector<float> whole;
        {
          PortableProducts portable;
          whole = (*m.h_a())(y).to_vector();
        }
        ASSERT_EQ(hyper_analysis(m, y, 1 << 30).to_vector(), whole);
        for (int64_t band : {1, 2, 3})
          EXPECT_EQ(hyper_analysis(m, y, band).to_vector(), whole) << ha << " " << hy << "x" << wy << ", bands of " << band;
      }
    }
    set_gemm_backend(GemmBackend::Auto);
  }
  // The ELIC analysis (attention) has no stated reach: it runs in one pass.
  EXPECT_FALSE(analysis_row_reach(Config::parse("analysis = elic\n")).ok);
  // Memory: bands of 2 latent rows of a 2048 × 128 image hold far less than the whole pass.
  Model m(Config::parse(std::string("latent_channels = 16\n") + ana[0] +
                        "synthesis = jpeg_like\nhyper_analysis = hyper\nhyper_synthesis = hyper\n"));
  Rng rng(42);
  m.init(rng);
  const Tensor img = Tensor::uniform({1, 3, 2048, 128}, 0, 255, rng);
  auto peak = [&](int64_t band) {
    mem_reset_peak();
    const size_t base = mem_stats().in_use;
    (void)analysis(m, img, band);
    return mem_stats().peak_in_use - base;
  };
  const size_t whole = peak(1 << 30), banded = peak(2);
  EXPECT_LT(banded * 4, whole) << banded << " bytes in bands, " << whole << " whole";
}

// The automatic banding end to end: with the band budgets scaled down (as a 24-megapixel photo
// meets the real ones), a tall image encodes to the same stream and decodes to the same image as
// in one pass, in a fraction of the tensor memory.
TEST(Compress, LargeImagesAreCodedInBandsWithinBoundedMemory) {
  auto m = tiny();
  const Tensor img = picture(2048, 320, 5);
  auto run = [&](int64_t divisor, std::vector<uint8_t>* bytes, std::vector<float>* recon) {
    set_band_budget_divisor(divisor);
    mem_release_cache();
    mem_reset_peak();
    const size_t base = mem_stats().in_use;
    const Encoded e = compress(*m, img, 7);
    *bytes = e.bytes;
    *recon = decompress(*m, e.bytes.data(), e.bytes.size(), 7).to_vector();
    EXPECT_EQ(*recon, e.recon.to_vector());
    set_band_budget_divisor(1);
    return mem_stats().peak_in_use - base;
  };
  std::vector<uint8_t> b1, b2;
  std::vector<float> r1, r2;
  const size_t whole = run(1, &b1, &r1), banded = run(1 << 10, &b2, &r2);
  EXPECT_EQ(b2, b1);
  EXPECT_EQ(r2, r1);
  EXPECT_LT(banded * 2, whole) << banded << " bytes in bands, " << whole << " in one pass";
}

// A few bytes cannot ask for a canvas of symbols: a valid stream whose header is made to declare a
// much larger image (CRC recomputed) is refused before its sections are decoded, because they
// cannot hold that many symbols (codec::stream_can_hold).
TEST(Compress, SectionsTooShortForTheirSymbolsAreRefusedBeforeDecoding) {
  auto m = tiny();
  const Encoded e = compress(*m, picture(64, 64, 4), 9);
  codec::Container c = codec::read_container(e.bytes.data(), e.bytes.size());
  for (uint32_t side : {1024u, 4096u}) {
    c.height = c.width = side;
    const std::vector<uint8_t> big = codec::write_container(c);
    try {
      decompress(*m, big.data(), big.size(), 9);
      ADD_FAILURE() << side << "²: decoded";
    } catch (const Error& err) {
      EXPECT_NE(std::string(err.what()).find("fewer than its symbols need"), std::string::npos) << err.what();
    }
  }
  // The bound is one a real stream always meets: every min_bits() is a true lower bound.
  for (const auto& t : m->gaussian_conditional().tables()) EXPECT_GE(t.min_bits(), 0.0);
  const Tensor d = decompress(*m, e.bytes.data(), e.bytes.size(), 9);
  EXPECT_EQ(d.to_vector(), e.recon.to_vector());
}

TEST(Compress, MutationsBehindAValidCrcReachTheDeepChecks) {
  auto m = tiny("rate.lambdas = 0.004, 0.03\n");
  const Encoded e = compress(*m, picture(40, 50, 3), 7, 0.01);
  const codec::Container c0 = codec::read_container(e.bytes.data(), e.bytes.size());
  ASSERT_EQ(c0.sections.size(), 3u);
  Rng rng(9);
  int decoded = 0, errors = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int trial = 0; trial < 400; ++trial) {
    codec::Container c = c0;
    switch (trial % 8) {
      case 0: c.height = uint32_t(1 + rng.next_u64() % 300); break;
      case 1: c.width = uint32_t(1 + rng.next_u64() % 300); break;
      case 2: {  // λ: any 32-bit pattern (NaN, negative, out of the model's range, in range)
        const uint32_t bits = uint32_t(rng.next_u64());
        std::memcpy(c.sections[2].data(), &bits, 4);
        break;
      }
      case 3: c.sections[size_t(rng.next_u64() % 2)].resize(size_t(rng.next_u64() % 40)); break;  // truncated
      case 4: {  // appended garbage
        auto& s = c.sections[size_t(rng.next_u64() % 2)];
        for (int k = 0; k < 1 + int(rng.next_u64() % 16); ++k) s.push_back(uint8_t(rng.next_u64()));
        break;
      }
      case 5:
      case 6: {  // flipped symbol data
        auto& s = c.sections[size_t(rng.next_u64() % 2)];
        if (!s.empty()) s[size_t(rng.next_u64() % s.size())] ^= uint8_t(1 + rng.next_u64() % 255);
        break;
      }
      case 7: std::swap(c.sections[0], c.sections[1]); break;
    }
    const std::vector<uint8_t> bytes = codec::write_container(c);
    try {
      const Tensor d = decompress(*m, bytes.data(), bytes.size(), 7);
      EXPECT_EQ(d.shape(), (Shape{1, 3, int64_t(c.height), int64_t(c.width)})) << "trial " << trial;
      for (int64_t i = 0; i < d.numel(); ++i) ASSERT_TRUE(d.data()[i] >= 0 && d.data()[i] <= 255);
      ++decoded;
    } catch (const Error& err) {
      EXPECT_EQ(std::string(err.what()).find('\n'), std::string::npos) << err.what();
      ++errors;
    }
  }
  EXPECT_GT(errors, 100);  // most mutations are caught ...
  EXPECT_GT(decoded, 0);   // ... and some (a λ in range, a smaller canvas) are valid streams
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60.0);
}

// rate.gains = log: the parameters are log-gains, every gain is positive whatever the parameter,
// init starts at sqrt(λ_l / λ_mid), interpolation is geometric, and gradients reach the log-gains.
TEST(Compress, LogParametrisedGainsArePositiveAndGeometric) {
  auto m = tiny("rate.lambdas = 0.004, 0.01, 0.025\nrate.gains = log\n");
  ASSERT_TRUE(m->log_gains());
  const double mid = std::sqrt(0.004 * 0.025);
  EXPECT_NEAR(m->gains_at(0).y.data()[2], std::sqrt(0.004 / mid), 1e-6);
  EXPECT_NEAR(m->gains_at(2).z_inv.data()[7], 1 / std::sqrt(0.025 / mid), 1e-6);
  for (auto& [n, t] : m->named_parameters())
    if (n == "gain.z")
      for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = i % 2 ? -3.f : 0.5f;  // negative log-gains
  const Model::Gains g0 = m->gains_at(0), g1 = m->gains_at(1);
  EXPECT_NEAR(g0.z.data()[1], std::exp(-3.0), 1e-7);
  EXPECT_NEAR(g0.z.data()[0], std::exp(0.5), 1e-6);
  for (auto& [n, t] : m->named_parameters())
    if (n == "gain.y") {
      t.data()[0] = std::log(0.5f);     // rate point 0, channel 0
      t.data()[16] = std::log(2.0f);    // rate point 1, channel 0
    }
  EXPECT_NEAR(m->gains_for(std::sqrt(0.004 * 0.01)).y.data()[0], 1.0, 1e-6);
  EXPECT_NEAR(m->gains_for(0.01).y.data()[0], 2.0, 1e-6);
  for (double lam : {0.004, 0.006, 0.01, 0.02, 0.025}) {
    const Model::Gains g = m->gains_for(lam);
    for (const Tensor* t : {&g.y, &g.y_inv, &g.z, &g.z_inv})
      for (int64_t i = 0; i < t->numel(); ++i) EXPECT_GT(t->data()[i], 0.f) << lam;
  }
  // d gain / d log-gain = gain.
  Tensor s = sum(g1.y);
  s.backward();
  for (auto& [n, t] : m->named_parameters())
    if (n == "gain.y") {
      ASSERT_TRUE(t.has_grad());
      EXPECT_NEAR(t.grad()[16 + 3], g1.y.data()[3], 1e-6);
      EXPECT_EQ(t.grad()[3], 0.f);  // another rate point
    }
  EXPECT_THROW(Model(Config::parse(std::string(kCfg) + "rate.lambdas = 0.004, 0.03\nrate.gains = exp\n")), Error);
  m->finalize();
  Tensor img = picture(64, 64, 5);
  for (double lam : {0.004, 0.008, 0.025}) {
    Encoded e = compress(*m, img, 9, lam);
    EXPECT_EQ(decompress(*m, e.bytes.data(), e.bytes.size(), 9).to_vector(), e.recon.to_vector()) << lam;
  }
}

TEST(Compress, VariableRateModelCodesAnyLambdaInRange) {
  auto m = tiny("rate.lambdas = 0.004, 0.01, 0.03\n");
  ASSERT_EQ(m->rate_lambdas().size(), 3u);
  // Distinct gains per rate point: low λ coarser (smaller gains), high λ finer.
  const float scale[3] = {0.5f, 1.f, 2.f};
  for (auto& [n, t] : m->named_parameters())
    if (n == "gain.y" || n == "gain.z")
      for (int l = 0; l < 3; ++l)
        for (int c = 0; c < 16; ++c) t.data()[l * 16 + c] = scale[l];
      else if (n == "gain.y_inv" || n == "gain.z_inv")
        for (int l = 0; l < 3; ++l)
          for (int c = 0; c < 16; ++c) t.data()[l * 16 + c] = 1 / scale[l];
  m->finalize();
  Model::Gains g = m->gains_for(0.004), mid = m->gains_for(std::sqrt(0.004 * 0.01));
  EXPECT_FLOAT_EQ(g.y.data()[0], 0.5f);
  EXPECT_NEAR(mid.y.data()[5], std::sqrt(0.5), 1e-6);
  EXPECT_NEAR(m->gains_for(0.03).z_inv.data()[3], 0.5, 1e-6);
  Tensor img = picture(64, 64, 5);
  size_t prev = 0;
  for (double lam : {0.004, 0.007, 0.01, 0.02, 0.03}) {
    Encoded e = compress(*m, img, 9, lam);
    Tensor d = decompress(*m, e.bytes.data(), e.bytes.size(), 9);
    EXPECT_EQ(d.to_vector(), e.recon.to_vector()) << "λ " << lam;
    EXPECT_GE(e.bytes.size(), prev) << "λ " << lam;  // finer quantisation, more bits
    prev = e.bytes.size();
  }
  EXPECT_THROW(compress(*m, img, 9, 0.1), Error);  // outside the trained range
  EXPECT_THROW(compress(*m, img, 9, 0), Error);    // a rate is required
  EXPECT_THROW(compress(*tiny(), img, 9, 0.01), Error);  // a fixed-rate model takes none
}

}  // namespace
}  // namespace ntc::nn

namespace ntc::nn {
namespace {

namespace portable {
// The decoder side (h_s, g_s) under PortableProducts: the same bits on every Highway FMA target,
// with the scalar twins, with --gemm openblas and with any thread count (lib/gemm.h). Without the
// scope, OpenBLAS and ntc's kernel differ in the last bits: the test can tell the two apart.
// winograd: h_s's stride-1 3×3 layer in the portable Winograd form (a stream's flag 1).
std::vector<float> run_decoder_side(Model& m, const Tensor& z_hat, const Tensor& y_hat, bool portable_scope,
                                    bool winograd = false) {
  NoGrad ng;
  std::unique_ptr<PortableProducts> scope;
  if (portable_scope) scope = std::make_unique<PortableProducts>();
  PortableWinograd form(winograd);
  std::vector<float> out = (*m.h_s())(z_hat).to_vector();
  const std::vector<float> x = m.g_s()(y_hat).to_vector();
  out.insert(out.end(), x.begin(), x.end());
  return out;
}
}  // namespace portable

// A hyperprior model with a two-layer synthesis (M = 96, Z = 48), its weights moved off the
// initialisation by ±10%; `rng` goes on to draw the test's latents.
std::unique_ptr<Model> decoder_test_model(Rng& rng) {
  const char* cfg =
      "latent_channels = 96\nhyper_channels = 48\nanalysis = cnn\nanalysis.channels_base = 16\n"
      "synthesis = two_layer\nsynthesis.channels = 24\nhyper_analysis = hyper\nhyper_synthesis = hyper\n"
      "scale_mode = tf_index\n";
  auto m = std::make_unique<Model>(Config::parse(cfg));
  m->init(rng);
  for (auto& [n, t] : m->named_parameters())
    for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] *= 1.f + 0.2f * (rng.uniform() - 0.5f);
  return m;
}

TEST(Compress, DecoderSideIsTheSameOnEveryTargetBackendAndThreadCount) {
  Rng rng(12);
  const std::unique_ptr<Model> mp = decoder_test_model(rng);
  Model& m = *mp;
  // A batch as wide as the threads: the work items run on OpenMP workers, which must keep the
  // calling thread's PortableProducts scope (lib/ops/items.h).
  Tensor z_hat = Tensor::empty({4, 48, 5, 7}), y_hat = Tensor::empty({4, 96, 20, 28});
  for (Tensor* t : {&z_hat, &y_hat})
    for (int64_t i = 0; i < t->numel(); ++i) t->data()[i] = std::nearbyint(6 * (rng.uniform() - 0.5f));
  // Both forms of h_s's stride-1 3×3 layer (streams with and without flag 1): each the same
  // everywhere. The Winograd form's blocks of tiles (42 of 140 per image here) are work items too.
  const std::vector<float> want = portable::run_decoder_side(m, z_hat, y_hat, true);
  const std::vector<float> want_w = portable::run_decoder_side(m, z_hat, y_hat, true, true);
  const int saved = num_threads();
  for (const int64_t target : test::simd_targets()) {
    if (target & (HWY_SSSE3 | HWY_SSE4)) continue;  // x86-64 builds of ntc need AVX2 (FMA)
    test::ForceTarget force(target);
    for (GemmBackend backend : {GemmBackend::Auto, GemmBackend::Ntc, GemmBackend::OpenBLAS})
      for (int threads : {1, 3}) {
        set_gemm_backend(backend);
        set_num_threads(threads);
        EXPECT_EQ(portable::run_decoder_side(m, z_hat, y_hat, true), want)
            << hwy::TargetName(target) << ", " << gemm_backend_name() << ", " << threads << " threads";
        EXPECT_EQ(portable::run_decoder_side(m, z_hat, y_hat, true, true), want_w)
            << "Winograd form, " << hwy::TargetName(target) << ", " << gemm_backend_name() << ", " << threads << " threads";
      }
  }
  const bool saved_ref0 = k::use_reference_kernels();  // on in the scalar build
  k::set_reference_kernels(true);  // (the twins take no packed panels: the Winograd form's plain GEMMs)
  set_gemm_backend(GemmBackend::Auto);
  EXPECT_EQ(portable::run_decoder_side(m, z_hat, y_hat, true), want) << "scalar twins";
  EXPECT_EQ(portable::run_decoder_side(m, z_hat, y_hat, true, true), want_w) << "scalar twins, Winograd form";
  k::set_reference_kernels(saved_ref0);
  set_num_threads(saved);
  // The two forms are two computations of one function: other last bits, the same values.
  ASSERT_EQ(want.size(), want_w.size());
  size_t differ = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    differ += want[i] != want_w[i];
    ASSERT_NEAR(want_w[i], want[i], 1e-4f * (1.f + std::fabs(want[i]))) << "element " << i;
  }
  EXPECT_GT(differ, 0u) << "the Winograd form gave the direct form's bits everywhere";
  // Outside the scope the back end shows.
  set_gemm_backend(GemmBackend::OpenBLAS);
  const std::vector<float> blas = portable::run_decoder_side(m, z_hat, y_hat, false);
  set_gemm_backend(GemmBackend::Auto);
  EXPECT_NE(blas, want);
}

// The encoder of a purely convolutional model (the analysis in bands, under PortableProducts)
// writes the same stream on every target, back end, thread count and band budget.
TEST(Compress, EncoderWritesTheSameStreamEverywhere) {
  auto m = tiny();
  const Tensor img = picture(150, 70, 9);
  const std::vector<uint8_t> want = compress(*m, img, 3).bytes;
  const Latents l0 = analyze(*m, img);
  const std::vector<float> want_y = l0.y.to_vector(), want_z = l0.z.to_vector();
  const int saved = num_threads();
  for (const int64_t target : test::simd_targets()) {
    if (target & (HWY_SSSE3 | HWY_SSE4)) continue;
    test::ForceTarget force(target);
    for (GemmBackend backend : {GemmBackend::Ntc, GemmBackend::OpenBLAS})
      for (int threads : {1, 3})
        for (int64_t divisor : {1, 1 << 14}) {
          set_gemm_backend(backend);
          set_num_threads(threads);
          set_band_budget_divisor(divisor);
          const std::string what = std::string(hwy::TargetName(target)) + ", " + gemm_backend_name() + ", " +
                                   std::to_string(threads) + " threads, budget / " + std::to_string(divisor);
          const Latents l = analyze(*m, img);  // the continuous latents, to the last bit
          EXPECT_EQ(l.y.to_vector(), want_y) << what;
          EXPECT_EQ(l.z.to_vector(), want_z) << what;
          EXPECT_EQ(compress(*m, img, 3).bytes, want) << what;
        }
  }
  set_band_budget_divisor(1);
  const bool saved_ref1 = k::use_reference_kernels();  // on in the scalar build
  k::set_reference_kernels(true);
  set_gemm_backend(GemmBackend::Auto);
  EXPECT_EQ(compress(*m, img, 3).bytes, want) << "scalar twins";
  k::set_reference_kernels(saved_ref1);
  set_num_threads(saved);
}

// Scale indexes right at the thresholds. The last h_s bias is tuned, channel by channel, until one
// r of every scale channel lies exactly on an index threshold (even channels) or on the float just
// below one (odd channels). A decoder side that is one ulp off there, in either direction, changes
// an index, and with it the whole rest of the stream: the indexes must be the same on every Highway
// target, GEMM back end and thread count, and with the scalar twins. (OpenBLAS outside the
// PortableProducts scope shows that the test can tell.)
void check_indexes_at_thresholds(bool winograd) {
  PortableWinograd form(winograd);  // h_s's last layer in either form a stream may name
  Rng rng(21);
  const std::unique_ptr<Model> mp = decoder_test_model(rng);
  Model& m = *mp;
  const int64_t M = 96;
  Tensor z_hat = Tensor::empty({1, 48, 4, 5});
  for (int64_t i = 0; i < z_hat.numel(); ++i) z_hat.data()[i] = std::nearbyint(8 * (rng.uniform() - 0.5f));
  auto r_of = [&](bool portable_scope) {
    NoGrad ng;
    std::unique_ptr<PortableProducts> scope;
    if (portable_scope) scope = std::make_unique<PortableProducts>();
    return slice_channels((*m.h_s())(z_hat), M, M);
  };
  Tensor bias;  // the last h_s layer's bias: [2M], μ then r
  for (auto& [n, t] : m.h_s()->named_parameters())
    if (n.size() >= 4 && n.compare(n.size() - 4, 4, "bias") == 0) bias = t;
  ASSERT_EQ(bias.numel(), 2 * M);
  const auto& th = codec::index_thresholds();
  const int64_t P = 16 * 20;  // positions per channel of r
  // With the r biases at 0, r is the products' sum alone. Each channel's tuned position is one
  // where that sum is in (0, 2), and its threshold one in [2, 4.2): then the bias lies in (0, T) and
  // its ulp is no coarser than T's, so some bias puts r exactly on T.
  for (int64_t c = 0; c < M; ++c) bias.data()[M + c] = 0;
  const Tensor r0 = r_of(true);
  std::vector<float> target(static_cast<size_t>(M));
  std::vector<int64_t> at(static_cast<size_t>(M), -1), tried(static_cast<size_t>(M), 0);
  auto place = [&](int64_t c) {  // the next candidate position of channel c; false when none is left
    for (int64_t& k = tried[size_t(c)]; k < P; ++k) {
      const int64_t p = (c * 37 + k) % P;
      const float v = r0.data()[c * P + p];
      if (v > 0 && v < 2 && p != at[size_t(c)]) {
        at[size_t(c)] = p;
        bias.data()[M + c] = target[size_t(c)] - v;
        return true;
      }
    }
    return false;
  };
  for (int64_t c = 0; c < M; ++c) {
    const float t = th[size_t(7 + (c * 11) % 56)];  // ln(7.5) ≈ 2.01 … ln(62.5) ≈ 4.14
    target[size_t(c)] = c % 2 ? std::nextafter(t, -INFINITY) : t;
    ASSERT_TRUE(place(c)) << "channel " << c << " has no position with a sum in (0, 2)";
  }
  // Then one ulp at a time until every r is on its mark. The bias enters the sum's rounding
  // chain, so a position may skip the mark; such a channel moves on to its next position.
  int hit = 0;
  for (int round = 0; round < 30 && hit < M; ++round) {
    std::vector<bool> on(size_t(M), false);
    for (int it = 0; it < 40 && hit < M; ++it) {
      const Tensor r = r_of(true);
      hit = 0;
      for (int64_t c = 0; c < M; ++c) {
        const float v = r.data()[c * P + at[size_t(c)]], want = target[size_t(c)];
        float& b = bias.data()[M + c];
        if ((on[size_t(c)] = v == want)) ++hit;
        else b = std::nextafter(b, v < want ? INFINITY : -INFINITY);
      }
    }
    for (int64_t c = 0; c < M && hit < M; ++c) {
      if (!on[size_t(c)]) {
        ASSERT_TRUE(place(c)) << "channel " << c << " ran out of positions";
      }
    }
  }
  const Tensor r_ref = r_of(true);
  const std::vector<int32_t> want = m.gaussian_conditional().indexes(r_ref);
  // One ulp at a tuned position changes its index (the test is sharp).
  for (int64_t c = 0; c < M; ++c) {
    Tensor one = Tensor::empty({1});
    one.data()[0] = std::nextafter(target[size_t(c)], c % 2 ? INFINITY : -INFINITY);
    ASSERT_NE(m.gaussian_conditional().indexes(one)[0], want[size_t(c * P + at[size_t(c)])]) << "channel " << c;
  }
  const int saved = num_threads();
  for (const int64_t target_isa : test::simd_targets()) {
    if (target_isa & (HWY_SSSE3 | HWY_SSE4)) continue;  // x86-64 builds of ntc need AVX2 (FMA)
    test::ForceTarget force(target_isa);
    for (GemmBackend backend : {GemmBackend::Auto, GemmBackend::Ntc, GemmBackend::OpenBLAS})
      for (int threads : {1, 2, 3}) {
        set_gemm_backend(backend);
        set_num_threads(threads);
        EXPECT_EQ(m.gaussian_conditional().indexes(r_of(true)), want)
            << hwy::TargetName(target_isa) << ", " << gemm_backend_name() << ", " << threads << " threads";
      }
  }
  const bool saved_ref2 = k::use_reference_kernels();  // on in the scalar build
  k::set_reference_kernels(true);
  set_gemm_backend(GemmBackend::Auto);
  EXPECT_EQ(m.gaussian_conditional().indexes(r_of(true)), want) << "scalar twins";
  k::set_reference_kernels(saved_ref2);
  set_num_threads(saved);
  // Another computation of r moves some tuned positions off their marks: for the direct form,
  // OpenBLAS outside the scope; for the Winograd form, the direct form (which a decoder would run
  // on a stream whose flag were lost).
  std::vector<int32_t> other;
  if (winograd) {
    PortableWinograd direct(false);
    other = m.gaussian_conditional().indexes(r_of(true));
  } else {
    set_gemm_backend(GemmBackend::OpenBLAS);
    other = m.gaussian_conditional().indexes(r_of(false));
    set_gemm_backend(GemmBackend::Auto);
  }
  int changed = 0;
  for (int64_t c = 0; c < M; ++c) changed += other[size_t(c * P + at[size_t(c)])] != want[size_t(c * P + at[size_t(c)])];
  EXPECT_GT(changed, 0) << "another computation of r gives the same indexes at every tuned position";
}

TEST(Compress, ScaleIndexesRightAtTheThresholdsAreTheSameEverywhere) { check_indexes_at_thresholds(false); }
TEST(Compress, ScaleIndexesRightAtTheThresholdsAreTheSameEverywhereWithWinograd) { check_indexes_at_thresholds(true); }

}  // namespace
}  // namespace ntc::nn
