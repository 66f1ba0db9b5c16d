# CUDA kernels (kernels/*.cu).
#   NPEFF_CUDA_KERNELS: the kernels are compiled (nvcc found). CI compiles them on machines
#                       without a GPU so that they never rot.
#   NPEFF_LINK_CUDA:    the kernels are linked into npeff_core and reachable through --device cuda
#                       (LibTorch was built with CUDA).
set(NPEFF_CUDA_KERNELS OFF)
set(NPEFF_LINK_CUDA OFF)
if(NOT NPEFF_WITH_CUDA STREQUAL "OFF")
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # T4 (sm_75, the oldest the CUDA 13 nvcc still builds), A100/A6000-class and H100/H200.
      # Override with -DCMAKE_CUDA_ARCHITECTURES=...
      set(CMAKE_CUDA_ARCHITECTURES 75 80 86 90)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(NPEFF_CUDA_KERNELS ON)
  elseif(NPEFF_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "NPEFF_WITH_CUDA=ON but no CUDA compiler (nvcc) was found. Install the CUDA "
                        "Toolkit or set CMAKE_CUDA_COMPILER, or configure with -DNPEFF_WITH_CUDA=AUTO.")
  endif()
endif()

if(NPEFF_CUDA_KERNELS)
  add_library(npeff_kernels STATIC kernels/projection.cu)
  set_target_properties(npeff_kernels PROPERTIES CUDA_STANDARD 17 POSITION_INDEPENDENT_CODE ON)
  target_include_directories(npeff_kernels
    PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/kernels
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/include ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_options(npeff_kernels PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:--fmad=false -Xcompiler=-Wall,-Wextra>)
  target_link_libraries(npeff_kernels PUBLIC CUDA::cudart)
  if(TARGET torch_cuda OR TARGET c10_cuda OR TORCH_CUDA_LIBRARIES)
    set(NPEFF_LINK_CUDA ON)
  elseif(NPEFF_WITH_CUDA STREQUAL "ON")
    message(WARNING "NPEFF_WITH_CUDA=ON: the kernels are compiled, but LibTorch (${TORCH_INSTALL_PREFIX}) "
                    "has no CUDA, so --device cuda is unavailable in the npeff binary. Point "
                    "CMAKE_PREFIX_PATH at a CUDA LibTorch to link them.")
  endif()
endif()
