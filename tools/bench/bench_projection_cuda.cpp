// GPU benchmark of the projection kernels (through their plain host launchers). Reports input
// elements per second and the ratio to a floor measured in the same run: a device-to-device
// copy of the input (read + write of the same bytes), timed with CUDA events.
// Usage: bench_projection_cuda [n=50000000]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "npeff/projection/projection.h"
#include "projection_launch.h"

namespace {

#define CHECK_CUDA(x)                                              \
  do {                                                             \
    cudaError_t e = (x);                                           \
    if (e != cudaSuccess) {                                        \
      std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e)); \
      std::exit(1);                                                \
    }                                                              \
  } while (0)

template <typename Fn>
float time_ms(Fn&& fn, int reps = 3) {
  cudaEvent_t a, b;
  CHECK_CUDA(cudaEventCreate(&a));
  CHECK_CUDA(cudaEventCreate(&b));
  fn();  // warm-up
  float best = 1e30f;
  for (int k = 0; k < reps; ++k) {
    CHECK_CUDA(cudaEventRecord(a));
    fn();
    CHECK_CUDA(cudaEventRecord(b));
    CHECK_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
    best = ms < best ? ms : best;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace npeff::projection;
  if (kernels::cuda_device_count() == 0) {
    std::printf("bench_projection_cuda: no CUDA device\n");
    return 0;
  }
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  const std::int64_t n = argc > 1 ? std::atoll(argv[1]) : 50'000'000;
  const int max_rows = 8;
  std::printf("# bench_projection_cuda: %s, n=%lld\n", prop.name, static_cast<long long>(n));
  float *x = nullptr, *copy = nullptr;
  CHECK_CUDA(cudaMalloc(&x, sizeof(float) * max_rows * n));
  CHECK_CUDA(cudaMalloc(&copy, sizeof(float) * max_rows * n));
  CHECK_CUDA(cudaMemset(x, 0, sizeof(float) * max_rows * n));
  std::printf("%6s %5s %10s %12s %10s %8s %12s %8s\n", "d", "rows", "fwd_ms", "elem/s", "copy_ms",
              "x_copy", "transp_ms", "x_copy");
  for (const std::int64_t d : {4096, 16384}) {
    const Projection p({7, d, 0, Kind::kSparse});
    const kernels::ProjectionParams params{p.seed(), p.dim(), p.region_size(), p.scale()};
    for (const int rows : {1, 2, 8}) {
      float* out = nullptr;
      CHECK_CUDA(cudaMalloc(&out, sizeof(float) * rows * d));
      const std::size_t bytes = kernels::project_workspace_bytes(params, rows, n, 0);
      void* ws = nullptr;
      CHECK_CUDA(cudaMalloc(&ws, bytes));
      const float fwd = time_ms([&] {
        kernels::project_accumulate_cuda(params, x, rows, n, n, 0, out, d, ws, bytes, nullptr);
      });
      const float cp = time_ms([&] {
        CHECK_CUDA(cudaMemcpy(copy, x, sizeof(float) * rows * n, cudaMemcpyDeviceToDevice));
      });
      const std::size_t tbytes = kernels::project_transpose_workspace_bytes(params, rows, n, 0);
      void* tws = nullptr;
      CHECK_CUDA(cudaMalloc(&tws, std::max<std::size_t>(tbytes, 4)));
      const float tr = time_ms([&] {
        kernels::project_transpose_cuda(params, out, rows, d, 0, n, copy, n, tws, tbytes, nullptr);
      });
      cudaFree(tws);
      std::printf("%6lld %5d %10.2f %12.3e %10.3f %8.1f %12.2f %8.1f\n", static_cast<long long>(d),
                  rows, fwd, rows * n / (fwd * 1e-3), cp, fwd / cp, tr, tr / cp);
      std::fflush(stdout);
      cudaFree(ws);
      cudaFree(out);
    }
  }
  cudaFree(x);
  cudaFree(copy);
  return 0;
}
