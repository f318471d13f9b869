// Test-vector runner: replays every case of $NTC_TESTVECTORS (default ../shared/testvectors),
// discovered from index.txt and each case's manifest.txt (format: testvectors/README.md).
// For each case it rebuilds the op from the manifest, checks every output, runs backward on
// L = Σ_k sum(output_k ⊙ upstream.k) and checks every stored gradient. It prints exactly one line
// per case:  TESTVECTOR <case> PASS | FAIL <reason> | SKIP not-implemented
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <tuple>
#include <sstream>

#include "lib/common.h"
#include "lib/ops/ops.h"
#include "codec/entropy_bottleneck.h"
#include "codec/gaussian_conditional.h"
#include "nn/layers.h"
#include "train/optim.h"

namespace ntc {
namespace {

struct TvTensor {
  std::string name, role;
  Shape shape;
  std::vector<float> values;
};

struct TvCase {
  std::string name, op, dir;
  std::map<std::string, std::string> attrs;
  std::vector<TvTensor> tensors;
  const TvTensor* find(const std::string& n) const {
    for (const auto& t : tensors)
      if (t.name == n) return &t;
    return nullptr;
  }
  double attr(const std::string& k) const {
    auto it = attrs.find(k);
    if (it == attrs.end()) fail("missing attr ", k);
    return std::stod(it->second);
  }
};

std::string tv_dir() {
  const char* e = std::getenv("NTC_TESTVECTORS");
  return e && *e ? e : "../shared/testvectors";
}

std::vector<float> read_f32(const std::string& path, int64_t count) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) fail("cannot open ", path);
  const int64_t bytes = f.tellg();
  if (bytes != count * 4) fail(path, ": ", bytes, " bytes, expected ", count * 4);
  std::vector<float> v(static_cast<size_t>(count));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), bytes);  // little-endian host (x86-64)
  return v;
}

TvCase load_case(const std::string& dir, const std::string& name) {
  TvCase c;
  c.name = name;
  c.dir = dir + "/" + name;
  std::ifstream m(c.dir + "/manifest.txt");
  if (!m) fail("cannot open ", c.dir, "/manifest.txt");
  std::string line;
  while (std::getline(m, line)) {
    std::istringstream s(line);
    std::string kind;
    s >> kind;
    if (kind == "op") s >> c.op;
    else if (kind == "attr") {
      std::string k, v;
      s >> k >> v;
      c.attrs[k] = v;
    } else if (kind == "tensor") {
      TvTensor t;
      std::string file;
      int nd;
      s >> t.name >> t.role >> file >> nd;
      for (int i = 0; i < nd; ++i) {
        int64_t d;
        s >> d;
        t.shape.push_back(d);
      }
      if (!s) fail("bad tensor line in ", c.dir, ": ", line);
      t.values = read_f32(c.dir + "/" + file, numel_of(t.shape));
      c.tensors.push_back(std::move(t));
    }
  }
  return c;
}

using Named = std::map<std::string, Tensor>;
using OpFn = std::function<Named(const TvCase&, Named&)>;

// Runs module m on input x with its parameters bound to the case's tensors: each module parameter
// "<m>.<path>" takes the values of case tensor "<path>", and the case's entry is replaced by the
// module's tensor so that the runner reads the gradients the module accumulated.
Tensor run_module(nn::Module& m, Named& in, const Tensor& x) {
  for (auto& [path, t] : m.named_parameters()) {
    const std::string key = path.substr(m.name().size() + 1);
    auto it = in.find(key);
    if (it == in.end()) fail("case has no tensor ", key);
    if (it->second.shape() != t.shape()) fail(key, ": case shape ", shape_str(it->second.shape()), " vs module ", shape_str(t.shape()));
    std::copy(it->second.data(), it->second.data() + t.numel(), t.data());
    it->second = t;
  }
  return m(x);
}

// EntropyBottleneck raw parameters matrices.k / biases.k / factors.k, k = 0, 1, ...
struct EbParams {
  std::vector<Tensor> M, B, F;
};
EbParams eb_p(Named& in) {
  EbParams p;
  for (int k = 0; in.count("matrices." + std::to_string(k)); ++k) {
    p.M.push_back(in.at("matrices." + std::to_string(k)));
    p.B.push_back(in.at("biases." + std::to_string(k)));
    if (in.count("factors." + std::to_string(k))) p.F.push_back(in.at("factors." + std::to_string(k)));
  }
  return p;
}

