#include "train/dist.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lib/common.h"
#include "lib/ops/ops.h"

namespace ntc::train {

Comm& single_process_comm() {
  static Comm c;
  return c;
}

ExactGradSum::ExactGradSum(const std::vector<Tensor>& params, int batch) : params_(params), batch_(batch) {
  NTC_CHECK(batch >= 1, "ExactGradSum: batch ", batch);
  size_t n = 0;
  for (const Tensor& p : params_) {
    offset_.push_back(n);
    n += size_t(p.numel());
  }
  offset_.push_back(n);
  acc_.assign(n + params_.size() + 1, 0);  // + per parameter: got a gradient; + the bad-value count
  // Each value below 2^51 after scaling (the rounding trick in add), and Σ over B images below 2^62.
  limit_ = std::min(std::ldexp(1.0, 51 - kFracBits), std::ldexp(1.0, 62 - kFracBits) / batch);
  size_t first = 0, values = 0;
  bucket_of_.assign(params_.size(), 0);
  for (size_t i = 0; i < params_.size(); ++i) {
    values += size_t(params_[i].numel());
    bucket_of_[i] = buckets_.size();
    if (values >= kBucketValues || i + 1 == params_.size()) {
      buckets_.push_back({first, i + 1});
      first = i + 1;
      values = 0;
    }
  }
  is_ready_.assign(params_.size(), 0);
  launched_.assign(buckets_.size(), 0);
  for (size_t i = 0; i < params_.size(); ++i) index_[params_[i].impl()] = i;
}

int64_t ExactGradSum::index_of(const TensorImpl* leaf) const {
  const auto it = index_.find(leaf);
  return it == index_.end() ? -1 : int64_t(it->second);
}

void ExactGradSum::clear() {
  std::memset(acc_.data(), 0, acc_.size() * sizeof(int64_t));
  std::fill(is_ready_.begin(), is_ready_.end(), 0);
  std::fill(launched_.begin(), launched_.end(), 0);
}

void ExactGradSum::add(size_t i) {
  const Tensor& p = params_[i];
  if (!p.has_grad()) return;
  acc_[touched_at() + i] = 1;
  const float* g = p.grad();
  int64_t* a = acc_.data() + offset_[i];
  const int64_t n = p.numel();
  const double scale = std::ldexp(1.0, kFracBits), limit = limit_;
  // Round to nearest (ties to even) by the 1.5·2⁵² trick: x·2^k is exact in double (x is fp32),
  // adding the magic number rounds it to an integer held in the low mantissa bits (|x·2^k| < 2⁵¹),
  // and subtracting the magic's bit pattern leaves that integer. Element-wise and exact, so the
  // same values with any vector width or thread count; GCC vectorises the loop.
  constexpr double kMagic = 6755399441055744.0;  // 1.5·2⁵²
  int64_t magic_bits;
  std::memcpy(&magic_bits, &kMagic, 8);
  int64_t bad = 0;
#pragma omp parallel for reduction(+ : bad) schedule(static) if (n >= (1 << 16))
  for (int64_t j = 0; j < n; ++j) {
    const double x = double(g[j]);
    const bool ok = std::fabs(x) < limit;  // false for NaN too
    bad += ok ? 0 : 1;
    const double v = (ok ? x : 0.0) * scale + kMagic;
    int64_t bits;
    std::memcpy(&bits, &v, 8);
    a[j] += bits - magic_bits;
  }
  acc_.back() += bad;
}

void ExactGradSum::add_all() {
  for (size_t i = 0; i < params_.size(); ++i) add(i);
}

void ExactGradSum::start_all(Comm& c) {
  if (c.size() == 1) return;
  for (size_t b = 0; b < buckets_.size(); ++b) launch(b, c);  // the rest, in index order
}

void ExactGradSum::ready(size_t i, Comm& c) {
  is_ready_[i] = 1;
  if (c.size() == 1) return;
  // A bucket goes out as soon as all its parameters are final. Every rank runs the same graph, so
  // buckets complete in the same order on every rank, and the collectives match.
  const size_t b = bucket_of_[i];
  for (size_t j = buckets_[b].first; j < buckets_[b].second; ++j)
    if (!is_ready_[j]) return;
  launch(b, c);
}

void ExactGradSum::launch(size_t b, Comm& c) {
  if (launched_[b]) return;
  launched_[b] = 1;
  const auto [lo, hi] = buckets_[b];
  c.start_sum(acc_.data() + offset_[lo], offset_[hi] - offset_[lo]);
}

void ExactGradSum::finish(Comm& c) {
  start_all(c);
  // Which parameters got a gradient (on any rank), and the bad-value count.
  if (c.size() > 1) c.start_sum(acc_.data() + touched_at(), params_.size() + 1);
  c.wait_sums();
}

bool ExactGradSum::to_grads(int unit) {
  if (acc_.back() != 0) return false;
  // Each unit's gradient is that of its mean loss: Σ over units · unit / B is the batch mean.
  const double denom = std::ldexp(1.0, kFracBits) * batch_ / unit;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    if (!acc_[touched_at() + i]) continue;  // no image reached it: no gradient, as in a batched step
    float* g = p.grad_acc();
    const int64_t* a = acc_.data() + offset_[i];
    const int64_t n = p.numel();
#pragma omp parallel for schedule(static) if (n >= (1 << 16))
    for (int64_t j = 0; j < n; ++j) g[j] = float(double(a[j]) / denom);
  }
  return true;
}

