#include "nn/compress.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "codec/container.h"
#include "codec/rans.h"
#include "lib/alloc.h"
#include "lib/common.h"
#include "lib/gemm.h"
#include "lib/ops/ops.h"
#include "nn/transforms.h"

namespace ntc::nn {
namespace {

Tensor gain(const Tensor& v, const Tensor& g) { return g.defined() ? mul(v, g) : v; }

double bits_of(const Tensor& p) {
  double b = 0;
  for (int64_t i = 0; i < p.numel(); ++i) b -= std::log2(double(p.data()[i]));
  return b;
}

}  // namespace

Tensor to_uint8_range(const Tensor& v) {
  Tensor r = Tensor::empty(v.shape());
  for (int64_t i = 0; i < v.numel(); ++i) r.data()[i] = std::clamp(std::nearbyint(v.data()[i]), 0.f, 255.f);
  return r;
}

namespace {
// Between the stages of coding a large image (at least kReleasePixels) the allocator's cache is
// emptied: each stage's bands reuse their own buffers, but blocks cached by one stage rarely fit
// the next one's sizes, and a 24-megapixel encode would otherwise hold twice its live tensors.
constexpr int64_t kReleasePixels = int64_t(4) << 20;
std::atomic<int64_t> g_budget_divisor{1};
void end_of_stage(int64_t pixels) {
  if (pixels * g_budget_divisor >= kReleasePixels) mem_release_cache();
}
int64_t budget(int64_t bytes) { return bytes / g_budget_divisor; }

// Latent rows of context a band of a shallow synthesis needs beyond its own rows, above and below:
// the two-layer synthesis (k13 s8 then k5 s2) reaches 2 latent rows up and 1 down, the JPEG-like
// one (k18 s16) 1 each way; 3 is a margin that band_rows = 1 in the tests checks.
constexpr int64_t kHalo = 3;
// x̂ in model units to a pixel value: Model::postprocess's (x + ½)·255, rounded and clipped as
// to_uint8_range does, in one step (the same floats, one fresh image buffer fewer).
inline float pixel_of(float x) { return std::clamp(std::nearbyint((x + 0.5f) * 255.f), 0.f, 255.f); }
// The whole image's x̂ (padded) to pixels, cropped to h × w.
Tensor pixels_of(const Tensor& x_hat, int64_t h, int64_t w) {
  const int64_t P = x_hat.dim(0) * x_hat.dim(1), H = x_hat.dim(2), W = x_hat.dim(3);
  NTC_CHECK(h <= H && w <= W, "synthesize: crop ", h, "x", w, " from ", shape_str(x_hat.shape()));
  Tensor out = Tensor::empty({x_hat.dim(0), x_hat.dim(1), h, w});
  for (int64_t p = 0; p < P; ++p)
    for (int64_t i = 0; i < h; ++i) {
      const float* src = x_hat.data() + (p * H + i) * W;
      float* dst = out.data() + (p * h + i) * w;
      for (int64_t j = 0; j < w; ++j) dst[j] = pixel_of(src[j]);
    }
  return out;
}
bool banded_synthesis(const Model& m) {
  const std::string s = m.config().str("synthesis", "");
  return s == "two_layer" || s == "two_layer_res" || s == "jpeg_like";
}

// Equal bands of at most `most` rows over `rows` (the last band is not a sliver with full halos).
int64_t equal_band_rows(int64_t rows, int64_t most) {
  const int64_t bands = (rows + most - 1) / most;
  return (rows + bands - 1) / bands;
}

// Whether one band's window would already cover all `rows` rows: then one whole pass instead.
bool one_window(int64_t rows, int64_t band_rows) { return band_rows + 2 * kHalo >= rows; }

// Calls f(a, b, s0, window) for bands [a, b) of `band_rows` rows covering rows [0, used) of x (not
// one_window); window is the band's input: rows [s0, s0 + band + 2 halos), shifted inward at the
// edges, so every band has the same shape and its buffers come back from the allocator's cache.
template <class F>
void for_each_band(const Tensor& x, int64_t band_rows, int64_t used, F&& f) {
  const int64_t rows = x.dim(2), cols = x.dim(3), C = x.dim(1), height = band_rows + 2 * kHalo;
  for (int64_t a = 0; a < used; a += band_rows) {
    const int64_t s0 = std::clamp<int64_t>(a - kHalo, 0, rows - height);
    Tensor window = Tensor::empty({1, C, height, cols});
    for (int64_t c = 0; c < C; ++c)
      std::copy_n(x.data() + (c * rows + s0) * cols, height * cols, window.data() + c * height * cols);
    f(a, std::min(rows, a + band_rows), s0, window);
  }
}
}  // namespace

Tensor synthesize(Model& m, const Tensor& y, int64_t h, int64_t w, int64_t band_rows) {
  NoGrad ng;
  const int64_t Hy = y.dim(2), Wy = y.dim(3);
  const int64_t pad = m.downsampling(), f = pad / m.y_shape(pad, pad)[2];  // pixels per latent row (16)
  if (!banded_synthesis(m)) return pixels_of(m.g_s()(y), h, w);
  if (band_rows <= 0)  // about 150 bytes of tensors per window pixel (measured with ntc_two_layer)
    band_rows = equal_band_rows(Hy, std::max<int64_t>(8, budget(kSynthesisBandBytes) / (Wy * f * f * 150) - 2 * kHalo));
  if (one_window(Hy, band_rows)) return pixels_of(m.g_s()(y), h, w);
  Tensor out = Tensor::empty({1, 3, h, w});
  for_each_band(y, band_rows, (h + f - 1) / f, [&](int64_t a, int64_t b, int64_t s0, const Tensor& yb) {
    const Tensor xb = m.g_s()(yb);  // rows s0·f … of the whole image's x̂
    const int64_t Hb = xb.dim(2), Wb = xb.dim(3), r1 = std::min(h, b * f);
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t r = a * f; r < r1; ++r) {
        const float* src = xb.data() + (c * Hb + (r - s0 * f)) * Wb;
        float* dst = out.data() + (c * h + r) * w;
        for (int64_t j = 0; j < w; ++j) dst[j] = pixel_of(src[j]);
      }
  });
  return out;
}

