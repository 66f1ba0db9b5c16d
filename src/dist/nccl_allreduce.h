// All-reduce of CUDA tensors with NCCL, its communicator bootstrapped over MPI (internal; only
// compiled when npeff links CUDA). Without it, CUDA tensors are reduced through host memory.
#pragma once

#include <ATen/core/Tensor.h>

namespace npeff::dist::nccl {

/// True when this build has the NCCL path.
bool available();
/// In-place sum over the ranks of MPI_COMM_WORLD on the tensor's device and current stream.
/// Collective: every rank must call it with tensors of the same shape and dtype.
void allreduce_sum(at::Tensor& tensor, int rank, int size);

}  // namespace npeff::dist::nccl
