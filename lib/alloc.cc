#include "lib/alloc.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/kernels.h"
#include "lib/common.h"

namespace ntc {
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kHuge = kHugePageBytes;

size_t size_class(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes <= (64u << 10)) return (bytes + 255) & ~size_t(255);
  // 1/8-octave steps: round up to a multiple of 2^(floor(log2(bytes)) - 3).
  size_t top = size_t(1) << (63 - __builtin_clzll(bytes));
  size_t step = top >> 3;
  return (bytes + step - 1) / step * step;
}

// Blocks of kSlabMin up to kHuge are carved from slabs: kSlab bytes, 2 MiB aligned and advised for
// huge pages, like the large blocks. A fresh process's parameters and activations are mostly such
// blocks; carved from 4 KiB pages one by one they cost a page fault per 4 KiB on first touch.
// Slabs are at most kSlabCap in all (then such blocks come from the system one by one, as larger
// ones do): a slab returns to the system only when none of its blocks is live, so one long-lived
// block (a parameter) keeps its slab's free blocks cached, which must stay a bounded amount.
constexpr size_t kSlabMin = size_t(64) << 10;
constexpr size_t kSlab = size_t(8) << 20;
constexpr size_t kSlabCap = size_t(16) << 20;

struct Slab {
  char* base = nullptr;
  size_t used = 0;  // bytes carved so far, from base
  size_t live = 0;  // carved blocks handed out and not yet returned
};

struct Cache {
  std::mutex mu;
  std::map<uintptr_t, Slab> slabs;  // by base address
  Slab* current = nullptr;          // the slab blocks are carved from

  Slab* slab_of(const void* p) {
    if (slabs.empty()) return nullptr;
    const auto a = reinterpret_cast<uintptr_t>(p);
    auto it = slabs.upper_bound(a);
    if (it == slabs.begin()) return nullptr;
    --it;
    return a < it->first + kSlab ? &it->second : nullptr;
  }
  // A fresh block of `cls` bytes (kSlabMin <= cls < kHuge) from the current slab, or from a new one;
  // null when the slabs are at their cap or the system refuses one.
  void* carve(size_t cls) {
    if (!current || current->used + cls > kSlab) {
      if ((slabs.size() + 1) * kSlab > kSlabCap) return nullptr;
      void* b = nullptr;
      if (posix_memalign(&b, kHuge, kSlab) != 0) return nullptr;
      madvise(b, kSlab, MADV_HUGEPAGE);
      Slab& sl = slabs[reinterpret_cast<uintptr_t>(b)];
      sl.base = static_cast<char*>(b);
      current = &sl;
    }
    void* p = current->base + current->used;
    current->used += cls;
    current->live++;
    return p;
  }
  std::unordered_map<size_t, std::vector<void*>> free;  // size class -> blocks
  MemStats st;

  size_t budget = 0;  // 0: none (set_memory_budget)

  void* get(size_t cls) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (budget && st.in_use + cls > budget)
        fail("out of memory budget: ", (st.in_use + cls) >> 20, " MiB of tensors needed, the budget is ",
             budget >> 20, " MiB (--max-memory)");
      auto it = free.find(cls);
      if (it != free.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        if (Slab* sl = slab_of(p)) sl->live++;
        st.cached -= cls;
        st.reused_allocs++;
        bump(cls);
        return p;
      }
      if (budget && st.in_use + st.cached + cls > budget) release_locked();  // make room first
      bump(cls);  // reserved before the system call, so that threads cannot overrun the budget together
    }
    if (cls >= kSlabMin && cls < kHuge) {
      std::lock_guard<std::mutex> lock(mu);
      if (void* p = carve(cls)) {
        st.fresh_bytes += cls;
        st.fresh_allocs++;
        return p;
      }
    }
    void* p = nullptr;
    if (cls >= kHuge) {
      // Large blocks: 2 MiB aligned and marked for transparent huge pages, so first touch costs
      // one fault per 2 MiB instead of one per 4 KiB (first touch dominates fresh-process runs).
      if (posix_memalign(&p, kHuge, cls) != 0) p = nullptr;
      if (p) madvise(p, cls, MADV_HUGEPAGE);
    } else {
      p = std::aligned_alloc(kAlign, cls);
    }
    std::lock_guard<std::mutex> lock(mu);
    if (!p) {
      st.in_use -= cls;
      fail("out of memory allocating ", cls, " bytes");
    }
    st.fresh_bytes += cls;
    st.fresh_allocs++;
    return p;
  }
  // Cached blocks go back to the system; a slab's blocks only once none of them is live (then the
  // whole slab goes).
  void release_locked() {
    for (auto& [c, v] : free) {
      size_t kept = 0;
      for (void* q : v) {
        const Slab* sl = slab_of(q);
        if (sl && sl->live) {
          v[kept++] = q;
        } else {
          if (!sl) std::free(q);
          st.cached -= c;
        }
      }
      v.resize(kept);
    }
    for (auto it = slabs.begin(); it != slabs.end();) {
      if (it->second.live) {
        ++it;
        continue;
      }
      if (current == &it->second) current = nullptr;
      std::free(it->second.base);
      it = slabs.erase(it);
    }
  }
  void put(void* p, size_t cls) {
    std::lock_guard<std::mutex> lock(mu);
    if (Slab* sl = slab_of(p)) sl->live--;
    free[cls].push_back(p);
    st.in_use -= cls;
    st.cached += cls;
  }
  void bump(size_t cls) {
    st.in_use += cls;
    if (st.in_use > st.peak_in_use) st.peak_in_use = st.in_use;
  }
};

// Leaked on purpose: buffers may be released during static destruction.
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

size_t read_status_kb(const char* key) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  size_t kb = 0, klen = std::strlen(key);
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, key, klen) == 0) kb = std::strtoull(line + klen, nullptr, 10);
  std::fclose(f);
  return kb * 1024;
}

}  // namespace

Buffer::Buffer(size_t n) : n_(n) {
  size_t cls = size_class(n * sizeof(float));
  float* p = static_cast<float*>(cache().get(cls));
  p_ = std::shared_ptr<float>(p, [cls](float* q) { cache().put(q, cls); });
}

Buffer Buffer::zeros(size_t n) {
  Buffer b(n);
  k::fill(0.f, b.data(), n);
  return b;
}

MemStats mem_stats() {
  std::lock_guard<std::mutex> lock(cache().mu);
  return cache().st;
}

void mem_reset_peak() {
  std::lock_guard<std::mutex> lock(cache().mu);
  cache().st.peak_in_use = cache().st.in_use;
}

void mem_release_cache() {
  std::lock_guard<std::mutex> lock(cache().mu);
  cache().release_locked();
}

void set_memory_budget(size_t bytes) {
  std::lock_guard<std::mutex> lock(cache().mu);
  cache().budget = bytes;
}

size_t memory_budget() {
  std::lock_guard<std::mutex> lock(cache().mu);
  return cache().budget;
}

size_t rss_bytes() { return read_status_kb("VmRSS:"); }
size_t peak_rss_bytes() { return read_status_kb("VmHWM:"); }

}  // namespace ntc
