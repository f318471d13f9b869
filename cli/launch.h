// launch — running a command as one rank of an mpirun job: through the MPI plugin
// (cli/mpi_plugin.cc, build/libntc_mpi.so, built where `mpicxx` is found), which the binary opens
// only when mpirun started it.
#pragma once
#include <functional>
#include <string>

namespace ntc::train {
class Comm;
}

namespace ntc::cli {

// True when this process was started by mpirun (Open MPI's or PMIx's environment variables).
bool launched_by_mpirun();

// Runs body with the job's communicator when started by mpirun (MPI initialised before, finalised
// after), else with nullptr (one process; MPI is never touched). `timeout_s`: a rank that waits
// longer than this for the others (one died or hangs) ends the whole job with a one-line error.
// An error on any rank is printed as "ntc: error: rank R: ..." and ends the job (MPI_Abort), so
// no rank is left waiting.
int run_as_rank(double timeout_s, const std::function<int(train::Comm*)>& body);

}  // namespace ntc::cli
