// config — the plain-text model configuration (data/configs/*.cfg).
//
// One `key = value` per line; `#` starts a comment; lists are comma-separated. Every key a
// config sets must be read by the model builder: an unknown (e.g. misspelt) key is an error.
// Configs shipped in data/configs/ reproduce the paper's models (SPEC §1.6); users write their own
// in the same format.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

namespace ntc::nn {

class Config {
 public:
  static Config parse(const std::string& text, const std::string& origin = "config");
  static Config load(const std::string& name_or_path);  // NAME → data/configs/NAME.cfg, or a path
  const std::string& text() const { return text_; }
  const std::string& origin() const { return origin_; }

  bool has(const std::string& key) const { return kv_.count(key) > 0; }
  std::string str(const std::string& key, const std::string& def) const;
  std::string str(const std::string& key) const;  // required
  int integer(const std::string& key, int def) const;
  double number(const std::string& key, double def) const;
  std::vector<int> ints(const std::string& key, const std::vector<int>& def) const;
  std::vector<double> numbers(const std::string& key) const;  // empty when absent
  void check_all_used() const;  // throws naming the first key nobody read

 private:
  std::string text_, origin_;
  std::map<std::string, std::string> kv_;
  mutable std::set<std::string> used_;
};

// Where data/ lives: $NTC_DATA, else ./data, else the data/ next to the executable's folder.
std::string data_dir();
// Where the shipped models are: $NTC_MODEL_DIR, else data_dir() + "/models".
std::string model_dir();

}  // namespace ntc::nn
