// alloc — the caching allocator behind every tensor buffer.
//
// Why: on these VMs first touch of fresh memory runs at ~0.3 GB/s, while reused memory is ~60x
// faster. So freed blocks are never handed back to the OS; they go to a free list keyed by a
// size class and are handed out again for the next request of that class. Size classes are
// multiples of 256 B below 64 KiB and 1/8-octave steps above (waste < 12.5%). Blocks are 64-byte
// aligned; blocks of 2 MiB and more are 2 MiB aligned and advised for transparent huge pages,
// which cuts the first-touch cost of a fresh process (measured below in the resolve notes).
// Blocks from 64 KiB up to 2 MiB are carved from 8 MiB slabs advised the same way, up to 16 MiB of
// slabs (a model's parameters and a Kodak decode's activations are mostly such blocks: 7,700 page
// faults of a 50 ms decode became 2,300). The cache is only emptied by mem_release_cache(), which
// keeps a slab while any of its blocks is live.
//
// A Buffer is a shared handle; the block returns to the cache when the last handle goes.
#pragma once
#include <cstddef>
#include <memory>

namespace ntc {

// The transparent huge page size these VMs use (x86-64: 2 MiB): the alignment of large blocks and
// of large file buffers (lib/fileio), and the limit of slab-carved blocks.
constexpr size_t kHugePageBytes = size_t(2) << 20;

class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t n_floats);                   // uninitialised contents
  static Buffer zeros(size_t n_floats);
  float* data() const { return p_.get(); }
  size_t size() const { return n_; }
  explicit operator bool() const { return p_ != nullptr; }
  long use_count() const { return p_.use_count(); }

 private:
  std::shared_ptr<float> p_;
  size_t n_ = 0;
};

struct MemStats {
  size_t in_use = 0;         // bytes held by live buffers (size-class rounded)
  size_t peak_in_use = 0;    // high-water mark of in_use
  size_t cached = 0;         // bytes sitting in free lists
  size_t fresh_bytes = 0;    // bytes ever obtained from the system
  size_t fresh_allocs = 0;   // allocations served by the system
  size_t reused_allocs = 0;  // allocations served from the cache
};

MemStats mem_stats();
void mem_reset_peak();
void mem_release_cache();      // give cached blocks back to the system

// A memory budget for tensors (0: none, the default): an allocation that would take the bytes held
// by live buffers past it first empties the cache, then fails with an ntc::Error ("out of memory
// budget"), before asking the system. `ntc decode --max-memory` sets it, so that a hostile stream
// cannot make the decoder take more; the few non-tensor buffers (entropy indexes, the 8-bit image)
// are outside it.
void set_memory_budget(size_t bytes);
size_t memory_budget();
size_t rss_bytes();            // current resident set size (VmRSS), 0 if unknown
size_t peak_rss_bytes();       // VmHWM: peak resident set size of the process

}  // namespace ntc
