// CPU implementation of the projection ops on raw row-major float32 buffers. Internal: callers
// go through npeff/projection/projection.h (which validates); the benchmarks and the CUDA test
// use these directly.
#pragma once

#include <cstdint>

#include "npeff/projection/projection.h"

namespace npeff::projection::cpu {

/// out[r*ldo + j] += sum over global entries i in [offset, offset+len) of A[j,i] x[r*ldx +
/// i-offset].
void project_accumulate(const Projection& p, const float* x, std::int64_t rows, std::int64_t len,
                        std::int64_t ldx, std::int64_t offset, float* out, std::int64_t ldo);

/// out[r*ldo + (i-offset)] = sum_j A[j,i] y[r*ldy + j] for i in [offset, offset+len).
void project_transpose(const Projection& p, const float* y, std::int64_t rows, std::int64_t ldy,
                       std::int64_t offset, std::int64_t len, float* out, std::int64_t ldo);

/// The instruction set of the kernels in use: "avx512", "avx2" or "baseline" (NPEFF_CPU_ISA=
/// baseline|avx2 in the environment caps the choice; bits are the same either way).
const char* kernel_isa();

}  // namespace npeff::projection::cpu
