// Planted-ground-truth PEFs for testing and benchmarking the decomposition (issue: decompose
// acceptance) without a model: G_i^T G_i = sum_j W*_ij h*_j h*_j^T exactly (plus optional noise).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace npeff::synth {

struct PlantedOptions {
  std::int64_t examples = 0;    ///< m
  std::int64_t dim = 0;         ///< n (the projected dimension d of real PEFs)
  std::int64_t components = 0;  ///< C* planted components h*_j (unit norm, random directions)
  std::int64_t max_active = 4;  ///< each example mixes 1..max_active components = PEF rank r
  double noise = 0.0;           ///< relative Frobenius norm of Gaussian noise added to each G_i
  std::uint64_t seed = 0;
};

struct PlantedPefs {
  at::Tensor pefs;  ///< float32 [m, max_active, n], each ||G_i^T G_i||_F = 1 (before noise)
  at::Tensor w;     ///< float32 [m, C*] planted coefficients matching the normalised PEFs
  at::Tensor h;     ///< float32 [C*, n] planted unit-norm components
};

/// Deterministic in `seed` (CPU generator). Weights of active components ~ U[0.5, 1.5].
PlantedPefs make_planted_pefs(const PlantedOptions& options);

}  // namespace npeff::synth
