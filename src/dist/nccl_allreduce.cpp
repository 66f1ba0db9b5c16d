// NCCL all-reduce for CUDA tensors (see nccl_allreduce.h). Built only with NPEFF_WITH_NCCL.
#include "dist/nccl_allreduce.h"

#include "npeff/core/error.h"

#ifdef NPEFF_WITH_NCCL
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <nccl.h>
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace npeff::dist::nccl {

#ifdef NPEFF_WITH_NCCL
namespace {

void check(ncclResult_t status, const char* what) {
  NPEFF_CHECK(status == ncclSuccess, "NCCL error in ", what, ": ", ncclGetErrorString(status));
}

// One communicator per process, created on first use on the device of the first tensor.
ncclComm_t communicator(int rank, int size) {
  static ncclComm_t comm = [&] {
    ncclUniqueId id;
    if (rank == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
    ncclComm_t c = nullptr;
    check(ncclCommInitRank(&c, size, id, rank), "ncclCommInitRank");
    return c;
  }();
  return comm;
}

}  // namespace

bool available() {
  return true;
}

void allreduce_sum(at::Tensor& tensor, int rank, int size) {
  NPEFF_ASSERT(tensor.is_cuda() && tensor.is_contiguous(),
               "NCCL all-reduce needs a contiguous CUDA tensor");
  ncclDataType_t type;
  switch (tensor.scalar_type()) {
    case at::kFloat:
      type = ncclFloat32;
      break;
    case at::kDouble:
      type = ncclFloat64;
      break;
    case at::kLong:
      type = ncclInt64;
      break;
    default:
      NPEFF_FAIL("NCCL all-reduce: unsupported dtype ", c10::toString(tensor.scalar_type()));
  }
  const c10::cuda::CUDAGuard guard(tensor.device());  // NCCL binds its communicator to it
  const ncclComm_t comm = communicator(rank, size);
  check(
      ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), static_cast<size_t>(tensor.numel()), type,
                    ncclSum, comm, c10::cuda::getCurrentCUDAStream(tensor.get_device()).stream()),
      "ncclAllReduce");
}

#else

bool available() {
  return false;
}
void allreduce_sum(at::Tensor&, int, int) {
  NPEFF_FAIL("this npeff was built without NCCL");
}

#endif

}  // namespace npeff::dist::nccl
