// Benchmark of one NPEFF decomposition step (Algorithm 1) on CPU, against its floor measured in
// the same run: the two large matrix products of the same shapes alone (B = G H^T and
// T2 = E^T G). Also reports the peak resident memory against the size of G + W + H.
// Usage: bench_decompose [m=20000] [r=2] [d=4096] [C=128] [steps=20]
#include <ATen/ATen.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "npeff/core/runtime.h"
#include "npeff/decomposition/decomposition.h"

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double peak_rss_gib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / (1024.0 * 1024.0);  // ru_maxrss is in KiB on Linux
}

}  // namespace

int main(int argc, char** argv) {
  npeff::tune_openmp_wait_policy(argv);
  const std::int64_t m = argc > 1 ? std::atoll(argv[1]) : 20000;
  const std::int64_t r = argc > 2 ? std::atoll(argv[2]) : 2;
  const std::int64_t d = argc > 3 ? std::atoll(argv[3]) : 4096;
  const std::int64_t c = argc > 4 ? std::atoll(argv[4]) : 128;
  const int steps = argc > 5 ? std::atoi(argv[5]) : 20;
  npeff::set_num_threads(0);
  std::printf("# bench_decompose: m=%lld r=%lld d=%lld C=%lld, %d steps, %d threads\n",
              static_cast<long long>(m), static_cast<long long>(r), static_cast<long long>(d),
              static_cast<long long>(c), steps, npeff::num_threads());
  at::Tensor g = at::randn({m, r, d});
  npeff::decomposition::normalize_pefs(g);
  npeff::decomposition::Decomposer dec(g, c);
  dec.initialize(0);
  dec.step(true, 1e-4);  // warm-up
  double t0 = now();
  for (int s = 0; s < steps; ++s) dec.step(true, 1e-4);
  const double step_ms = 1e3 * (now() - t0) / steps;

  const at::Tensor gf = g.reshape({m * r, d});
  const at::Tensor h = at::randn({c, d});
  const at::Tensor e = at::randn({m * r, c});
  at::mm(gf, h.t());
  t0 = now();
  for (int s = 0; s < steps; ++s) {
    at::Tensor b = at::mm(gf, h.t());
    at::Tensor t2 = at::mm(e.t(), gf);
  }
  const double gemm_ms = 1e3 * (now() - t0) / steps;
  const double flops = 2.0 * 2.0 * m * r * d * c;
  const double data_gib = 4.0 * (m * r * d + m * c + c * d) / (1024.0 * 1024 * 1024);
  std::printf("step %.2f ms | two products alone %.2f ms (%.1f GFLOP/s) | step / products %.3f\n",
              step_ms, gemm_ms, flops / (gemm_ms * 1e6), step_ms / gemm_ms);
  std::printf("peak RSS %.2f GiB | G + W + H %.2f GiB | ratio %.2f\n", peak_rss_gib(), data_gib,
              peak_rss_gib() / data_gib);
  return 0;
}
