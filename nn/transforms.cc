#include "nn/transforms.h"

#include <algorithm>
#include <vector>

#include "lib/common.h"
#include "nn/layers.h"

namespace ntc::nn {
namespace {

using Seq = Sequential;

// Residual blocks "0".."n-1" in a Sequential named `name`.
void residual_stage(Seq& s, const std::string& name, int c, int n) {
  auto* st = s.append<Seq>(name, "ResidualStage");
  for (int i = 0; i < n; ++i) st->append<ResidualBlock>(std::to_string(i), c);
}

// ElicAnalysis (SPEC §1.2): conv1; res1; conv2; res2; attn2; conv3; res3; conv4; attn4.
// Options: channels (192,192,192,320 — the last is M), kernel 5, residual_blocks 3.
std::unique_ptr<Module> elic_analysis(const Config& c, const std::string& r, const std::string& name, int M) {
  auto ch = c.ints(r + ".channels", {192, 192, 192, M});
  const int k = c.integer(r + ".kernel", 5), nrb = c.integer(r + ".residual_blocks", 3);
  if (ch.size() != 4 || ch[3] != M) fail(c.origin(), ": ", r, ".channels must have 4 entries ending in ", M);
  auto s = std::make_unique<Seq>(name, "ElicAnalysis");
  s->append<Conv2d>("conv1", 3, ch[0], k, 2);
  residual_stage(*s, "res1", ch[0], nrb);
  s->append<Conv2d>("conv2", ch[0], ch[1], k, 2);
  residual_stage(*s, "res2", ch[1], nrb);
  s->append<SimpleAttention>("attn2", ch[1]);
  s->append<Conv2d>("conv3", ch[1], ch[2], k, 2);
  residual_stage(*s, "res3", ch[2], nrb);
  s->append<Conv2d>("conv4", ch[2], ch[3], k, 2);
  s->append<SimpleAttention>("attn4", ch[3]);
  return s;
}

// ElicSynthesis (SPEC §1.2, FLOP comparisons only): attn0; deconv1; res1; deconv2; attn2; res2;
// deconv3; res3; deconv4. Options: channels (192,192,192,3), kernel 5, residual_blocks 3.
std::unique_ptr<Module> elic_synthesis(const Config& c, const std::string& r, const std::string& name, int M) {
  auto ch = c.ints(r + ".channels", {192, 192, 192, 3});
  const int k = c.integer(r + ".kernel", 5), nrb = c.integer(r + ".residual_blocks", 3);
  if (ch.size() != 4) fail(c.origin(), ": ", r, ".channels must have 4 entries");
  auto s = std::make_unique<Seq>(name, "ElicSynthesis");
  s->append<SimpleAttention>("attn0", M);
  s->append<ConvTranspose2d>("deconv1", M, ch[0], k, 2);
  residual_stage(*s, "res1", ch[0], nrb);
  s->append<ConvTranspose2d>("deconv2", ch[0], ch[1], k, 2);
  s->append<SimpleAttention>("attn2", ch[1]);
  residual_stage(*s, "res2", ch[1], nrb);
  s->append<ConvTranspose2d>("deconv3", ch[1], ch[2], k, 2);
  residual_stage(*s, "res3", ch[2], nrb);
  s->append<ConvTranspose2d>("deconv4", ch[2], ch[3], k, 2);
  return s;
}

// CNNAnalysis / CNNSynthesis (SPEC §1.3): 4 convs k5 s2 SAME, activation after the first three.
// Options: channels_base 192, activation leaky_relu (or gdn/igdn, relu, gelu).
std::unique_ptr<Module> cnn(const Config& c, const std::string& r, const std::string& name, int M, bool synthesis) {
  const int B = c.integer(r + ".channels_base", 192), k = c.integer(r + ".kernel", 5);
  const std::string act = c.str(r + ".activation", "leaky_relu");
  auto s = std::make_unique<Seq>(name, synthesis ? "CNNSynthesis" : "CNNAnalysis");
  const int in[4] = {synthesis ? M : 3, B, B, B}, out[4] = {B, B, B, synthesis ? 3 : M};
  for (int i = 0; i < 4; ++i) {
    const std::string n = (synthesis ? "deconv" : "conv") + std::to_string(i + 1);
    if (synthesis) s->append<ConvTranspose2d>(n, in[i], out[i], k, 2);
    else s->append<Conv2d>(n, in[i], out[i], k, 2);
    if (i < 3) append_activation(*s, "act" + std::to_string(i + 1), act, out[i]);
  }
  return s;
}

// MBT2018 (SPEC §1.3): SignalConv k5 s2 with GDN (IGDN) after layers 1..3. Options: channels_base 192.
std::unique_ptr<Module> mbt2018(const Config& c, const std::string& r, const std::string& name, int M, bool synthesis) {
  const int B = c.integer(r + ".channels_base", 192);
  auto s = std::make_unique<Seq>(name, synthesis ? "MBT2018Synthesis" : "MBT2018Analysis");
  const int in[4] = {synthesis ? M : 3, B, B, B}, out[4] = {B, B, B, synthesis ? 3 : M};
  for (int i = 0; i < 4; ++i) {
    const std::string n = (synthesis ? "deconv" : "conv") + std::to_string(i + 1);
    if (synthesis) s->append<ConvTranspose2d>(n, in[i], out[i], 5, 2, Padding::Signal);
    else s->append<Conv2d>(n, in[i], out[i], 5, 2, Padding::Signal);
    if (i < 3) s->append<GDN>((synthesis ? "igdn" : "gdn") + std::to_string(i + 1), out[i], synthesis);
  }
  return s;
}

// BLS2017 (SPEC §1.3): 9x9/4 + GDN, 5x5/2 + GDN, 5x5/2 (no bias); synthesis mirrored, 9x9/4 → 3.
std::unique_ptr<Module> bls2017(const Config& c, const std::string& r, const std::string& name, int M, bool synthesis) {
  auto s = std::make_unique<Seq>(name, synthesis ? "BLS2017Synthesis" : "BLS2017Analysis");
  if (!synthesis) {
    s->append<Conv2d>("conv1", 3, M, 9, 4, Padding::Signal);
    s->append<GDN>("gdn1", M, false);
    s->append<Conv2d>("conv2", M, M, 5, 2, Padding::Signal);
    s->append<GDN>("gdn2", M, false);
    s->append<Conv2d>("conv3", M, M, 5, 2, Padding::Signal, false);
  } else {
    s->append<ConvTranspose2d>("deconv1", M, M, 5, 2, Padding::Signal);
    s->append<GDN>("igdn1", M, true);
    s->append<ConvTranspose2d>("deconv2", M, M, 5, 2, Padding::Signal);
    s->append<GDN>("igdn2", M, true);
    s->append<ConvTranspose2d>("deconv3", M, 3, 9, 4, Padding::Signal);
  }
  return s;
}

// JPEGLikeSynthesis (SPEC §1.5): one convT, kernel k (paper 18; 16 = pure block transform), stride 16.
std::unique_ptr<Module> jpeg_like(const Config& c, const std::string& r, const std::string& name, int M) {
  auto s = std::make_unique<Seq>(name, "JPEGLikeSynthesis");
  s->append<ConvTranspose2d>("deconv", M, 3, c.integer(r + ".kernel", 18), c.integer(r + ".stride", 16));
  return s;
}

// TwoLayerSynthesis (SPEC §1.5): out( act( conv1(y) ) ). Options: channels 24, kernels 13,5,
// strides 8,2, activation igdn.
std::unique_ptr<Module> two_layer(const Config& c, const std::string& r, const std::string& name, int M) {
  const int N = c.integer(r + ".channels", 24);
  auto ks = c.ints(r + ".kernels", {13, 5}), ss = c.ints(r + ".strides", {8, 2});
  if (ks.size() != 2 || ss.size() != 2) fail(c.origin(), ": ", r, ".kernels/strides need 2 entries");
  auto s = std::make_unique<Seq>(name, "TwoLayerSynthesis");
  s->append<ConvTranspose2d>("deconv1", M, N, ks[0], ss[0]);
  append_activation(*s, "act", c.str(r + ".activation", "igdn"), N);
  s->append<ConvTranspose2d>("deconv2", N, 3, ks[1], ss[1]);
  return s;
}

// TwoLayerResSynthesis — the paper's "2-layer syn." (SPEC §1.5):
//   x̂ = out( act( base(y) ) + res(y) ),  base, res: convT k1/s1 M→N;  out: convT k2/s2 N→3.
class TwoLayerRes : public Module {
 public:
  TwoLayerRes(const std::string& name, int M, int N, int k1, int s1, int k2, int s2, const std::string& act)
      : Module(name) {
    base_ = add<ConvTranspose2d>("base", M, N, k1, s1);
    if (act == "gdn" || act == "igdn") act_ = add<GDN>("act", N, act == "igdn");
    else act_ = add<Act>("act", act);
    res_ = add<ConvTranspose2d>("res", M, N, k1, s1);
    out_ = add<ConvTranspose2d>("out", N, 3, k2, s2);
  }
  std::string type() const override { return "TwoLayerResSynthesis"; }

