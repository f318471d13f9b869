// hwy_runtime — the five functions of Highway's runtime library (libhwy.so) that ntc's Highway
// code calls, defined in the `ntc` binary so that it does not load that library: libhwy.so's
// static initialiser calibrates a timer for about 2.5 ms of every process, and loading it costs
// another 1.4 ms, 7% of decoding a Kodak image (#14 counts from process start). Target detection
// is kernels/cpu_targets.h (tested against libhwy.so's own); the rest follows the contracts
// documented in <hwy/targets.h> and <hwy/aligned_allocator.h>:
//   GetChosenTarget            one ChosenTarget for the process (dispatch tables read it);
//   SupportedTargets           the CPU's targets, or the mask set by SetSupportedTargetsForTest;
//   SetSupportedTargetsForTest sets that mask (0: none) and makes the next dynamic dispatch
//                              choose again (ntc's --target uses it, kernels/dispatch.cc);
//   AllocateAlignedBytes       HWY_ALIGNMENT-aligned memory from malloc or the caller's allocator,
//   FreeAlignedBytes           and its release.
// The library (libntc) and the test binary link libhwy.so itself.
#include <hwy/aligned_allocator.h>
#include <hwy/targets.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <limits>

#include "kernels/cpu_targets.h"

// The test binary, which links libhwy.so, compiles this file again in another namespace to test it
// (tests/test_kernels.cc); the ntc binary defines hwy's own functions.
#ifndef NTC_HWY_RUNTIME_NAMESPACE
#define NTC_HWY_RUNTIME_NAMESPACE hwy
#endif

namespace NTC_HWY_RUNTIME_NAMESPACE {
using hwy::AllocPtr;
using hwy::ChosenTarget;
using hwy::FreePtr;
namespace {

std::atomic<int64_t> g_targets_for_test{0};

// An allocation: | slack | the pointer the allocator returned | payload (aligned) |.
constexpr size_t kAlign = HWY_ALIGNMENT;
static_assert(kAlign >= sizeof(void*) && (kAlign & (kAlign - 1)) == 0);

}  // namespace

ChosenTarget& GetChosenTarget() {
  static ChosenTarget chosen;
  return chosen;
}

int64_t SupportedTargets() {
  const int64_t mock = g_targets_for_test.load(std::memory_order_relaxed);
  return mock != 0 ? mock : ntc::k::cpu_targets();
}

void SetSupportedTargetsForTest(int64_t targets) {
  g_targets_for_test.store(targets, std::memory_order_relaxed);
  GetChosenTarget().DeInit();
}

void* AllocateAlignedBytes(size_t payload_size, AllocPtr alloc_ptr, void* opaque_ptr) {
  if (payload_size == 0 || payload_size > std::numeric_limits<size_t>::max() / 2) return nullptr;
  const size_t total = payload_size + sizeof(void*) + kAlign - 1;  // the header, then alignment
  void* raw = alloc_ptr ? alloc_ptr(opaque_ptr, total) : std::malloc(total);
  if (!raw) return nullptr;
  const uintptr_t payload = (reinterpret_cast<uintptr_t>(raw) + sizeof(void*) + kAlign - 1) & ~uintptr_t(kAlign - 1);
  reinterpret_cast<void**>(payload)[-1] = raw;  // payload − raw is sizeof(void*) … sizeof(void*) + kAlign − 1
  return reinterpret_cast<void*>(payload);
}

void FreeAlignedBytes(const void* aligned_pointer, FreePtr free_ptr, void* opaque_ptr) {
  if (!aligned_pointer) return;
  void* raw = reinterpret_cast<void* const*>(aligned_pointer)[-1];
  if (free_ptr) free_ptr(opaque_ptr, raw);
  else std::free(raw);
}

}  // namespace NTC_HWY_RUNTIME_NAMESPACE
