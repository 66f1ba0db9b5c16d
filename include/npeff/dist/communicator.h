// Data-parallel communication for multi-process runs (paper Appendix C.3: examples partitioned
// across processes, one all-reduce of the H-gradient per step) on MPI (OpenMPI), never a
// home-made engine. Launch with `mpirun -np N npeff ...` or, under SLURM, `srun --mpi=pmix npeff
// ...`; a process started without an MPI launcher runs alone. CUDA tensors are all-reduced with
// NCCL (bootstrapped over MPI) when npeff links CUDA, through host memory otherwise.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace npeff::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Element-wise sum over ranks, in place (CPU float tensors; CUDA through host copies).
  virtual void allreduce_sum(at::Tensor& tensor) = 0;
  virtual void barrier() = 0;
};

/// This process's index among the ranks on its node (OpenMPI, MPICH or SLURM), 0 when unknown:
/// rank-to-GPU mapping for `--device cuda` under mpirun/srun.
int local_rank();

/// The number of ranks on this process's node (OpenMPI, MPICH or SLURM), 1 when unknown.
int local_size();

/// True when an MPI launcher (mpirun, mpiexec, srun with PMI/PMIx) started this process.
bool launched_by_mpi();
/// True when this build links MPI (CMake NPEFF_WITH_MPI=AUTO found it, or ON).
bool built_with_mpi();
/// The communicator of this process: MPI_COMM_WORLD when launched by MPI (MPI is initialised
/// once and finalised at exit), else a single-rank one. In a build without MPI, throws
/// npeff::Error when a launcher started more than one rank.
Communicator& world();

/// The [first, first + count) slice of `total` items that `rank` of `size` owns: contiguous,
/// sizes differing by at most one, none dropped or duplicated.
void partition(std::int64_t total, int rank, int size, std::int64_t& first, std::int64_t& count);

}  // namespace npeff::dist