 protected:
  Tensor forward(const Tensor& y) override {
    Tensor h = (*act_)((*base_)(y));
    return (*out_)(ntc::add(h, (*res_)(y)));
  }

 private:
  Module *base_, *act_, *res_, *out_;
};

std::unique_ptr<Module> two_layer_res(const Config& c, const std::string& r, const std::string& name, int M) {
  auto ks = c.ints(r + ".kernels", {13, 5}), ss = c.ints(r + ".strides", {8, 2});
  if (ks.size() != 2 || ss.size() != 2) fail(c.origin(), ": ", r, ".kernels/strides need 2 entries");
  return std::make_unique<TwoLayerRes>(name, M, c.integer(r + ".channels", 12), ks[0], ss[0], ks[1], ss[1],
                                       c.str(r + ".activation", "igdn"));
}

// HyperAnalysis (SPEC §1.4): conv3/1 + ReLU, conv5/2 + ReLU, conv5/2. Small: SignalConv 3/1 + ReLU,
// 5/2 without bias. With hyper_channels Z ≠ M every layer outputs Z channels.
std::unique_ptr<Module> hyper_analysis(const Config& c, const std::string& r, const std::string& name, int M, int Z,
                                       bool small) {
  auto s = std::make_unique<Seq>(name, small ? "HyperAnalysisSmall" : "HyperAnalysis");
  if (small) {
    s->append<Conv2d>("conv1", M, Z, 3, 1, Padding::Signal);
    s->append<Act>("relu1", "relu");
    s->append<Conv2d>("conv2", Z, Z, 5, 2, Padding::Signal, false);
  } else {
    s->append<Conv2d>("conv1", M, Z, 3, 1);
    s->append<Act>("relu1", "relu");
    s->append<Conv2d>("conv2", Z, Z, 5, 2);
    s->append<Act>("relu2", "relu");
    s->append<Conv2d>("conv3", Z, Z, 5, 2);
  }
  return s;
}

// HyperSynthesis (SPEC §1.4): convT5/2 M→M + ReLU, convT5/2 M→1.5M + ReLU, convT3/1 → 2M (means,
// scales); `channels = a,b` sets the two inner widths (default M, 1.5M). Small: SignalConv 5/2 → 1.5M + ReLU, 3/1 → 2M. JPEG-like: one convT k6 s4 M→2M.
// With hyper_channels Z ≠ M the first layer takes Z channels (CompressAI's N/M hyperprior).
std::unique_ptr<Module> hyper_synthesis(const Config& c, const std::string& r, const std::string& name, int M, int Z,
                                        const std::string& kind) {
  const int M15 = M * 3 / 2;
  if (kind == "jpeg_like_hyper") {
    auto s = std::make_unique<Seq>(name, "JPEGLikeHyperSynthesis");
    s->append<ConvTranspose2d>("deconv", Z, 2 * M, c.integer(r + ".kernel", 6), 4);
    return s;
  }
  const bool small = kind == "hyper_small";
  auto s = std::make_unique<Seq>(name, small ? "HyperSynthesisSmall" : "HyperSynthesis");
  if (small) {
    s->append<ConvTranspose2d>("deconv1", Z, M15, 5, 2, Padding::Signal);
    s->append<Act>("relu1", "relu");
    s->append<ConvTranspose2d>("deconv2", M15, 2 * M, 3, 1, Padding::Signal);
  } else {
    const auto ch = c.ints(r + ".channels", {M, M15});
    if (ch.size() != 2 || ch[0] < 1 || ch[1] < 1 || ch[0] > 4096 || ch[1] > 4096)
      fail(c.origin(), ": ", r, ".channels must be 2 widths (deconv1, deconv2 outputs)");
    s->append<ConvTranspose2d>("deconv1", Z, ch[0], 5, 2);
    s->append<Act>("relu1", "relu");
    s->append<ConvTranspose2d>("deconv2", ch[0], ch[1], 5, 2);
    s->append<Act>("relu2", "relu");
    s->append<ConvTranspose2d>("deconv3", ch[1], 2 * M, 3, 1);
  }
  return s;
}

}  // namespace

namespace {
struct Layer {
  int k, s, pad_top;
};
// Input rows of output row 0, from the last layer back to the input.
RowReach reach_of(const std::vector<Layer>& layers) {
  int lo = 0, hi = 0;
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    lo = lo * it->s - it->pad_top;
    hi = hi * it->s - it->pad_top + it->k - 1;
  }
  return {true, -lo, hi};
}
}  // namespace

