// CUDA kernels for the sparse random projection. The matrix entries come from
// src/projection/projection_hash.h, shared verbatim with the CPU code, so the projection is
// identical on every device. Compiled with --fmad=false so that no a*b+c is fused: every term
// is rounded exactly as on the CPU. No atomics: results are deterministic run to run and
// independent of the GPU model (launch geometry depends only on the problem sizes).
#define NPEFF_HD __host__ __device__
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "npeff/core/error.h"
#include "projection/projection_hash.h"
#include "projection_launch.h"

namespace npeff::projection::kernels {
namespace {

namespace h = ::npeff::projection::hash;

constexpr int kThreads = 256;
constexpr int kMaxRows = 8;                         // rows per kernel pass (registers)
constexpr std::int64_t kSegmentElements = 1 << 16;  // input entries summed per segment
constexpr std::size_t kMaxWorkspace = std::size_t{64} << 20;
constexpr std::int64_t kMaxSegmentChunks = 4096;
constexpr std::size_t kMaxGridY = 65535;  // CUDA's limit on gridDim.y
constexpr int kTransposeTile = 1024;      // outputs staged per shared-memory tile

void check(cudaError_t status, const char* what) {
  NPEFF_CHECK(status == cudaSuccess, "CUDA error in ", what, ": ", cudaGetErrorString(status));
}

// Chunks per segment: about kSegmentElements input entries, at most kMaxSegmentChunks so that
// the segment's chunk keys fit in shared memory (32 KiB).
std::int64_t segment_chunks(std::int64_t s) {
  return std::clamp<std::int64_t>(kSegmentElements / s, 1, kMaxSegmentChunks);
}

struct ChunkRange {
  std::int64_t begin, end;  // chunks overlapping [offset, offset+len)
};
ChunkRange chunk_range(std::int64_t s, std::int64_t offset, std::int64_t len) {
  return {offset / s, (offset + len + s - 1) / s};
}

// One thread per output j, one block row per segment of chunks. Writes the segment's partial sum
// partial[(seg_local * rb + r) * d + j].
template <int RB>
__global__ void project_partial_kernel(ProjectionParams p, const float* __restrict__ x,
                                       std::int64_t len, std::int64_t ldx, std::int64_t offset,
                                       std::int64_t c_begin, std::int64_t c_end,
                                       std::int64_t seg_chunks, std::int64_t seg_first,
                                       float* __restrict__ partial) {
  extern __shared__ std::uint64_t chunk_keys[];  // seg_chunks entries
  const std::int64_t seg = seg_first + blockIdx.y;
  const std::int64_t cs = c_begin + seg * seg_chunks;
  const std::int64_t ce = min(cs + seg_chunks, c_end);
  const std::uint64_t chunk_seed = h::chunk_seed_key(p.seed);
  for (std::int64_t t = threadIdx.x; t < ce - cs; t += blockDim.x)
    chunk_keys[t] = h::chunk_key(chunk_seed, static_cast<std::uint64_t>(cs + t));
  __syncthreads();
  const std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= p.dim) return;
  const std::uint32_t okey = h::out_key(h::out_seed_key(p.seed), static_cast<std::uint64_t>(j));
  const auto s = static_cast<std::uint32_t>(p.region_size);
  float acc[RB];
#pragma unroll
  for (int r = 0; r < RB; ++r) acc[r] = 0.0f;
  for (std::int64_t c = cs; c < ce; ++c) {
    const std::uint64_t ck = chunk_keys[c - cs];
    const std::uint32_t hv =
        h::pair_hash(okey, static_cast<std::uint32_t>(ck), static_cast<std::uint32_t>(ck >> 32));
    const std::int64_t g = c * p.region_size + h::pick_index(hv, s);
    if (g < offset || g >= offset + len) continue;
    const bool negative = h::pick_negative(hv) != 0;
#pragma unroll
    for (int r = 0; r < RB; ++r) {
      const float v = __fmul_rn(x[r * ldx + (g - offset)], p.scale);
      acc[r] = __fadd_rn(acc[r], negative ? -v : v);
    }
  }
#pragma unroll
  for (int r = 0; r < RB; ++r) partial[(blockIdx.y * RB + r) * p.dim + j] = acc[r];
}

// out[r][j] += partial[0][r][j], then += partial[1][r][j], ... (ascending segment order).
__global__ void add_partials_kernel(const float* __restrict__ partial, std::int64_t segments,
                                    std::int64_t rb, std::int64_t d, float* __restrict__ out,
                                    std::int64_t ldo) {
  const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= rb * d) return;
  const std::int64_t r = k / d, j = k % d;
  float acc = out[r * ldo + j];
  for (std::int64_t seg = 0; seg < segments; ++seg)
    acc = __fadd_rn(acc, partial[(seg * rb + r) * d + j]);
  out[r * ldo + j] = acc;
}

