// cpu_targets — which of Highway's x86 targets this CPU (and its OS) can run, read from CPUID and
// XCR0: the answer hwy::SupportedTargets() gives, computed without Highway's runtime library.
//
// Why: the `ntc` binary defines the five functions of libhwy.so that its Highway code calls
// (cli/hwy_runtime.cc) instead of loading that library, whose static initialiser calibrates a
// timer for about 2.5 ms of every process (3.9 ms with the loading; #14 counts decode time from
// process start). The library (libntc) and the tests keep linking libhwy.so, and the test
// Kernels.CpuTargetsAreHighwaysOwn compares this function with hwy::SupportedTargets() on the
// machine it runs on.
//
// A target is reported when the CPU has every instruction set its code may use and the OS saves
// the registers it needs (XCR0):
//   SSSE3    SSE, SSE2, SSE3, SSSE3
//   SSE4     + SSE4.1, SSE4.2, PCLMULQDQ, AES
//   AVX2     + AVX, AVX2, FMA, F16C, BMI1, BMI2, LZCNT; XCR0 saves XMM and YMM
//   AVX3     + AVX-512 F, VL, DQ, BW; XCR0 also saves the opmask and both ZMM halves
//   AVX3_DL  + AVX-512 VNNI, VBMI, VBMI2, BITALG, VPOPCNTDQ, VAES, VPCLMULQDQ
// plus HWY_SCALAR and HWY_EMU128, which every CPU runs.
#pragma once
#include <cstdint>

namespace ntc::k {

int64_t cpu_targets();

}  // namespace ntc::k
