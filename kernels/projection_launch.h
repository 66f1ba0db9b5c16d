// Plain host launchers for the projection kernels (kernels/projection.cu). No CUDA types here:
// streams are passed as void* (a cudaStream_t), pointers are device pointers. Callers validate
// inputs (src/projection/projection.cpp); launchers throw npeff::Error on CUDA errors.
#pragma once

#include <cstddef>
#include <cstdint>

namespace npeff::projection::kernels {

struct ProjectionParams {
  std::uint64_t seed;
  std::int64_t dim;          // d
  std::int64_t region_size;  // s
  float scale;               // sqrt(s / d) rounded to float
};

/// Scratch bytes project_accumulate_cuda needs for these sizes (a pure function of them).
std::size_t project_workspace_bytes(const ProjectionParams& p, std::int64_t rows, std::int64_t len,
                                    std::int64_t offset);

/// out[r*ldo + j] += (A x_r)_j for the global entries [offset, offset+len) held in x (row
/// stride ldx). Summation: per segment of chunks from 0, then segments added to out in order.
void project_accumulate_cuda(const ProjectionParams& p, const float* x, std::int64_t rows,
                             std::int64_t len, std::int64_t ldx, std::int64_t offset, float* out,
                             std::int64_t ldo, void* workspace, std::size_t workspace_bytes,
                             void* stream);

/// Scratch bytes project_transpose_cuda needs for these sizes on the current device: 0 when a
/// chunk's sort scratch ((8 s + d) * 4 bytes) fits in the device's opt-in shared memory (227 KiB
/// on H100/H200: d up to ~46,000 at s = d / 32; 163 KiB on A100: ~33,000; 99 KiB on sm_86/89:
/// ~20,000; 64 KiB on sm_75: ~13,000), else global memory for as many concurrent blocks as fit
/// in 256 MiB (at least one block's scratch, whatever its size).
std::size_t project_transpose_workspace_bytes(const ProjectionParams& p, std::int64_t rows,
                                              std::int64_t len, std::int64_t offset);

/// out[r*ldo + (i-offset)] = (A^T y_r)_i for i in [offset, offset+len); every entry sums its
/// terms in ascending output order (bit-identical to the CPU implementation). O(d + s) work per
/// chunk of s entries (a counting sort of the chunk's d picks by entry).
void project_transpose_cuda(const ProjectionParams& p, const float* y, std::int64_t rows,
                            std::int64_t ldy, std::int64_t offset, std::int64_t len, float* out,
                            std::int64_t ldo, void* workspace, std::size_t workspace_bytes,
                            void* stream);

/// Number of visible CUDA devices (0 when no driver/GPU); never throws.
int cuda_device_count();

}  // namespace npeff::projection::kernels
