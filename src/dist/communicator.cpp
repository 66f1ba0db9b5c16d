#include "npeff/dist/communicator.h"

#include <ATen/ATen.h>
#ifdef NPEFF_WITH_MPI
// The C API only: no MPI C++ bindings (deprecated, and a separate library).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "dist/nccl_allreduce.h"
#include "npeff/core/error.h"

namespace npeff::dist {
namespace {

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(at::Tensor&) override {}
  void barrier() override {}
};

#ifdef NPEFF_WITH_MPI
void check_mpi(int status, const char* what) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  NPEFF_FAIL("MPI error in ", what, ": ", std::string(text, length));
}

MPI_Datatype mpi_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kLong:
      return MPI_INT64_T;
    default:
      NPEFF_FAIL("allreduce: unsupported dtype ", c10::toString(t.scalar_type()));
  }
}

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      check_mpi(MPI_Init(nullptr, nullptr), "MPI_Init");
      std::atexit([] {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
      });
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(at::Tensor& tensor) override {
    if (tensor.is_cuda() && nccl::available()) {  // GPU tensors stay on the GPU
      nccl::allreduce_sum(tensor, rank_, size_);
      return;
    }
    at::Tensor host = tensor.is_cuda() ? tensor.cpu() : tensor;
    NPEFF_ASSERT(host.is_contiguous(), "allreduce needs a contiguous tensor");
    NPEFF_CHECK(host.numel() <= INT32_MAX, "allreduce of ", host.numel(), " elements is too large");
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, host.data_ptr(), static_cast<int>(host.numel()),
                            mpi_type(host), MPI_SUM, MPI_COMM_WORLD),
              "MPI_Allreduce");
    if (tensor.is_cuda()) tensor.copy_(host);
  }
  void barrier() override { check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

 private:
  int rank_ = 0, size_ = 1;
};
#endif  // NPEFF_WITH_MPI

#ifndef NPEFF_WITH_MPI
// The number of ranks the launcher started (1 when unknown), read from its environment.
int launcher_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"}) {
    const char* text = std::getenv(name);
    if (text != nullptr && *text != '\0') return std::max(1, std::atoi(text));
  }
  return 1;
}
#endif

}  // namespace

int local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) {
    const char* text = std::getenv(name);
    if (text != nullptr && *text != '\0') return std::atoi(text);
  }
  return 0;
}

int local_size() {
  for (const char* name :
       {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"}) {
    const char* text = std::getenv(name);
    if (text != nullptr && *text != '\0' && std::atoi(text) > 0) return std::atoi(text);
  }
  return 1;
}

bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(name) != nullptr) return true;
  return false;
}

bool built_with_mpi() {
#ifdef NPEFF_WITH_MPI
  return true;
#else
  return false;
#endif
}

Communicator& world() {
#ifdef NPEFF_WITH_MPI
  static std::unique_ptr<Communicator> instance =
      launched_by_mpi() ? std::unique_ptr<Communicator>(new MpiCommunicator())
                        : std::unique_ptr<Communicator>(new LocalCommunicator());
#else
  // Without MPI every process would silently run the whole job on its own: refuse instead.
  NPEFF_CHECK(!launched_by_mpi() || launcher_size() == 1,
              "this npeff was built without MPI "
              "(NPEFF_WITH_MPI=OFF or MPI not found), so it cannot run as one of ",
              launcher_size(), " ranks; run one process, or rebuild with -DNPEFF_WITH_MPI=ON");
  static std::unique_ptr<Communicator> instance(new LocalCommunicator());
#endif
  return *instance;
}

void partition(std::int64_t total, int rank, int size, std::int64_t& first, std::int64_t& count) {
  NPEFF_ASSERT(size >= 1 && rank >= 0 && rank < size, "bad rank/size");
  const std::int64_t base = total / size, extra = total % size;
  count = base + (rank < extra ? 1 : 0);
  first = rank * base + std::min<std::int64_t>(rank, extra);
}

}  // namespace npeff::dist
