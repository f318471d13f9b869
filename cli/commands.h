// The `ntc` subcommands other than bench (which lives in bench/).
#pragma once
#include <string>
#include <vector>

namespace ntc::cli {
int cmd_demo(const std::vector<std::string>& args);
int cmd_flops(const std::vector<std::string>& args);
int cmd_train(const std::vector<std::string>& args);
int cmd_encode(const std::vector<std::string>& args);
int cmd_decode(const std::vector<std::string>& args);
int cmd_eval(const std::vector<std::string>& args);
int cmd_bdrate(const std::vector<std::string>& args);
int cmd_plot(const std::vector<std::string>& args);
}  // namespace ntc::cli