Tensor hyper_synthesize(Model& m, const Tensor& z, int64_t band_rows) {
  NoGrad ng;
  const int64_t Hz = z.dim(2), Wz = z.dim(3);
  if (m.config().str("hyper_synthesis", "") != "hyper") return (*m.h_s())(z);
  const int64_t pad = m.downsampling();
  const int64_t up = m.y_shape(pad, pad)[2] / m.z_shape(pad, pad)[2];  // latent rows per hyper-latent row (4)
  const int64_t out_c = 2 * int64_t(m.latent_channels());
  if (band_rows <= 0)  // the last layer's columns dominate: about 16·2M floats per latent position of a window
    band_rows = equal_band_rows(Hz, std::max<int64_t>(4, budget(kSynthesisBandBytes) / (Wz * up * up * out_c * 16 * 4) - 2 * kHalo));
  if (one_window(Hz, band_rows)) return (*m.h_s())(z);
  const int64_t Ho = Hz * up, Wo = Wz * up;
  Tensor out = Tensor::empty({1, out_c, Ho, Wo});
  for_each_band(z, band_rows, Hz, [&](int64_t a, int64_t b, int64_t s0, const Tensor& zb) {
    const Tensor hb = (*m.h_s())(zb);  // latent rows s0·up … of the whole h_s output
    const int64_t Hb = hb.dim(2);
    for (int64_t c = 0; c < out_c; ++c)
      std::copy_n(hb.data() + (c * Hb + (a - s0) * up) * Wo, (b - a) * up * Wo, out.data() + (c * Ho + a * up) * Wo);
  });
  return out;
}

void set_band_budget_divisor(int64_t divisor) { g_budget_divisor = std::max<int64_t>(1, divisor); }

Model::Gains gains_for_stream(const Model& m, double lambda) {
  const bool vr = !m.rate_lambdas().empty();
  if (vr != (lambda > 0)) fail(vr ? "this variable-rate model needs a λ" : "this model has a fixed rate (no λ)");
  return vr ? m.gains_for(float(lambda)) : Model::Gains{};  // float: what the stream stores
}

