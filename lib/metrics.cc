#include "lib/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "lib/common.h"

namespace ntc {
namespace {

// One channel as a double image.
struct Plane {
  int h = 0, w = 0;
  std::vector<double> v;
  double at(int i, int j) const { return v[size_t(i) * size_t(w) + size_t(j)]; }
};

Plane channel(const Tensor& t, int c) {
  Plane p;
  p.h = int(t.dim(2));
  p.w = int(t.dim(3));
  const float* s = t.data() + int64_t(c) * p.h * p.w;
  p.v.assign(s, s + int64_t(p.h) * p.w);
  return p;
}

// VALID separable filter with the normalised 11-tap Gaussian (σ = 1.5).
Plane gauss(const Plane& x) {
  static const std::vector<double> k = [] {
    std::vector<double> g(11);
    for (int i = 0; i < 11; ++i) g[size_t(i)] = std::exp(-(i - 5.0) * (i - 5.0) / (2 * 1.5 * 1.5));
    const double s = std::accumulate(g.begin(), g.end(), 0.0);
    for (double& v : g) v /= s;
    return g;
  }();
  Plane t, o;
  t.h = x.h;
  t.w = x.w - 10;
  t.v.assign(size_t(t.h) * size_t(t.w), 0.0);
  for (int i = 0; i < t.h; ++i)
    for (int j = 0; j < t.w; ++j)
      for (int q = 0; q < 11; ++q) t.v[size_t(i) * size_t(t.w) + size_t(j)] += k[size_t(q)] * x.at(i, j + q);
  o.h = x.h - 10;
  o.w = t.w;
  o.v.assign(size_t(o.h) * size_t(o.w), 0.0);
  for (int i = 0; i < o.h; ++i)
    for (int j = 0; j < o.w; ++j)
      for (int q = 0; q < 11; ++q) o.v[size_t(i) * size_t(o.w) + size_t(j)] += k[size_t(q)] * t.at(i + q, j);
  return o;
}

Plane product(const Plane& a, const Plane& b) {
  Plane p = a;
  for (size_t i = 0; i < p.v.size(); ++i) p.v[i] *= b.v[i];
  return p;
}

// Mean SSIM and mean contrast-structure term of one channel pair (TF _ssim_helper).
std::pair<double, double> ssim_cs(const Plane& x, const Plane& y) {
  if (x.h < 11 || x.w < 11) fail("SSIM needs images of at least 11x11 pixels");
  const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
  const Plane mx = gauss(x), my = gauss(y), xx = gauss(product(x, x)), yy = gauss(product(y, y)), xy = gauss(product(x, y));
  double s = 0, cs = 0;
  for (size_t i = 0; i < mx.v.size(); ++i) {
    const double ux = mx.v[i], uy = my.v[i];
    const double l = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1);
    const double c = (2 * (xy.v[i] - ux * uy) + c2) / ((xx.v[i] - ux * ux) + (yy.v[i] - uy * uy) + c2);
    s += l * c;
    cs += c;
  }
  return {s / double(mx.v.size()), cs / double(mx.v.size())};
}

// Symmetric pad of an odd dimension by one, then 2×2 average pooling.
Plane downsample(const Plane& x) {
  Plane p;
  p.h = (x.h + 1) / 2;
  p.w = (x.w + 1) / 2;
  p.v.resize(size_t(p.h) * size_t(p.w));
  auto px = [&](int i, int j) { return x.at(std::min(i, x.h - 1), std::min(j, x.w - 1)); };  // symmetric: repeat edge
  for (int i = 0; i < p.h; ++i)
    for (int j = 0; j < p.w; ++j)
      p.v[size_t(i) * size_t(p.w) + size_t(j)] =
          0.25 * (px(2 * i, 2 * j) + px(2 * i + 1, 2 * j) + px(2 * i, 2 * j + 1) + px(2 * i + 1, 2 * j + 1));
  return p;
}

void check_pair(const Tensor& a, const Tensor& b) {
  NTC_CHECK(a.shape() == b.shape() && a.ndim() == 4 && a.dim(0) == 1, "metric on ", shape_str(a.shape()), " vs ",
            shape_str(b.shape()));
}

// Monotone cubic Hermite interpolation (Fritsch–Carlson) through (x, y), x increasing; integral
// over [a, b] within the data range, by Simpson's rule on a fine grid of each interval.
struct Pchip {
  std::vector<double> x, y, d;
  Pchip(std::vector<double> xs, std::vector<double> ys) : x(std::move(xs)), y(std::move(ys)) {
    const size_t n = x.size();
    std::vector<double> h(n - 1), s(n - 1);
    for (size_t i = 0; i + 1 < n; ++i) {
      h[i] = x[i + 1] - x[i];
      s[i] = (y[i + 1] - y[i]) / h[i];
    }
    d.assign(n, 0.0);
    if (n == 2) {
      d[0] = d[1] = s[0];
      return;
    }
    for (size_t i = 1; i + 1 < n; ++i)
      if (s[i - 1] * s[i] > 0) {
        const double w1 = 2 * h[i] + h[i - 1], w2 = h[i] + 2 * h[i - 1];
        d[i] = (w1 + w2) / (w1 / s[i - 1] + w2 / s[i]);
      }
    auto end = [](double h0, double h1, double s0, double s1) {
      double e = ((2 * h0 + h1) * s0 - h0 * s1) / (h0 + h1);
      if (e * s0 <= 0) e = 0;
      else if (s0 * s1 <= 0 && std::fabs(e) > std::fabs(3 * s0)) e = 3 * s0;
      return e;
    };
    d[0] = end(h[0], h[1], s[0], s[1]);
    d[n - 1] = end(h[n - 2], h[n - 3 < n ? n - 3 : 0], s[n - 2], s[n - 3 < n ? n - 3 : 0]);
  }
  double operator()(double t) const {
    size_t i = 0;
    while (i + 2 < x.size() && t > x[i + 1]) ++i;
    const double h = x[i + 1] - x[i], u = (t - x[i]) / h;
    const double h00 = (1 + 2 * u) * (1 - u) * (1 - u), h10 = u * (1 - u) * (1 - u), h01 = u * u * (3 - 2 * u),
                 h11 = u * u * (u - 1);
    return h00 * y[i] + h10 * h * d[i] + h01 * y[i + 1] + h11 * h * d[i + 1];
  }
  double integral(double a, double b) const {
    const int n = 2000;  // Simpson, even n
    const double hh = (b - a) / n;
    double s = (*this)(a) + (*this)(b);
    for (int k = 1; k < n; ++k) s += (k % 2 ? 4 : 2) * (*this)(a + k * hh);
    return s * hh / 3;
  }
};

// Sorted by x; checks sizes.
std::pair<std::vector<double>, std::vector<double>> sorted(const std::vector<double>& x, const std::vector<double>& y) {
  NTC_CHECK(x.size() == y.size(), "curve with ", x.size(), " rates and ", y.size(), " qualities");
  if (x.size() < 2) fail("a rate–distortion curve needs at least two points");
  std::vector<size_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> xs, ys;
  for (size_t i : idx) {
    if (!xs.empty() && x[i] <= xs.back()) fail("a rate–distortion curve has repeated values");
    xs.push_back(x[i]);
    ys.push_back(y[i]);
  }
  return {xs, ys};
}

// Mean difference test − ref of f(v) over the overlap of the two v ranges.
double mean_delta(const std::vector<double>& v_ref, const std::vector<double>& f_ref, const std::vector<double>& v_test,
                  const std::vector<double>& f_test) {
  auto [a, fa] = sorted(v_ref, f_ref);
  auto [b, fb] = sorted(v_test, f_test);
  const double lo = std::max(a.front(), b.front()), hi = std::min(a.back(), b.back());
  if (!(hi > lo)) fail("the two rate–distortion curves do not overlap");
  return (Pchip(b, fb).integral(lo, hi) - Pchip(a, fa).integral(lo, hi)) / (hi - lo);
}

std::vector<double> logs(const std::vector<double>& v) {
  std::vector<double> r;
  for (double x : v) {
    if (!(x > 0)) fail("bpp must be positive");
    r.push_back(std::log(x));
  }
  return r;
}

}  // namespace

