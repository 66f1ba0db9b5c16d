# Compiler launcher, warnings and code-generation flags shared by every npeff target.
find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${CCACHE_PROGRAM}")
  set(CMAKE_C_COMPILER_LAUNCHER "${CCACHE_PROGRAM}")
  set(CMAKE_CUDA_COMPILER_LAUNCHER "${CCACHE_PROGRAM}")
endif()

set(NPEFF_SANITIZE_FLAGS "")
if(NPEFF_SANITIZE)
  set(NPEFF_SANITIZE_FLAGS -fsanitize=${NPEFF_SANITIZE} -fno-omit-frame-pointer)
endif()

# Applies npeff's flags to one target. -ffp-contract=off: no silent a*b+c -> fma contraction,
# so float results are the same whatever the compiler decides to fuse (determinism, see
# docs/projection.md).
function(npeff_target_defaults target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -ffp-contract=off>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${NPEFF_NATIVE}>>:-march=native>
    $<$<COMPILE_LANGUAGE:CXX>:${NPEFF_SANITIZE_FLAGS}>)
  if(NPEFF_SANITIZE)
    target_link_options(${target} PRIVATE ${NPEFF_SANITIZE_FLAGS})
  endif()
endfunction()