namespace {
// Runs a purely convolutional transform t whose output row o reads input rows [F·o − up, F·o + down]
// (reach) on windows of `height` output rows' worth of input, bands of band_rows output rows each
// (windows shifted inward at the edges, so all are alike and reuse their buffers), and returns the
// whole output. window(r0, rows) gives input rows [r0, r0 + rows). Every output element gets the
// same products in the same order as in one pass (under PortableProducts: tests/test_compress.cc).
// Output rows of context a band needs above and below its own: the window of output rows
// [a − above, b + below) reads input rows from F·(a − above) ≤ F·a − up to F·(b + below) − 1 ≥
// F·(b − 1) + down.
struct Halo {
  int64_t above, below;
  Halo(RowReach r, int64_t F) : above((r.up + F - 1) / F), below(std::max(r.down, 0) / F) {}
  int64_t rows() const { return above + below; }
};

template <class Window>
Tensor run_in_bands(Module& t, int64_t out_rows, int64_t F, RowReach reach, int64_t band_rows, Window&& window) {
  const Halo halo(reach, F);
  const int64_t above = halo.above, height = std::min(out_rows, band_rows + halo.rows());
  Tensor out;
  for (int64_t a = 0; a < out_rows; a += band_rows) {
    const int64_t b = std::min(out_rows, a + band_rows), s0 = std::clamp<int64_t>(a - above, 0, out_rows - height);
    const Tensor ob = t(window(s0 * F, height * F));  // output rows s0 … s0 + height
    const int64_t C = ob.dim(1), W = ob.dim(3);
    if (!out.defined()) out = Tensor::empty({1, C, out_rows, W});
    for (int64_t c = 0; c < C; ++c)
      std::copy_n(ob.data() + (c * height + (a - s0)) * W, (b - a) * W, out.data() + (c * out_rows + a) * W);
  }
  return out;
}

}  // namespace

Tensor analysis(Model& m, const Tensor& image, int64_t band_rows) {
  NTC_CHECK(image.ndim() == 4 && image.dim(0) == 1 && image.dim(1) == 3, "compress: image ", shape_str(image.shape()));
  NoGrad ng;
  const RowReach reach = analysis_row_reach(m.config());
  if (!reach.ok) return m.g_a()(m.preprocess(image));
  // ntc's kernel whatever --gemm says (OpenBLAS's summation order can depend on the matrix sizes,
  // so a window would not give the whole pass's bits): y is the same for every band size, back
  // end, thread count and x86-64 target.
  PortableProducts portable;
  const int64_t f = m.downsampling(), F = m.latent_stride();
  const int64_t Hp = (image.dim(2) + f - 1) / f * f, Wp = (image.dim(3) + f - 1) / f * f, Hy = Hp / F;
  const int64_t halo = Halo(reach, F).rows();
  if (band_rows <= 0)
    band_rows = equal_band_rows(Hy, std::max<int64_t>(4, budget(kAnalysisBandBytes) / (Wp * F * kAnalysisBytesPerPixel) - halo));
  if (band_rows + halo >= Hy) return m.g_a()(m.preprocess(image));
  Tensor y = run_in_bands(m.g_a(), Hy, F, reach, band_rows,
                          [&](int64_t r0, int64_t rows) { return m.preprocess_rows(image, r0, rows); });
  end_of_stage(image.dim(2) * image.dim(3));
  return y;
}

Tensor hyper_analysis(Model& m, const Tensor& y, int64_t band_rows) {
  NoGrad ng;
  const RowReach reach = hyper_analysis_row_reach(m.config());
  if (!reach.ok) return (*m.h_a())(y);
  PortableProducts portable;  // as in analysis(): the same z for every band size and back end
  const int64_t Hy = y.dim(2), Wy = y.dim(3), C = y.dim(1), F = m.downsampling() / m.latent_stride(), Hz = Hy / F;
  const int64_t halo = Halo(reach, F).rows();
  if (band_rows <= 0)  // an estimate, not measured: about 12 floats per latent channel and position of a window
    band_rows = equal_band_rows(Hz, std::max<int64_t>(4, budget(kAnalysisBandBytes) / (Wy * F * C * 12 * 4) - halo));
  if (band_rows + halo >= Hz) return (*m.h_a())(y);
  return run_in_bands(*m.h_a(), Hz, F, reach, band_rows, [&](int64_t r0, int64_t rows) {
    Tensor w = Tensor::empty({1, C, rows, Wy});
    for (int64_t c = 0; c < C; ++c) std::copy_n(y.data() + (c * Hy + r0) * Wy, rows * Wy, w.data() + c * rows * Wy);
    return w;
  });
}

Latents analyze(Model& m, const Tensor& image, double lambda) {
  NTC_CHECK(image.ndim() == 4 && image.dim(0) == 1 && image.dim(1) == 3, "compress: image ", shape_str(image.shape()));
  return latents_at(m, analysis(m, image), lambda);
}

Latents latents_at(Model& m, const Tensor& y, double lambda) {
  NoGrad ng;
  const Model::Gains G = gains_for_stream(m, lambda);
  Latents l;
  l.y = gain(y, G.y);
  if (m.hyperprior()) l.z = gain(hyper_analysis(m, l.y), G.z);
  return l;
}

