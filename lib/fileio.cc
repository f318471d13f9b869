#include "lib/fileio.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "lib/alloc.h"
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

void FileBytes::Free::operator()(uint8_t* p) const { std::free(p); }

FileBytes read_file_bytes(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open ", path, ": ", std::strerror(errno));
  struct stat st {};
  const bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  FileBytes out;
  if (!regular) {  // pipes and the like: the general reader, then one copy
    close(fd);
    const std::vector<uint8_t> v = read_file(path);
    out.p_.reset(static_cast<uint8_t*>(std::malloc(v.size() ? v.size() : 1)));
    if (!out.p_) fail("out of memory reading ", path);
    if (!v.empty()) std::memcpy(out.p_.get(), v.data(), v.size());
    out.n_ = v.size();
    return out;
  }
  constexpr size_t kHuge = kHugePageBytes;
  // One byte more than the file's size: a file that grew since fstat is noticed.
  const size_t cap = size_t(st.st_size) + 1;
  void* p = nullptr;
  if (posix_memalign(&p, cap >= kHuge ? kHuge : 64, cap) != 0) {
    close(fd);
    fail("out of memory reading ", path, " (", cap, " bytes)");
  }
  if (cap >= kHuge) madvise(p, cap, MADV_HUGEPAGE);
  out.p_.reset(static_cast<uint8_t*>(p));
  size_t n = 0;
  while (n < cap) {
    const ssize_t r = read(fd, out.p_.get() + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      close(fd);
      fail("cannot read ", path, ": ", std::strerror(errno));
    }
    if (r == 0) break;
    n += size_t(r);
  }
  close(fd);
  if (n == cap) fail("cannot read ", path, ": it grew while being read");
  out.n_ = n;
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
