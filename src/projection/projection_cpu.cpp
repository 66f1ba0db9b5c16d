// Run-time choice of the CPU projection kernels (projection_cpu_kernels.h): the AVX-512 build when
// this CPU has AVX-512F/BW/DQ/VL, else the AVX2 build when it has AVX2, else the baseline build.
// NPEFF_CPU_ISA=baseline|avx2 in the environment caps the choice (tests compare the variants).
// Every variant gives the same bits.
#include "projection/projection_cpu.h"

#include <cstdlib>
#include <cstring>

namespace npeff::projection::cpu {

#define NPEFF_DECLARE_KERNELS(isa)                                                                 \
  namespace isa {                                                                                  \
  void project_accumulate(const Projection& p, const float* x, std::int64_t rows,                  \
                          std::int64_t len, std::int64_t ldx, std::int64_t offset, float* out,     \
                          std::int64_t ldo);                                                       \
  void project_transpose(const Projection& p, const float* y, std::int64_t rows, std::int64_t ldy, \
                         std::int64_t offset, std::int64_t len, float* out, std::int64_t ldo);     \
  }
NPEFF_DECLARE_KERNELS(baseline)
#ifdef NPEFF_CPU_AVX2
NPEFF_DECLARE_KERNELS(avx2)
NPEFF_DECLARE_KERNELS(avx512)
#endif
#undef NPEFF_DECLARE_KERNELS

const char* kernel_isa() {
  static const char* isa = [] {
#ifdef NPEFF_CPU_AVX2
    const char* cap = std::getenv("NPEFF_CPU_ISA");
    const bool baseline_only = cap != nullptr && std::strcmp(cap, "baseline") == 0;
    const bool avx2_only = cap != nullptr && std::strcmp(cap, "avx2") == 0;
    __builtin_cpu_init();
    if (!baseline_only && !avx2_only && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
      return "avx512";
    if (!baseline_only && __builtin_cpu_supports("avx2")) return "avx2";
#endif
    return "baseline";
  }();
  return isa;
}

void project_accumulate(const Projection& p, const float* x, std::int64_t rows, std::int64_t len,
                        std::int64_t ldx, std::int64_t offset, float* out, std::int64_t ldo) {
#ifdef NPEFF_CPU_AVX2
  const char* isa = kernel_isa();
  if (std::strcmp(isa, "avx512") == 0)
    return avx512::project_accumulate(p, x, rows, len, ldx, offset, out, ldo);
  if (std::strcmp(isa, "avx2") == 0)
    return avx2::project_accumulate(p, x, rows, len, ldx, offset, out, ldo);
#endif
  baseline::project_accumulate(p, x, rows, len, ldx, offset, out, ldo);
}

void project_transpose(const Projection& p, const float* y, std::int64_t rows, std::int64_t ldy,
                       std::int64_t offset, std::int64_t len, float* out, std::int64_t ldo) {
#ifdef NPEFF_CPU_AVX2
  const char* isa = kernel_isa();
  if (std::strcmp(isa, "avx512") == 0)
    return avx512::project_transpose(p, y, rows, ldy, offset, len, out, ldo);
  if (std::strcmp(isa, "avx2") == 0)
    return avx2::project_transpose(p, y, rows, ldy, offset, len, out, ldo);
#endif
  baseline::project_transpose(p, y, rows, ldy, offset, len, out, ldo);
}

}  // namespace npeff::projection::cpu
