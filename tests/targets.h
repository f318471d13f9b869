// tests/targets.h — run a SIMD-vs-twin comparison once per Highway target this CPU supports.
#pragma once
#include <cstdint>
#include <vector>

#include "hwy/targets.h"

namespace ntc::test {

// The Highway targets compiled into ntc's kernels that this CPU can run (e.g. AVX2, AVX3): the
// twin comparisons run once per target, not only on the best one.
inline std::vector<int64_t> simd_targets() { return hwy::SupportedAndGeneratedTargets(); }

// Forces HWY_DYNAMIC_DISPATCH to `target` for the lifetime of the object.
class ForceTarget {
 public:
  explicit ForceTarget(int64_t target) {
    hwy::SetSupportedTargetsForTest(target);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  }
  ~ForceTarget() {
    hwy::SetSupportedTargetsForTest(0);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  }
  ForceTarget(const ForceTarget&) = delete;
  ForceTarget& operator=(const ForceTarget&) = delete;
};

}  // namespace ntc::test
