// json — a small reader for the JSON files ntc consumes (RD curves, its own eval output): objects,
// arrays, strings, numbers, true/false/null. Errors name the file and the byte offset.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ntc {

struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Json> arr;
  std::map<std::string, Json> obj;

  const Json* get(const std::string& key) const;  // null if absent or not an object
  std::vector<double> numbers() const;            // an array of numbers (throws otherwise)
};

Json parse_json(const std::string& text, const std::string& origin = "json");
Json read_json_file(const std::string& path);
std::string json_escape(const std::string& s);

}  // namespace ntc