// Block (chunk, element block): every thread owns one input entry of the chunk and scans all
// outputs j in ascending order, adding the terms that picked it. The (pick, sign, y) of a tile of
// outputs is staged in shared memory and read by broadcast.
template <int RB>
__global__ void project_transpose_kernel(ProjectionParams p, const float* __restrict__ y,
                                         std::int64_t ldy, std::int64_t offset, std::int64_t len,
                                         std::int64_t c_begin, float* __restrict__ out,
                                         std::int64_t ldo) {
  __shared__ std::uint32_t slot[kTransposeTile];  // pick index * 2 + negative
  __shared__ float yv[kTransposeTile * RB];
  const std::int64_t c = c_begin + blockIdx.x;
  const std::int64_t local = static_cast<std::int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  const std::int64_t g = c * p.region_size + local;
  const bool active = local < p.region_size && g >= offset && g < offset + len;
  const std::uint64_t ck = h::chunk_key(h::chunk_seed_key(p.seed), static_cast<std::uint64_t>(c));
  const auto lo = static_cast<std::uint32_t>(ck), hi = static_cast<std::uint32_t>(ck >> 32);
  const std::uint32_t out_seed = h::out_seed_key(p.seed);
  const auto s = static_cast<std::uint32_t>(p.region_size);
  float acc[RB];
#pragma unroll
  for (int r = 0; r < RB; ++r) acc[r] = 0.0f;
  for (std::int64_t j0 = 0; j0 < p.dim; j0 += kTransposeTile) {
    const int tile = static_cast<int>(p.dim - j0 < kTransposeTile ? p.dim - j0 : kTransposeTile);
    __syncthreads();
    for (int t = threadIdx.x; t < tile; t += blockDim.x) {
      const std::uint32_t hv = h::pair_hash(h::out_key(out_seed, j0 + t), lo, hi);
      slot[t] = h::pick_index(hv, s) * 2 + h::pick_negative(hv);
#pragma unroll
      for (int r = 0; r < RB; ++r) yv[t * RB + r] = __fmul_rn(y[r * ldy + j0 + t], p.scale);
    }
    __syncthreads();
    if (!active) continue;
    const auto mine = static_cast<std::uint32_t>(local);
    for (int t = 0; t < tile; ++t) {
      const std::uint32_t sl = slot[t];
      if ((sl >> 1) != mine) continue;
      const bool negative = (sl & 1U) != 0;
#pragma unroll
      for (int r = 0; r < RB; ++r) {
        const float v = yv[t * RB + r];
        acc[r] = __fadd_rn(acc[r], negative ? -v : v);
      }
    }
  }
  if (!active) return;
#pragma unroll
  for (int r = 0; r < RB; ++r) out[r * ldo + (g - offset)] = acc[r];
}

template <typename Fn>
void for_row_groups(std::int64_t rows, Fn&& fn) {
  for (std::int64_t r = 0; r < rows;) {
    const std::int64_t left = rows - r;
    if (left >= 8)
      fn(std::integral_constant<int, 8>{}, r), r += 8;
    else if (left >= 4)
      fn(std::integral_constant<int, 4>{}, r), r += 4;
    else if (left >= 2)
      fn(std::integral_constant<int, 2>{}, r), r += 2;
    else
      fn(std::integral_constant<int, 1>{}, r), r += 1;
  }
}

}  // namespace

