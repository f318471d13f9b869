// json — reading and writing the JSON files ntc consumes and produces, on nlohmann-json (Debian's
// nlohmann-json3-dev): strict RFC 8259 both ways.
//  - Reading: parse_json() parses with nlohmann (no NaN, Infinity, hex or comments; every escape
//    decoded) into ntc's small Json value; errors name the file and where. Nesting deeper than 200
//    levels is refused.
//  - Writing: build a JsonOut (keys keep their insertion order) and print json_line(j): non-finite
//    numbers become null (JSON has no NaN or Infinity), strings are escaped, invalid UTF-8 is
//    replaced by U+FFFD. Every JSON that ntc writes goes through it.
#pragma once
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
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

using JsonOut = nlohmann::ordered_json;
std::string json_line(const JsonOut& j);  // compact, one line, no trailing newline
// v rounded to `decimals` places, so that it prints short (nlohmann prints the shortest form that
// reads back exactly); non-finite values pass through (and print as null).
double json_round(double v, int decimals);

// Escapes a string for XML/SVG text (&, <, >, ").
std::string xml_escape(const std::string& s);

}  // namespace ntc
