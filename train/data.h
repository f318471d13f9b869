// data — training batches from a folder tree of PNG/JPEG images (SPEC §3.5).
//
// Batch k is a pure function of (seed, k): sample s = k·B + i takes image perm_e[s mod F] of epoch
// e = s / F (perm_e a seeded shuffle of the F usable files), and its crop offset, optional flip and
// optional downscale from an Rng keyed by (seed, s). So `seek(k)` resumes the exact data order, on
// any machine and thread count. A background thread decodes and crops the next batches while the
// current step runs; decoded images are cached in memory up to a byte budget.
//
// Files whose size cannot be read are an error naming the file; images smaller than the crop are
// skipped with one warning listing how many; a folder with no usable image is an error.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lib/tensor.h"

namespace ntc::train {

struct DataOptions {
  std::string dir;
  int crop = 128, batch = 8;
  bool flips = false;
  float min_scale = 1.0f;  // random downscale by s ~ U[min_scale, 1] before cropping (1 = off)
  uint64_t seed = 0;
  size_t cache_bytes = size_t(4) << 30;
  int prefetch = 2;  // batches decoded ahead (0: no background thread)
  // A share of every batch (data-parallel training, train/dist.h): samples [shard_first,
  // shard_first + shard_count) of each batch of `batch`; shard_count 0 = the whole batch.
  int shard_first = 0, shard_count = 0;
};

class BatchLoader {
 public:
  explicit BatchLoader(DataOptions o);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  Tensor next();                    // batch position(), then advances: [B, 3, crop, crop], 0..255
                                    // (B = shard_count when sharded)
  uint64_t position() const { return pos_; }
  void seek(uint64_t k);            // the next call to next() returns batch k
  size_t files() const { return files_.size(); }
  // FNV-1a over the usable files' names (relative to the folder) and image sizes, in order: ranks of
  // a data-parallel run compare it (train/dist.h).
  uint64_t fingerprint() const;
  Tensor make(uint64_t k);          // batch k, computed on the calling thread

 private:
  struct Image {
    std::vector<uint8_t> px;  // H·W·3 interleaved
    int h = 0, w = 0;
  };
  std::shared_ptr<const Image> load(size_t file);
  void producer();
  void stop_producer();

  DataOptions o_;
  std::vector<std::string> files_;
  std::vector<std::pair<int, int>> sizes_;  // (h, w) from the headers
  uint64_t pos_ = 0;

  std::mutex cache_mu_;
  std::map<size_t, std::shared_ptr<const Image>> cache_;
  size_t cached_bytes_ = 0;

  std::mutex q_mu_;
  std::condition_variable q_cv_;
  std::deque<std::pair<uint64_t, Tensor>> queue_;
  uint64_t produce_next_ = 0, gen_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

// Sorted list of *.png / *.jpg / *.jpeg files under dir (recursive). Throws if dir is unreadable.
std::vector<std::string> list_images(const std::string& dir);

}  // namespace ntc::train
