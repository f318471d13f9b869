#include "bench/bench.h"
#include "lib/args.h"

#include "lib/common.h"

namespace ntc::bench {

int run(const std::vector<std::string>& args) {
  for (const std::string& a : args)
    if (a == "--help" || a == "-h") throw cli::HelpRequested{};
  if (args.empty()) cli::usage_fail("bench: name a benchmark (conv, rans, decode, train, sga, overfit)");
  const std::string name = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (name == "conv") return bench_conv(rest);
  if (name == "rans") return bench_rans(rest);
  if (name == "decode") return bench_decode(rest);
  if (name == "train") return bench_train(rest);
  if (name == "sga") return bench_sga(rest);
  if (name == "overfit") return bench_overfit(rest);
  cli::usage_fail("bench: unknown benchmark '", name, "' (known: conv, rans, decode, train, sga, overfit)");
}

}  // namespace ntc::bench
