// The CPU projection kernels compiled for AVX2 (x86-64-v3: Haswell and later), chosen at run time
// by projection_cpu.cpp when the CPU has it. Built with -mavx2 only on x86-64 (CMakeLists.txt);
// -ffp-contract=off keeps FMA out of the sums.
#define NPEFF_CPU_ISA avx2
#include "projection/projection_cpu_kernels.h"
