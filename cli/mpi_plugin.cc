// The MPI plugin (build/libntc_mpi.so): ntc's communicator over Open MPI for `mpirun -np N ntc
// train` (train/dist.h). The only file of ntc that includes <mpi.h>; built, with libmpi linked, where
// `mpicxx` is found. The ntc binary opens it with dlopen only when mpirun started it
// (cli/launch.cc), so no other process loads libmpi and the libraries it pulls in (about 0.8 ms of
// CPU a process). Errors are std::runtime_error (the binary prints them as one line); nothing here
// refers to a symbol of the binary.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "train/dist.h"

namespace ntc::cli {
namespace mpi_plugin {

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
    if (n > (uint64_t(1) << 40))
      throw std::runtime_error("rank 0 announced a " + std::to_string(n) + "-byte checkpoint");
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
  int provided = 0;
  // Only the main thread calls MPI (OpenMP threads compute in between).
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    throw std::runtime_error("cannot join the MPI job (MPI_Init_thread failed)");
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

}  // namespace mpi_plugin
}  // namespace ntc::cli

// The entry point the binary looks up (cli/launch.cc): runs body as one rank of the job, MPI
// initialised before and finalised after.
extern "C" int ntc_mpi_run_as_rank(double timeout_s, const std::function<int(ntc::train::Comm*)>* body) {
  return ntc::cli::mpi_plugin::run_as_rank(timeout_s, *body);
}