std::size_t project_workspace_bytes(const ProjectionParams& p, std::int64_t rows, std::int64_t len,
                                    std::int64_t offset) {
  if (rows <= 0 || len <= 0) return 0;
  const ChunkRange cr = chunk_range(p.region_size, offset, len);
  const std::int64_t segments =
      (cr.end - cr.begin + segment_chunks(p.region_size) - 1) / segment_chunks(p.region_size);
  const std::size_t per_segment = sizeof(float) * kMaxRows * static_cast<std::size_t>(p.dim);
  const std::size_t wave = std::clamp<std::size_t>(kMaxWorkspace / per_segment, 1,
                                                   std::min<std::size_t>(segments, kMaxGridY));
  return wave * per_segment;
}

void project_accumulate_cuda(const ProjectionParams& p, const float* x, std::int64_t rows,
                             std::int64_t len, std::int64_t ldx, std::int64_t offset, float* out,
                             std::int64_t ldo, void* workspace, std::size_t workspace_bytes,
                             void* stream) {
  if (rows <= 0 || len <= 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  const ChunkRange cr = chunk_range(p.region_size, offset, len);
  const std::int64_t seg_chunks = segment_chunks(p.region_size);
  const std::int64_t segments = (cr.end - cr.begin + seg_chunks - 1) / seg_chunks;
  const std::size_t per_segment = sizeof(float) * kMaxRows * static_cast<std::size_t>(p.dim);
  NPEFF_CHECK(workspace_bytes >= per_segment, "projection workspace too small: ", workspace_bytes,
              " bytes, need at least ", per_segment);
  const std::int64_t wave = static_cast<std::int64_t>(
      std::min({workspace_bytes / per_segment, static_cast<std::size_t>(segments), kMaxGridY}));
  auto* partial = static_cast<float*>(workspace);
  const unsigned out_blocks = static_cast<unsigned>((p.dim + kThreads - 1) / kThreads);
  for_row_groups(rows, [&](auto rb, std::int64_t r0) {
    constexpr int RB = decltype(rb)::value;
    for (std::int64_t seg0 = 0; seg0 < segments; seg0 += wave) {
      const std::int64_t n_seg = std::min(wave, segments - seg0);
      const dim3 grid(out_blocks, static_cast<unsigned>(n_seg));
      project_partial_kernel<RB><<<grid, kThreads, seg_chunks * sizeof(std::uint64_t), st>>>(
          p, x + r0 * ldx, len, ldx, offset, cr.begin, cr.end, seg_chunks, seg0, partial);
      check(cudaGetLastError(), "project_partial_kernel launch");
      const std::int64_t total = RB * p.dim;
      add_partials_kernel<<<static_cast<unsigned>((total + kThreads - 1) / kThreads), kThreads, 0,
                            st>>>(partial, n_seg, RB, p.dim, out + r0 * ldo, ldo);
      check(cudaGetLastError(), "add_partials_kernel launch");
    }
  });
}

void project_transpose_cuda(const ProjectionParams& p, const float* y, std::int64_t rows,
                            std::int64_t ldy, std::int64_t offset, std::int64_t len, float* out,
                            std::int64_t ldo, void* stream) {
  if (rows <= 0 || len <= 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  const ChunkRange cr = chunk_range(p.region_size, offset, len);
  const std::int64_t threads = std::min<std::int64_t>(kThreads, p.region_size);
  const std::int64_t element_blocks = (p.region_size + threads - 1) / threads;
  NPEFF_CHECK(cr.end - cr.begin < (std::int64_t{1} << 31) && element_blocks < 65536,
              "projection transpose: slice too large for one launch");
  for_row_groups(rows, [&](auto rb, std::int64_t r0) {
    constexpr int RB = decltype(rb)::value;
    const dim3 grid(static_cast<unsigned>(cr.end - cr.begin),
                    static_cast<unsigned>(element_blocks));
    project_transpose_kernel<RB><<<grid, static_cast<unsigned>(threads), 0, st>>>(
        p, y + r0 * ldy, ldy, offset, len, cr.begin, out + r0 * ldo, ldo);
    check(cudaGetLastError(), "project_transpose_kernel launch");
  });
}

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

}  // namespace npeff::projection::kernels
