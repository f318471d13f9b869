// dist — data-parallel training with results that do not depend on the number of processes.
//
// The communicator (`Comm`) is an interface: this header, and everything in libntc, knows nothing
// of MPI. A single process uses `single_process_comm()`; `ntc` launched by `mpirun` builds an MPI
// communicator in cli/mpi_plugin.cc (the one file that includes <mpi.h>, built into
// build/libntc_mpi.so only where Open MPI is installed, and opened only under mpirun).
//
// Why the weights come out bit for bit the same for any number of ranks N (the "exact" reduction):
//  * The unit of work is one image. Rank r of N takes images [r·B/N, (r+1)·B/N) of every global
//    batch of B (train/data.h: sample s = k·B + i is a pure function of the seed), and image i's
//    quantisation noise comes from the noise stream at counter c₀ + i·2³², so an image's loss and
//    gradient are the same whichever rank computes it, with any thread count.
//  * Each image's gradient g_i (fp32) is turned into fixed point, G_i = round(g_i · 2^kFracBits)
//    as int64, and summed as integers. Integer addition is associative, so the sum Σ G_i is the
//    same exact value in every order: image by image in one process, per rank and then across ranks
//    by MPI_Allreduce (whatever tree MPI picks), or bucket by bucket while backward runs. One
//    conversion back, ΣG_i / (2^kFracBits · B) in double, rounded once to fp32, gives every rank
//    the same mean gradient; clipping and Adam then run identically on every rank.
//  * Range: 2^kFracBits = 2^32, so values are kept to 2.3e-10 absolute (below Adam's ε = 1e-7 by
//    almost three orders), and every |g_i| must be below 2^19 = 524288 (and 2^30/B, so that no sum
//    overflows: B ≤ 2048 leaves the first bound in force).
//    An image gradient that is larger or not finite makes every rank skip the step (no update; the
//    log says so), which is what a single process does with the same batch.
//  * Units: with `--unit U` the unit of work is U consecutive images (their loss's gradient in one
//    backward), converted as one; every N that leaves whole units per rank gives the same bits.
// The cost against the default batched step (one backward over the whole batch, fp32 sums inside
// the GEMMs) is the per-unit backward passes plus the conversion: ×1.34 per image, ×1.06 in units
// of 4 on the campaign's config (README, "Training on several machines"). A single process picks
// this summation with `ntc train --reduce exact`; under mpirun it is the only one.
// Rank 0's checkpoint is global state (step, data position, noise counter), so a resume may use
// another N. Ranks must run the same build on CPUs with the same SIMD target for their (identical)
// Adam updates to agree; they compare a fingerprint of weights, options and the image list (names
// and sizes) at the start and at every checkpoint.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "lib/gemm.h"
#include "lib/rng.h"
#include "lib/tensor.h"
#include "nn/model.h"
#include "train/loss.h"

namespace ntc::train {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const { return 0; }
  virtual int size() const { return 1; }
  virtual std::string name() const { return "single process"; }
  // Starts the element-wise sum of v[0..n) over all ranks, in place (exact: integers). Every rank
  // starts the same sums in the same order; wait_sums() completes them all.
  virtual void start_sum(int64_t* v, size_t n) {}
  virtual void wait_sums() {}
  // Every rank's n doubles, concatenated in rank order: out has size()·n values.
  virtual void gather(const double* v, size_t n, double* out) {
    for (size_t i = 0; i < n; ++i) out[i] = v[i];
  }
  // Rank 0's bytes, on every rank (the others' b is replaced).
  virtual void broadcast(std::vector<uint8_t>& b) {}
  virtual void barrier() {}
  // Seconds spent waiting in communication since the last call (then reset).
  virtual double take_comm_seconds() { return 0; }
};

Comm& single_process_comm();

// Fixed-point gradient sums (see the header comment).
class ExactGradSum {
 public:
  static constexpr int kFracBits = 32;
  // `params` in a fixed order (the model's named_parameters); `batch` the global batch size.
  ExactGradSum(const std::vector<Tensor>& params, int batch);
  void clear();
  // Adds parameter i's current gradient (none: nothing) in fixed point.
  void add(size_t i);
  void add_all();
  // The reduction across ranks: bucket by bucket as parameters finish (ready(i) when parameter
  // i's gradient is final: a bucket of about kBucketValues values goes out once all its parameters
  // are), then finish() sends what is left and waits for everything.
  void start_all(Comm& c);
  void ready(size_t i, Comm& c);
  // The index of the parameter a leaf of the graph is, or -1 (for backward's leaf_done).
  int64_t index_of(const TensorImpl* leaf) const;
  void finish(Comm& c);
  // Writes the mean gradient into every parameter's grad; false (and grads untouched) when some
  // image's gradient was out of range or not finite, on any rank.
  bool to_grads(int unit = 1);  // unit: images per added gradient (exact_step)
  static constexpr size_t kBucketValues = size_t(1) << 19;  // 4 MB of int64

 private:
  std::vector<Tensor> params_;
  std::vector<size_t> offset_;   // parameter i's values start at acc_[offset_[i]]
  std::vector<int64_t> acc_;     // Σ values; per parameter: got a gradient (0/1, summed); bad values
  double limit_;                 // |g| must be below this
  int batch_;
  // Buckets: [first, last) parameter ranges, each sent once (launched_).
  std::vector<std::pair<size_t, size_t>> buckets_;
  std::vector<size_t> bucket_of_;
  std::unordered_map<const TensorImpl*, size_t> index_;
  std::vector<char> is_ready_, launched_;
  size_t touched_at() const { return offset_.back(); }
  void launch(size_t b, Comm& c);
};

// The per-step numbers of one global batch, the same on every rank.
struct StepTerms {
  double loss = 0, bpp_y = 0, bpp_z = 0, mse = 0;
  bool skipped = false;   // an image gradient out of range: no update
  bool stop = false;      // some rank asked to stop (a signal): all stop after this step
};

// One step's forward and backward with the exact reduction, in units of `unit` images (1: per
// image; larger units run faster, and every number of ranks that leaves whole units per rank gives
// the same bits): `local` is this rank's share of the
// global batch [B/N, 3, H, W], `first` the global index of its first image, `noise` the step's
// noise stream (not advanced; the caller moves it on by B·2³²). Leaves the mean gradient in the
// parameters' grads (identical on every rank) unless the step is skipped. `overlap`: reduce
// buckets during the last image's backward.
StepTerms exact_step(nn::Model& m, const std::vector<Tensor>& params, ExactGradSum& sum, Comm& comm,
                     const Tensor& local, int first, int batch, float lambda, QuantMode q, const Rng& noise,
                     int rate_index, Precision analysis, bool overlap, bool stop_request, int unit = 1);

}  // namespace ntc::train
