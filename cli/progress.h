// Progress — a progress bar with an ETA on stderr, updated at most 10 times a second, shown only
// where progress_to_stderr() says (a terminal, or --progress).
#pragma once
#include <chrono>
#include <cstdio>
#include <string>

#include "cli/commands.h"

namespace ntc::cli {

class Progress {
 public:
  Progress(std::string what, int total, bool on)
      : what_(std::move(what)), total_(total), on_(on && progress_to_stderr()), t0_(seconds_now()) {}
  void update(int done, const std::string& extra = "") {
    if (!on_) return;
    const double t = seconds_now();
    if (done < total_ && t - last_ < 0.1) return;
    last_ = t;
    const double eta = done > 0 ? (t - t0_) / done * (total_ - done) : 0;
    std::fprintf(stderr, "\r%s %d/%d  %.0f%%  ETA %.0fs %s   ", what_.c_str(), done, total_, 100.0 * done / total_, eta,
                 extra.c_str());
    if (done >= total_) std::fprintf(stderr, "\n");
  }

 private:
  static double seconds_now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  std::string what_;
  int total_;
  bool on_;
  double t0_, last_ = 0;
};

}  // namespace ntc::cli
