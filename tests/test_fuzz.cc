// Fuzzing's inputs, replayed in every test run (and under ASan in `make asan`), through the very
// target bodies the fuzzers run (tests/fuzz/targets.cc):
//  - every input fuzzing has found (tests/fuzz/regressions/<target>/, one file per fixed finding)
//    ends in a clean ntc::Error or a valid result, never a Finding or a crash;
//  - every seed (tests/fuzz/corpus/<target>/) is a valid input its reader accepts: a reader that
//    started refusing good files, or a seed gone stale, fails here.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "lib/common.h"
#include "lib/fileio.h"
#include "tests/fuzz/targets.h"

namespace ntc::fuzz {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Fuzz, EveryFoundInputIsHandled) {
  int n = 0;
  for (const std::string& t : target_names()) {
    init_target(t);
    for (const fs::path& f : files_in(fs::path("tests/fuzz/regressions") / t)) {
      const std::vector<uint8_t> b = read_file(f.string());
      EXPECT_NO_THROW(run_target(t, b.data(), b.size())) << t << " " << f;
      ++n;
    }
  }
  if (n == 0) GTEST_SKIP() << "tests/fuzz/regressions not found (run from the repository root)";
  EXPECT_GE(n, 2);
}

TEST(Fuzz, EverySeedIsAValidInput) {
  int n = 0;
  for (const std::string& t : target_names()) {
    if (t == "rans") continue;  // its seeds include malformed streams on purpose
    const std::vector<fs::path> seeds = files_in(fs::path("tests/fuzz/corpus") / t);
    init_target(t);
    for (const fs::path& f : seeds) {
      const std::vector<uint8_t> b = read_file(f.string());
      try {
        run_target(t, b.data(), b.size(), /*errors_are_findings=*/true);
      } catch (const std::exception& e) {
        ADD_FAILURE() << t << " refuses its seed " << f << ": " << e.what();
      }
      ++n;
    }
  }
  if (n == 0) GTEST_SKIP() << "tests/fuzz/corpus not found (run from the repository root)";
  EXPECT_GE(n, 25);
}

// The harness's own properties can fire: a valid stream whose pixels are checked, and a
// container that must write back byte for byte.
TEST(Fuzz, TargetsRejectAndAcceptWhatTheyShould) {
  EXPECT_THROW(run_target("nonexistent", nullptr, 0), std::invalid_argument);
  const uint8_t junk[] = {'N', 'T', 'C', 'B', 1, 0, 0, 0};
  EXPECT_NO_THROW(run_target("container", junk, sizeof junk));              // an Error, swallowed
  EXPECT_THROW(run_target("container", junk, sizeof junk, true), Error);    // the same Error, surfaced
}

}  // namespace
}  // namespace ntc::fuzz
