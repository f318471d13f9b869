// transforms — the analysis/synthesis/hyper transforms of the paper and its baselines (SPEC §1),
// built by name from a Config. Each transform is a Module named g_a, g_s, h_a or h_s.
//
//   analysis:        elic | cnn | mbt2018 | bls2017
//   synthesis:       jpeg_like | two_layer | two_layer_res | cnn | mbt2018 | bls2017 | elic
//   hyper_analysis:  hyper | hyper_small
//   hyper_synthesis: hyper | hyper_small | jpeg_like_hyper
// Options are read as "<role>.<option>" keys (e.g. synthesis.kernel = 18); each builder below
// lists its options and defaults (the paper's values).
#pragma once
#include <memory>
#include <string>

#include "nn/config.h"
#include "nn/module.h"

namespace ntc::nn {

// role: "analysis", "synthesis", "hyper_analysis" or "hyper_synthesis"; name: g_a, g_s, h_a, h_s.
// M: latent channels (y); for the hyper transforms, their input/output width.
// M: latent (y) channels; Z: hyper-latent (z) channels, used by the hyper transforms only
// (config key hyper_channels, default M: h_a maps M→Z, h_s maps Z→2M).
std::unique_ptr<Module> build_transform(const Config& cfg, const std::string& role, const std::string& name, int M,
                                        int Z = 0);

// How far a latent row of a purely convolutional analysis (cnn, mbt2018, bls2017: strided convs
// with pointwise GDN or activations between them) reaches into the image: latent row o of a
// stride-F analysis reads image rows [F·o − up, F·o + down] (and columns likewise). Derived from
// the builders' own layer lists (kernel, stride, top padding); banded encoding (nn/compress.h)
// uses it for its halo. ok = false for the analyses with attention blocks (elic).
struct RowReach {
  bool ok = false;
  int up = 0, down = 0;
};
RowReach analysis_row_reach(const Config& cfg);
// The same for the hyper-analysis (hyper, hyper_small), in rows of y per hyper-latent row.
RowReach hyper_analysis_row_reach(const Config& cfg);

}  // namespace ntc::nn
