// profile — FLOPs, parameters and (optionally) time of every layer of a model's parts, the data
// behind `ntc flops` and `ntc bench decode`. Parts: f (g_a), f_h (h_a), g_h (h_s), g (g_s); the
// paper's encode = f + f_h, decode = g + g_h. FLOPs are the ops' own counts (lib/flops.h).
#pragma once
#include <string>
#include <vector>

#include "nn/model.h"

namespace ntc::nn {

struct PartProfile {
  std::string key;                  // f, f_h, g_h, g
  Module* module = nullptr;
  Tensor input;                     // what the part was run on
  std::vector<LayerRecord> layers;  // leaves, plus composites with their own FLOPs: they sum to `flops`
  int64_t flops = 0, params = 0;
  double ms = 0;
};

struct ModelProfile {
  int64_t height = 0, width = 0;  // the image size the per-pixel figures divide by
  std::vector<PartProfile> parts;
  int64_t flops(const std::string& key) const;  // 0 for a part the model does not have
  double per_pixel(int64_t f) const { return double(f) / (double(height) * double(width)); }
};

// Runs the model on a random h×w image (NoGrad; padded as the model pads). With `timed`, each part
// runs once to warm up before the traced run.
ModelProfile profile_model(Model& m, int64_t h, int64_t w, bool timed);

}  // namespace ntc::nn
