// overfit — the encoder of the overfitted per-image codec (nn/overfit.h): it trains latents, an
// autoregressive entropy model and a synthesis for one image, then quantises the networks and
// writes a stream that carries them.
//
// Training, loss bpp + λ·MSE₂₅₅ (the amortised models' convention, train/loss.h), Adam with a
// cosine learning-rate decay in each phase; the latents learn latent_lr_scale times faster than the
// networks in the soft phase (integer latents must grow large to carry detail: ×10 cut the loss at
// 1,000 iterations by a quarter on a 256² Kodak crop), and everything learns at hard_lr_scale·lr
// in the hard phase (more scatters latents across rounding boundaries):
//   warm-up   `candidates` starts from different seeds train `warmup_iters` each; the one with the
//             lowest loss goes on (its Adam state with it);
//   soft      ŷ = s_T(s_T(y) + u), u ~ U(−½, ½), s_T soft rounding with T from 0.3 down to 0.1;
//   hard      the last `hard_fraction` of the iterations: ŷ = round(y) with a straight-through
//             gradient (what the decoder sees).
// The state that is coded is the best one seen, by the loss with hard rounding: measured every
// `eval_every` iterations of the soft phase and at every iteration of the hard phase, which starts
// from the soft phase's best. Long soft phases at low λ can drift to a worse hard loss late (the
// `slow` preset once ended kodim01 at 0.72 bpp where `medium` ended at 0.24, for +0.9 dB).
// Then the latents are rounded, and the weights of each group are quantised with the step 2^−e
// whose real stream size and decoded distortion give the lowest loss (coordinate search over e):
// every candidate is measured with the decoder's own functions, so the reported rate and PSNR are
// the stream's.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "lib/tensor.h"
#include "nn/overfit.h"

namespace ntc::train {

struct OverfitOptions {
  int iters = 10000;
  int candidates = 3;
  int warmup_iters = 150;
  double hard_fraction = 0.1;
  double lambda = 0.0064;
  float lr = 0.01f;
  float latent_lr_scale = 10.f;  // the latents' learning rate is lr times this
  float hard_lr_scale = 0.01f;   // the hard phase's learning rate (latents too) starts at lr times this
  int eval_every = 100;          // soft phase: measure the hard-rounded loss this often (0: code the last state)
  uint64_t seed = 1;
  int levels = 7, syn_hidden = 16, arm_hidden = 8;
  bool learned_up = false;  // learned four-tap upsampling filters (starting bilinear) instead of bilinear
  // Called every iteration: (done, total, loss of the last step); total = overfit_total_iters().
  std::function<void(int, int, double)> progress;
};

struct OverfitResult {
  std::vector<uint8_t> bytes;  // the stream
  Tensor recon;                // [1,3,H,W], 0…255 integers: exactly what the decoder produces
  nn::overfit::Arch arch;
  double bpp = 0, psnr = 0;     // of the stream and recon
  double weight_bits = 0;       // of which the networks
  double train_loss = 0;        // the last training loss (continuous proxy)
  int kept_iter = -1;           // the iteration whose state was coded (iters: the last state)
  double kept_loss = 0, kept_bpp = 0, kept_psnr = 0;  // its hard-rounded loss, latent rate estimate, float PSNR
  double train_bpp = 0, train_psnr = 0;  // its terms: the latents' estimated rate (no weights), float PSNR
  double seconds = 0;            // the whole encode
};

// The largest image the encoder takes (pixels): its training graph needs about 2 KB per pixel.
constexpr int64_t kOverfitMaxPixels = 4'000'000;

// img: [1, 3, H, W] in 0…255 (a grey image, all channels equal, is coded as one channel).
OverfitResult overfit_encode(const Tensor& img, const OverfitOptions& o);

// Training iterations in all: iters, plus the warm-up of the candidates that lose.
int overfit_total_iters(const OverfitOptions& o);

// Iterations of the presets: fast, medium, slow.
int overfit_preset_iters(const std::string& preset);  // throws ntc::Error on another name

}  // namespace ntc::train