Tensor decoded_latents(Model& m, const Latents& l, double lambda) {
  NTC_CHECK(m.finalized(), "decoded_latents: the model has no entropy tables (finalize it)");
  NoGrad ng;
  PortableProducts portable;
  const Model::Gains G = gains_for_stream(m, lambda);
  auto& eb = m.entropy_bottleneck();
  if (!m.hyperprior()) return gain(eb.quantize(l.y), G.y_inv);
  PortableWinograd winograd(true);  // as encode_latents() writes streams
  const Tensor mu = slice_channels(hyper_synthesize(m, gain(eb.quantize(l.z), G.z_inv)), 0, m.latent_channels());
  return gain(add(round_ste(sub(l.y, mu)), mu), G.y_inv);
}

Encoded encode_latents(Model& m, const Latents& l, int64_t H, int64_t W, uint64_t model_hash, double lambda,
                       bool winograd_hs) {
  NTC_CHECK(m.finalized(), "compress: the model has no entropy tables (finalize it)");
  NoGrad ng;
  PortableProducts portable;  // h_s and g_s exactly as every decoder computes them (lib/gemm.h)
  const Model::Gains G = gains_for_stream(m, lambda);
  const int M = m.latent_channels();
  Encoded e;
  codec::Container c;
  c.model_hash = model_hash;
  c.height = uint32_t(H);
  c.width = uint32_t(W);
  Tensor y_hat;
  auto& eb = m.entropy_bottleneck();
  if (m.hyperprior()) {
    codec::RansEncoder ez;
    eb.encode(l.z, ez);
    c.sections.push_back(ez.finish());
    const Tensor z_hat = eb.quantize(l.z);
    e.est_bits += bits_of(eb.likelihood(z_hat));
    if (winograd_hs) c.flags |= codec::kFlagWinogradHyperSynthesis;
    Tensor hs;
    {
      PortableWinograd winograd(winograd_hs);
      hs = hyper_synthesize(m, gain(z_hat, G.z_inv));
    }
    const Tensor mu = slice_channels(hs, 0, M), r = slice_channels(hs, M, M);
    hs = Tensor();
    end_of_stage(H * W);
    const auto idx = m.gaussian_conditional().indexes(r);
    codec::RansEncoder ey;
    m.gaussian_conditional().encode(l.y, mu, idx, ey);
    c.sections.push_back(ey.finish());
    y_hat = add(round_ste(sub(l.y, mu)), mu);
    for (int c0 = 0; c0 < M; c0 += 16) {  // a few channels at a time, not 8 tensors of y's size
      const int n = std::min(16, M - c0);
      e.est_bits += bits_of(codec::GaussianConditional::likelihood(
          slice_channels(y_hat, c0, n), m.gaussian_conditional().scales(slice_channels(r, c0, n)), slice_channels(mu, c0, n)));
    }
  } else {
    codec::RansEncoder ey;
    eb.encode(l.y, ey);
    c.sections.push_back(ey.finish());
    y_hat = eb.quantize(l.y);
    e.est_bits += bits_of(eb.likelihood(y_hat));
  }
  if (!m.rate_lambdas().empty()) {
    const float lam = float(lambda);
    std::vector<uint8_t> b(4);
    std::memcpy(b.data(), &lam, 4);
    c.sections.push_back(b);
  }
  e.bytes = codec::write_container(c);
  const Tensor y_syn = gain(y_hat, G.y_inv);
  y_hat = Tensor();
  end_of_stage(H * W);
  e.recon = synthesize(m, y_syn, H, W);
  end_of_stage(H * W);
  return e;
}

double lambda_for_quality(const Model& m, double quality) {
  const auto& ls = m.rate_lambdas();
  if (ls.empty()) fail("this model has a fixed rate: a quality does not apply");
  if (!(quality >= 0 && quality <= 100)) fail("quality wants 0..100");
  return ls.front() * std::pow(ls.back() / ls.front(), quality / 100.0);
}

Encoded compress(Model& m, const Tensor& image, uint64_t model_hash, double lambda, bool winograd_hs) {
  return encode_latents(m, analyze(m, image, lambda), image.dim(2), image.dim(3), model_hash, lambda, winograd_hs);
}

