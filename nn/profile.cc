#include "nn/profile.h"

#include <chrono>

#include "lib/ops/ops.h"

namespace ntc::nn {

int64_t ModelProfile::flops(const std::string& key) const {
  for (const auto& p : parts)
    if (p.key == key) return p.flops;
  return 0;
}

ModelProfile profile_model(Model& m, int64_t h, int64_t w, bool timed) {
  NoGrad ng;
  Rng rng(7);
  ModelProfile prof;
  prof.height = h;
  prof.width = w;
  const Tensor x = m.preprocess(Tensor::uniform({1, 3, h, w}, 0, 255, rng));
  auto part = [&](const char* key, Module* mod, const Tensor& in) {
    PartProfile p;
    p.key = key;
    p.module = mod;
    p.input = in;
    prof.parts.push_back(std::move(p));
  };
  const Tensor y = m.g_a()(x);
  part("f", &m.g_a(), x);
  if (m.hyperprior()) {
    const Tensor z = (*m.h_a())(y);
    part("f_h", m.h_a(), y);
    part("g_h", m.h_s(), round_ste(z));
  }
  part("g", &m.g_s(), round_ste(y));
  for (PartProfile& p : prof.parts) {
    if (timed) (*p.module)(p.input);  // warm-up: caches and the allocator
    LayerTrace trace;
    const auto t0 = std::chrono::steady_clock::now();
    (*p.module)(p.input);
    p.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    for (const auto& r : trace.records()) {
      if (r.depth == 0) p.flops = r.flops;
      if ((r.depth > 0 && r.leaf) || r.self_flops != 0) p.layers.push_back(r);
    }
    p.params = p.module->num_parameters();
  }
  return prof;
}

}  // namespace ntc::nn
