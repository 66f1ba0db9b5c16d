// Machinery of the device test suite (tests/unit/test_backends.cpp, after ggml's
// test-backend-ops): the two backends an op runs on, the error metrics with the bound each op
// states, and the report every comparison adds a row to. The report is printed after the tests
// and written as Markdown (NPEFF_BACKENDS_MD) and JSON (NPEFF_BACKENDS_JSON) for
// tools/gpu-check.sh, so a GPU run returns every figure, not only pass/fail.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <string>

namespace npeff::testing::backends {

// Where an op runs. The reference is the CPU with every thread and default block settings. The
// second backend is CUDA when this binary can use a GPU; otherwise ("cpu2", the self-check on
// machines without one) the CPU again with one thread and other block sizes, so the comparison
// code and the bounds of the thread-independent ops are exercised everywhere.
// NPEFF_BACKEND=auto|cuda|cpu2 chooses (auto: cuda when available).
struct Backend {
  std::string name;  // "cpu", "cuda", "cpu2"
  c10::Device device{c10::kCPU};
  int threads = 0;                  // npeff::set_num_threads while running on it (0: all)
  std::int64_t block_examples = 0;  // Decomposer::set_block_examples (0: all at once)
  bool cuda() const { return device.is_cuda(); }
};
const Backend& reference();
const Backend& second();
// The second run of a stage that has no device path today: the CPU with one thread (whatever
// second() is), reported as "CPU only".
const Backend& cpu_only_second();

// Sets the backend's thread count for the lifetime of the object.
class OnBackend {
 public:
  explicit OnBackend(const Backend& b);
  ~OnBackend();
  OnBackend(const OnBackend&) = delete;
  OnBackend& operator=(const OnBackend&) = delete;

 private:
  int saved_;
};

// kMaxAbs: max |got - ref| (0 = bit-identical); kScaled: max |got - ref| / max |ref|;
// kNmse: sum (got - ref)^2 / sum ref^2. All in float64.
enum class Metric { kMaxAbs, kScaled, kNmse };
const char* metric_name(Metric m);
double error(Metric m, const at::Tensor& ref, const at::Tensor& got);

struct Bound {
  Metric metric;
  double value;
};
// The bound an op promises against the reference, on each kind of second backend, and why.
struct Bounds {
  Bound cuda;
  Bound cpu2;
  std::string why;
  const Bound& on(const Backend& b) const { return b.cuda() ? cuda : cpu2; }
};

enum class Path { kDevice, kCpuOnly };

// Compares `got` (computed on `backend`) with `ref` (same shape, any device/dtype), adds a report
// row and fails the current test when the error exceeds the bound, is NaN, or shapes differ.
void check(const std::string& op, const std::string& shape, const Backend& backend,
           const at::Tensor& ref, const at::Tensor& got, const Bounds& bounds,
           Path path = Path::kDevice);
// A row for an op that does not apply to this backend (e.g. tf32 on a CPU), with the reason.
void not_applicable(const std::string& op, const std::string& shape, const Backend& backend,
                    const std::string& why);

}  // namespace npeff::testing::backends
