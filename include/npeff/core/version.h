#pragma once

#include <string>

namespace npeff {

/// Semantic version of this build, e.g. "0.1.0" (from CMakeLists.txt's project() version).
std::string version();
/// Version plus build details: git commit, LibTorch version, CUDA kernels linked or not.
std::string build_info();
/// True when this binary was linked with the CUDA kernels (LibTorch with CUDA + nvcc found).
bool built_with_cuda();

}  // namespace npeff
