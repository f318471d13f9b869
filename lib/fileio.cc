#include "lib/fileio.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "lib/common.h"

namespace ntc {

std::vector<uint8_t> read_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("cannot open ", path, ": ", std::strerror(errno));
  std::vector<uint8_t> out;
  // Sized once from the file length (regular files), then read in place; grows only for pipes.
  if (std::fseek(f, 0, SEEK_END) == 0) {
    const long len = std::ftell(f);
    if (len > 0) out.reserve(size_t(len));
    std::rewind(f);
  }
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    const size_t at = out.size();
    out.resize(at + n);
    std::memcpy(out.data() + at, buf, n);
  }
  const bool err = std::ferror(f);
  std::fclose(f);
  if (err) fail("cannot read ", path);
  return out;
}

void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("cannot write ", tmp, ": ", std::strerror(errno));
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  ok = (std::fflush(f) == 0) && ok;
  ok = (fsync(fileno(f)) == 0) && ok;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    fail("cannot write ", path, ": ", std::strerror(e));
  }
}

}  // namespace ntc
