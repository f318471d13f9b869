#include "kernels/cpu_targets.h"

#include <cpuid.h>
#include <hwy/detect_targets.h>

namespace ntc::k {
namespace {

struct Regs {
  uint32_t a = 0, b = 0, c = 0, d = 0;
};
Regs cpuid(uint32_t leaf, uint32_t sub) {
  Regs r;
  if (!__get_cpuid_count(leaf, sub, &r.a, &r.b, &r.c, &r.d)) r = Regs{};  // leaf beyond the maximum: no features
  return r;
}
bool bit(uint32_t reg, int i) { return (reg >> i) & 1u; }

// XCR0's low word (the state components the OS saves); only valid when CPUID reports OSXSAVE.
uint32_t xcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return lo;
}

}  // namespace

int64_t cpu_targets() {
  int64_t t = HWY_SCALAR | HWY_EMU128;
  const Regs l1 = cpuid(1, 0), l7 = cpuid(7, 0), e1 = cpuid(0x80000001u, 0);
  const bool ssse3 = bit(l1.d, 25) && bit(l1.d, 26) && bit(l1.c, 0) && bit(l1.c, 9);
  const bool sse4 = ssse3 && bit(l1.c, 19) && bit(l1.c, 20) && bit(l1.c, 1) && bit(l1.c, 25);
  const bool avx2 = sse4 && bit(l1.c, 28) && bit(l7.b, 5) && bit(l1.c, 12) && bit(l1.c, 29) && bit(l7.b, 3) &&
                    bit(l7.b, 8) && bit(e1.c, 5);
  const bool avx3 = avx2 && bit(l7.b, 16) && bit(l7.b, 31) && bit(l7.b, 17) && bit(l7.b, 30);
  const bool avx3_dl = avx3 && bit(l7.c, 11) && bit(l7.c, 1) && bit(l7.c, 6) && bit(l7.c, 12) && bit(l7.c, 14) &&
                       bit(l7.c, 9) && bit(l7.c, 10);
  if (ssse3) t |= HWY_SSSE3;
  if (sse4) t |= HWY_SSE4;
  if (avx2) t |= HWY_AVX2;
  if (avx3) t |= HWY_AVX3;
  if (avx3_dl) t |= HWY_AVX3_DL;
  // The OS must save the wider registers across context switches: XCR0 says which it saves, and
  // without OSXSAVE there is no XCR0 and no AVX at all.
  const int64_t wide = HWY_AVX2 | HWY_AVX3 | HWY_AVX3_DL, avx512 = HWY_AVX3 | HWY_AVX3_DL;
  const uint32_t x = bit(l1.c, 27) ? xcr0() : 0;
  if (!bit(x, 1) || !bit(x, 2)) t &= ~wide;                  // XMM, YMM
  if (!bit(x, 5) || !bit(x, 6) || !bit(x, 7)) t &= ~avx512;  // opmask, upper halves of ZMM0–15, ZMM16–31
  return t;
}

}  // namespace ntc::k