// Every op this library implements, by manifest op name.
const std::map<std::string, OpFn>& ops() {
  static const std::map<std::string, OpFn> m = {
      {"conv2d_tf_same",
       [](const TvCase& c, Named& in) {
         const Tensor& x = in.at("x");
         const int s = int(c.attr("stride")), k = int(c.attr("kernel"));
         Pad2 p = same_pad_conv(x.dim(2), x.dim(3), k, k, s);
         if (p.top != c.attr("pad_top") || p.bottom != c.attr("pad_bottom") ||
             p.left != c.attr("pad_left") || p.right != c.attr("pad_right"))
           fail("SAME padding differs from the manifest's");
         return Named{{"y", conv2d_same(x, in.at("weight"), in.at("bias"), s)}};
       }},
      {"conv_transpose2d_tf_same",
       [](const TvCase& c, Named& in) {
         const int s = int(c.attr("stride")), k = int(c.attr("kernel"));
         Pad2 p = same_pad_conv_transpose(k, k, s);
         if (p.top != c.attr("pad_before") || p.top + p.bottom != c.attr("pad_total"))
           fail("SAME transpose padding differs from the manifest's");
         return Named{{"y", conv_transpose2d_same(in.at("x"), in.at("weight"), in.at("bias"), s)}};
       }},
      {"gdn1", [](const TvCase& c, Named& in) {
         return Named{{"y", gdn1(in.at("x"), in.at("beta"), in.at("gamma"), c.attr("inverse") != 0)}};
       }},
      {"igdn1", [](const TvCase& c, Named& in) {
         return Named{{"y", gdn1(in.at("x"), in.at("beta"), in.at("gamma"), c.attr("inverse") != 0)}};
       }},
      {"relu", [](const TvCase&, Named& in) { return Named{{"y", relu(in.at("x"))}}; }},
      {"leaky_relu", [](const TvCase& c, Named& in) {
         return Named{{"y", leaky_relu(in.at("x"), float(c.attr("negative_slope")))}};
       }},
      {"gelu", [](const TvCase&, Named& in) { return Named{{"y", gelu(in.at("x"))}}; }},
      {"sigmoid", [](const TvCase&, Named& in) { return Named{{"y", sigmoid(in.at("x"))}}; }},
      {"residual_block",
       [](const TvCase& c, Named& in) {
         nn::ResidualBlock m("rb", int(c.attr("channels")));
         return Named{{"y", run_module(m, in, in.at("x"))}};
       }},
      {"simple_attention",
       [](const TvCase& c, Named& in) {
         nn::SimpleAttention m("attn", int(c.attr("channels")));
         return Named{{"y", run_module(m, in, in.at("x"))}};
       }},
      {"nonneg_reparam",
       [](const TvCase& c, Named& in) {
         if (std::fabs(c.attr("pedestal") - kNonnegPedestal) > 1e-20) fail("pedestal differs");
         return Named{{"beta_value", nonneg_reparam(in.at("raw"), float(c.attr("beta_minimum")))},
                      {"gamma_value", nonneg_reparam(in.at("raw"), float(c.attr("gamma_minimum")))}};
       }},
      {"two_layer_res_synthesis",
       [](const TvCase& c, Named& in) {
         const int s1 = int(c.attr("s1")), s2 = int(c.attr("s2"));
         const Tensor& y = in.at("y");
         Tensor base = conv_transpose2d_same(y, in.at("base.weight"), in.at("base.bias"), s1);
         Tensor res = conv_transpose2d_same(y, in.at("res.weight"), in.at("res.bias"), s1);
         Tensor h = add(gdn1(base, in.at("gdn.beta"), in.at("gdn.gamma"), true), res);
         return Named{{"x_hat", conv_transpose2d_same(h, in.at("out.weight"), in.at("out.bias"), s2)}};
       }},
      {"entropy_bottleneck_logits_cumulative",
       [](const TvCase&, Named& in) {
         EbParams p = eb_p(in);
         return Named{{"y", codec::eb_logits_cumulative(in.at("x"), p.M, p.B, p.F)}};
       }},
      {"entropy_bottleneck_likelihood",
       [](const TvCase& c, Named& in) {
         if (c.attr("likelihood_bound") != 1e-9) fail("likelihood bound differs");
         EbParams p = eb_p(in);
         return Named{{"likelihood", codec::eb_likelihood(in.at("x"), p.M, p.B, p.F)}};
       }},
      {"gaussian_conditional_likelihood",
       [](const TvCase& c, Named& in) {
         if (c.attr("scale_bound") != codec::kScaleMin || c.attr("likelihood_bound") != 1e-9)
           fail("bounds differ");
         return Named{{"likelihood", codec::GaussianConditional::likelihood(in.at("x"), in.at("scales"),
                                                                            in.at("means"))}};
       }},
      {"adam_step",
       [](const TvCase& c, Named& in) {
         Named out;
         for (auto [form, name, eps] : {std::tuple{train::AdamForm::Torch, "p_torch", "eps"},
                                        std::tuple{train::AdamForm::Keras, "p_keras", "keras_eps"}}) {
           Tensor p = in.at("p").clone(), m = in.at("m").clone(), v = in.at("v").clone();
           train::adam_update(p.data(), in.at("g").data(), m.data(), v.data(), size_t(p.numel()),
                              int64_t(c.attr("t")), float(c.attr("lr")), float(c.attr("beta1")),
                              float(c.attr("beta2")), float(c.attr(eps)), form);
           out[name] = p;
           out["m_new"] = m;
           out["v_new"] = v;
         }
         return out;
       }},
      {"clip_by_global_norm",
       [](const TvCase& c, Named& in) {
         std::vector<Tensor> gs;
         for (int k = 0; in.count("g" + std::to_string(k)); ++k) gs.push_back(in.at("g" + std::to_string(k)));
         std::vector<Tensor> r = train::clip_by_global_norm(gs, float(c.attr("clipnorm")));
         Named out;
         for (size_t k = 0; k < gs.size(); ++k) out["g" + std::to_string(k) + "_clipped"] = r[k];
         out["global_norm"] = r.back().reshape({1});
         return out;
       }},
      {"sga_round",
       [](const TvCase& c, Named& in) {
         if (c.attr("eps") != 1e-5) fail("eps differs");
         const Tensor off = c.attr("with_offset") != 0 ? in.at("offset") : Tensor();
         return Named{{"y", sga_round(in.at("mu"), in.at("u"), float(c.attr("tau")), off)}};
       }},
      {"tf_scale_from_index",
       [](const TvCase& c, Named& in) {
         const double lo = std::log(c.attr("scale_min")), f = c.attr("factor");
         const double f_ours = (std::log(c.attr("scale_max")) - lo) / (c.attr("num_scales") - 1);
         if (std::fabs(f - f_ours) > 1e-12) fail("scale factor differs");
         if (c.attr("num_scales") != codec::kNumScales || c.attr("scale_min") != codec::kScaleMin ||
             c.attr("scale_max") != codec::kScaleMax)
           fail("scale table differs");
         return Named{{"scale", codec::GaussianConditional(codec::ScaleMode::TfIndex).scales(in.at("h"))}};
       }},
  };
  return m;
}

