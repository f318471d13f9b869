// Test main: runs every suite, then prints one closing line that CI tooling reads:
//   tests: N passed, N failed, N skipped
#include "lib/blas.h"
#include <gtest/gtest.h>

#include <cstdio>

#include "kernels/kernels.h"
#include "lib/threads.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  std::printf("ntc tests: kernels=%s blas=%s threads=%d\n", ntc::k::kernel_target_name(), ntc::blas_kernel_name(),
              ntc::num_threads());
  int rc = RUN_ALL_TESTS();
  const auto* u = testing::UnitTest::GetInstance();
  int skipped = u->skipped_test_count();
  std::printf("tests: %d passed, %d failed, %d skipped\n", u->successful_test_count(),
              u->failed_test_count(), skipped);
  return rc;
}
