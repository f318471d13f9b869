#include "lib/common.h"

namespace ntc::detail {
void check_failed(const char* file, int line, const char* cond, const std::string& msg) {
  throw Error(cat(file, ":", line, ": check failed: ", cond, msg.empty() ? "" : " — ", msg));
}
}  // namespace ntc::detail
