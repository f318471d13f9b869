#include "train/derive.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

#include "lib/common.h"
#include "lib/gemm.h"
#include "lib/json.h"
#include "nn/compress.h"
#include "nn/model.h"
#include "train/data.h"
#include "train/trainer.h"

namespace ntc::train {
namespace {

struct Tap {
  int k, d;  // kernel index, latent offset
};

// For each phase p in [0, s) of one axis: the taps that reach output s·i + p, and the latent
// i + d each reads. Output s·i' + k − pad comes from latent i' through tap k (same padding).
std::vector<std::vector<Tap>> phase_taps(int k, int s) {
  const int pad = std::max(k - s, 0) / 2;
  std::vector<std::vector<Tap>> ph(static_cast<size_t>(s));
  for (int kk = 0; kk < k; ++kk) {
    const int q = kk - pad;
    const int m = q >= 0 ? q / s : -((-q + s - 1) / s);  // floor(q / s)
    ph[size_t(q - m * s)].push_back({kk, -m});
  }
  for (auto& t : ph) std::sort(t.begin(), t.end(), [](Tap a, Tap b) { return a.d < b.d; });
  return ph;
}

// Cholesky factor (lower triangle, in place) of the n×n symmetric positive definite a.
void cholesky(std::vector<double>& a, int n) {
  for (int j = 0; j < n; ++j) {
    double d = a[size_t(j) * n + j];
    for (int k = 0; k < j; ++k) d -= a[size_t(j) * n + k] * a[size_t(j) * n + k];
    NTC_CHECK(d > 0, "derive: the normal matrix is not positive definite");
    d = std::sqrt(d);
    a[size_t(j) * n + j] = d;
    for (int i = j + 1; i < n; ++i) {
      double v = a[size_t(i) * n + j];
      for (int k = 0; k < j; ++k) v -= a[size_t(i) * n + k] * a[size_t(j) * n + k];
      a[size_t(i) * n + j] = v / d;
    }
  }
}

// Solves (L·Lᵀ) x = b in place.
void cholesky_solve(const std::vector<double>& l, int n, double* b) {
  for (int i = 0; i < n; ++i) {
    double v = b[i];
    for (int k = 0; k < i; ++k) v -= l[size_t(i) * n + k] * b[k];
    b[i] = v / l[size_t(i) * n + i];
  }
  for (int i = n - 1; i >= 0; --i) {
    double v = b[i];
    for (int k = i + 1; k < n; ++k) v -= l[size_t(k) * n + i] * b[k];
    b[i] = v / l[size_t(i) * n + i];
  }
}

double dot(const double* a, const double* b, int n) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

Tensor find_param(const nn::Model& m, const std::string& name) {
  for (const auto& [n, t] : m.named_parameters())
    if (n == name) return t;
  fail("derive: the model has no parameter ", name);
}

}  // namespace

LinearSynthesisFit::LinearSynthesisFit(int C, int k, int s) : C_(C), k_(k), s_(s) {
  NTC_CHECK(C > 0 && s > 0, "LinearSynthesisFit: bad shape");
  if (k < s) fail("derive: a kernel (", k, ") smaller than the stride (", s, ") leaves pixels without taps");
  const auto taps = phase_taps(k, s);
  std::map<std::pair<std::vector<int>, std::vector<int>>, int> index;
  auto offsets = [&](int p) {
    std::vector<int> d;
    for (const Tap& t : taps[size_t(p)]) d.push_back(t.d);
    return d;
  };
  phases_.resize(size_t(s) * s);
  for (int p = 0; p < s; ++p)
    for (int q = 0; q < s; ++q) {
      auto key = std::make_pair(offsets(p), offsets(q));
      auto it = index.find(key);
      if (it == index.end()) {
        Class c;
        c.dy = key.first;
        c.dx = key.second;
        c.dim = int(c.dy.size() * c.dx.size()) * C;
        if (c.dim > 8192) fail("derive: ", c.dim, " unknowns per phase is more than the fit handles");
        c.G.assign(size_t(c.dim) * c.dim, 0.0);
        c.sum.assign(size_t(c.dim), 0.0);
        it = index.emplace(key, int(classes_.size())).first;
        classes_.push_back(std::move(c));
      }
      Phase& f = phases_[size_t(p) * s + q];
      f.cls = it->second;
      f.r.assign(size_t(classes_[size_t(f.cls)].dim) * 3, 0.0);
      classes_[size_t(f.cls)].phases.push_back(p * s + q);
    }
}

void LinearSynthesisFit::add(const Tensor& yh, const Tensor& x, double weight) {
  NTC_CHECK(weight > 0 && std::isfinite(weight), "derive: sample weight ", weight);
  const int C = C_, s = s_;
  NTC_CHECK(yh.ndim() == 4 && yh.dim(0) == 1 && yh.dim(1) == C && x.ndim() == 4 && x.dim(0) == 1 && x.dim(1) == 3 &&
                x.dim(2) == yh.dim(2) * s && x.dim(3) == yh.dim(3) * s,
            "derive: latents ", shape_str(yh.shape()), " for image ", shape_str(x.shape()));
  const int h = int(yh.dim(2)), w = int(yh.dim(3)), n = h * w;
  const int64_t H = x.dim(2), Wd = x.dim(3);
  const float* yd = yh.data();
  const float* xd = x.data();
  for (Class& c : classes_) {
    const int dim = c.dim, nx = int(c.dx.size());
    F_.assign(size_t(n) * dim, 0.f);
    for (size_t a = 0; a < c.dy.size(); ++a)
      for (int b = 0; b < nx; ++b)
        for (int i = 0; i < h; ++i) {
          const int ii = i + c.dy[a];
          if (ii < 0 || ii >= h) continue;
          for (int j = 0; j < w; ++j) {
            const int jj = j + c.dx[size_t(b)];
            if (jj < 0 || jj >= w) continue;
            float* row = F_.data() + (size_t(i) * w + j) * dim + (a * nx + b) * size_t(C);
            for (int ch = 0; ch < C; ++ch) row[ch] = yd[(size_t(ch) * h + ii) * w + jj];
          }
        }
    tmp_.resize(size_t(dim) * dim);
    gemm(true, false, dim, dim, n, 1.f, F_.data(), dim, F_.data(), dim, 0.f, tmp_.data(), dim);
    for (size_t e = 0; e < tmp_.size(); ++e) c.G[e] += weight * tmp_[e];
    for (int r = 0; r < n; ++r)
      for (int e = 0; e < dim; ++e) c.sum[size_t(e)] += weight * F_[size_t(r) * dim + e];
    const int P = int(c.phases.size()), cols = 3 * P;
    T_.resize(size_t(n) * cols);
    for (int i = 0; i < h; ++i)
      for (int j = 0; j < w; ++j)
        for (int u = 0; u < P; ++u) {
          const int p = c.phases[size_t(u)] / s, q = c.phases[size_t(u)] % s;
          for (int o = 0; o < 3; ++o)
            T_[(size_t(i) * w + j) * cols + u * 3 + o] = xd[(size_t(o) * H + size_t(i) * s + p) * Wd + size_t(j) * s + q];
        }
    tmp_.resize(size_t(dim) * cols);
    gemm(true, false, dim, cols, n, 1.f, F_.data(), dim, T_.data(), cols, 0.f, tmp_.data(), cols);
    for (int u = 0; u < P; ++u) {
      Phase& f = phases_[size_t(c.phases[size_t(u)])];
      for (int e = 0; e < dim; ++e)
        for (int o = 0; o < 3; ++o) f.r[size_t(e) * 3 + o] += weight * tmp_[size_t(e) * cols + u * 3 + o];
      for (int r = 0; r < n; ++r)
        for (int o = 0; o < 3; ++o) {
          const double v = T_[size_t(r) * cols + u * 3 + o];
          f.x[o] += weight * v;
          f.xx[o] += weight * v * v;
        }
    }
  }
  count_ += n;
  weight_ += weight * n;
}

double LinearSynthesisFit::solve(const Tensor& W, const Tensor& B) const {
  const int C = C_, k = k_, s = s_;
  NTC_CHECK(W.ndim() == 4 && W.dim(0) == C && W.dim(1) == 3 && W.dim(2) == k && W.dim(3) == k && B.numel() == 3,
            "derive: weights ", shape_str(W.shape()), " for ", C, " channels, kernel ", k);
  if (count_ == 0) fail("derive: no images to fit the synthesis to");
  const auto taps = phase_taps(k, s);
  // For a fixed bias b: w = G⁻¹(r − b·sum) per phase and colour; b then minimises what is left.
  const double N = weight_;  // Σ weight over latent positions
  std::vector<std::vector<double>> u(phases_.size() * 3), v(classes_.size());
  double num[3] = {}, den = 0;
  for (size_t ci = 0; ci < classes_.size(); ++ci) {
    const Class& c = classes_[ci];
    const int dim = c.dim;
    double trace = 0;
    for (int e = 0; e < dim; ++e) trace += c.G[size_t(e) * dim + e];
    std::vector<double> L = c.G;
    const double ridge = 1e-7 * trace / dim + 1e-12;  // channels that are always zero get zero weights
    for (int e = 0; e < dim; ++e) L[size_t(e) * dim + e] += ridge;
    cholesky(L, dim);
    v[ci] = c.sum;
    cholesky_solve(L, dim, v[ci].data());
    for (int pq : c.phases) {
      const Phase& f = phases_[size_t(pq)];
      den += N - dot(c.sum.data(), v[ci].data(), dim);
      for (int o = 0; o < 3; ++o) {
        std::vector<double>& x = u[size_t(pq) * 3 + o];
        x.resize(size_t(dim));
        for (int e = 0; e < dim; ++e) x[size_t(e)] = f.r[size_t(e) * 3 + o];
        cholesky_solve(L, dim, x.data());
        num[o] += f.x[o] - dot(c.sum.data(), x.data(), dim);
      }
    }
  }
  double bias[3];
  for (int o = 0; o < 3; ++o) bias[o] = den > 0 ? num[o] / den : 0.0;

  double sse = 0;
  std::vector<double> gw;
  for (int pq = 0; pq < s * s; ++pq) {
    const Phase& f = phases_[size_t(pq)];
    const Class& c = classes_[size_t(f.cls)];
    const int dim = c.dim, p = pq / s, q = pq % s, nx = int(c.dx.size());
    for (int o = 0; o < 3; ++o) {
      std::vector<double>& wv = u[size_t(pq) * 3 + o];
      for (int e = 0; e < dim; ++e) wv[size_t(e)] -= bias[o] * v[size_t(f.cls)][size_t(e)];
      gw.assign(size_t(dim), 0.0);
      for (int a = 0; a < dim; ++a) gw[size_t(a)] = dot(c.G.data() + size_t(a) * dim, wv.data(), dim);
      double wr = 0;
      for (int e = 0; e < dim; ++e) wr += wv[size_t(e)] * f.r[size_t(e) * 3 + o];
      sse += f.xx[o] - 2 * (wr + bias[o] * f.x[o]) + dot(wv.data(), gw.data(), dim) +
             2 * bias[o] * dot(wv.data(), c.sum.data(), dim) + bias[o] * bias[o] * N;
      for (size_t a = 0; a < c.dy.size(); ++a)
        for (int b = 0; b < nx; ++b) {
          const int ky = taps[size_t(p)][a].k, kx = taps[size_t(q)][size_t(b)].k;
          for (int ch = 0; ch < C; ++ch)
            W.data()[((size_t(ch) * 3 + o) * k + ky) * k + kx] = float(wv[(a * nx + b) * size_t(C) + ch]);
        }
    }
  }
  for (int o = 0; o < 3; ++o) B.data()[o] = float(bias[o]);
  return std::max(0.0, sse) / (N * s * s * 3);
}

LinearFitStats fit_linear_synthesis(nn::Model& m, const std::function<Tensor()>& next_image, nn::Model* source,
                                    const std::function<void(int64_t)>& progress) {
  if (m.config().str("synthesis", "") != "jpeg_like")
    fail("derive: the least-squares fit needs a jpeg_like synthesis (one transposed convolution), not '",
         m.config().str("synthesis", "(default)"), "'");
  const Tensor W = find_param(m, "g_s.deconv.weight"), B = find_param(m, "g_s.deconv.bias");
  LinearSynthesisFit fit(m.latent_channels(), int(W.dim(2)), m.latent_stride());
  std::vector<double> rates(m.rate_lambdas().begin(), m.rate_lambdas().end());
  if (rates.empty()) rates.push_back(0.0);  // a fixed-rate model: its one rate
  m.finalize();
  if (source) source->finalize();
  NoGrad ng;
  LinearFitStats st;
  double source_se = 0, weights = 0;
  const double top = rates.back() > 0 ? rates.back() : 1.0;
  for (;;) {
    const Tensor img = next_image();
    if (!img.defined()) break;
    NTC_CHECK(img.ndim() == 4 && img.dim(0) == 1 && img.dim(1) == 3, "derive: image ", shape_str(img.shape()));
    if (img.dim(2) % m.downsampling() || img.dim(3) % m.downsampling())
      fail("derive: fitting crops must be multiples of ", m.downsampling(), " pixels");
    const Tensor x = m.preprocess(img);
    const Tensor y = nn::analysis(m, img);
    for (double lambda : rates) {
      const Tensor yh = nn::decoded_latents(m, nn::latents_at(m, y, lambda), lambda);
      const double wt = lambda > 0 ? lambda / top : 1.0;  // λ·MSE: the fine-tune's weighting of each rate
      fit.add(yh, x, wt);
      weights += wt * double(yh.dim(2) * yh.dim(3));
      if (source) {
        const Tensor xs = source->g_s()(yh);
        NTC_CHECK(xs.shape() == x.shape(), "derive: the source's synthesis gives ", shape_str(xs.shape()));
        double se = 0;
        for (int64_t e = 0; e < x.numel(); ++e) se += double(xs.data()[e] - x.data()[e]) * (xs.data()[e] - x.data()[e]);
        source_se += wt * se;
      }
    }
    ++st.images;
    if (progress) progress(st.images);
  }
  st.mse = fit.solve(W, B) * 255.0 * 255.0;
  st.samples = fit.positions();
  if (source) st.source_mse = source_se / (weights * m.latent_stride() * m.latent_stride() * 3) * 255.0 * 255.0;
  return st;  // the entropy tables (finalize) do not depend on the synthesis: nothing to redo
}

int run_derive(const DeriveOptions& o) {
  if (o.from.empty() || o.config.empty() || o.out.empty()) fail("derive: --from, --config and --out are required");
  if (o.crops < 1 || o.crop < 1) fail("derive: --crops and --crop must be positive");
  const nn::Config cfg = nn::Config::load(o.config);
  const auto t0 = std::chrono::steady_clock::now();
  LinearFitStats st;
  const std::vector<std::string> fitted = write_derived_checkpoint(
      o.from, cfg.text(), cfg.origin(), o.out,
      [&](nn::Model& src, nn::Model& dst, const TrainOptions& to) {
        for (const auto& [name, t] : dst.named_parameters()) {  // only the synthesis may be new
          if (name.rfind("g_s.", 0) == 0) continue;
          bool found = false;
          for (const auto& [n2, t2] : src.named_parameters()) found |= n2 == name && t2.shape() == t.shape();
          if (!found) fail("derive: ", name, " ", shape_str(t.shape()), " is not in ", o.from, "; only the synthesis may differ");
        }
        if (o.crop % dst.downsampling()) fail("derive: --crop must be a multiple of ", dst.downsampling());
        DataOptions d;
        d.dir = o.data.empty() ? to.data : o.data;
        d.crop = o.crop;
        d.batch = 1;
        d.flips = to.flips;
        d.min_scale = to.min_scale;
        d.seed = o.seed;
        BatchLoader loader(d);
        int64_t taken = 0;
        st = fit_linear_synthesis(
            dst, [&] { return taken++ < o.crops ? loader.next() : Tensor(); }, &src, o.progress);
      });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto psnr = [](double mse) { return mse > 0 ? 10 * std::log10(255.0 * 255.0 / mse) : 99.0; };
  std::string names;
  for (const std::string& n : fitted) names += (names.empty() ? "" : ",") + n;
  std::printf("%s\n", json_line(JsonOut{{"from", o.from}, {"out", o.out}, {"fitted", names}, {"images", st.images},
                                        {"samples", st.samples}, {"fit_psnr", json_round(psnr(st.mse), 3)},
                                        {"source_psnr", json_round(psnr(st.source_mse), 3)},
                                        {"seconds", json_round(secs, 1)}})
                          .c_str());
  return 0;
}

}  // namespace ntc::train
