// The overfitted codec's decoder, stream and shared arithmetic (nn/overfit.h; format:
// codec/BITSTREAM.md, "Overfitted streams").
#include "nn/overfit.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "codec/laplace.h"
#include "codec/rans.h"
#include "lib/alloc.h"
#include "lib/binio.h"
#include "lib/common.h"
#include "lib/framed.h"
#include "lib/ops/ops.h"

namespace ntc::nn::overfit {

const std::array<std::pair<int, int>, kContext> kContextOffsets = {{
    {-2, -2}, {-2, -1}, {-2, 0}, {-2, 1}, {-2, 2},                    //
    {-1, -3}, {-1, -2}, {-1, -1}, {-1, 0}, {-1, 1}, {-1, 2}, {-1, 3},  //
    {0, -4}, {0, -3}, {0, -2}, {0, -1},
}};
const char* const kGroupNames[kGroups] = {"arm weights", "arm biases", "synthesis weights", "synthesis biases",
                                          "upsampling taps"};

std::vector<std::pair<int, int>> context_offsets() { return {kContextOffsets.begin(), kContextOffsets.end()}; }

int64_t Arch::latent_count() const {
  int64_t n = 0;
  for (int l = 0; l < levels; ++l) n += grid_h(l) * grid_w(l);
  return n;
}

std::vector<ParamSpec> param_specs(const Arch& a) {
  const int64_t A = a.arm_hidden, S = a.syn_hidden, C = a.channels, L = a.levels;
  std::vector<ParamSpec> p = {{"arm.w1", {A, kContext, 1, 1}, 0}, {"arm.b1", {A}, 1},   {"arm.w2", {A, A, 1, 1}, 0},
                              {"arm.b2", {A}, 1},           {"arm.w3", {2, A, 1, 1}, 0}, {"arm.b3", {2}, 1},
                              {"syn.w1", {S, L, 1, 1}, 2},  {"syn.b1", {S}, 3},          {"syn.w2", {C, S, 1, 1}, 2},
                              {"syn.b2", {C}, 3},           {"syn.r1w", {C, C, 3, 3}, 2}, {"syn.r1b", {C}, 3},
                              {"syn.r2w", {C, C, 3, 3}, 2}, {"syn.r2b", {C}, 3}};
  if (a.learned_up)
    for (int s = 1; s < L; ++s) p.push_back({"up.f" + std::to_string(s), {4}, kUpGroup});
  return p;
}

WeightSet QuantNet::dequantize(const Arch& a) const {
  const auto specs = param_specs(a);
  NTC_CHECK(q.size() == specs.size(), "QuantNet: ", q.size(), " tensors for ", specs.size());
  WeightSet w(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    w[i].resize(q[i].size());
    const int e = step_exp[size_t(specs[i].group)];
    for (size_t j = 0; j < q[i].size(); ++j) w[i][j] = std::ldexp(float(q[i][j]), -e);  // exact
  }
  return w;
}

void gather_context(const float* grid, int64_t h, int64_t w, int64_t r, int64_t c, float* ctx) {
  (void)h;
  for (int j = 0; j < kContext; ++j) {
    const int64_t rr = r + kContextOffsets[size_t(j)].first, cc = c + kContextOffsets[size_t(j)].second;
    ctx[j] = (rr >= 0 && cc >= 0 && cc < w) ? grid[rr * w + cc] : 0.f;
  }
}

ArmNet::ArmNet(const Arch& a, const WeightSet& w) : A(a.arm_hidden) {
  NTC_CHECK(A >= 1 && A <= 64 && w.size() >= 6, "ArmNet: width ", A);
  auto transpose = [](const std::vector<float>& m, int out, int in) {  // [out][in] → [in][out]
    std::vector<float> t(m.size());
    for (int o = 0; o < out; ++o)
      for (int i = 0; i < in; ++i) t[size_t(i * out + o)] = m[size_t(o * in + i)];
    return t;
  };
  w1 = transpose(w[0], A, kContext);
  b1 = w[1];
  w2 = transpose(w[2], A, A);
  b2 = w[3];
  w3 = transpose(w[4], 2, A);
  b3 = w[5];
}

void arm_predict(const ArmNet& n, const float* ctx, float& mu, float& logb) {
  const int A = n.A;
  const float *w1 = n.w1.data(), *w2 = n.w2.data(), *w3 = n.w3.data();
  float h1[64], h2[64];
  // Every output is its bias plus the products in input order; zero inputs are skipped (the same
  // code encodes and decodes, so the skip is part of the arithmetic, not an approximation).
  for (int j = 0; j < A; ++j) h1[j] = n.b1[size_t(j)];
  for (int i = 0; i < kContext; ++i) {
    const float x = ctx[i];
    if (x == 0.f) continue;
    for (int j = 0; j < A; ++j) h1[j] += x * w1[i * A + j];
  }
  for (int j = 0; j < A; ++j) h2[j] = n.b2[size_t(j)];
  for (int i = 0; i < A; ++i) {
    const float x = h1[i] > 0.f ? h1[i] : 0.f;
    if (x == 0.f) continue;
    for (int j = 0; j < A; ++j) h2[j] += x * w2[i * A + j];
  }
  float o0 = n.b3[0], o1 = n.b3[1];
  for (int i = 0; i < A; ++i) {
    const float x = h2[i] > 0.f ? h2[i] : 0.f;
    o0 += x * w3[2 * i];
    o1 += x * w3[2 * i + 1];
  }
  mu = o0;
  logb = o1;
}

namespace {

// The table of latent (r, c) of a grid (the decoded latents so far, as floats): ARM, then slot. The
// encoder and the decoder both call this, so they choose the same tables by construction.
codec::LaplaceSlot predict_slot(const ArmNet& arm, const float* grid, int64_t gh, int64_t gw, int64_t r, int64_t c) {
  float ctx[kContext], mu, logb;
  gather_context(grid, gh, gw, r, c, ctx);
  arm_predict(arm, ctx, mu, logb);
  return codec::laplace_slot(mu, logb);
}

// Full-resolution planes of the upsampled latents, [L][H·W].
std::vector<Buffer> upsampled_planes(const Arch& a, const WeightSet& wts, const std::vector<std::vector<int32_t>>& latents) {
  const int64_t H = a.height, W = a.width;
  NTC_CHECK(!a.learned_up || wts.size() >= up_taps_index(a.levels - 1) + 1, "upsampled_planes: no taps");
  std::vector<Buffer> planes;
  Buffer cur, next, tmp;
  for (int l = 0; l < a.levels; ++l) {
    const int64_t gh = a.grid_h(l), gw = a.grid_w(l);
    NTC_CHECK(int64_t(latents[size_t(l)].size()) == gh * gw, "latent grid ", l, " has ", latents[size_t(l)].size(), " values");
    cur = Buffer(size_t(gh * gw));
    for (int64_t i = 0; i < gh * gw; ++i) cur.data()[i] = float(latents[size_t(l)][size_t(i)]);
    for (int s = l; s > 0; --s) {  // level s → s − 1
      const int64_t h = a.grid_h(s), w = a.grid_w(s), oh = a.grid_h(s - 1), ow = a.grid_w(s - 1);
      next = Buffer(size_t(oh * ow));
      tmp = Buffer(size_t(h * ow));
      if (a.learned_up) upsample2_plane(cur.data(), h, w, wts[up_taps_index(s)].data(), next.data(), oh, ow, tmp.data());
      else upsample2_plane(cur.data(), h, w, next.data(), oh, ow, tmp.data());
      std::swap(cur, next);
    }
    NTC_CHECK(int64_t(cur.size()) == H * W, "upsampled plane size");
    planes.push_back(std::move(cur));
  }
  return planes;
}

// out[co] = x[co] + b[co] + Σ_ci Σ_ky Σ_kx w[co, ci, ky, kx]·f(x[ci])(r + ky − 1, c + kx − 1),
// f = ReLU when relu_in, zero padding; every sum in that fixed order.
void residual_conv3(const float* x, int64_t C, int64_t H, int64_t W, const float* wt, const float* b, bool relu_in,
                    float* out) {
  std::vector<float> row(static_cast<size_t>(W));
  for (int64_t co = 0; co < C; ++co)
    for (int64_t r = 0; r < H; ++r) {
      float* t = row.data();
      for (int64_t c = 0; c < W; ++c) t[c] = b[co];
      for (int64_t ci = 0; ci < C; ++ci)
        for (int ky = 0; ky < 3; ++ky) {
          const int64_t rr = r + ky - 1;
          if (rr < 0 || rr >= H) continue;
          const float* src = x + (ci * H + rr) * W;
          for (int kx = 0; kx < 3; ++kx) {
            const float wv = wt[((co * C + ci) * 3 + ky) * 3 + kx];
            const int64_t c0 = kx == 0 ? 1 : 0, c1 = kx == 2 ? W - 1 : W;  // columns with the tap inside
            for (int64_t c = c0; c < c1; ++c) {
              float v = src[c + kx - 1];
              if (relu_in) v = v > 0.f ? v : 0.f;
              t[c] += wv * v;
            }
          }
        }
      const float* xr = x + (co * H + r) * W;
      float* o = out + (co * H + r) * W;
      for (int64_t c = 0; c < W; ++c) o[c] = xr[c] + t[c];
    }
}

}  // namespace

Tensor synthesize(const Arch& a, const WeightSet& w, const std::vector<std::vector<int32_t>>& latents) {
  NTC_CHECK(int(latents.size()) == a.levels, "synthesize: ", latents.size(), " grids for ", a.levels, " levels");
  const int64_t H = a.height, W = a.width, C = a.channels, S = a.syn_hidden, L = a.levels;
  const std::vector<Buffer> planes = upsampled_planes(a, w, latents);
  const float *w1 = w[6].data(), *b1 = w[7].data(), *w2 = w[8].data(), *b2 = w[9].data();
  Buffer x0(size_t(C * H * W)), x1(size_t(C * H * W));
  std::vector<float> hid(size_t(S * W));
  for (int64_t r = 0; r < H; ++r) {  // the 1×1 layers, a row at a time (vectorisable across columns)
    for (int64_t j = 0; j < S; ++j) {
      float* hj = hid.data() + j * W;
      for (int64_t c = 0; c < W; ++c) hj[c] = b1[j];
      for (int64_t l = 0; l < L; ++l) {
        const float wv = w1[j * L + l];
        const float* p = planes[size_t(l)].data() + r * W;
        for (int64_t c = 0; c < W; ++c) hj[c] += wv * p[c];
      }
      for (int64_t c = 0; c < W; ++c) hj[c] = hj[c] > 0.f ? hj[c] : 0.f;
    }
    for (int64_t co = 0; co < C; ++co) {
      float* o = x0.data() + (co * H + r) * W;
      for (int64_t c = 0; c < W; ++c) o[c] = b2[co];
      for (int64_t j = 0; j < S; ++j) {
        const float wv = w2[co * S + j];
        const float* hj = hid.data() + j * W;
        for (int64_t c = 0; c < W; ++c) o[c] += wv * hj[c];
      }
    }
  }
  residual_conv3(x0.data(), C, H, W, w[10].data(), w[11].data(), false, x1.data());
  residual_conv3(x1.data(), C, H, W, w[12].data(), w[13].data(), true, x0.data());
  Tensor img = Tensor::empty({1, 3, H, W});
  for (int64_t ch = 0; ch < 3; ++ch) {
    const float* src = x0.data() + (C == 3 ? ch : 0) * H * W;
    float* dst = img.data() + ch * H * W;
    for (int64_t i = 0; i < H * W; ++i) {
      float v = src[i] * 255.f;
      v = v > 0.f ? (v < 255.f ? v : 255.f) : 0.f;  // NaN → 0
      dst[i] = std::nearbyint(v);
    }
  }
  return img;
}

// ---- the stream ----------------------------------------------------------------------------

namespace {

constexpr FrameFormat kOverfitFrame{{'N', 'T', 'C', 'O'}, "ntc overfitted stream"};
// Version 1: bilinear upsampling; version 2: a byte after the ARM's width says which upsampling
// (0 bilinear, 1 learned taps). Bilinear streams are written as version 1, as before.
constexpr uint8_t kOverfitVersion = 1, kOverfitVersionUp = 2;

void write_header(BinWriter& w, const Stream& s) {
  const Arch& a = s.arch;
  w.put<uint8_t>(a.learned_up ? kOverfitVersionUp : kOverfitVersion);
  w.put<uint32_t>(uint32_t(a.height));
  w.put<uint32_t>(uint32_t(a.width));
  w.put<uint8_t>(uint8_t(a.channels));
  w.put<uint8_t>(uint8_t(a.levels));
  w.put<uint8_t>(uint8_t(a.syn_hidden));
  w.put<uint8_t>(uint8_t(a.arm_hidden));
  if (a.learned_up) w.put<uint8_t>(1);
  w.put<float>(s.lambda);
  for (int g = 0; g < a.groups(); ++g) {
    w.put<uint8_t>(uint8_t(s.net.step_exp[size_t(g)]));
    w.put<uint8_t>(uint8_t(s.net.eg_order[size_t(g)]));
  }
}

Stream parse_header(BinReader& r, const std::string& origin) {
  Stream s;
  const uint8_t version = r.get<uint8_t>();
  if (version != kOverfitVersion && version != kOverfitVersionUp)
    fail(origin, ": unsupported overfitted stream version ", int(version));
  Arch& a = s.arch;
  const uint32_t h = r.get<uint32_t>(), w = r.get<uint32_t>();
  if (h < 1 || w < 1 || h > 65536 || w > 65536) fail(origin, ": corrupt overfitted stream: image size ", w, "x", h);
  a.height = int(h);
  a.width = int(w);
  a.channels = r.get<uint8_t>();
  a.levels = r.get<uint8_t>();
  a.syn_hidden = r.get<uint8_t>();
  a.arm_hidden = r.get<uint8_t>();
  if (a.channels != 1 && a.channels != 3) fail(origin, ": corrupt overfitted stream: ", a.channels, " channels");
  if (a.levels < 1 || a.levels > 8) fail(origin, ": corrupt overfitted stream: ", a.levels, " latent levels");
  if (a.syn_hidden < 1 || a.syn_hidden > kMaxHidden || a.arm_hidden < 1 || a.arm_hidden > kMaxHidden)
    fail(origin, ": corrupt overfitted stream: layer widths ", a.syn_hidden, ", ", a.arm_hidden);
  if (version == kOverfitVersionUp) {
    const uint8_t up = r.get<uint8_t>();
    if (up != 1) fail(origin, ": corrupt overfitted stream: upsampling ", int(up));
    a.learned_up = true;
  }
  s.lambda = r.get<float>();
  for (int g = 0; g < a.groups(); ++g) {
    s.net.step_exp[size_t(g)] = r.get<uint8_t>();
    s.net.eg_order[size_t(g)] = r.get<uint8_t>();
    if (s.net.step_exp[size_t(g)] > 24 || s.net.eg_order[size_t(g)] > 24 ||
        (g == kUpGroup && s.net.step_exp[size_t(g)] < kUpMinStepExp))
      fail(origin, ": corrupt overfitted stream: quantisation of the ", kGroupNames[g]);
  }
  return s;
}

}  // namespace

bool is_overfit_stream(const uint8_t* data, size_t size) {
  return size >= 4 && std::memcmp(data, kOverfitFrame.magic, 4) == 0;
}

int32_t coded_base(const ParamSpec& spec, size_t j, int e) {
  if (spec.group != kUpGroup) return 0;
  NTC_CHECK(e >= kUpMinStepExp && e <= 24, "coded_base: step exponent ", e);
  return j % 4 == 0 ? int32_t(3) << (e - 2) : j % 4 == 1 ? int32_t(1) << (e - 2) : 0;  // ¾, ¼ at step 2^−e
}

std::array<int, kGroups> best_eg_orders(const Arch& a, const QuantNet& net) {
  const auto specs = param_specs(a);
  std::array<int, kGroups> best{};
  for (int g = 0; g < a.groups(); ++g) {
    size_t best_bits = SIZE_MAX;
    for (int k = 0; k <= 24; ++k) {
      size_t bits = 0;
      for (size_t i = 0; i < specs.size(); ++i)
        if (specs[i].group == g)
          for (size_t j = 0; j < net.q[i].size(); ++j)
            bits += codec::exp_golomb_bits(net.q[i][j] - coded_base(specs[i], j, net.step_exp[size_t(g)]), k);
      if (bits < best_bits) {
        best_bits = bits;
        best[size_t(g)] = k;
      }
    }
  }
  return best;
}

size_t weight_bits(const Arch& a, const QuantNet& net) {
  const auto specs = param_specs(a);
  size_t bits = 0;
  for (size_t i = 0; i < specs.size(); ++i)
    for (size_t j = 0; j < net.q[i].size(); ++j)
      bits += codec::exp_golomb_bits(net.q[i][j] - coded_base(specs[i], j, net.step_exp[size_t(specs[i].group)]),
                                     net.eg_order[size_t(specs[i].group)]);
  return bits;
}

std::vector<uint8_t> write_stream(const Stream& s) {
  const Arch& a = s.arch;
  const auto specs = param_specs(a);
  NTC_CHECK(s.net.q.size() == specs.size() && int(s.latents.size()) == a.levels, "write_stream: incomplete stream");
  BinWriter w = open_frame_writer(kOverfitFrame);
  write_header(w, s);
  codec::BitWriter bw;
  for (size_t i = 0; i < specs.size(); ++i) {
    NTC_CHECK(int64_t(s.net.q[i].size()) == numel_of(specs[i].shape), "write_stream: ", specs[i].name);
    const int g = specs[i].group;
    for (size_t j = 0; j < s.net.q[i].size(); ++j)
      codec::put_exp_golomb(bw, s.net.q[i][j] - coded_base(specs[i], j, s.net.step_exp[size_t(g)]), s.net.eg_order[size_t(g)]);
  }
  const std::vector<uint8_t> wbytes = bw.finish();
  w.put<uint32_t>(uint32_t(wbytes.size()));
  w.raw(wbytes.data(), wbytes.size());
  // Latents: grid by grid, raster order, each with the table its ARM prediction selects.
  const ArmNet arm(a, s.net.dequantize(a));
  codec::RansEncoder enc;
  for (int l = 0; l < a.levels; ++l) {
    const int64_t gh = a.grid_h(l), gw = a.grid_w(l);
    std::vector<float> grid(size_t(gh * gw));
    const std::vector<int32_t>& y = s.latents[size_t(l)];
    NTC_CHECK(int64_t(y.size()) == gh * gw, "write_stream: grid ", l);
    for (int64_t i = 0; i < gh * gw; ++i) grid[size_t(i)] = float(y[size_t(i)]);
    for (int64_t r = 0; r < gh; ++r)
      for (int64_t c = 0; c < gw; ++c) {
        const codec::LaplaceSlot sl = predict_slot(arm, grid.data(), gh, gw, r, c);
        enc.put(int32_t(int64_t(y[size_t(r * gw + c)]) - sl.shift), codec::laplace_table(sl.scale, sl.frac));
      }
  }
  const std::vector<uint8_t> lat = enc.finish();
  w.raw(lat.data(), lat.size());
  return close_frame(std::move(w));
}

Stream read_stream_header(const uint8_t* data, size_t size, const std::string& origin) {
  BinReader r = open_frame(data, size, kOverfitFrame, origin);
  return parse_header(r, origin);
}

Stream read_stream(const uint8_t* data, size_t size, const std::string& origin, int64_t max_pixels) {
  BinReader r = open_frame(data, size, kOverfitFrame, origin);
  Stream s = parse_header(r, origin);
  const Arch& a = s.arch;
  if (int64_t(a.height) * a.width > max_pixels)
    fail(origin, ": the stream holds a ", a.width, "x", a.height, " image, more than --max-pixels ", max_pixels);
  const auto specs = param_specs(a);
  const uint32_t wlen = r.get<uint32_t>();
  const uint8_t* wp = r.take(wlen);
  codec::BitReader br(wp, wlen);
  s.net.q.resize(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const int g = specs[i].group, k = s.net.eg_order[size_t(g)], e = s.net.step_exp[size_t(g)];
    s.net.q[i].resize(size_t(numel_of(specs[i].shape)));
    for (size_t j = 0; j < s.net.q[i].size(); ++j) {
      const int64_t v = int64_t(codec::get_exp_golomb(br, k)) + coded_base(specs[i], j, e);
      if (v <= -(1 << 30) || v >= (1 << 30)) fail(origin, ": corrupt overfitted stream: a weight is out of range");
      s.net.q[i][j] = int32_t(v);
    }
  }
  if (br.size_bits() - br.pos() >= 8) fail(origin, ": corrupt overfitted stream: bytes left after the weights");
  if (br.get(int(br.size_bits() - br.pos())) != 0) fail(origin, ": corrupt overfitted stream: the weights' padding is not zero");
  const size_t lat_len = r.remaining();
  const uint8_t* lp = r.take(lat_len);
  if (lat_len < 8 || lat_len % 4) fail(origin, ": corrupt overfitted stream: the latent section has ", lat_len, " bytes");
  const ArmNet arm(a, s.net.dequantize(a));
  codec::RansDecoder dec(lp, lp + lat_len);
  s.latents.resize(size_t(a.levels));
  for (int l = 0; l < a.levels; ++l) {
    const int64_t gh = a.grid_h(l), gw = a.grid_w(l);
    std::vector<float> grid(size_t(gh * gw));
    std::vector<int32_t>& y = s.latents[size_t(l)];
    y.resize(size_t(gh * gw));
    for (int64_t r2 = 0; r2 < gh; ++r2)
      for (int64_t c = 0; c < gw; ++c) {
        const codec::LaplaceSlot sl = predict_slot(arm, grid.data(), gh, gw, r2, c);
        const int64_t v = int64_t(dec.get(codec::laplace_table(sl.scale, sl.frac))) + sl.shift;
        if (v < -(int64_t(1) << 24) || v > (int64_t(1) << 24))
          fail(origin, ": corrupt overfitted stream: a latent is out of range");
        y[size_t(r2 * gw + c)] = int32_t(v);
        grid[size_t(r2 * gw + c)] = float(v);
      }
  }
  dec.finish();
  return s;
}

Tensor decode(const uint8_t* data, size_t size, const std::string& origin, int64_t max_pixels) {
  const Stream s = read_stream(data, size, origin, max_pixels);
  return synthesize(s.arch, s.net.dequantize(s.arch), s.latents);
}

DecoderFlops decoder_flops(const Arch& a) {
  DecoderFlops f;
  const double px = double(a.height) * a.width, A = a.arm_hidden, S = a.syn_hidden, C = a.channels, L = a.levels;
  // ARM per latent: three layers of multiply-adds, biases and ReLUs.
  const double arm_one = 2 * (kContext * A + A * A + A * 2) + (A + A + 2) + 2 * A;
  f.arm = arm_one * double(a.latent_count()) / px;
  // Each ×2 step, per output sample per axis: 3 FLOPs bilinear, 7 with four learned taps.
  const double per = a.learned_up ? 7.0 : 3.0;
  double up = 0;
  for (int l = 1; l < a.levels; ++l)
    for (int s = l; s > 0; --s) up += per * double(a.grid_h(s) * a.grid_w(s - 1) + a.grid_h(s - 1) * a.grid_w(s - 1));
  f.upsample = up / px;
  f.synthesis = 2 * (L * S + S * C) + S + C + S                     // 1×1 layers, biases, ReLU
                + 2 * (2 * C * C * 9 + C + C) + C;                   // two residual 3×3 convs, ReLU
  return f;
}

}  // namespace ntc::nn::overfit
