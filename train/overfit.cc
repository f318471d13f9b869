// The overfitted codec's encoder (train/overfit.h).
#include "train/overfit.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "lib/common.h"
#include "lib/metrics.h"
#include "lib/ops/ops.h"
#include "lib/rng.h"
#include "lib/threads.h"
#include "train/optim.h"

namespace ntc::train {

namespace ov = nn::overfit;

namespace {

double seconds_now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct Net {
  ov::Arch a;
  std::vector<Tensor> latents;  // [1, 1, h_l, w_l]
  std::vector<Tensor> w;        // ov::param_specs order
  std::vector<Tensor> params() const {
    std::vector<Tensor> p = latents;
    p.insert(p.end(), w.begin(), w.end());
    return p;
  }
};

Net make_net(const ov::Arch& a, uint64_t seed, const Tensor& target) {
  Net n;
  n.a = a;
  Rng rng(seed);
  for (int l = 0; l < a.levels; ++l) n.latents.push_back(Tensor::param({1, 1, a.grid_h(l), a.grid_w(l)}));
  for (const ov::ParamSpec& s : ov::param_specs(a)) {
    Tensor t = Tensor::param(s.shape);
    float bound = 0;
    if (s.name == "arm.w1") bound = 1.f / 4.f;
    if (s.name == "arm.w2") bound = 1.f / std::sqrt(float(a.arm_hidden));
    if (s.name == "syn.w1") bound = 1.f / std::sqrt(float(a.levels));
    if (s.name == "syn.w2") bound = 1.f / std::sqrt(float(a.syn_hidden));
    if (bound > 0) rng.fill_uniform(t.data(), size_t(t.numel()), -bound, bound);
    if (s.name == "syn.b1" || s.name == "arm.b1" || s.name == "arm.b2")  // live ReLUs while the latents are 0
      rng.fill_uniform(t.data(), size_t(t.numel()), 0.f, 0.1f);
    if (s.name.rfind("up.f", 0) == 0) {  // learned upsampling starts bilinear
      t.data()[0] = 0.75f;
      t.data()[1] = 0.25f;
      t.data()[2] = t.data()[3] = 0.f;
    }
    if (s.name == "syn.b2")  // start at the image's mean colour
      for (int64_t c = 0; c < a.channels; ++c) {
        const int64_t px = target.dim(2) * target.dim(3);
        double m = 0;
        for (int64_t i = 0; i < px; ++i) m += target.data()[c * px + i];
        t.data()[c] = float(m / double(px));
      }
    n.w.push_back(t);
  }
  return n;
}

struct Terms {
  Tensor loss;
  double bpp = 0, mse255 = 0;
};

enum class Quant { Soft, Hard };

// target: [1, C, H, W] in [0, 1].
Terms forward(const Net& n, const Tensor& target, Quant q, float T, float noise, Rng& rng, double lambda) {
  const ov::Arch& a = n.a;
  const auto& w = n.w;
  const double px = double(a.height) * a.width;
  static const std::vector<std::pair<int, int>> offsets = ov::context_offsets();
  Tensor bits_total;
  std::vector<Tensor> ups;
  for (int l = 0; l < a.levels; ++l) {
    const Tensor& y = n.latents[size_t(l)];
    const Tensor yq = q == Quant::Hard ? round_ste(y)
                                       : soft_round(add(soft_round(y, T), Tensor::uniform(y.shape(), -noise, noise, rng)), T);
    // Rate: the ARM on the causal context of every latent.
    const Tensor ctx = causal_context(yq, offsets);  // [1, 16, h, w]
    Tensor h = pointwise_relu(ctx, w[0], w[1]);
    h = pointwise_relu(h, w[2], w[3]);
    const Tensor o = conv2d(h, w[4], w[5], 1, Pad2{});
    const Tensor bits = sum(laplace_bits(yq, slice_channels(o, 0, 1), slice_channels(o, 1, 1), ov::kLogbMin, ov::kLogbMax));
    bits_total = bits_total.defined() ? add(bits_total, bits) : bits;
    // Upsampling to full resolution.
    Tensor u = yq;
    for (int s = l; s > 0; --s)
      u = a.learned_up ? upsample2(u, a.grid_h(s - 1), a.grid_w(s - 1), w[ov::up_taps_index(s)])
                       : upsample2(u, a.grid_h(s - 1), a.grid_w(s - 1));
    ups.push_back(u);
  }
  const Tensor x = concat_channels(ups);
  const Tensor hid = pointwise_relu(x, w[6], w[7]);
  const Tensor x0 = conv2d(hid, w[8], w[9], 1, Pad2{});
  const Tensor x1 = add(x0, conv2d_same(x0, w[10], w[11], 1));
  const Tensor x2 = add(x1, conv2d_same(relu(x1), w[12], w[13], 1));
  const Tensor mse = mean(square(sub(x2, target)));
  Terms t;
  t.bpp = double(bits_total.data()[0]) / px;
  t.mse255 = double(mse.data()[0]) * 255.0 * 255.0;
  t.loss = add(mul_scalar(bits_total, float(1.0 / px)), mul_scalar(mse, float(lambda * 255.0 * 255.0)));
  return t;
}

// A training run's state: the net and its optimiser.
struct Run {
  Net net;
  std::unique_ptr<Adam> adam, adam_lat;  // networks, latents
  Rng rng;
  double loss = 0, bpp = 0, mse255 = 0;
};

// The loss with hard rounding (what the decoder sees, before the weights are quantised); no graph.
Terms hard_terms(const Net& n, const Tensor& target, double lambda) {
  NoGrad ng;
  Rng unused(0);
  return forward(n, target, Quant::Hard, 0.1f, 0.f, unused, lambda);
}

// The best state seen: the parameters with the lowest hard-rounded loss.
struct Best {
  std::vector<std::vector<float>> p;
  double loss = INFINITY, bpp = 0, mse255 = 0;
  int iter = -1;
  void keep(const Net& n, const Terms& t, double loss_value, int it) {
    const std::vector<Tensor> ps = n.params();
    p.resize(ps.size());
    for (size_t i = 0; i < ps.size(); ++i) p[i].assign(ps[i].data(), ps[i].data() + ps[i].numel());
    loss = loss_value;
    bpp = t.bpp;
    mse255 = t.mse255;
    iter = it;
  }
  void restore(Net& n) const {
    std::vector<Tensor> ps = n.params();
    for (size_t i = 0; i < ps.size(); ++i) std::copy(p[i].begin(), p[i].end(), ps[i].data());
  }
};

// Measures the current state with hard rounding and keeps it if it is the best; returns its loss.
double check_point(const Net& n, const Tensor& target, double lambda, int it, Best& best) {
  const Terms t = hard_terms(n, target, lambda);
  const double l = double(t.loss.data()[0]);
  if (l < best.loss) best.keep(n, t, l, it);
  return l;
}

// best (optional): every o.eval_every iterations of the soft phase, and at every iteration of the hard
// phase (whose training loss is the hard loss), the state is measured and kept if it is the best; the
// hard phase starts from the best state of the soft phase.
void train_steps(Run& r, const Tensor& target, int from, int to, int total, const OverfitOptions& o, int hard_from,
                 const std::function<void(int, double)>& each, Best* best = nullptr) {
  for (int it = from; it < to; ++it) {
    if (best && it > 0 && it < hard_from && o.eval_every > 0 && it % o.eval_every == 0)
      check_point(r.net, target, o.lambda, it, *best);
    if (best && it == hard_from && it > 0) {
      const double now = check_point(r.net, target, o.lambda, it, *best);
      if (best->loss < now) best->restore(r.net);
    }
    // Cosine decay over the soft phase; the hard phase starts again from hard_lr_scale·lr.
    const bool hard = it >= hard_from;
    const double frac = hard ? double(it - hard_from) / std::max(1, total - hard_from) : double(it) / std::max(1, hard_from);
    const float lr = float((hard ? o.lr * o.hard_lr_scale : o.lr) * 0.5 * (1 + std::cos(M_PI * frac)));
    const int soft_len = std::max(1, hard_from);
    const double ramp = std::min(1.0, double(it) / soft_len);
    const float T = float(0.3 - 0.2 * ramp);
    // Uniform noise of standard deviation 0.25 falling to 0.1 (half-width √3·σ).
    const float noise = float(std::sqrt(3.0) * (0.25 - 0.15 * ramp));
    const Quant q = hard ? Quant::Hard : Quant::Soft;
    for (Tensor& p : r.adam->params()) p.zero_grad();
    for (Tensor& p : r.adam_lat->params()) p.zero_grad();
    Terms t = forward(r.net, target, q, T, noise, r.rng, o.lambda);
    r.loss = double(t.loss.data()[0]);
    r.bpp = t.bpp;
    r.mse255 = t.mse255;
    if (best && hard && r.loss < best->loss) best->keep(r.net, t, r.loss, it);
    t.loss.backward();
    r.adam->step(std::max(lr, o.lr * 1e-4f));
    r.adam_lat->step(std::max(lr, o.lr * 1e-4f) * (hard ? 1.f : o.latent_lr_scale));
    if (each) each(it, r.loss);
  }
}

// The quantised network for step exponents e, and the stream and reconstruction it gives.
struct Coded {
  ov::Stream s;
  std::vector<uint8_t> bytes;
  Tensor recon;
  double bpp = 0, mse = 0, cost = 0;
};

Coded code_with(const Net& n, const std::vector<std::vector<int32_t>>& latents, const std::array<int, ov::kGroups>& e,
                const Tensor& img, double lambda) {
  Coded c;
  c.s.arch = n.a;
  c.s.lambda = float(lambda);
  c.s.latents = latents;
  const auto specs = ov::param_specs(n.a);
  c.s.net.step_exp = e;
  c.s.net.q.resize(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const float* v = n.w[i].data();
    auto& q = c.s.net.q[i];  // within ±2^29: codable, also as a difference from a bilinear tap
    q.resize(size_t(n.w[i].numel()));
    for (size_t j = 0; j < q.size(); ++j)
      q[j] = int32_t(std::clamp(std::nearbyint(std::ldexp(double(v[j]), e[size_t(specs[i].group)])), -536870911.0, 536870911.0));
  }
  c.s.net.eg_order = ov::best_eg_orders(n.a, c.s.net);
  c.bytes = ov::write_stream(c.s);
  c.recon = ov::synthesize(n.a, c.s.net.dequantize(n.a), latents);
  const double px = double(n.a.height) * n.a.width;
  c.mse = mse(c.recon, img);
  c.bpp = 8.0 * double(c.bytes.size()) / px;
  c.cost = c.bpp + lambda * c.mse;
  return c;
}

// Rounds the latents and searches the step exponents group by group (two sweeps). A group's
// candidates are coded side by side on the threads, then compared in candidate order, keeping a
// later one only when strictly better: the choice of the serial search, whatever the thread count
// (code_with is deterministic, so coding the winner again gives the stream that was measured).
Coded quantise_and_code(const Net& n, const Tensor& img, double lambda) {
  std::vector<std::vector<int32_t>> latents;
  for (const Tensor& y : n.latents) {
    std::vector<int32_t> v(size_t(y.numel()));
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = int32_t(std::clamp(std::nearbyint(double(y.data()[i])), -16777216.0, 16777216.0));
    latents.push_back(std::move(v));
  }
  std::array<int, ov::kGroups> e = {8, 10, 8, 10, 8};
  Coded best = code_with(n, latents, e, img, lambda);
  for (int sweep = 0; sweep < 2; ++sweep)
    for (int g = 0; g < n.a.groups(); ++g) {
      std::vector<std::array<int, ov::kGroups>> cands;
      for (int cand = 2; cand <= 16; ++cand)
        if (cand != e[size_t(g)]) {
          cands.push_back(e);
          cands.back()[size_t(g)] = cand;
        }
      // Costs only (a candidate's stream and image are dropped as soon as it is measured: a large
      // image's candidates together would hold hundreds of MB); the winner is coded again.
      std::vector<double> cost(cands.size());
      ThreadErrors errors;
#pragma omp parallel for schedule(dynamic)
      for (long i = 0; i < long(cands.size()); ++i)
        errors.run([&] { cost[size_t(i)] = code_with(n, latents, cands[size_t(i)], img, lambda).cost; });
      errors.rethrow();
      size_t win = cands.size();
      double win_cost = best.cost;
      for (size_t i = 0; i < cands.size(); ++i)
        if (cost[i] < win_cost) {
          win = i;
          win_cost = cost[i];
        }
      if (win < cands.size()) {
        e = cands[win];
        best = code_with(n, latents, e, img, lambda);
        NTC_CHECK(best.cost == win_cost, "quantise_and_code: coding is not deterministic");
      }
    }
  return best;
}

}  // namespace

int overfit_total_iters(const OverfitOptions& o) {
  return o.candidates > 1 ? o.iters + (o.candidates - 1) * std::min(o.warmup_iters, o.iters) : o.iters;
}

int overfit_preset_iters(const std::string& preset) {
  if (preset == "fast") return 1000;
  if (preset == "medium") return 10000;
  if (preset == "slow") return 20000;
  fail("--overfit wants fast, medium or slow, got '", preset, "'");
}

OverfitResult overfit_encode(const Tensor& img, const OverfitOptions& o) {
  NTC_CHECK(img.ndim() == 4 && img.dim(0) == 1 && img.dim(1) == 3, "overfit_encode: image ", shape_str(img.shape()));
  const int64_t H = img.dim(2), W = img.dim(3);
  if (H * W > kOverfitMaxPixels)
    fail("--overfit codes images up to ", kOverfitMaxPixels / 1000000, " megapixels (its training needs about 2 KB per "
         "pixel); this one has ", W, "x", H);
  if (o.iters < 1 || o.candidates < 1 || o.warmup_iters < 0) fail("--overfit: iterations must be positive");
  if (o.levels < 1 || o.levels > 8) fail("--overfit: 1 to 8 latent levels");
  if (o.syn_hidden < 1 || o.syn_hidden > 64 || o.arm_hidden < 1 || o.arm_hidden > 64) fail("--overfit: layer widths 1 to 64");
  const double t0 = seconds_now();
  ov::Arch a;
  a.height = int(H);
  a.width = int(W);
  a.levels = o.levels;
  a.syn_hidden = o.syn_hidden;
  a.arm_hidden = o.arm_hidden;
  a.learned_up = o.learned_up;
  const int64_t px = H * W;
  bool grey = true;
  for (int64_t i = 0; i < px && grey; ++i)
    grey = img.data()[i] == img.data()[px + i] && img.data()[i] == img.data()[2 * px + i];
  a.channels = grey ? 1 : 3;
  Tensor target = Tensor::empty({1, a.channels, H, W});
  for (int64_t i = 0; i < a.channels * px; ++i) target.data()[i] = img.data()[i] / 255.f;

  const int hard_from = int(std::lround(o.iters * (1 - o.hard_fraction)));
  const int total = overfit_total_iters(o), warmup = std::min(o.warmup_iters, o.iters);
  int done = 0;
  auto each = [&](int, double loss) {
    ++done;
    if (o.progress) o.progress(done, total, loss);
  };
  auto start = [&](uint64_t seed) {
    Run r;
    r.net = make_net(a, seed, target);
    r.adam = std::make_unique<Adam>(r.net.w, AdamForm::Torch);
    r.adam_lat = std::make_unique<Adam>(r.net.latents, AdamForm::Torch);
    r.rng = Rng(seed ^ 0x5eedull);
    return r;
  };
  Run best;
  if (o.candidates > 1) {
    double best_loss = INFINITY;
    for (int c = 0; c < o.candidates; ++c) {
      Run r = start(o.seed + uint64_t(c));
      double tail = 0;
      int ntail = 0;
      train_steps(r, target, 0, warmup, o.iters, o, hard_from, [&](int it, double loss) {
        each(it, loss);
        if (it >= warmup * 3 / 4) {
          tail += loss;
          ++ntail;
        }
      });
      const double score = ntail ? tail / ntail : r.loss;
      if (score < best_loss) {
        best_loss = score;
        best = std::move(r);
      }
    }
  } else {
    best = start(o.seed);
  }
  // The winner goes on from where the warm-up left it; the best state it passes through is coded.
  // (eval_every 0: the last state, as before keeping the best.)
  Best kept;
  const bool keep = o.eval_every > 0;
  train_steps(best, target, o.candidates > 1 ? warmup : 0, o.iters, o.iters, o, hard_from, each, keep ? &kept : nullptr);
  if (keep) {
    const double last = check_point(best.net, target, o.lambda, o.iters, kept);
    if (kept.loss < last) kept.restore(best.net);
  } else {
    const Terms t = hard_terms(best.net, target, o.lambda);
    kept.keep(best.net, t, double(t.loss.data()[0]), o.iters);
  }
  OverfitResult res;
  res.kept_iter = kept.iter;
  res.kept_loss = kept.loss;
  res.kept_bpp = kept.bpp;
  res.kept_psnr = 10 * std::log10(255.0 * 255.0 / std::max(kept.mse255, 1e-12));
  const Coded c = quantise_and_code(best.net, img, o.lambda);
  res.bytes = c.bytes;
  res.recon = c.recon;
  res.arch = a;
  res.bpp = c.bpp;
  res.psnr = 10 * std::log10(255.0 * 255.0 / std::max(c.mse, 1e-12));
  res.weight_bits = double(ov::weight_bits(a, c.s.net));
  res.train_loss = best.loss;
  res.train_bpp = best.bpp;
  res.train_psnr = 10 * std::log10(255.0 * 255.0 / std::max(best.mse255, 1e-12));
  res.seconds = seconds_now() - t0;
  return res;
}

}  // namespace ntc::train
