// `ntc plot A.json B.json ... -o rd.svg|png` — PSNR (dB) against bits per pixel for any set of RD
// curves in the anchors' shape ({"name", "bpp": [...], "psnr_rgb": [...]}). SVG has axes, ticks,
// labels and a legend; PNG draws the same curves, axes and grid without text (no font library in
// the dependencies), with the legend colours in the order the files were given.
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "lib/args.h"
#include "cli/commands.h"
#include "lib/common.h"
#include "lib/fileio.h"
#include "lib/json.h"

namespace ntc::cli {
namespace {

struct Series {
  std::string name;
  std::vector<double> bpp, psnr;
};

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

double nice_step(double range) {
  const double raw = range / 6, mag = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

}  // namespace

int cmd_plot(const std::vector<std::string>& argv) {
  Args a(argv, {"o", "title"}, {});
  if (a.positional().empty() || !a.has("o")) usage_fail("usage: ntc plot A.json B.json ... -o rd.svg|png");
  std::vector<Series> ss;
  for (const std::string& f : a.positional()) {
    const Json j = read_json_file(f);
    Series s;
    const Json* n = j.get("name");
    s.name = n && n->kind == Json::String ? n->str : f;
    const Json* b = j.get("bpp");
    const Json* p = j.get("psnr_rgb");
    if (!b || !p) fail(f, ": needs 'bpp' and 'psnr_rgb' arrays");
    s.bpp = b->numbers();
    s.psnr = p->numbers();
    if (s.bpp.size() != s.psnr.size() || s.bpp.empty()) fail(f, ": 'bpp' and 'psnr_rgb' differ in length");
    std::vector<size_t> idx(s.bpp.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](size_t x, size_t y) { return s.bpp[x] < s.bpp[y]; });
    Series t{s.name, {}, {}};
    for (size_t i : idx) t.bpp.push_back(s.bpp[i]), t.psnr.push_back(s.psnr[i]);
    ss.push_back(t);
  }
  double x0 = 1e9, x1 = -1e9, y0 = 1e9, y1 = -1e9;
  for (const auto& s : ss)
    for (size_t i = 0; i < s.bpp.size(); ++i)
      x0 = std::min(x0, s.bpp[i]), x1 = std::max(x1, s.bpp[i]), y0 = std::min(y0, s.psnr[i]), y1 = std::max(y1, s.psnr[i]);
  const double xs = nice_step(std::max(x1 - x0, 1e-3)), ys = nice_step(std::max(y1 - y0, 1e-3));
  x0 = std::floor(x0 / xs) * xs, x1 = std::ceil(x1 / xs) * xs, y0 = std::floor(y0 / ys) * ys, y1 = std::ceil(y1 / ys) * ys;
  const int W = 900, H = 600, L = 80, R = 260, T = 40, B = 70;
  auto X = [&](double v) { return L + (v - x0) / (x1 - x0) * (W - L - R); };
  auto Y = [&](double v) { return H - B - (v - y0) / (y1 - y0) * (H - T - B); };
  const std::string out = a.str("o");
  const bool svg = out.size() > 4 && out.substr(out.size() - 4) == ".svg";
  const bool png = out.size() > 4 && out.substr(out.size() - 4) == ".png";
  if (!svg && !png) fail("plot: -o must end in .svg or .png");

