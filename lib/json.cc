#include "lib/json.h"

#include <cstdlib>

#include "lib/common.h"
#include "lib/fileio.h"

namespace ntc {
namespace {

struct Parser {
  const std::string& s;
  const std::string& origin;
  size_t i = 0;
  int depth = 0;

  [[noreturn]] void bad(const char* what) { fail(origin, ": invalid JSON at byte ", i, ": ", what); }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }
  bool lit(const char* w) {
    const size_t n = std::string(w).size();
    if (s.compare(i, n, w) == 0) {
      i += n;
      return true;
    }
    return false;
  }
  std::string string() {
    if (s[i] != '"') bad("expected a string");
    ++i;
    std::string r;
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\') {
        if (++i >= s.size()) bad("unterminated escape");
        const char c = s[i];
        if (c == 'n') r += '\n';
        else if (c == 't') r += '\t';
        else if (c == 'u') {
          if (i + 4 >= s.size()) bad("bad \\u escape");
          const unsigned cp = unsigned(std::strtoul(s.substr(i + 1, 4).c_str(), nullptr, 16));
          if (cp < 0x80) r += char(cp);
          else if (cp < 0x800) r += char(0xC0 | (cp >> 6)), r += char(0x80 | (cp & 0x3F));
          else r += char(0xE0 | (cp >> 12)), r += char(0x80 | ((cp >> 6) & 0x3F)), r += char(0x80 | (cp & 0x3F));
          i += 4;
        } else r += c;
        ++i;
      } else {
        r += s[i++];
      }
    }
    if (i >= s.size()) bad("unterminated string");
    ++i;
    return r;
  }
  Json value() {
    if (++depth > 200) bad("nested too deeply");
    ws();
    if (i >= s.size()) bad("unexpected end");
    Json j;
    const char c = s[i];
    if (c == '{') {
      j.kind = Json::Object;
      ++i;
      ws();
      if (i < s.size() && s[i] == '}') ++i;
      else
        for (;;) {
          ws();
          const std::string k = string();
          ws();
          if (i >= s.size() || s[i] != ':') bad("expected ':'");
          ++i;
          j.obj[k] = value();
          ws();
          if (i < s.size() && s[i] == ',') { ++i; continue; }
          if (i < s.size() && s[i] == '}') { ++i; break; }
          bad("expected ',' or '}'");
        }
    } else if (c == '[') {
      j.kind = Json::Array;
      ++i;
      ws();
      if (i < s.size() && s[i] == ']') ++i;
      else
        for (;;) {
          j.arr.push_back(value());
          ws();
          if (i < s.size() && s[i] == ',') { ++i; continue; }
          if (i < s.size() && s[i] == ']') { ++i; break; }
          bad("expected ',' or ']'");
        }
    } else if (c == '"') {
      j.kind = Json::String;
      j.str = string();
    } else if (lit("true")) {
      j.kind = Json::Bool;
      j.b = true;
    } else if (lit("false")) {
      j.kind = Json::Bool;
    } else if (lit("null")) {
      j.kind = Json::Null;
    } else {
      char* end = nullptr;
      j.num = std::strtod(s.c_str() + i, &end);
      if (end == s.c_str() + i) bad("unexpected character");
      j.kind = Json::Number;
      i = size_t(end - s.c_str());
    }
    --depth;
    return j;
  }
};

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
  Parser p{text, origin};
  Json j = p.value();
  p.ws();
  if (p.i != text.size()) p.bad("trailing characters");
  return j;
}

Json read_json_file(const std::string& path) {
  const auto b = read_file(path);
  return parse_json(std::string(b.begin(), b.end()), path);
}

std::string json_escape(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\', r += c;
    else if (c == '\n') r += "\\n";
    else if (static_cast<unsigned char>(c) < 0x20) r += ' ';
    else r += c;
  }
  return r;
}

}  // namespace ntc
