// The CPU projection kernels compiled for AVX-512 (x86-64-v4: Skylake-X, Ice Lake, Zen 4 and
// later), chosen at run time by projection_cpu.cpp when the CPU has AVX-512F/BW/DQ/VL: the hash
// then runs 16 outputs per instruction. Built with these flags only on x86-64 (CMakeLists.txt).
#define NPEFF_CPU_ISA avx512
#include "projection/projection_cpu_kernels.h"
