// fileio — whole-file reads and atomic writes (temp file + fsync + rename: a reader never sees a
// partial file, and an existing file is never half-overwritten).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ntc {

std::vector<uint8_t> read_file(const std::string& path);  // throws ntc::Error naming the path

// A whole file in memory of its own, for big inputs read once (model files): read straight into a
// block that is not zeroed first and, from 2 MiB, is 2 MiB aligned and advised for transparent
// huge pages, so that a fresh process pays one page fault per 2 MiB instead of one per 4 KiB.
class FileBytes {
 public:
  const uint8_t* data() const { return p_.get(); }
  size_t size() const { return n_; }

 private:
  friend FileBytes read_file_bytes(const std::string& path);
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> p_;
  size_t n_ = 0;
};
FileBytes read_file_bytes(const std::string& path);  // errors as read_file
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace ntc
