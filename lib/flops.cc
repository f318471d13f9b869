#include "lib/flops.h"

namespace ntc {
namespace {
thread_local FlopCounter* g_counter = nullptr;
thread_local std::string g_scope;
}  // namespace

FlopCounter::FlopCounter() : prev_(g_counter) { g_counter = this; }
FlopCounter::~FlopCounter() { g_counter = prev_; }

int64_t FlopCounter::total() const {
  int64_t t = 0;
  for (const auto& e : entries_) t += e.flops;
  return t;
}

void FlopCounter::add(const char* op, int64_t flops) { entries_.push_back({op, g_scope, flops}); }

FlopScope::FlopScope(std::string name) : prev_len_(g_scope.size()) {
  if (!g_scope.empty()) g_scope += ".";
  g_scope += name;
}
FlopScope::~FlopScope() { g_scope.resize(prev_len_); }

void count_flops(const char* op, int64_t flops) {
  if (g_counter) g_counter->add(op, flops);
}

}  // namespace ntc
