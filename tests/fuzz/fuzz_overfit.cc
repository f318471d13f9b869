// libFuzzer target: see tests/fuzz/targets.h and targets.cc.
#include "tests/fuzz/targets.h"

NTC_FUZZ_TARGET(overfit)
