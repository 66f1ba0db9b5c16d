#include "npeff/core/version.h"

#include <torch/version.h>

#include "npeff_build_config.h"

namespace npeff {

std::string version() {
  return NPEFF_VERSION_STRING;
}

bool built_with_cuda() {
#ifdef NPEFF_WITH_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

std::string build_info() {
  return std::string("npeff ") + NPEFF_VERSION_STRING + " (commit " + NPEFF_GIT_COMMIT + ", " +
         NPEFF_BUILD_TYPE + ", LibTorch " + TORCH_VERSION + ", CUDA kernels " +
         (built_with_cuda() ? "linked" : "not linked") + ")";
}

}  // namespace npeff
