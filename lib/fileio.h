// fileio — whole-file reads and atomic writes (temp file + fsync + rename: a reader never sees a
// partial file, and an existing file is never half-overwritten).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ntc {

std::vector<uint8_t> read_file(const std::string& path);  // throws ntc::Error naming the path
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace ntc