RowReach hyper_analysis_row_reach(const Config& c) {
  const std::string kind = c.str("hyper_analysis", "");
  if (kind == "hyper") return reach_of({{3, 1, 1}, {5, 2, 1}, {5, 2, 1}});  // "same": (k − s) / 2 above
  if (kind == "hyper_small") return reach_of({{3, 1, 1}, {5, 2, 2}});      // SignalConv: k / 2 above
  return {};
}

RowReach analysis_row_reach(const Config& c) {
  std::vector<Layer> layers;  // in order, as the builders above make them
  const std::string kind = c.str("analysis");
  if (kind == "cnn") {  // "same" padding on inputs that are multiples of the stride: (k − s) / 2 above
    const int k = c.integer("analysis.kernel", 5);
    for (int i = 0; i < 4; ++i) layers.push_back({k, 2, std::max(k - 2, 0) / 2});
  } else if (kind == "mbt2018") {  // SignalConv same_zeros: k / 2 above
    for (int i = 0; i < 4; ++i) layers.push_back({5, 2, 2});
  } else if (kind == "bls2017") {
    layers = {{9, 4, 4}, {5, 2, 2}, {5, 2, 2}};
  } else {
    return {};
  }
  return reach_of(layers);
}

std::unique_ptr<Module> build_transform(const Config& c, const std::string& role, const std::string& name, int M, int Z) {
  if (Z <= 0) Z = M;
  const std::string kind = c.str(role);
  if (role == "analysis") {
    if (kind == "elic") return elic_analysis(c, role, name, M);
    if (kind == "cnn") return cnn(c, role, name, M, false);
    if (kind == "mbt2018") return mbt2018(c, role, name, M, false);
    if (kind == "bls2017") return bls2017(c, role, name, M, false);
  } else if (role == "synthesis") {
    if (kind == "jpeg_like") return jpeg_like(c, role, name, M);
    if (kind == "two_layer") return two_layer(c, role, name, M);
    if (kind == "two_layer_res") return two_layer_res(c, role, name, M);
    if (kind == "cnn") return cnn(c, role, name, M, true);
    if (kind == "mbt2018") return mbt2018(c, role, name, M, true);
    if (kind == "bls2017") return bls2017(c, role, name, M, true);
    if (kind == "elic") return elic_synthesis(c, role, name, M);
  } else if (role == "hyper_analysis") {
    if (kind == "hyper" || kind == "hyper_small") return hyper_analysis(c, role, name, M, Z, kind == "hyper_small");
  } else if (role == "hyper_synthesis") {
    if (kind == "hyper" || kind == "hyper_small" || kind == "jpeg_like_hyper") return hyper_synthesis(c, role, name, M, Z, kind);
  }
  fail(c.origin(), ": unknown ", role, " '", kind, "'");
}

}  // namespace ntc::nn
