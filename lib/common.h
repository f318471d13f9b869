// common — error channels shared by every layer of ntc.
//
// Two channels (STYLE.md, practice 7):
//   NTC_CHECK(cond, msg...)  internal invariant (shapes, API misuse). Always on, also in release
//                            builds; throws ntc::Error with file:line and the message.
//   ntc::Error               thrown for bad input (files, flags, streams); the CLI turns it into a
//                            one-line message and a non-zero exit. Never assert() on input.
#pragma once
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

namespace ntc {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... A>
std::string cat(const A&... a) {
  std::ostringstream s;
  (s << ... << a);
  return s.str();
}
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace detail

template <typename... A>
[[noreturn]] void fail(const A&... a) {
  throw Error(detail::cat(a...));
}

}  // namespace ntc

#define NTC_CHECK(cond, ...)                                                               \
  do {                                                                                     \
    if (!(cond)) ::ntc::detail::check_failed(__FILE__, __LINE__, #cond,                    \
                                             ::ntc::detail::cat("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)
