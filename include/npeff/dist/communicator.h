// Data-parallel communication for multi-process runs (paper Appendix C.3: examples partitioned
// across processes, one all-reduce of the H-gradient per step) on MPI (OpenMPI), never a
// home-made engine. Launch with `mpirun -np N npeff ...` or, under SLURM, `srun --mpi=pmix npeff
// ...`; a process started without an MPI launcher runs alone. GPU tensors are reduced through
// host memory for now (NCCL is the planned GPU path).
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

/// True when an MPI launcher (mpirun, mpiexec, srun with PMI/PMIx) started this process.
bool launched_by_mpi();
/// The communicator of this process: MPI_COMM_WORLD when launched by MPI (MPI is initialised
/// once and finalised at exit), else a single-rank one.
Communicator& world();

/// The [first, first + count) slice of `total` items that `rank` of `size` owns: contiguous,
/// sizes differing by at most one, none dropped or duplicated.
void partition(std::int64_t total, int rank, int size, std::int64_t& first, std::int64_t& count);

}  // namespace npeff::dist