double mse(const Tensor& a, const Tensor& b) {
  check_pair(a, b);
  double se = 0;
  for (int64_t i = 0; i < a.numel(); ++i) se += double(a.data()[i] - b.data()[i]) * double(a.data()[i] - b.data()[i]);
  return se / double(a.numel());
}

double psnr(const Tensor& a, const Tensor& b) {
  const double e = mse(a, b);
  return e > 0 ? 10 * std::log10(255.0 * 255.0 / e) : INFINITY;
}

double boundary_ratio(const Tensor& img, int block) {
  NTC_CHECK(img.ndim() == 4 && img.dim(0) == 1 && block >= 2, "boundary_ratio: ", shape_str(img.shape()));
  const int64_t C = img.dim(1), H = img.dim(2), W = img.dim(3);
  double across = 0, inside = 0;
  int64_t n_across = 0, n_inside = 0;
  for (int64_t c = 0; c < C; ++c) {
    const float* p = img.data() + c * H * W;
    for (int64_t b = block; b + 1 < W; b += block)  // vertical boundaries: columns b−1 | b; inside: b | b+1
      for (int64_t y = 0; y < H; ++y) {
        across += std::fabs(double(p[y * W + b]) - p[y * W + b - 1]);
        inside += std::fabs(double(p[y * W + b + 1]) - p[y * W + b]);
        ++n_across, ++n_inside;
      }
    for (int64_t b = block; b + 1 < H; b += block)  // horizontal boundaries
      for (int64_t x = 0; x < W; ++x) {
        across += std::fabs(double(p[b * W + x]) - p[(b - 1) * W + x]);
        inside += std::fabs(double(p[(b + 1) * W + x]) - p[b * W + x]);
        ++n_across, ++n_inside;
      }
  }
  if (n_across == 0) return NAN;
  const double eps = 1e-3;  // a flat interior (0) must not divide by zero
  return (across / double(n_across) + eps) / (inside / double(n_inside) + eps);
}

