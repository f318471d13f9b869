#include "nn/config.h"

#include <dlfcn.h>

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "lib/common.h"

namespace ntc::nn {
namespace {
std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}
bool file_exists(const std::string& p) { return std::ifstream(p).good(); }
}  // namespace

Config Config::parse(const std::string& text, const std::string& origin) {
  Config c;
  c.text_ = text;
  c.origin_ = origin;
  std::istringstream in(text);
  std::string line;
  int ln = 0;
  while (std::getline(in, line)) {
    ++ln;
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) fail(origin, ":", ln, ": expected 'key = value'");
    const std::string k = trim(line.substr(0, eq)), v = trim(line.substr(eq + 1));
    if (k.empty() || v.empty()) fail(origin, ":", ln, ": empty key or value");
    if (c.kv_.count(k)) fail(origin, ":", ln, ": '", k, "' set twice");
    c.kv_[k] = v;
  }
  return c;
}

// $NTC_DATA; else ./data (a checkout); else next to this binary or library: ../data (a build
// tree) or ../share/ntc (an installed prefix: bin/ntc or lib/libntc.so).
std::string data_dir() {
  if (const char* e = std::getenv("NTC_DATA"); e && *e) return e;
  if (file_exists("data/configs/jpegl.cfg")) return "data";
  std::vector<std::string> dirs;
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    const std::string exe(buf, size_t(n));
    dirs.push_back(exe.substr(0, exe.rfind('/')));
  }
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&data_dir), &info) && info.dli_fname) {
    const std::string lib = info.dli_fname;
    if (lib.find('/') != std::string::npos) dirs.push_back(lib.substr(0, lib.rfind('/')));
  }
  for (const std::string& d : dirs)
    for (const char* rel : {"/../data", "/../share/ntc"})
      if (file_exists(d + rel + "/configs/jpegl.cfg")) return d + rel;
  return "data";
}

std::string model_dir() {
  if (const char* e = std::getenv("NTC_MODEL_DIR"); e && *e) return e;
  return data_dir() + "/models";
}

Config Config::load(const std::string& name) {
  std::string path = name;
  if (name.find('/') == std::string::npos && name.find('.') == std::string::npos)
    path = data_dir() + "/configs/" + name + ".cfg";
  std::ifstream f(path);
  if (!f) fail("cannot read config '", name, "' (", path, ")");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse(ss.str(), path);
}

std::string Config::str(const std::string& key, const std::string& def) const {
  used_.insert(key);
  auto it = kv_.find(key);
  return it == kv_.end() ? def : it->second;
}

std::string Config::str(const std::string& key) const {
  if (!has(key)) fail(origin_, ": missing '", key, "'");
  return str(key, "");
}

int Config::integer(const std::string& key, int def) const {
  if (!has(key)) return def;
  const std::string v = str(key, "");
  char* end = nullptr;
  const long r = std::strtol(v.c_str(), &end, 10);
  if (*end || r < -1000000000 || r > 1000000000) fail(origin_, ": '", key, "' wants an integer, got '", v, "'");
  return int(r);
}

double Config::number(const std::string& key, double def) const {
  if (!has(key)) return def;
  const std::string v = str(key, "");
  char* end = nullptr;
  const double r = std::strtod(v.c_str(), &end);
  if (*end) fail(origin_, ": '", key, "' wants a number, got '", v, "'");
  return r;
}

std::vector<int> Config::ints(const std::string& key, const std::vector<int>& def) const {
  if (!has(key)) return def;
  std::vector<int> r;
  std::stringstream s(str(key, ""));
  std::string item;
  while (std::getline(s, item, ',')) {
    item = trim(item);
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end || v < 1 || v > 100000) fail(origin_, ": '", key, "' wants positive integers");
    r.push_back(int(v));
  }
  return r;
}

std::vector<double> Config::numbers(const std::string& key) const {
  std::vector<double> r;
  if (!has(key)) return r;
  std::stringstream s(str(key, ""));
  std::string item;
  while (std::getline(s, item, ',')) {
    item = trim(item);
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || *end || !(v > 0)) fail(origin_, ": '", key, "' wants positive numbers");
    r.push_back(v);
  }
  return r;
}

void Config::check_all_used() const {
  for (const auto& [k, v] : kv_)
    if (!used_.count(k)) fail(origin_, ": unknown key '", k, "'");
}

}  // namespace ntc::nn