StepTerms exact_step(nn::Model& m, const std::vector<Tensor>& params, ExactGradSum& sum, Comm& comm,
                     const Tensor& local, int first, int batch, float lambda, QuantMode q, const Rng& noise,
                     int rate_index, Precision analysis, bool overlap, bool stop_request, int unit) {
  NTC_CHECK(local.ndim() == 4 && local.dim(0) * comm.size() == batch, "exact_step: a share of ", local.dim(0),
            " images for ", comm.size(), " ranks and batch ", batch);
  const int64_t per = local.dim(0), img_numel = local.numel() / per;
  if (unit < 1 || per % unit || first % unit)
    fail("exact sums: a rank's share of ", per, " images does not divide into units of ", unit);
  sum.clear();
  // Per unit: loss, bpp_y, bpp_z, mse, then (last slot) this rank's stop request.
  const int64_t units = per / unit;
  std::vector<double> mine(size_t(units) * 4 + 1, 0.0);
  for (int64_t j = 0; j < units; ++j) {
    Tensor img = Tensor::empty({unit, local.dim(1), local.dim(2), local.dim(3)});
    std::memcpy(img.data(), local.data() + j * unit * img_numel, size_t(unit * img_numel) * sizeof(float));
    Rng r = noise;
    r.set_counter(noise.counter() + (uint64_t(first + j * unit) << 32));
    RdTerms t = rd_loss(m, img, lambda, q, r, rate_index, analysis);
    mine[size_t(j) * 4 + 0] = t.loss.item() * unit;  // sums over images, divided by the batch below
    mine[size_t(j) * 4 + 1] = t.bpp_y * unit;
    mine[size_t(j) * 4 + 2] = t.bpp_z * unit;
    mine[size_t(j) * 4 + 3] = t.mse * unit;
    if (overlap && j + 1 == units && comm.size() > 1) {
      t.loss.backward([&](TensorImpl* leaf) {
        const int64_t i = sum.index_of(leaf);
        if (i < 0) return;
        sum.add(size_t(i));
        sum.ready(size_t(i), comm);
      });
    } else {
      t.loss.backward();
      sum.add_all();
    }
    for (Tensor p : params) p.zero_grad();
  }
  mine.back() = stop_request ? 1.0 : 0.0;
  sum.finish(comm);
  std::vector<double> all(mine.size() * size_t(comm.size()));
  comm.gather(mine.data(), mine.size(), all.data());
  StepTerms s;
  // Global image order: rank by rank, image by image (a fixed order, whatever N is).
  for (int rk = 0; rk < comm.size(); ++rk) {
    const double* v = all.data() + size_t(rk) * mine.size();
    for (int64_t j = 0; j < units; ++j) {
      s.loss += v[j * 4 + 0];
      s.bpp_y += v[j * 4 + 1];
      s.bpp_z += v[j * 4 + 2];
      s.mse += v[j * 4 + 3];
    }
    if (v[mine.size() - 1] != 0) s.stop = true;
  }
  s.loss /= batch;
  s.bpp_y /= batch;
  s.bpp_z /= batch;
  s.mse /= batch;
  s.skipped = !sum.to_grads(unit);
  return s;
}

}  // namespace ntc::train
