#include "npeff/core/runtime.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>

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

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void set_num_threads(int threads) {
  NPEFF_CHECK(threads >= 0, "--threads must be >= 0 (0 = all cores), got ", threads);
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
