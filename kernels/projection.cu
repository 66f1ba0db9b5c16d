// CUDA kernels for the sparse random projection. The matrix entries come from
// src/projection/projection_hash.h, shared verbatim with the CPU code, so the projection is
// identical on every device. Compiled with --fmad=false so that no a*b+c is fused: every term
// is rounded exactly as on the CPU. No floating-point atomics (the transpose counts picks with
// integer shared-memory atomics, whose result is order-free): results are deterministic run to
// run; the forward's launch geometry depends only on the problem sizes, and the transpose's
// result does not depend on its geometry at all.
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

// Transpose, one chunk per block iteration, O(d + s) work per chunk (O(32 n) in all for the
// default s = d / 32), as the CPU does it: the d outputs' picks are bucketed by input entry with
// a stable counting sort in shared memory, then every entry sums its bucket in ascending output
// order -- the CPU's order, so the result is bit-identical and independent of the launch
// geometry. Warp w of the block owns outputs [w d / W, (w+1) d / W): it counts its picks per
// entry (cnt[w][e]), an exclusive scan in (entry, warp) order turns the counts into positions,
// and each warp then writes its outputs in ascending order, ranks within 32 lanes taken with
// __match_any_sync. Scratch: cnt [W][s] and list [d] (output * 2 + negative), in dynamic shared
// memory when they fit, else in a global workspace slice per block.
constexpr int kSortWarps = kThreads / 32;
constexpr std::size_t kMaxTransposeWorkspace = std::size_t{256} << 20;

std::size_t transpose_scratch_words(const ProjectionParams& p) {
  return static_cast<std::size_t>(kSortWarps) * static_cast<std::size_t>(p.region_size) +
         static_cast<std::size_t>(p.dim);
}

// Largest dynamic shared memory a block of this device may opt in to, less 1 KiB for the kernel's
// static shared memory (the launcher opts in to exactly what is left, see transpose_opt_in).
std::size_t max_shared_bytes() {
  int device = 0, bytes = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
        "cudaDeviceGetAttribute");
  return static_cast<std::size_t>(bytes) - 1024;  // room for the kernel's static shared memory
}

// Lets `kernel` use all the dynamic shared memory the device allows next to its static shared
// memory (the default cap is 48 KiB minus the static part). Always the same value for a given
// kernel and device, so concurrent launchers cannot undo each other.
template <typename Kernel>
void transpose_opt_in(Kernel kernel) {
  int device = 0, optin = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
        "cudaDeviceGetAttribute");
  cudaFuncAttributes attr{};
  check(cudaFuncGetAttributes(&attr, kernel), "cudaFuncGetAttributes (transpose)");
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             optin - static_cast<int>(attr.sharedSizeBytes)),
        "cudaFuncSetAttribute (transpose shared memory)");
}

