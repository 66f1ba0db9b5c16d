// Run-time choice of the CPU projection kernels (projection_cpu_kernels.h): the AVX2 build when
// this CPU has AVX2, else the baseline build. NPEFF_CPU_ISA=baseline in the environment forces
// the baseline (tests compare the two). Every variant gives the same bits.
#include "projection/projection_cpu.h"

#include <cstdlib>
#include <cstring>

namespace npeff::projection::cpu {

#define NPEFF_DECLARE_KERNELS(isa)                                                              \
  namespace isa {                                                                               \
  void project_accumulate(const Projection& p, const float* x, std::int64_t rows,               \
                          std::int64_t len, std::int64_t ldx, std::int64_t offset, float* out, \
                          std::int64_t ldo);                                                    \
  void project_transpose(const Projection& p, const float* y, std::int64_t rows,                \
                         std::int64_t ldy, std::int64_t offset, std::int64_t len, float* out,   \
                         std::int64_t ldo);                                                     \
  }
NPEFF_DECLARE_KERNELS(baseline)
#ifdef NPEFF_CPU_AVX2
NPEFF_DECLARE_KERNELS(avx2)
#endif
#undef NPEFF_DECLARE_KERNELS

const char* kernel_isa() {
  static const char* isa = [] {
#ifdef NPEFF_CPU_AVX2
    const char* forced = std::getenv("NPEFF_CPU_ISA");
    if (forced != nullptr && std::strcmp(forced, "baseline") == 0) return "baseline";
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) return "avx2";
#endif
    return "baseline";
  }();
  return isa;
}

void project_accumulate(const Projection& p, const float* x, std::int64_t rows, std::int64_t len,
                        std::int64_t ldx, std::int64_t offset, float* out, std::int64_t ldo) {
#ifdef NPEFF_CPU_AVX2
  if (kernel_isa()[0] == 'a') return avx2::project_accumulate(p, x, rows, len, ldx, offset, out, ldo);
#endif
  baseline::project_accumulate(p, x, rows, len, ldx, offset, out, ldo);
}

void project_transpose(const Projection& p, const float* y, std::int64_t rows, std::int64_t ldy,
                       std::int64_t offset, std::int64_t len, float* out, std::int64_t ldo) {
#ifdef NPEFF_CPU_AVX2
  if (kernel_isa()[0] == 'a') return avx2::project_transpose(p, y, rows, ldy, offset, len, out, ldo);
#endif
  baseline::project_transpose(p, y, rows, ldy, offset, len, out, ldo);
}

}  // namespace npeff::projection::cpu
