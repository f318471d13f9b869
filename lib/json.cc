#include "lib/json.h"

#include <algorithm>
#include <cmath>

#include "lib/common.h"
#include "lib/fileio.h"

namespace ntc {
namespace {

constexpr int kMaxDepth = 200;

Json convert(const nlohmann::json& j, int depth, const std::string& origin) {
  if (depth > kMaxDepth) fail(origin, ": invalid JSON: nested more than ", kMaxDepth, " levels deep");
  Json r;
  switch (j.type()) {
    case nlohmann::json::value_t::null: break;
    case nlohmann::json::value_t::boolean:
      r.kind = Json::Bool;
      r.b = j.get<bool>();
      break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      r.kind = Json::Number;
      r.num = j.get<double>();
      break;
    case nlohmann::json::value_t::string:
      r.kind = Json::String;
      r.str = j.get<std::string>();
      break;
    case nlohmann::json::value_t::array:
      r.kind = Json::Array;
      for (const auto& v : j) r.arr.push_back(convert(v, depth + 1, origin));
      break;
    case nlohmann::json::value_t::object:
      r.kind = Json::Object;
      for (const auto& [k, v] : j.items()) r.obj[k] = convert(v, depth + 1, origin);
      break;
    default: fail(origin, ": invalid JSON: unsupported value");
  }
  return r;
}

}  // namespace

const Json* Json::get(const std::string& key) const {
  if (kind != Object) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &it->second;
}

std::vector<double> Json::numbers() const {
  if (kind != Array) fail("expected an array of numbers");
  std::vector<double> r;
  for (const Json& v : arr) {
    if (v.kind != Number) fail("expected an array of numbers");
    r.push_back(v.num);
  }
  return r;
}

Json parse_json(const std::string& text, const std::string& origin) {
  // The parser callback refuses deep nesting while parsing (before the tree is built).
  int depth = 0;
  const auto limit = [&](int d, nlohmann::json::parse_event_t ev, nlohmann::json&) {
    if (ev == nlohmann::json::parse_event_t::object_start || ev == nlohmann::json::parse_event_t::array_start)
      depth = std::max(depth, d);
    if (depth > kMaxDepth) throw Error(origin + ": invalid JSON: nested more than 200 levels deep");
    return true;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text, limit);
  } catch (const nlohmann::json::exception& e) {
    fail(origin, ": invalid JSON: ", e.what());
  }
  return convert(j, 0, origin);
}

Json read_json_file(const std::string& path) {
  const auto b = read_file(path);
  return parse_json(std::string(b.begin(), b.end()), path);
}

double json_round(double v, int decimals) {
  if (!std::isfinite(v)) return v;
  const double f = std::pow(10.0, decimals), r = std::round(v * f) / f;
  return std::isfinite(r) ? r : v;
}

std::string json_line(const JsonOut& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

std::string xml_escape(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '&') r += "&amp;";
    else if (c == '<') r += "&lt;";
    else if (c == '>') r += "&gt;";
    else if (c == '"') r += "&quot;";
    else if (static_cast<unsigned char>(c) < 0x20) r += ' ';
    else r += c;
  }
  return r;
}

}  // namespace ntc