// |got − ref| <= atol + rtol·|ref| elementwise, atol = atol_rel · max|ref|.
std::string compare(const std::string& what, const float* got, const TvTensor& ref, double rtol,
                    double atol_rel) {
  double mx = 0;
  for (float v : ref.values) mx = std::max(mx, double(std::fabs(v)));
  const double atol = atol_rel * mx + 1e-30;
  for (size_t i = 0; i < ref.values.size(); ++i) {
    const double r = ref.values[i], g = got[i];
    if (!(std::fabs(g - r) <= atol + rtol * std::fabs(r))) {
      std::ostringstream s;
      s << what << "[" << i << "] = " << g << ", reference " << r << " (atol " << atol << ")";
      return s.str();
    }
  }
  return "";
}

}  // namespace

// Runs one case; returns "PASS", "SKIP not-implemented" or "FAIL <reason>".
std::string run_testvector(const TvCase& c) {
  auto it = ops().find(c.op);
  if (it == ops().end()) return "SKIP not-implemented";
  try {
    Named in;
    for (const auto& t : c.tensors) {
      if (t.role != "input" && t.role != "param" && t.role != "input_nondiff") continue;
      Tensor x = Tensor::from(t.shape, t.values);
      if (t.role != "input_nondiff") x.set_requires_grad(true);
      in[t.name] = x;
    }
    Named out = it->second(c, in);
    Tensor loss;
    int n_out = 0;
    for (const auto& t : c.tensors) {
      if (t.role != "output") continue;
      ++n_out;
      auto o = out.find(t.name);
      if (o == out.end()) return "FAIL op produced no output " + t.name;
      if (o->second.shape() != t.shape)
        return "FAIL output " + t.name + " shape " + shape_str(o->second.shape()) + " vs " +
               shape_str(t.shape);
      std::string e = compare(t.name, o->second.data(), t, 1e-4, 1e-5);
      if (!e.empty()) return "FAIL " + e;
      const TvTensor* up = c.find("upstream." + t.name);
      if (!up) continue;  // a non-differentiable output (e.g. an optimiser step)
      Tensor term = sum(mul(o->second, Tensor::from(up->shape, up->values)));
      loss = loss.defined() ? add(loss, term) : term;
    }
    if (n_out == 0) return "FAIL case has no outputs";
    if (loss.defined()) loss.backward();
    // testvectors/README.md: fp32 EntropyBottleneck gradients deviate up to ~1e-5 relative.
    const double grad_atol = c.op.rfind("entropy_bottleneck", 0) == 0 ? 1e-4 : 1e-5;
    for (const auto& t : c.tensors) {
      if (t.role != "grad") continue;
      const std::string of = t.name.substr(5);  // "grad.<name>"
      auto x = in.find(of);
      if (x == in.end()) return "FAIL gradient for unknown tensor " + of;
      Tensor g = x->second.grad_tensor();
      std::string e = compare(t.name, g.data(), t, 1e-4, grad_atol);
      if (!e.empty()) return "FAIL " + e;
    }
    return "PASS";
  } catch (const std::exception& e) {
    return std::string("FAIL ") + e.what();
  }
}

