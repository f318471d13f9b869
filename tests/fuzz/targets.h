// The bodies of the libFuzzer targets (tests/fuzz/README.md), shared by the fuzz binaries
// (fuzz_<name>.cc, one line each) and by the regression test that replays every input fuzzing has
// ever found (tests/test_fuzz.cc over tests/fuzz/regressions/). Each body feeds its input to one of
// ntc's readers. An ntc::Error is the outcome the standards ask for (a one-line error and exit 1)
// and is swallowed; a broken property throws Finding; anything else — a crash, a sanitizer
// report, another exception, a hang (-timeout) or an allocation over -malloc_limit_mb — is a
// finding too.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ntc::fuzz {

struct Finding : std::logic_error {
  using std::logic_error::logic_error;
};

// The targets: container, rans, decompress, model, checkpoint, image, json, overfit.
const std::vector<std::string>& target_names();
// Runs target `name` on one input; throws Finding (or crashes) on a finding, else returns. With
// `errors_are_findings` an ntc::Error escapes too (for replaying the valid seed corpus).
void run_target(const std::string& name, const uint8_t* data, size_t size, bool errors_are_findings = false);
// What a target needs loaded before its first input (the shipped model), and one thread.
void init_target(const std::string& name);

// The repository root (NTC_ROOT, else the working directory: `make fuzz` runs from the root).
std::string repo_path(const std::string& rel);

}  // namespace ntc::fuzz

// One fuzz binary per target: fuzz_<name>.cc is NTC_FUZZ_TARGET(name).
#define NTC_FUZZ_TARGET(name)                                                        \
  extern "C" int LLVMFuzzerInitialize(int*, char***) {                               \
    ntc::fuzz::init_target(#name);                                                   \
    return 0;                                                                        \
  }                                                                                  \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {          \
    ntc::fuzz::run_target(#name, data, size);                                        \
    return 0;                                                                        \
  }
