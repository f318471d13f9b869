#include "cli/launch.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>
#include <vector>

#include "lib/common.h"
#include "train/dist.h"

#ifdef NTC_HAVE_MPI
#include <mpi.h>
#endif

namespace ntc::cli {

bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK");
}

#ifdef NTC_HAVE_MPI
bool built_with_mpi() { return true; }

namespace {

// Every operation is non-blocking and completed by polling against a deadline: a rank that died or
// hangs turns into an error after timeout_s instead of a job that waits for ever.
class MpiComm final : public train::Comm {
 public:
  explicit MpiComm(double timeout_s) : timeout_s_(timeout_s) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "MPI"; }

  void start_sum(int64_t* v, size_t n) override {
    while (n > 0) {  // MPI counts are int
      const int c = int(std::min<size_t>(n, size_t(1) << 30));
      pending_.emplace_back();
      MPI_Iallreduce(MPI_IN_PLACE, v, c, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD, &pending_.back());
      v += c;
      n -= size_t(c);
    }
    int flag;  // a nudge: Open MPI progresses non-blocking collectives inside MPI calls
    MPI_Testall(int(pending_.size()), pending_.data(), &flag, MPI_STATUSES_IGNORE);
  }
  void wait_sums() override {
    wait(pending_, "summing gradients");
    pending_.clear();
  }
  void gather(const double* v, size_t n, double* out) override {
    std::vector<MPI_Request> r(1);
    MPI_Iallgather(v, int(n), MPI_DOUBLE, out, int(n), MPI_DOUBLE, MPI_COMM_WORLD, &r[0]);
    wait(r, "gathering the step's numbers");
  }
  void broadcast(std::vector<uint8_t>& b) override {
    uint64_t n = b.size();
    std::vector<MPI_Request> r(1);
    MPI_Ibcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD, &r[0]);
    wait(r, "receiving rank 0's checkpoint");
    if (n > (uint64_t(1) << 40)) fail("rank 0 announced a ", n, "-byte checkpoint");
    b.resize(size_t(n));
    for (size_t at = 0; at < b.size();) {
      const int c = int(std::min<size_t>(b.size() - at, size_t(1) << 30));
      MPI_Ibcast(b.data() + at, c, MPI_BYTE, 0, MPI_COMM_WORLD, &r[0]);
      wait(r, "receiving rank 0's checkpoint");
      at += size_t(c);
    }
  }
  void barrier() override {
    std::vector<MPI_Request> r(1);
    MPI_Ibarrier(MPI_COMM_WORLD, &r[0]);
    wait(r, "waiting at a barrier");
  }
  double take_comm_seconds() override {
    const double s = comm_s_;
    comm_s_ = 0;
    return s;
  }

 private:
  void wait(std::vector<MPI_Request>& r, const char* what) {
    const auto t0 = std::chrono::steady_clock::now();
    int done = 0;
    for (long spins = 0;; ++spins) {
      MPI_Testall(int(r.size()), r.data(), &done, MPI_STATUSES_IGNORE);
      if (done) break;
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (s > timeout_s_) {
        std::fprintf(stderr, "ntc: error: rank %d of %d: no answer from the other ranks for %.0f s while %s "
                     "(a rank died or hangs); ending the job\n", rank_, size_, timeout_s_, what);
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
      if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));  // a long wait: yield the core
    }
    comm_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  int rank_ = 0, size_ = 1;
  double timeout_s_;
  double comm_s_ = 0;
  std::vector<MPI_Request> pending_;
};

}  // namespace

int run_as_rank(double timeout_s, const std::function<int(train::Comm*)>& body) {
  if (!launched_by_mpirun()) return body(nullptr);
  int provided = 0;
  // Only the main thread calls MPI (OpenMP threads compute in between).
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    fail("cannot join the MPI job (MPI_Init_thread failed)");
  int rc = 1;
  {
    MpiComm comm(timeout_s);
    try {
      rc = body(&comm);
    } catch (const std::exception& e) {
      if (comm.size() > 1) {  // end the whole job: the other ranks would wait for this one
        std::fprintf(stderr, "ntc: error: rank %d: %s\n", comm.rank(), e.what());
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
      MPI_Finalize();
      throw;
    }
  }
  MPI_Finalize();
  return rc;
}

#else  // built without MPI

bool built_with_mpi() { return false; }

int run_as_rank(double, const std::function<int(train::Comm*)>& body) {
  auto more_than_one = [](const char* v) { return std::getenv(v) && std::atoi(std::getenv(v)) > 1; };
  if (more_than_one("OMPI_COMM_WORLD_SIZE") || more_than_one("PMI_SIZE") || more_than_one("PMIX_SIZE"))
    fail("this ntc was built without MPI, so it cannot run as one of several ranks "
         "(install libopenmpi-dev and openmpi-bin, e.g. with `make deps`, then rebuild)");
  return body(nullptr);
}

#endif

}  // namespace ntc::cli
