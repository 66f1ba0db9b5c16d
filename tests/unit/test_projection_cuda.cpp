// CUDA kernels vs the CPU implementation, through the kernels' plain host launchers (so this
// runs on any GPU machine, even with a CPU-only LibTorch). Skips when no GPU is visible.
//   - transpose: bit-identical to the CPU (same per-entry summation order);
//   - forward: equal up to float summation order (the CUDA kernel sums per segment of chunks):
//     per output entry, |gpu - cpu| <= 2 (k+1) u sum|terms| with k and sum|terms| of that entry
//     (from the independent reference generator, as tests/unit/test_projection.cpp), 2x margin.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "npeff/projection/projection.h"
#include "projection/projection_cpu.h"
#include "projection_launch.h"
#include "unit/projection_reference.h"

namespace npeff::projection {
namespace {

struct DeviceBuffer {
  float* ptr = nullptr;
  explicit DeviceBuffer(std::size_t count) {
    EXPECT_EQ(cudaMalloc(&ptr, std::max<std::size_t>(1, count) * sizeof(float)), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  void upload(const std::vector<float>& v) {
    ASSERT_EQ(cudaMemcpy(ptr, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  std::vector<float> download(std::size_t count) const {
    std::vector<float> v(count);
    EXPECT_EQ(cudaMemcpy(v.data(), ptr, count * sizeof(float), cudaMemcpyDeviceToHost),
              cudaSuccess);
    return v;
  }
};

constexpr double kUnitRoundoff = 5.960464477539063e-08;  // 2^-24, float32

// Per output entry (r, j) of projecting x (rows x n, global indices offset .. offset+n-1): the
// number k of nonzero terms A[j][i] x[r][i] and sum_i |A[j][i] x[r][i]|, in float64, from the
// independent reference generator (docs/projection.md), without materialising A.
void term_counts_and_magnitudes(const Projection& p, const std::vector<float>& x, std::int64_t rows,
                                std::int64_t n, std::int64_t offset, std::vector<std::int64_t>& k,
                                std::vector<double>& mag) {
  const npeff::testing::ReferenceProjection ref{p.seed(), p.dim(), p.region_size()};
  const std::int64_t d = p.dim(), s = p.region_size();
  k.assign(static_cast<std::size_t>(rows * d), 0);
  mag.assign(static_cast<std::size_t>(rows * d), 0.0);
  const double scale = ref.scale();
  for (std::int64_t c = offset / s; c <= (offset + n - 1) / s; ++c)
    for (std::int64_t j = 0; j < d; ++j) {
      const std::int64_t i = ref.pick(c, j).first - offset;
      if (i < 0 || i >= n) continue;  // a pick outside the slice contributes no term
      for (std::int64_t r = 0; r < rows; ++r) {
        k[r * d + j] += 1;
        mag[r * d + j] += scale * std::fabs(static_cast<double>(x[r * n + i]));
      }
    }
}

std::vector<float> random_vector(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(count);
  for (auto& e : v) e = normal(rng);
  return v;
}

kernels::ProjectionParams params_of(const Projection& p) {
  return {p.seed(), p.dim(), p.region_size(), p.scale()};
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// A^T y on the GPU through the launcher, with the workspace it asks for.
std::vector<float> transpose_on_gpu(const Projection& p, const std::vector<float>& y,
                                    std::int64_t rows, std::int64_t offset, std::int64_t n) {
  DeviceBuffer dy(y.size()), dout(rows * n);
  dy.upload(y);
  const auto params = params_of(p);
  const std::size_t bytes = kernels::project_transpose_workspace_bytes(params, rows, n, offset);
  DeviceBuffer ws(bytes / sizeof(float) + 1);
  kernels::project_transpose_cuda(params, dy.ptr, rows, p.dim(), offset, n, dout.ptr, n, ws.ptr,
                                  bytes, nullptr);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return dout.download(rows * n);
}

class ProjectionCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (kernels::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible: skipped";
  }
};

struct Case {
  std::int64_t n, d, rows, offset;
  std::uint64_t seed;
  Kind kind;
};
const Case kCases[] = {{100000, 4096, 8, 0, 1, Kind::kSparse},
                       {54321, 1000, 3, 77, 2, Kind::kSparse},
                       {5000, 256, 13, (std::int64_t{1} << 33) + 3, 3, Kind::kSparse},
                       {3000, 512, 2, 0, 4, Kind::kDense},
                       {40000, 1024, 1, 5, 5, Kind::kSparse},
                       {20000, 16384, 2, 300, 6, Kind::kSparse},
                       // (8 s + d) x 4 bytes just under 48 KiB: needs the shared-memory opt-in
                       {3000, 9832, 2, 11, 7, Kind::kSparse},
                       {500, 5, 3, 0, 8, Kind::kSparse}};  // d < 8: warps without outputs

TEST_F(ProjectionCuda, ForwardMatchesCpuUpToSummationOrder) {
  for (const Case& c : kCases) {
    SCOPED_TRACE("n=" + std::to_string(c.n) + " d=" + std::to_string(c.d) +
                 " seed=" + std::to_string(c.seed));
    const Projection p({c.seed, c.d, 0, c.kind});
    const auto x = random_vector(c.rows * c.n, c.seed);
    std::vector<float> cpu(c.rows * c.d, 0.0f);
    cpu::project_accumulate(p, x.data(), c.rows, c.n, c.n, c.offset, cpu.data(), c.d);
    DeviceBuffer dx(x.size()), dout(cpu.size());
    dx.upload(x);
    ASSERT_EQ(cudaMemset(dout.ptr, 0, cpu.size() * sizeof(float)), cudaSuccess);
    const auto params = params_of(p);
    const std::size_t bytes = kernels::project_workspace_bytes(params, c.rows, c.n, c.offset);
    void* ws = nullptr;
    ASSERT_EQ(cudaMalloc(&ws, std::max<std::size_t>(bytes, 4)), cudaSuccess);
    kernels::project_accumulate_cuda(params, dx.ptr, c.rows, c.n, c.n, c.offset, dout.ptr, c.d, ws,
                                     bytes, nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    cudaFree(ws);
    const auto gpu = dout.download(cpu.size());
    // Per entry: the CPU and the GPU each sum the same k float32 terms (each rounded once),
    // only in a different order; any order is within (k+1) u sum|terms| of the exact sum
    // (Higham, eq. 4.4), so the two differ by at most 2 (k+1) u sum|terms|; we allow 2x that,
    // as the CPU tests do. The bound is per entry, linear in k, not a global k^2 max|x| bound.
    std::vector<std::int64_t> terms;
    std::vector<double> mag;
    term_counts_and_magnitudes(p, x, c.rows, c.n, c.offset, terms, mag);
    for (std::size_t e = 0; e < cpu.size(); ++e) {
      const double bound = 4.0 * (terms[e] + 1) * kUnitRoundoff * mag[e] + 1e-30;
      ASSERT_NEAR(gpu[e], cpu[e], bound)
          << "row " << e / c.d << " output " << e % c.d << " (" << terms[e] << " terms)";
    }
  }
}

TEST_F(ProjectionCuda, TransposeIsBitIdenticalToCpu) {
  for (const Case& c : kCases) {
    SCOPED_TRACE("n=" + std::to_string(c.n) + " d=" + std::to_string(c.d));
    const Projection p({c.seed, c.d, 0, c.kind});
    const auto y = random_vector(c.rows * c.d, c.seed + 10);
    std::vector<float> cpu(c.rows * c.n);
    cpu::project_transpose(p, y.data(), c.rows, c.d, c.offset, c.n, cpu.data(), c.n);
    ASSERT_TRUE(same_bits(transpose_on_gpu(p, y, c.rows, c.offset, c.n), cpu));
  }
}

// A chunk's sort scratch ((8 s + d) * 4 bytes) too large for shared memory: the kernel runs on
// its global-memory workspace, with the same bits.
TEST_F(ProjectionCuda, TransposeWithGlobalScratchIsBitIdenticalToCpu) {
  const std::int64_t d = std::int64_t{1} << 17, s = 4096, n = 3 * s + 5, rows = 3;
  const Projection p({12, d, s, Kind::kSparse});
  ASSERT_GT(kernels::project_transpose_workspace_bytes(params_of(p), rows, n, 0), 0u)
      << "expected the global-memory path for d = " << d << ", s = " << s;
  const auto y = random_vector(rows * d, 12);
  std::vector<float> cpu(rows * n);
  cpu::project_transpose(p, y.data(), rows, d, 0, n, cpu.data(), n);
  ASSERT_TRUE(same_bits(transpose_on_gpu(p, y, rows, 0, n), cpu));
  // A workspace of exactly one block's scratch: one block walks all 4 chunks, reusing it.
  DeviceBuffer dy(y.size()), dout(rows * n), ws((8 * s + d) + 1);
  dy.upload(y);
  kernels::project_transpose_cuda(params_of(p), dy.ptr, rows, d, 0, n, dout.ptr, n, ws.ptr,
                                  (8 * s + d) * sizeof(float), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSERT_TRUE(same_bits(dout.download(rows * n), cpu)) << "one block over several chunks";
}

TEST_F(ProjectionCuda, ForwardIsDeterministicRunToRun) {
  const Projection p({9, 2048, 0, Kind::kSparse});
  const std::int64_t n = 300000, rows = 4;
  const auto x = random_vector(rows * n, 9);
  DeviceBuffer dx(x.size()), a(rows * 2048), b(rows * 2048);
  dx.upload(x);
  const auto params = params_of(p);
  const std::size_t bytes = kernels::project_workspace_bytes(params, rows, n, 0);
  void* ws = nullptr;
  ASSERT_EQ(cudaMalloc(&ws, bytes), cudaSuccess);
  for (DeviceBuffer* out : {&a, &b}) {
    ASSERT_EQ(cudaMemset(out->ptr, 0, rows * 2048 * sizeof(float)), cudaSuccess);
    kernels::project_accumulate_cuda(params, dx.ptr, rows, n, n, 0, out->ptr, 2048, ws, bytes,
                                     nullptr);
  }
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaFree(ws);
  const auto ra = a.download(rows * 2048), rb = b.download(rows * 2048);
  EXPECT_EQ(std::memcmp(ra.data(), rb.data(), ra.size() * sizeof(float)), 0);
}

}  // namespace
}  // namespace npeff::projection