double ssim(const Tensor& a, const Tensor& b) {
  check_pair(a, b);
  double s = 0;
  for (int c = 0; c < 3; ++c) s += ssim_cs(channel(a, c), channel(b, c)).first;
  return s / 3;
}

double ms_ssim(const Tensor& a, const Tensor& b) {
  check_pair(a, b);
  if (a.dim(2) < 161 || a.dim(3) < 161) return ssim(a, b);
  static const double w[5] = {0.0448, 0.2856, 0.3001, 0.2363, 0.1333};
  double total = 0;
  for (int c = 0; c < 3; ++c) {
    Plane x = channel(a, c), y = channel(b, c);
    double v = 1;
    for (int s = 0; s < 5; ++s) {
      const auto [ss, cs] = ssim_cs(x, y);
      v *= std::pow(std::max(s < 4 ? cs : ss, 0.0), w[s]);
      if (s < 4) {
        x = downsample(x);
        y = downsample(y);
      }
    }
    total += v;
  }
  return total / 3;
}

double bd_rate(const RdCurve& ref, const RdCurve& test) {
  return (std::exp(mean_delta(ref.psnr, logs(ref.bpp), test.psnr, logs(test.bpp))) - 1) * 100;
}

double bd_psnr(const RdCurve& ref, const RdCurve& test) {
  return mean_delta(logs(ref.bpp), ref.psnr, logs(test.bpp), test.psnr);
}

}  // namespace ntc
