#include "train/data.h"

#include <stb_image.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "lib/binio.h"
#include "lib/common.h"
#include "lib/rng.h"

namespace ntc::train {
namespace fs = std::filesystem;

std::vector<std::string> list_images(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("training data: '", dir, "' is not a readable folder");
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") out.push_back(it->path().string());
  }
  if (ec) fail("training data: cannot list '", dir, "': ", ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

BatchLoader::BatchLoader(DataOptions o) : o_(std::move(o)) {
  if (o_.crop < 1 || o_.batch < 1) fail("training data: crop and batch must be positive");
  if (o_.shard_first < 0 || o_.shard_count < 0 || o_.shard_first + o_.shard_count > o_.batch)
    fail("training data: shard [", o_.shard_first, ", +", o_.shard_count, ") outside a batch of ", o_.batch);
  if (!(o_.min_scale > 0 && o_.min_scale <= 1)) fail("training data: min_scale must be in (0, 1]");
  size_t small = 0;
  for (const std::string& f : list_images(o_.dir)) {
    int w = 0, h = 0, c = 0;
    if (!stbi_info(f.c_str(), &w, &h, &c)) fail("training data: cannot read image ", f, ": ", stbi_failure_reason());
    if (std::min(w, h) < o_.crop) {
      ++small;
      continue;
    }
    files_.push_back(f);
    sizes_.push_back({h, w});
  }
  if (small)
    std::fprintf(stderr, "ntc: warning: skipped %zu image(s) in %s smaller than the %d-pixel crop\n", small,
                 o_.dir.c_str(), o_.crop);
  if (files_.empty()) fail("training data: no usable PNG/JPEG image in '", o_.dir, "'");
  if (o_.prefetch > 0) thread_ = std::thread([this] { producer(); });
}

BatchLoader::~BatchLoader() { stop_producer(); }

uint64_t BatchLoader::fingerprint() const {
  uint64_t h = kFnvOffset;
  for (size_t i = 0; i < files_.size(); ++i) {
    const std::string rel = files_[i].size() > o_.dir.size() ? files_[i].substr(o_.dir.size()) : files_[i];
    h = fnv1a(rel.c_str(), rel.size() + 1, h);  // with the terminating zero: names stay apart
    h = fnv1a(&sizes_[i], sizeof sizes_[i], h);
  }
  return h;
}

void BatchLoader::stop_producer() {
  {
    std::lock_guard<std::mutex> l(q_mu_);
    stop_ = true;
  }
  q_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const BatchLoader::Image> BatchLoader::load(size_t file) {
  {
    std::lock_guard<std::mutex> l(cache_mu_);
    auto it = cache_.find(file);
    if (it != cache_.end()) return it->second;
  }
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load(files_[file].c_str(), &w, &h, &c, 3);
  if (!px) fail("training data: cannot decode ", files_[file], ": ", stbi_failure_reason());
  auto img = std::make_shared<Image>();
  img->px.assign(px, px + size_t(w) * size_t(h) * 3);
  img->w = w;
  img->h = h;
  stbi_image_free(px);
  std::lock_guard<std::mutex> l(cache_mu_);
  if (cached_bytes_ + img->px.size() <= o_.cache_bytes) {
    cache_[file] = img;
    cached_bytes_ += img->px.size();
  }
  return img;
}

Tensor BatchLoader::make(uint64_t k) {
  const int B = o_.batch, S = o_.crop;
  const int lo = o_.shard_count ? o_.shard_first : 0, n = o_.shard_count ? o_.shard_count : B;
  const uint64_t F = files_.size();
  Tensor t = Tensor::empty({n, 3, S, S});
  for (int i = lo; i < lo + n; ++i) {
    const uint64_t s = k * uint64_t(B) + uint64_t(i), epoch = s / F;
    // perm_epoch[s mod F]: a Fisher–Yates shuffle seeded by (seed, epoch), computed on demand.
    std::vector<uint32_t> perm(F);
    for (uint32_t j = 0; j < F; ++j) perm[j] = j;
    Rng pr(o_.seed * 0x9E3779B97F4A7C15ull + epoch);
    for (uint64_t j = F - 1; j > 0; --j) std::swap(perm[j], perm[pr.next_u64() % (j + 1)]);
    const auto img = load(perm[s % F]);
    Rng r(Rng::mix(o_.seed) ^ Rng::mix(s + 0x5bd1e995));
    double scale = 1.0;
    if (o_.min_scale < 1) scale = o_.min_scale + (1 - o_.min_scale) * r.uniform();
    scale = std::max(scale, double(S) / std::min(img->w, img->h));  // never below the crop
    const double src = S / scale;  // source window side in pixels
    const double x0 = r.uniform() * (img->w - src), y0 = r.uniform() * (img->h - src);
    const bool flip = o_.flips && r.uniform() < 0.5f;
    float* out = t.data() + int64_t(i - lo) * 3 * S * S;
    for (int yy = 0; yy < S; ++yy)
      for (int xx = 0; xx < S; ++xx) {
        const int xo = flip ? S - 1 - xx : xx;
        if (scale == 1.0) {  // plain crop at integer offsets
          const size_t p = (size_t(int(y0) + yy) * size_t(img->w) + size_t(int(x0) + xx)) * 3;
          for (int ch = 0; ch < 3; ++ch) out[(ch * S + yy) * S + xo] = img->px[p + size_t(ch)];
          continue;
        }
        // Bilinear sample at the centre of the output pixel's footprint.
        const double sx = std::clamp(x0 + (xx + 0.5) / scale - 0.5, 0.0, double(img->w - 1));
        const double sy = std::clamp(y0 + (yy + 0.5) / scale - 0.5, 0.0, double(img->h - 1));
        const int ix = int(sx), iy = int(sy);
        const int ix1 = std::min(ix + 1, img->w - 1), iy1 = std::min(iy + 1, img->h - 1);
        const double fx = sx - ix, fy = sy - iy;
        for (int ch = 0; ch < 3; ++ch) {
          auto P = [&](int yq, int xq) { return double(img->px[(size_t(yq) * size_t(img->w) + size_t(xq)) * 3 + size_t(ch)]); };
          const double top = (1 - fx) * P(iy, ix) + fx * P(iy, ix1), bottom = (1 - fx) * P(iy1, ix) + fx * P(iy1, ix1);
          out[(ch * S + yy) * S + xo] = float((1 - fy) * top + fy * bottom);
        }
      }
  }
  return t;
}

void BatchLoader::producer() {
  std::unique_lock<std::mutex> l(q_mu_);
  while (!stop_) {
    if (queue_.size() >= size_t(o_.prefetch)) {
      q_cv_.wait(l);
      continue;
    }
    const uint64_t k = produce_next_++, gen = gen_;
    l.unlock();
    Tensor t;
    try {
      t = make(k);
    } catch (...) {
      // Left undefined: the consumer recomputes batch k on its own thread and reports the error.
    }
    l.lock();
    if (gen == gen_) queue_.push_back({k, t});  // a seek() since we started makes it stale
    q_cv_.notify_all();
  }
}

void BatchLoader::seek(uint64_t k) {
  std::lock_guard<std::mutex> l(q_mu_);
  pos_ = k;
  queue_.clear();
  produce_next_ = k;
  ++gen_;
  q_cv_.notify_all();
}

Tensor BatchLoader::next() {
  const uint64_t k = pos_++;
  if (thread_.joinable()) {
    std::unique_lock<std::mutex> l(q_mu_);
    q_cv_.wait(l, [&] { return !queue_.empty(); });
    auto [kk, t] = queue_.front();
    queue_.pop_front();
    q_cv_.notify_all();
    NTC_CHECK(kk == k, "batch loader out of order: got ", kk, ", wanted ", k);
    if (t.defined()) return t;
  }
  return make(k);
}

}  // namespace ntc::train
