// tests/tiny_config.h — the tiny hyperprior model the training tests train in a few seconds
// (16 latent channels, a two-layer residual synthesis of 6 channels; downsampling 64).
#pragma once

namespace ntc::test {

inline constexpr const char* kTinyTrainCfg =
    "name = tiny\nlatent_channels = 16\nanalysis = cnn\nanalysis.channels_base = 16\nanalysis.activation = gdn\n"
    "synthesis = two_layer_res\nsynthesis.channels = 6\nhyper_analysis = hyper\nhyper_synthesis = hyper\n";

}  // namespace ntc::test