template <int RB>
__global__ void __launch_bounds__(kThreads)
    project_transpose_kernel(ProjectionParams p, const float* __restrict__ y, std::int64_t ldy,
                             std::int64_t offset, std::int64_t len, std::int64_t c_begin,
                             std::int64_t c_end, float* __restrict__ out, std::int64_t ldo,
                             std::uint32_t* global_scratch) {
  extern __shared__ std::uint32_t smem[];
  __shared__ std::uint32_t warp_sums[kSortWarps];
  const std::int64_t s = p.region_size, d = p.dim;
  const std::size_t words = static_cast<std::size_t>(kSortWarps) * s + d;
  std::uint32_t* cnt = global_scratch != nullptr ? global_scratch + blockIdx.x * words : smem;
  std::uint32_t* list = cnt + kSortWarps * s;
  const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
  const std::int64_t jlo = d * warp / kSortWarps, jhi = d * (warp + 1) / kSortWarps;
  std::uint32_t* my_cnt = cnt + warp * s;
  const std::uint32_t out_seed = h::out_seed_key(p.seed);
  const std::uint64_t chunk_seed = h::chunk_seed_key(p.seed);
  const auto su = static_cast<std::uint32_t>(s);
  const std::uint32_t lower_lanes = (1U << lane) - 1U;
  // This thread's entries for the scan: a contiguous run of per_thread entries.
  const std::int64_t per_thread = (s + blockDim.x - 1) / blockDim.x;
  const std::int64_t e0 = min(s, threadIdx.x * per_thread), e1 = min(s, e0 + per_thread);
  for (std::int64_t c = c_begin + blockIdx.x; c < c_end; c += gridDim.x) {
    const std::uint64_t ck = h::chunk_key(chunk_seed, static_cast<std::uint64_t>(c));
    const auto lo = static_cast<std::uint32_t>(ck), hi = static_cast<std::uint32_t>(ck >> 32);
    for (std::int64_t k = threadIdx.x; k < kSortWarps * s; k += blockDim.x) cnt[k] = 0;
    __syncthreads();
    for (std::int64_t j = jlo + lane; j < jhi; j += 32) {  // 1. count picks per entry
      const std::uint32_t hv = h::pair_hash(h::out_key(out_seed, j), lo, hi);
      atomicAdd(&my_cnt[h::pick_index(hv, su)], 1U);  // integer counts: order-free
    }
    __syncthreads();
    std::uint32_t local = 0;  // 2. exclusive scan over (entry, warp)
    for (std::int64_t e = e0; e < e1; ++e)
      for (int w = 0; w < kSortWarps; ++w) local += cnt[w * s + e];
    std::uint32_t incl = local;
    for (int k = 1; k < 32; k *= 2) {
      const std::uint32_t v = __shfl_up_sync(0xFFFFFFFFU, incl, k);
      if (lane >= k) incl += v;
    }
    if (lane == 31) warp_sums[warp] = incl;
    __syncthreads();
    std::uint32_t run = incl - local;
    for (int w = 0; w < warp; ++w) run += warp_sums[w];
    for (std::int64_t e = e0; e < e1; ++e)
      for (int w = 0; w < kSortWarps; ++w) {
        const std::uint32_t v = cnt[w * s + e];
        cnt[w * s + e] = run;
        run += v;
      }
    __syncthreads();
    for (std::int64_t jb = jlo; jb < jhi; jb += 32) {  // 3. stable scatter, ascending outputs
      const std::int64_t j = jb + lane;
      const bool valid = j < jhi;
      const std::uint32_t hv = valid ? h::pair_hash(h::out_key(out_seed, j), lo, hi) : 0U;
      const std::uint32_t e = valid ? h::pick_index(hv, su) : 0xFFFFFFFFU;
      const std::uint32_t same = __match_any_sync(0xFFFFFFFFU, e);
      const int rank = __popc(same & lower_lanes);
      if (valid) list[my_cnt[e] + rank] = static_cast<std::uint32_t>(j) * 2U + h::pick_negative(hv);
      __syncwarp();
      if (valid && rank == __popc(same) - 1) my_cnt[e] += __popc(same);
      __syncwarp();
    }
    __syncthreads();
    // 4. each entry sums its bucket; after 3, cnt[W-1][e] is where bucket e + 1 starts.
    const std::uint32_t* ends = cnt + (kSortWarps - 1) * s;
    for (std::int64_t e = threadIdx.x; e < s; e += blockDim.x) {
      const std::int64_t g = c * s + e;
      if (g < offset || g >= offset + len) continue;
      float acc[RB];
#pragma unroll
      for (int r = 0; r < RB; ++r) acc[r] = 0.0f;
      for (std::uint32_t k = e == 0 ? 0U : ends[e - 1]; k < ends[e]; ++k) {
        const std::uint32_t sl = list[k];
        const std::int64_t jj = sl >> 1;
        const bool negative = (sl & 1U) != 0;
#pragma unroll
        for (int r = 0; r < RB; ++r) {
          const float v = __fmul_rn(y[r * ldy + jj], p.scale);
          acc[r] = __fadd_rn(acc[r], negative ? -v : v);
        }
      }
#pragma unroll
      for (int r = 0; r < RB; ++r) out[r * ldo + (g - offset)] = acc[r];
    }
    __syncthreads();  // the next chunk reuses the scratch
  }
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

std::size_t project_transpose_workspace_bytes(const ProjectionParams& p, std::int64_t rows,
                                              std::int64_t len, std::int64_t offset) {
  if (rows <= 0 || len <= 0) return 0;
  const std::size_t per_block = transpose_scratch_words(p) * sizeof(std::uint32_t);
  if (per_block <= max_shared_bytes()) return 0;
  const ChunkRange cr = chunk_range(p.region_size, offset, len);
  const std::size_t blocks = std::clamp<std::size_t>(kMaxTransposeWorkspace / per_block, 1,
                                                     static_cast<std::size_t>(cr.end - cr.begin));
  return blocks * per_block;
}

void project_transpose_cuda(const ProjectionParams& p, const float* y, std::int64_t rows,
                            std::int64_t ldy, std::int64_t offset, std::int64_t len, float* out,
                            std::int64_t ldo, void* workspace, std::size_t workspace_bytes,
                            void* stream) {
  if (rows <= 0 || len <= 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  const ChunkRange cr = chunk_range(p.region_size, offset, len);
  const std::size_t per_block = transpose_scratch_words(p) * sizeof(std::uint32_t);
  const bool shared = per_block <= max_shared_bytes();
  std::int64_t blocks = std::min<std::int64_t>(cr.end - cr.begin, std::int64_t{1} << 30);
  std::uint32_t* scratch = nullptr;
  if (!shared) {
    NPEFF_CHECK(workspace_bytes >= per_block,
                "projection transpose workspace too small: ", workspace_bytes,
                " bytes, need at least ", per_block);
    blocks = std::min<std::int64_t>(blocks, static_cast<std::int64_t>(workspace_bytes / per_block));
    scratch = static_cast<std::uint32_t*>(workspace);
  }
  for_row_groups(rows, [&](auto rb, std::int64_t r0) {
    constexpr int RB = decltype(rb)::value;
    const std::size_t smem = shared ? per_block : 0;
    if (smem > 0) transpose_opt_in(project_transpose_kernel<RB>);
    project_transpose_kernel<RB><<<static_cast<unsigned>(blocks), kThreads, smem, st>>>(
        p, y + r0 * ldy, ldy, offset, len, cr.begin, cr.end, out + r0 * ldo, ldo, scratch);
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
