// The CPU projection kernels for any x86-64 (or other) CPU: no instruction-set flags beyond the
// compiler's default, so a binary built on a new node runs on an old one.
#define NPEFF_CPU_ISA baseline
#include "projection/projection_cpu_kernels.h"