  if (svg) {
    std::ostringstream o;
    o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" font-family=\"sans-serif\" font-size=\"13\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    for (double v = x0; v <= x1 + 1e-9; v += xs)
      o << "<line x1=\"" << X(v) << "\" y1=\"" << T << "\" x2=\"" << X(v) << "\" y2=\"" << H - B << "\" stroke=\"#ddd\"/>"
        << "<text x=\"" << X(v) << "\" y=\"" << H - B + 18 << "\" text-anchor=\"middle\">" << v << "</text>\n";
    for (double v = y0; v <= y1 + 1e-9; v += ys)
      o << "<line x1=\"" << L << "\" y1=\"" << Y(v) << "\" x2=\"" << W - R << "\" y2=\"" << Y(v) << "\" stroke=\"#ddd\"/>"
        << "<text x=\"" << L - 8 << "\" y=\"" << Y(v) + 4 << "\" text-anchor=\"end\">" << v << "</text>\n";
    o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B << "\" fill=\"none\" stroke=\"black\"/>\n"
      << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 25 << "\" text-anchor=\"middle\">bits per pixel</text>\n"
      << "<text x=\"20\" y=\"" << (T + H - B) / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 20 " << (T + H - B) / 2 << ")\">PSNR (dB, RGB)</text>\n";
    if (a.has("title")) o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"25\" text-anchor=\"middle\" font-size=\"15\">" << xml_escape(a.str("title")) << "</text>\n";
    for (size_t k = 0; k < ss.size(); ++k) {
      const char* c = kColors[k % 10];
      o << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"2\" points=\"";
      for (size_t i = 0; i < ss[k].bpp.size(); ++i) o << X(ss[k].bpp[i]) << "," << Y(ss[k].psnr[i]) << " ";
      o << "\"/>\n";
      for (size_t i = 0; i < ss[k].bpp.size(); ++i) o << "<circle cx=\"" << X(ss[k].bpp[i]) << "\" cy=\"" << Y(ss[k].psnr[i]) << "\" r=\"3\" fill=\"" << c << "\"/>";
      std::string name = ss[k].name;
      for (auto [from, to] : {std::pair{"&", "&amp;"}, std::pair{"<", "&lt;"}, std::pair{">", "&gt;"}})
        for (size_t p = 0; (p = name.find(from, p)) != std::string::npos; p += std::string(to).size()) name.replace(p, 1, to);
      o << "\n<line x1=\"" << W - R + 15 << "\" y1=\"" << T + 10 + 20 * k << "\" x2=\"" << W - R + 40 << "\" y2=\"" << T + 10 + 20 * k
        << "\" stroke=\"" << c << "\" stroke-width=\"3\"/><text x=\"" << W - R + 46 << "\" y=\"" << T + 14 + 20 * k << "\" font-size=\"11\">"
        << name.substr(0, 34) << "</text>\n";
    }
    o << "</svg>\n";
    const std::string s = o.str();
    write_file_atomic(out, std::vector<uint8_t>(s.begin(), s.end()));
    return 0;
  }
  // PNG: white canvas, grid, frame, thick polylines and legend swatches.
  std::vector<uint8_t> px(size_t(W) * H * 3, 255);
  auto dot = [&](int x, int y, const uint8_t* c) {
    if (x >= 0 && x < W && y >= 0 && y < H) std::copy(c, c + 3, px.begin() + (long(y) * W + x) * 3);
  };
  auto line = [&](double xa, double ya, double xb, double yb, const uint8_t* c, int width) {
    const int n = int(std::max(std::fabs(xb - xa), std::fabs(yb - ya))) + 1;
    for (int i = 0; i <= n; ++i) {
      const double t = double(i) / n, x = xa + t * (xb - xa), y = ya + t * (yb - ya);
      for (int dx = -width / 2; dx <= width / 2; ++dx)
        for (int dy = -width / 2; dy <= width / 2; ++dy) dot(int(std::lround(x)) + dx, int(std::lround(y)) + dy, c);
    }
  };
  const uint8_t grid[3] = {221, 221, 221}, black[3] = {0, 0, 0};
  for (double v = x0; v <= x1 + 1e-9; v += xs) line(X(v), T, X(v), H - B, grid, 1);
  for (double v = y0; v <= y1 + 1e-9; v += ys) line(L, Y(v), W - R, Y(v), grid, 1);
  line(L, T, W - R, T, black, 1), line(L, H - B, W - R, H - B, black, 1), line(L, T, L, H - B, black, 1), line(W - R, T, W - R, H - B, black, 1);
  for (size_t k = 0; k < ss.size(); ++k) {
    const char* hex = kColors[k % 10];
    const uint8_t c[3] = {uint8_t(std::stoi(std::string(hex + 1, 2), nullptr, 16)), uint8_t(std::stoi(std::string(hex + 3, 2), nullptr, 16)),
                          uint8_t(std::stoi(std::string(hex + 5, 2), nullptr, 16))};
    for (size_t i = 0; i + 1 < ss[k].bpp.size(); ++i) line(X(ss[k].bpp[i]), Y(ss[k].psnr[i]), X(ss[k].bpp[i + 1]), Y(ss[k].psnr[i + 1]), c, 3);
    line(W - R + 15, T + 10 + 20 * double(k), W - R + 40, T + 10 + 20 * double(k), c, 5);
  }
  std::vector<uint8_t> png_bytes;
  auto sink = [](void* ctx, void* data, int size) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  if (!stbi_write_png_to_func(sink, &png_bytes, W, H, 3, px.data(), W * 3)) fail("plot: PNG encoding failed");
  write_file_atomic(out, png_bytes);
  return 0;
}

}  // namespace ntc::cli
