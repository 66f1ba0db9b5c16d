#include "npeff/core/runtime.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>

#ifdef NPEFF_WITH_CUDA_KERNELS
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "npeff/core/error.h"
#include "npeff/core/version.h"

namespace npeff {

DeviceKind parse_device(const std::string& text) {
  if (text == "cpu") return DeviceKind::kCpu;
  if (text == "cuda" || text.rfind("cuda:", 0) == 0) return DeviceKind::kCuda;
  NPEFF_FAIL("unknown device '", text, "': expected 'cpu' or 'cuda'");
}

std::string to_string(DeviceKind device) {
  return device == DeviceKind::kCuda ? "cuda" : "cpu";
}

void tune_openmp_wait_policy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT") ||
      std::getenv("NPEFF_NO_REEXEC"))
    return;
  setenv("GOMP_SPINCOUNT", "1000", 1);
  setenv("NPEFF_NO_REEXEC", "1", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then carry on as we are
}

int hardware_threads() {
  // What this process may use, not what the node has: a SLURM job or `taskset` gives it a subset.
  if (const char* slurm = std::getenv("SLURM_CPUS_PER_TASK")) {
    const int n = std::atoi(slurm);
    if (n > 0) return n;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void set_num_threads(int threads) {
  NPEFF_CHECK(threads >= 0, "--threads must be >= 0 (0 = the CPUs this process may run on), got ",
              threads);
  at::set_num_threads(threads == 0 ? hardware_threads() : threads);
}

int num_threads() {
  return at::get_num_threads();
}

bool cuda_available() {
  return at::hasCUDA() && at::globalContext().hasCUDA();
}

void require_device(DeviceKind device) {
  if (device == DeviceKind::kCpu) return;
  NPEFF_CHECK(built_with_cuda(),
              "--device cuda: this npeff was built without CUDA (CPU-only LibTorch or no nvcc at "
              "build time). Rebuild against a CUDA LibTorch (see README), or use --device cpu");
  NPEFF_CHECK(cuda_available(), "--device cuda: no CUDA device is visible to this process");
}

}  // namespace npeff

#include <ATen/detail/CUDAHooksInterface.h>

#include <algorithm>

#include "npeff/core/device.h"
#include "npeff/dist/communicator.h"

namespace npeff {

c10::Device select_device(const std::string& text) {
  const DeviceKind kind = parse_device(text);
  require_device(kind);
  if (kind == DeviceKind::kCpu) return c10::Device(c10::kCPU);
  const int gpus = std::max(1, static_cast<int>(at::detail::getCUDAHooks().getNumGPUs()));
  if (text != "cuda") {
    const c10::Device dev(text);
    NPEFF_CHECK(dev.index() < gpus, "--device ", text, ": this process sees ", gpus,
                " GPU(s), cuda:0 to cuda:", gpus - 1);
    return dev;
  }
  // Plain "cuda" under a launcher: local rank i takes GPU i. Two ranks on one GPU would halve
  // each one's memory and speed without saying so: refuse unless asked to share.
  const int ranks = dist::local_size();
  const char* share = std::getenv("NPEFF_SHARE_GPUS");
  NPEFF_CHECK(ranks <= gpus || (share != nullptr && std::string(share) == "1"), ranks,
              " ranks on this node but ", gpus,
              " GPU(s): start at most one rank per GPU (srun --ntasks-per-node, --gres=gpu:N), "
              "or set NPEFF_SHARE_GPUS=1 to share them");
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(dist::local_rank() % gpus));
}

std::int64_t peak_device_memory(c10::Device device) {
#ifdef NPEFF_WITH_CUDA_KERNELS
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(
        device.has_index() ? device.index() : c10::DeviceIndex{0});
    return stats.allocated_bytes[0].peak;  // [0]: StatType::AGGREGATE, all pools
  }
#endif
  (void)device;
  return -1;
}

void reset_peak_device_memory(c10::Device device) {
#ifdef NPEFF_WITH_CUDA_KERNELS
  if (device.is_cuda())
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.has_index() ? device.index()
                                                                       : c10::DeviceIndex{0});
#endif
  (void)device;
}

}  // namespace npeff
