// compress — images to .ntc streams and back with a finalised model (codec/BITSTREAM.md).
//
// Encoder: x = pad(image/255 − ½); y = g_a(x); z = h_a(y); ẑ = round(z − m) + m;
//   (μ, r) = h_s(ẑ); table indexes from r; code z then y (symbols round(y − μ)); ŷ = symbol + μ.
// Decoder: ẑ from the z section; the same h_s(ẑ) and indexes; ŷ from the y section; x̂ = g_s(ŷ).
// A variable-rate model scales y and z by its gains for λ before quantisation and ŷ, ẑ by the
// inverse gains after it; λ travels in a third section (4 bytes, float32).
// Both sides compute μ, r and the indexes from ẑ with the same code, so the decoder reproduces the
// encoder's ŷ exactly and hence its reconstruction (tests/test_compress.cc).
#pragma once
#include <cstdint>
#include <vector>

#include "nn/model.h"

namespace ntc::nn {

struct Encoded {
  std::vector<uint8_t> bytes;  // the whole .ntc file
  Tensor recon;                // the reconstruction the decoder will produce: [1,3,H,W], 0..255 integers
  double est_bits = 0;         // the model's information content −Σlog₂P of ẑ and ŷ (continuous index)
};

// image [1,3,H,W] with values 0..255. The model must be finalize()d. lambda selects the rate of a
// variable-rate model (any value within its range; stored in the stream) and must be 0 otherwise.
// winograd_hs: h_s's stride-1 3×3 layers run the portable Winograd (lib/gemm.h, PortableWinograd;
// stream flag 1, codec/BITSTREAM.md), as every stream ntc 0.3 writes; false writes the form of
// earlier streams (for tests of their decoding).
Encoded compress(Model& m, const Tensor& image, uint64_t model_hash, double lambda = 0, bool winograd_hs = true);

// y = g_a(preprocess(image)) (no gains). A purely convolutional analysis (cnn, mbt2018, bls2017:
// nn/transforms.h analysis_row_reach) runs in bands of latent rows, each computed from a window of
// image rows with a halo that covers its whole receptive field, bit-identical to one pass (the
// same products in the same order for every element, under PortableProducts whatever --gemm says:
// tests/test_compress.cc), so the encoder's
// memory grows with the width, not the area. band_rows: latent rows per band (0: automatic, windows
// of about kAnalysisBandBytes of tensors at kAnalysisBytesPerPixel; a Kodak image is one window).
// The ELIC analysis (attention blocks) runs in one pass.
constexpr int64_t kAnalysisBandBytes = int64_t(512) << 20;
constexpr int64_t kAnalysisBytesPerPixel = 400;
Tensor analysis(Model& m, const Tensor& image, int64_t band_rows = 0);
// Divides the band budgets (kAnalysisBandBytes, kSynthesisBandBytes) and the size at which stages
// empty the allocator's cache by `divisor`, so that tests exercise the automatic banding of large
// images on small ones; 1 (the default) restores them.
void set_band_budget_divisor(int64_t divisor);
// z = h_a(y) (no gains), for h_a of kind hyper or hyper_small in bands of hyper-latent rows in the
// same way (bit-identical to one pass under PortableProducts, which it runs under).
Tensor hyper_analysis(Model& m, const Tensor& y, int64_t band_rows = 0);

// The two halves of compress(), for encoders that refine the latents first (SGA, train/sga.h).
struct Latents {
  Tensor y, z;  // continuous, gains applied; z undefined for a factorized model
};
Latents analyze(Model& m, const Tensor& image, double lambda = 0);
// The same from y = analysis(m, image) already computed: one analysis serves every λ.
Latents latents_at(Model& m, const Tensor& y, double lambda = 0);
// ŷ with the inverse gains applied: what the decoder of a stream of these latents gives g_s, so
// synthesize(m, decoded_latents(...)) is its reconstruction (no entropy coding is done; fitting a
// synthesis to a trained analysis, train/derive.h).
Tensor decoded_latents(Model& m, const Latents& l, double lambda = 0);
Encoded encode_latents(Model& m, const Latents& l, int64_t height, int64_t width, uint64_t model_hash,
                       double lambda = 0, bool winograd_hs = true);
// λ for quality 0..100 on a variable-rate model: log-spaced from its smallest to its largest
// trained λ (`ntc encode --quality`, the C API). Throws for a fixed-rate model or q out of range.
double lambda_for_quality(const Model& m, double quality);
// The gains a stream with this λ uses (empty for a fixed-rate model); throws on a bad λ.
Model::Gains gains_for_stream(const Model& m, double lambda);
// Throws ntc::Error for a malformed stream or one made with another model.
// A stream whose header declares more than max_pixels pixels is refused before anything is
// allocated (a decompression bomb: a few bytes with a valid CRC can declare 65536² pixels);
// `ntc decode --max-pixels N` raises the limit.
constexpr int64_t kDefaultMaxPixels = 100'000'000;
// `ntc decode`'s default memory budget for tensors (lib/alloc.h, --max-memory), in MiB.
constexpr int64_t kDefaultMaxMemoryMiB = 8192;
// Wall-clock milliseconds of decompress()'s stages, when asked for (ntc bench decode --model).
struct DecodeStages {
  double z_ms = 0, hs_ms = 0, y_ms = 0, gs_ms = 0;
};
Tensor decompress(Model& m, const uint8_t* data, size_t size, uint64_t model_hash,
                  int64_t max_pixels = kDefaultMaxPixels, DecodeStages* stages = nullptr);

// The decoder's last step, shared by encoder and decoder: x̂ = g_s(ŷ) (ŷ with the gains applied),
// to the 8-bit range and cropped to h × w. A shallow synthesis (two_layer, two_layer_res,
// jpeg_like) runs in bands of latent rows with a halo, bit-identical to one pass over the whole
// image (each output element gets the same products in the same order: tests/test_compress.cc), so
// its memory grows with the width, not the area. band_rows: latent rows per band (0: automatic,
// bands of about kSynthesisBandBytes of tensors; a Kodak image is one band).
constexpr int64_t kSynthesisBandBytes = int64_t(256) << 20;
Tensor synthesize(Model& m, const Tensor& y_hat_scaled, int64_t h, int64_t w, int64_t band_rows = 0);

// (μ, r) = h_s(ẑ) (ẑ with the inverse gains applied), shared by encoder and decoder. The
// hyper-synthesis of kind "hyper" (transposed convolutions k5 s2, k5 s2, k3 s1 with ReLUs) runs in
// bands of hyper-latent rows with a halo, bit-identical to one pass, like synthesize().
Tensor hyper_synthesize(Model& m, const Tensor& z_hat_scaled, int64_t band_rows = 0);

// 8-bit reconstruction: clip(round_half_even(v), 0, 255) (SPEC §3.7).
Tensor to_uint8_range(const Tensor& v);

}  // namespace ntc::nn
