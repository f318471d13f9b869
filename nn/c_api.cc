// The C API (nn/ntc.h): a thin layer over nn::compress / nn::decompress that turns every C++
// exception into a status and a per-thread message, and serialises calls on one model.
#include "nn/ntc.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "codec/container.h"
#include "lib/alloc.h"
#include "lib/common.h"
#include "lib/fileio.h"
#include "lib/ops/ops.h"
#include "lib/threads.h"
#include "nn/compress.h"
#include "nn/config.h"
#include "nn/model_file.h"
#include "nn/overfit.h"

struct ntc_model {
  std::unique_ptr<ntc::nn::Model> model;
  uint64_t hash = 0;
  uint64_t legacy_hash = 0;  // what streams made by ntc 0.2 and earlier carry (nn/model_file.h)
  std::mutex mu;  // one call at a time per model
};

namespace {

thread_local std::string g_error;
std::mutex g_settings;
int64_t g_max_pixels = ntc::nn::kDefaultMaxPixels;
int64_t g_max_memory_mib = ntc::nn::kDefaultMaxMemoryMiB;

ntc_status set_error(ntc_status s, const std::string& msg) {
  g_error = msg;
  return s;
}

// Runs f, mapping exceptions to statuses. Messages of input errors decide between corrupt input,
// limits and unreadable files by the words the C++ layers use.
template <class F>
ntc_status guarded(F&& f) {
  try {
    g_error.clear();
    f();
    return NTC_OK;
  } catch (const std::bad_alloc&) {
    return set_error(NTC_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const ntc::Error& e) {
    const std::string m = e.what();
    if (m.find("out of memory budget") != std::string::npos || m.find("more than the limit") != std::string::npos)
      return set_error(NTC_ERROR_LIMIT, m);
    if (m.find("out of memory") != std::string::npos) return set_error(NTC_ERROR_OUT_OF_MEMORY, m);
    if (m.rfind("cannot open", 0) == 0 || m.rfind("cannot read", 0) == 0) return set_error(NTC_ERROR_IO, m);
    return set_error(NTC_ERROR_CORRUPT, m);
  } catch (const std::exception& e) {
    return set_error(NTC_ERROR_INTERNAL, e.what());
  } catch (...) {
    return set_error(NTC_ERROR_INTERNAL, "unknown error");
  }
}

ntc_status load_bytes(const uint8_t* data, size_t size, const std::string& origin, ntc_model** out) {
  auto m = std::make_unique<ntc_model>();
  m->model = ntc::nn::deserialize_model(data, size, origin);
  m->hash = ntc::nn::model_hash(data, size);
  m->legacy_hash = ntc::nn::legacy_model_hash(data, size);
  *out = m.release();
  return NTC_OK;
}

// A malloc'd copy (so that ntc_free is free()).
uint8_t* copy_out(const void* p, size_t n) {
  auto* r = static_cast<uint8_t*>(std::malloc(n ? n : 1));
  if (!r) throw std::bad_alloc();
  if (n) std::memcpy(r, p, n);
  return r;
}

// The memory budget while calls run (the allocator's setting is process-wide): set by the first
// call that starts, cleared when the last one ends, so concurrent calls keep it.
std::mutex g_budget_mu;
int g_active = 0;
struct BudgetScope {
  explicit BudgetScope(int64_t mib) {
    std::lock_guard<std::mutex> l(g_budget_mu);
    if (g_active++ == 0) ntc::set_memory_budget(mib > 0 ? size_t(mib) << 20 : 0);
  }
  ~BudgetScope() {
    std::lock_guard<std::mutex> l(g_budget_mu);
    if (--g_active == 0) ntc::set_memory_budget(0);
  }
};

}  // namespace

extern "C" {

int ntc_api_version(void) { return NTC_API_VERSION; }
const char* ntc_version(void) { return NTC_VERSION_STRING; }
const char* ntc_last_error(void) { return g_error.c_str(); }

ntc_status ntc_model_load(const char* path, ntc_model** model) {
  if (!model) return set_error(NTC_ERROR_ARGUMENT, "ntc_model_load: model is NULL");
  *model = nullptr;
  return guarded([&] {
    const std::string p = path ? path : ntc::nn::model_dir() + "/ntc_two_layer.ntcm";
    const ntc::FileBytes bytes = ntc::read_file_bytes(p);
    load_bytes(bytes.data(), bytes.size(), p, model);
  });
}

ntc_status ntc_model_load_memory(const uint8_t* data, size_t size, ntc_model** model) {
  if (!model || (!data && size)) return set_error(NTC_ERROR_ARGUMENT, "ntc_model_load_memory: null pointer");
  *model = nullptr;
  return guarded([&] { load_bytes(data, size, "model (memory)", model); });
}

void ntc_model_free(ntc_model* model) { delete model; }

ntc_status ntc_encode(ntc_model* model, const uint8_t* rgb, int width, int height, size_t stride, double quality,
                      double lambda, uint8_t** out, size_t* out_size) {
  if (!model || !rgb || !out || !out_size) return set_error(NTC_ERROR_ARGUMENT, "ntc_encode: null pointer");
  *out = nullptr;
  *out_size = 0;
  if (width < 1 || height < 1 || width > 65536 || height > 65536)
    return set_error(NTC_ERROR_ARGUMENT, "ntc_encode: image size out of range (1..65536 a side)");
  if (stride < size_t(width) * 3) return set_error(NTC_ERROR_ARGUMENT, "ntc_encode: stride smaller than width·3");
  std::lock_guard<std::mutex> lock(model->mu);
  int64_t budget;
  {
    std::lock_guard<std::mutex> l(g_settings);
    budget = g_max_memory_mib;
  }
  const bool variable = !model->model->rate_lambdas().empty();
  if (variable && !(lambda > 0) && !(quality >= 0 && quality <= 100))
    return set_error(NTC_ERROR_ARGUMENT, "ntc_encode: quality wants 0..100 (or pass lambda > 0)");
  if (!variable && (lambda > 0 || quality >= 0))
    return set_error(NTC_ERROR_ARGUMENT, "ntc_encode: this model has a fixed rate: pass quality < 0 and lambda 0");
  return guarded([&] {
    ntc::nn::Model& m = *model->model;
    double lam = 0;
    if (variable) lam = lambda > 0 ? lambda : ntc::nn::lambda_for_quality(m, quality);
    BudgetScope scope(budget);
    ntc::Tensor img = ntc::Tensor::empty({1, 3, height, width});
    const size_t plane = size_t(width) * size_t(height);
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x)
        for (int c = 0; c < 3; ++c)
          img.data()[size_t(c) * plane + size_t(y) * size_t(width) + size_t(x)] = rgb[size_t(y) * stride + size_t(x) * 3 + size_t(c)];
    const ntc::nn::Encoded e = ntc::nn::compress(m, img, model->hash, lam);
    *out = copy_out(e.bytes.data(), e.bytes.size());
    *out_size = e.bytes.size();
  });
}

ntc_status ntc_decode(ntc_model* model, const uint8_t* data, size_t size, uint8_t** rgb, int* width, int* height) {
  if (!data || !rgb || !width || !height) return set_error(NTC_ERROR_ARGUMENT, "ntc_decode: null pointer");
  *rgb = nullptr;
  *width = *height = 0;
  const bool overfit = ntc::nn::overfit::is_overfit_stream(data, size);  // carries its own decoder
  if (!model && !overfit) return set_error(NTC_ERROR_ARGUMENT, "ntc_decode: null model for a model's stream");
  std::unique_lock<std::mutex> lock;
  if (model) lock = std::unique_lock<std::mutex>(model->mu);
  int64_t max_pixels, budget;
  {
    std::lock_guard<std::mutex> l(g_settings);
    max_pixels = g_max_pixels;
    budget = g_max_memory_mib;
  }
  return guarded([&] {
    BudgetScope scope(budget);
    const ntc::Tensor img = overfit ? ntc::nn::overfit::decode(data, size, "stream", max_pixels)
                                    : ntc::nn::decompress(*model->model, data, size,
                                                          ntc::nn::accepted_model_hash(ntc::codec::peek_model_hash(data, size),
                                                                                       model->hash,
                                                                                       [&] { return model->legacy_hash; }),
                                                          max_pixels);
    const int h = int(img.dim(2)), w = int(img.dim(3));
    const size_t plane = size_t(w) * size_t(h);
    auto* px = static_cast<uint8_t*>(std::malloc(plane * 3));
    if (!px) throw std::bad_alloc();
    for (size_t i = 0; i < plane; ++i)
      for (size_t c = 0; c < 3; ++c) px[i * 3 + c] = uint8_t(img.data()[c * plane + i]);  // already 0..255 integers
    *rgb = px;
    *width = w;
    *height = h;
  });
}

void ntc_free(void* p) { std::free(p); }

void ntc_set_threads(int threads) { ntc::set_num_threads(threads); }

void ntc_set_limits(int64_t max_pixels, int64_t max_memory_mib) {
  std::lock_guard<std::mutex> l(g_settings);
  g_max_pixels = max_pixels > 0 ? max_pixels : ntc::nn::kDefaultMaxPixels;
  g_max_memory_mib = max_memory_mib > 0 ? max_memory_mib : 0;
}

}  // extern "C"