TEST(TestVectors, AllCasesPassOrSkip) {
  const std::string dir = tv_dir();
  std::ifstream idx(dir + "/index.txt");
  if (!idx) GTEST_SKIP() << "test vectors not found: " << dir << "/index.txt (set NTC_TESTVECTORS)";
  std::string name;
  int pass = 0, fails = 0, skips = 0;
  while (std::getline(idx, name)) {
    if (name.empty()) continue;
    std::string r;
    try {
      r = run_testvector(load_case(dir, name));
    } catch (const std::exception& e) {
      r = std::string("FAIL ") + e.what();
    }
    std::printf("TESTVECTOR %s %s\n", name.c_str(), r.c_str());
    if (r == "PASS") ++pass;
    else if (r.rfind("SKIP", 0) == 0) ++skips;
    else ++fails;
    EXPECT_EQ(r.rfind("FAIL", 0), std::string::npos) << name << ": " << r;
  }
  std::printf("TESTVECTOR summary: %d pass, %d fail, %d skip\n", pass, fails, skips);
  EXPECT_GT(pass, 0);
}

// The runner itself must be able to fail: a perturbed reference output or gradient is caught.
TEST(TestVectors, RunnerDetectsCorruptedReference) {
  const std::string dir = tv_dir();
  if (!std::ifstream(dir + "/index.txt")) GTEST_SKIP() << "test vectors not found: " << dir;
  TvCase c = load_case(dir, "conv2d_k5s2_same");
  ASSERT_EQ(run_testvector(c), "PASS");
  for (auto& t : c.tensors)
    if (t.name == "grad.weight") t.values[7] *= 1.001f;
  EXPECT_EQ(run_testvector(c).rfind("FAIL grad.weight[7]", 0), 0u);
  TvCase d = load_case(dir, "gdn1");
  for (auto& t : d.tensors)
    if (t.name == "y") t.values[3] += 1e-3f;
  EXPECT_EQ(run_testvector(d).rfind("FAIL y[3]", 0), 0u);
}

}  // namespace ntc