Tensor decompress(Model& m, const uint8_t* data, size_t size, uint64_t model_hash, int64_t max_pixels,
                  DecodeStages* stages) {
  auto clock = [] { return std::chrono::steady_clock::now(); };
  auto t = clock();
  auto lap = [&](double DecodeStages::*f) {
    if (!stages) return;
    const auto now = clock();
    stages->*f += std::chrono::duration<double, std::milli>(now - t).count();
    t = now;
  };
  NTC_CHECK(m.finalized(), "decompress: the model has no entropy tables (finalize it)");
  const codec::Container c = codec::read_container(data, size);
  if (c.model_hash != model_hash) {
    char a[17], b[17];  // hexadecimal, as `ntc info` prints them
    std::snprintf(a, sizeof a, "%016llx", (unsigned long long)c.model_hash);
    std::snprintf(b, sizeof b, "%016llx", (unsigned long long)model_hash);
    fail("this stream was made with another model (stream model hash ", a, ", this model ", b, ")");
  }
  if (int64_t(c.width) * int64_t(c.height) > max_pixels)
    fail("the stream declares a ", c.width, "x", c.height, " image, more than the limit of ", max_pixels,
         " pixels (--max-pixels raises it)");
  const bool vr = !m.rate_lambdas().empty();
  const size_t want = (m.hyperprior() ? 2 : 1) + (vr ? 1 : 0);
  if (c.sections.size() != want) fail("corrupt ntc stream: ", c.sections.size(), " sections, the model needs ", want);
  NoGrad ng;
  PortableProducts portable;  // the same bits on every target, thread count and --gemm (lib/gemm.h)
  Model::Gains G;
  if (vr) {
    if (c.sections.back().size() != 4) fail("corrupt ntc stream: bad rate section");
    float lam;
    std::memcpy(&lam, c.sections.back().data(), 4);
    if (!std::isfinite(lam) || !(lam > 0)) fail("corrupt ntc stream: bad λ");
    G = m.gains_for(lam);
  }
  const int64_t f = m.downsampling(), M = m.latent_channels();
  const int64_t Hp = (int64_t(c.height) + f - 1) / f * f, Wp = (int64_t(c.width) + f - 1) / f * f;
  Tensor y_hat;
  auto decoder = [](const std::vector<uint8_t>& s) { return codec::RansDecoder(s.data(), s.data() + s.size()); };
  // Each section must be long enough for its symbols (codec::stream_can_hold) before it is decoded:
  // z from the factorized prior's tables, y from the scale indexes (before g_s, the costly part).
  auto need_room = [](const std::vector<uint8_t>& s, double bits, const char* what) {
    if (!codec::stream_can_hold(s.size(), bits))
      fail("corrupt ntc stream: the ", what, " section has ", s.size(), " bytes, fewer than its symbols need (",
           int64_t(std::ceil(bits / 8)), ")");
  };
  auto eb_bits = [&](const Shape& shape) {
    double per_position = 0;
    for (const auto& t : m.entropy_bottleneck().tables()) per_position += t.min_bits();
    return per_position * double(numel_of(shape) / shape[1]);
  };
  if (m.hyperprior()) {
    need_room(c.sections[0], eb_bits(m.z_shape(Hp, Wp)), "z");
    codec::RansDecoder dz = decoder(c.sections[0]);
    const Tensor z_hat = m.entropy_bottleneck().decode(m.z_shape(Hp, Wp), dz);
    dz.finish();
    lap(&DecodeStages::z_ms);
    Tensor hs;
    {
      PortableWinograd winograd((c.flags & codec::kFlagWinogradHyperSynthesis) != 0);  // as the encoder's
      hs = hyper_synthesize(m, gain(z_hat, G.z_inv));
    }
    const Tensor mu = slice_channels(hs, 0, M), r = slice_channels(hs, M, M);
    const std::vector<int32_t> idx = m.gaussian_conditional().indexes(r);
    lap(&DecodeStages::hs_ms);
    double y_bits = 0;
    for (int32_t i : idx) y_bits += m.gaussian_conditional().tables()[size_t(i)].min_bits();
    need_room(c.sections[1], y_bits, "y");
    codec::RansDecoder dy = decoder(c.sections[1]);
    y_hat = m.gaussian_conditional().decode(mu, idx, dy);
    dy.finish();
    lap(&DecodeStages::y_ms);
  } else {
    need_room(c.sections[0], eb_bits(m.y_shape(Hp, Wp)), "y");
    codec::RansDecoder dy = decoder(c.sections[0]);
    y_hat = m.entropy_bottleneck().decode(m.y_shape(Hp, Wp), dy);
    dy.finish();
    lap(&DecodeStages::y_ms);
  }
  const Tensor y_syn = gain(y_hat, G.y_inv);
  y_hat = Tensor();
  end_of_stage(int64_t(c.height) * c.width);
  Tensor x = synthesize(m, y_syn, c.height, c.width);
  end_of_stage(int64_t(c.height) * c.width);
  lap(&DecodeStages::gs_ms);
  return x;
}

}  // namespace ntc::nn
