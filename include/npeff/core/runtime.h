// Process-wide runtime settings shared by every subcommand: thread count and device.
#pragma once

#include <string>

namespace npeff {

enum class DeviceKind { kCpu, kCuda };

/// Parses "cpu" or "cuda" (optionally "cuda:N"); throws npeff::Error otherwise.
DeviceKind parse_device(const std::string& text);
std::string to_string(DeviceKind device);

/// Sets LibTorch's intra-op thread count. 0 means hardware_threads() (LibTorch's own default is 1
/// on some machines, which makes every CPU op single-threaded).
void set_num_threads(int threads);
int num_threads();
/// The CPUs this process may run on, at least 1: SLURM_CPUS_PER_TASK when set, else the size of
/// its affinity mask (taskset, cgroup cpusets), else the hardware thread count.
int hardware_threads();

/// libgomp reads its spin policy from the environment once, when it is loaded. Its default
/// (spin ~300k iterations after every parallel region) starves OpenBLAS's own threads on small
/// machines: decompose ran 1.8x slower (docs/performance.md). Unless the user chose a policy
/// (OMP_WAIT_POLICY or GOMP_SPINCOUNT), this re-executes the program once with a short spin,
/// which keeps the projection's many short parallel regions fast. Call first thing in main().
void tune_openmp_wait_policy(char** argv);

/// True when a CUDA device is usable by this binary (built with CUDA and a GPU is visible).
bool cuda_available();

/// Throws npeff::Error with an actionable message when `device` cannot be used by this binary
/// (CUDA asked of a CPU-only build, or no GPU visible).
void require_device(DeviceKind device);

}  // namespace npeff
