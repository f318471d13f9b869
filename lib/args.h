// args — the small flag parser shared by every `ntc` subcommand and benchmark (in lib/ so that
// cli/ and bench/ both use it without depending on each other).
// Flags are `--name value`, `--name=value` or boolean `--name`; single-letter flags may also be
// written `-o value` / `-v` (cjpeg style); anything else (and `-` alone) is positional.
// Unknown flags are usage errors (each subcommand lists what it accepts); `--help` or `-h` anywhere
// asks for the command's usage. Exit statuses (cli/ntc.cc): 0 success or help, 1 runtime error
// (bad input, files), 2 usage error.
#pragma once
#include <cctype>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "lib/common.h"

namespace ntc::cli {

// A usage error: unknown flag, missing or malformed argument. main() prints it and exits 2.
struct UsageError : Error {
  using Error::Error;
};
template <typename... A>
[[noreturn]] void usage_fail(const A&... a) {
  throw UsageError(detail::cat(a...));
}
// `--help` / `-h` given to a command: main() prints that command's usage to stdout and exits 0.
struct HelpRequested {};

class Args {
 public:
  // `valued`: flags that take a value; `boolean`: flags that do not.
  Args(const std::vector<std::string>& argv, const std::set<std::string>& valued,
       const std::set<std::string>& boolean) {
    for (const std::string& a : argv)
      if (a == "--help" || a == "-h") throw HelpRequested{};
    for (size_t i = 0; i < argv.size(); ++i) {
      const std::string& a = argv[i];
      const bool dashdash = a.rfind("--", 0) == 0 && a.size() > 2;
      const bool short_flag = !dashdash && a.size() == 2 && a[0] == '-' && std::isalpha(static_cast<unsigned char>(a[1]));
      if (!dashdash && !short_flag) {
        pos_.push_back(a);
        continue;
      }
      std::string name = a.substr(dashdash ? 2 : 1), value;
      const size_t eq = name.find('=');
      const bool has_eq = eq != std::string::npos;
      if (has_eq) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      if (valued.count(name)) {
        if (!has_eq) {
          if (i + 1 >= argv.size()) usage_fail("flag --", name, " needs a value");
          value = argv[++i];
        }
      } else if (boolean.count(name)) {
        if (has_eq) usage_fail("flag --", name, " takes no value");
        value = "1";
      } else {
        usage_fail("unknown flag --", name);
      }
      flags_[name] = value;
    }
  }
  bool has(const std::string& n) const { return flags_.count(n) > 0; }
  std::string str(const std::string& n, const std::string& def = "") const {
    auto it = flags_.find(n);
    return it == flags_.end() ? def : it->second;
  }
  long integer(const std::string& n, long def) const {
    auto it = flags_.find(n);
    if (it == flags_.end()) return def;
    char* end = nullptr;
    long v = std::strtol(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end) usage_fail("flag --", n, " wants an integer, got '", it->second, "'");
    return v;
  }
  // A comma-separated list of positive numbers ("0.0025,0.01"); empty when the flag is absent.
  std::vector<double> numbers(const std::string& n) const {
    std::vector<double> r;
    auto it = flags_.find(n);
    if (it == flags_.end()) return r;
    size_t start = 0;
    for (;;) {
      const size_t comma = it->second.find(',', start);
      const std::string item = it->second.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      char* end = nullptr;
      const double v = std::strtod(item.c_str(), &end);
      if (item.empty() || *end || !(v > 0)) usage_fail("flag --", n, " wants positive numbers, got '", it->second, "'");
      r.push_back(v);
      if (comma == std::string::npos) return r;
      start = comma + 1;
    }
  }
  const std::vector<std::string>& positional() const { return pos_; }

 private:
  std::map<std::string, std::string> flags_;
  std::vector<std::string> pos_;
};

}  // namespace ntc::cli
