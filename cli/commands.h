// The `ntc` subcommands other than bench (which lives in bench/).
#pragma once
#include <string>
#include <vector>

namespace ntc::cli {
int cmd_demo(const std::vector<std::string>& args);
int cmd_flops(const std::vector<std::string>& args);
int cmd_train(const std::vector<std::string>& args);
int cmd_derive(const std::vector<std::string>& args);
int cmd_encode(const std::vector<std::string>& args);
int cmd_decode(const std::vector<std::string>& args);
int cmd_info(const std::vector<std::string>& args);
int cmd_eval(const std::vector<std::string>& args);
int cmd_bdrate(const std::vector<std::string>& args);
int cmd_plot(const std::vector<std::string>& args);
int cmd_analyze(const std::vector<std::string>& args);
// Progress bars (\r updates with an ETA) go to stderr only when it is a terminal, or everywhere
// with the global flag --progress: a pipe or a log file gets no \r lines.
void force_progress(bool on);
bool progress_to_stderr();
}  // namespace ntc::cli
