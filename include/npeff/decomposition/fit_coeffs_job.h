// The whole `npeff fit-coeffs` stage as one call: coefficients of PEFs on the fixed components
// H of a decomposition (paper Section 2.2, "fit coefficients to an arbitrary set of PEFs") and
// each example's reconstruction loss (held-in vs held-out, paper Table 5), in bounded memory.
//
// With H fixed, each example's coefficients depend on its PEF only through N_i = sum_r (G_i h_j)^2
// (and on H through M = (H H^T) o (H H^T)), so one pass over the PEFs, a block of examples at a
// time, is all the data the fit needs: W's updates then run on N [m, C] alone. The same pass
// forms, in float64, ||G_i^T G_i||^2 and N for the losses (the C-space identity of
// npeff_example_losses, which float32 would swamp for a good fit).
// Memory (docs/decomposition.md, "fit-coeffs"): host 4 r d B (one block of B examples read as
// float32) + 8 m (losses) + 4 m C (W, returned); on the device (the host for --device cpu) the
// same block twice (float32, and its float64 copy), 16 m C (W, N, the float64 N of the losses),
// 12 C d (H twice) and 64 MiB blocks of rows for the updates and the losses.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace npeff::decomposition {

struct FitCoeffsJobOptions {
  std::vector<std::string> pefs;  ///< input npeff.pefs files (required), in order
  std::string decomposition;      ///< npeff.decomposition with H (required; only /H is read)
  std::int64_t steps = 1000;      ///< multiplicative coefficient updates
  std::uint64_t seed = 0;         ///< W ~ U[0, 1] initialisation seed (the same draw as in memory)
  /// Bytes of one block of PEFs as float32; 0: 128 MiB on the CPU, 1 GiB on a GPU.
  std::int64_t max_block_bytes = 0;
  std::string device = "cpu";  ///< --device text (select_device)
};

struct FitCoeffsResult {
  at::Tensor w;             ///< float32 [m, C], CPU
  at::Tensor example_ids;   ///< int64 [m]
  at::Tensor example_loss;  ///< float64 [m]: eq. 4 of each normalised PEF, CPU
  std::int64_t blocks = 0;  ///< blocks read (one pass)
};

/// Reads H and the PEFs (validated: same d and projection), fits W by `steps` updates from
/// W ~ U[0, 1] (seed) and computes the per-example losses. Equal to fit_coefficients on the
/// whole in-memory set up to the rounding of N's row blocks (tests: test_decomposition).
/// Throws npeff::Error on bad options, unreadable or incompatible files and non-finite PEFs
/// (naming the example).
FitCoeffsResult run_fit_coeffs_job(const FitCoeffsJobOptions& options);

}  // namespace npeff::decomposition
