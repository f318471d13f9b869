#include "cli/launch.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <string>

#include "lib/common.h"

namespace ntc::cli {

namespace {

using RunFn = int (*)(double, const std::function<int(train::Comm*)>*);

// The directory of the running binary ("" when /proc is not readable).
std::string exe_dir() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  const std::string p(buf, size_t(n));
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? "" : p.substr(0, slash);
}

// Opens the MPI plugin: next to the binary (the build folder), else in ../lib/ntc (an installed
// ntc). RTLD_GLOBAL: Open MPI's own components, which libmpi opens in turn, look up its symbols.
// Returns null with the reason in *why.
RunFn open_plugin(std::string* why) {
  const std::string dir = exe_dir();
  if (dir.empty()) {
    *why = "cannot find the binary's folder (/proc/self/exe)";
    return nullptr;
  }
  *why = "";
  for (const std::string& path : {dir + "/libntc_mpi.so", dir + "/../lib/ntc/libntc_mpi.so"}) {
    if (access(path.c_str(), F_OK) != 0) continue;
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
      const char* e = dlerror();
      *why = path + ": " + (e ? e : "cannot be loaded");
      return nullptr;
    }
    if (void* f = dlsym(h, "ntc_mpi_run_as_rank")) return reinterpret_cast<RunFn>(f);
    *why = path + " has no ntc_mpi_run_as_rank";
    return nullptr;
  }
  *why = "libntc_mpi.so is not next to the binary (" + dir + ") nor in " + dir + "/../lib/ntc";
  return nullptr;
}

}  // namespace

bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK");
}

int run_as_rank(double timeout_s, const std::function<int(train::Comm*)>& body) {
  if (!launched_by_mpirun()) return body(nullptr);
  std::string why;
  if (RunFn run = open_plugin(&why)) return run(timeout_s, &body);
  auto more_than_one = [](const char* v) { return std::getenv(v) && std::atoi(std::getenv(v)) > 1; };
  if (more_than_one("OMPI_COMM_WORLD_SIZE") || more_than_one("PMI_SIZE") || more_than_one("PMIX_SIZE"))
    fail("this ntc cannot run as one of several ranks: ", why,
         " (it is built where Open MPI is installed: install libopenmpi-dev and openmpi-bin, e.g. with `make deps`, "
         "then rebuild)");
  return body(nullptr);  // a job of one rank: no communication needed
}

}  // namespace ntc::cli
