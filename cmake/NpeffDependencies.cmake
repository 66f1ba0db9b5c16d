# Third-party dependencies. Debian packages (tools/install-deps.sh) provide all of them; GPU users
# point CMAKE_PREFIX_PATH at a CUDA LibTorch (pip torch: python3 -c
# 'import torch;print(torch.utils.cmake_prefix_path)').
# A CUDA LibTorch appends -gencode flags for TORCH_CUDA_ARCH_LIST to every CUDA compile; its
# default list can name architectures the local nvcc dropped (nvcc 13 has no sm_50). Pin it to
# the architectures npeff builds for unless the user chose.
if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "7.5;8.0;8.6;9.0")
endif()
find_package(Torch REQUIRED)
# TorchConfig looks for libc10 on the system paths before its own prefix, so a system LibTorch
# (Debian's libtorch-dev) would be mixed into a pip LibTorch build. Use the prefix's own libc10.
if(EXISTS "${TORCH_INSTALL_PREFIX}/lib/libc10.so" AND
   NOT c10_LIBRARY STREQUAL "${TORCH_INSTALL_PREFIX}/lib/libc10.so")
  list(REMOVE_ITEM TORCH_LIBRARIES "${c10_LIBRARY}")
  list(APPEND TORCH_LIBRARIES "${TORCH_INSTALL_PREFIX}/lib/libc10.so")
endif()
if(NOT Torch_VERSION AND DEFINED TORCH_VERSION)
  set(Torch_VERSION ${TORCH_VERSION})
endif()
# TorchConfig puts -D_GLIBCXX_USE_CXX11_ABI into TORCH_CXX_FLAGS; every translation unit must agree.
if(TORCH_CXX_FLAGS)
  separate_arguments(_npeff_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${_npeff_torch_flags}>")
endif()

# LibTorch's at::parallel_for is a header template; with the OpenMP backend (Debian's and pip's
# LibTorch) it only runs in parallel in code that is itself compiled with OpenMP.
find_package(OpenMP REQUIRED COMPONENTS CXX)

find_package(HDF5 REQUIRED COMPONENTS C)
add_library(npeff::hdf5 INTERFACE IMPORTED)
target_include_directories(npeff::hdf5 SYSTEM INTERFACE ${HDF5_INCLUDE_DIRS})
target_link_libraries(npeff::hdf5 INTERFACE ${HDF5_LIBRARIES})
target_compile_definitions(npeff::hdf5 INTERFACE ${HDF5_DEFINITIONS})

# MPI (OpenMPI/MPICH): multi-process decompose. AUTO: used when found; OFF: single-process builds
# (a run started by mpirun/srun with more than one rank is refused with a message).
set(NPEFF_WITH_MPI "AUTO" CACHE STRING "AUTO: use MPI when found; ON: require it; OFF: never")
set_property(CACHE NPEFF_WITH_MPI PROPERTY STRINGS AUTO ON OFF)
set(NPEFF_HAVE_MPI OFF)
if(NPEFF_WITH_MPI STREQUAL "ON")
  find_package(MPI REQUIRED COMPONENTS C)
  set(NPEFF_HAVE_MPI ON)
elseif(NPEFF_WITH_MPI STREQUAL "AUTO")
  find_package(MPI QUIET COMPONENTS C)
  if(MPI_C_FOUND)
    set(NPEFF_HAVE_MPI ON)
  else()
    message(STATUS "MPI not found: decompose runs in one process (NPEFF_WITH_MPI=AUTO)")
  endif()
endif()
find_package(spdlog REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json 3.9 REQUIRED)
if(NPEFF_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
