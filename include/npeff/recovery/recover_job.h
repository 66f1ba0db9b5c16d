// The whole `npeff recover` stage as one call (docs/recovery.md): for each chosen component,
// orthogonal rejection in projected space, then FPC compressed sensing through the projection
// the PEFs were made with; writes the npeff.recovered file.
//
// Resuming (docs/formats.md, "Resuming"): each finished component is a piece
// OUT.partial.d/component-K.h5 (K = its position in the output; schema npeff.recovered_part) of
// the job's io::ResumeDir. A rerun with the same settings (both input files by path, size and
// content hash, the component choice, the rejection threshold, every FPC option) reuses the pieces
// and ends with the same bits as an uninterrupted run; other settings are refused (npeff::Error).
// The folder is removed once OUT is written.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "npeff/recovery/recovery.h"

namespace npeff::recovery {

struct RecoverJobOptions {
  std::string decomposition;      ///< npeff.decomposition (required)
  std::string pefs;               ///< the npeff.pefs file it was made from (required)
  std::string component_ids;      ///< comma-separated ids; empty: `random` or all
  std::int64_t random = 0;        ///< pick this many components at random (`seed`)
  std::uint64_t seed = 0;         ///< seed of `random`
  double reject_threshold = 0.5;  ///< Section 3.2; 0 disables the rejection
  FpcOptions fpc;                 ///< mu 4e-5, beta 4, gamma 0.99 (App. G)
  std::string out;                ///< npeff.recovered (required)
  /// Where FPC runs: its vectors (float32, ~40 bytes per parameter at the peak: u, the gradient,
  /// the stage's start and the CG vectors) and the projection's products. The result does not
  /// depend on it beyond float32 summation order (tests/unit/test_backends.cpp); it is part of
  /// the resume settings, so pieces of another device are not mixed in.
  c10::Device device = c10::Device(c10::kCPU);
};

/// One recovered component, as in the output's per-component datasets.
struct RecoveredComponent {
  std::int64_t component = 0;
  std::int64_t nnz = 0;
  double relative_residual = 0;  ///< ||A u - h|| / ||h||
  double norm = 0;               ///< ||u||
  std::int64_t iterations = 0;   ///< shrinkage steps
  std::int64_t rejected = 0;     ///< components rejected against
  /// Nonzeros of u per selected tensor, only the tensors it touches, in table order.
  std::vector<std::pair<std::string, std::int64_t>> parameters_touched;
};

struct RecoverJobSummary {
  std::vector<RecoveredComponent> components;
  std::int64_t reused = 0;  ///< components taken from pieces of an earlier run
  double seconds = 0;       ///< of this run
};

/// The component ids `options` asks for among `components` C: the comma-separated list, or
/// `random` ones drawn with `seed` (sorted), or all. npeff::Error on an id outside [0, C).
std::vector<std::int64_t> choose_components(const RecoverJobOptions& options,
                                            std::int64_t components);

/// Runs the stage. npeff::Error on inconsistent inputs (different projections, no parameter
/// table), bad options, or a working folder of other settings.
RecoverJobSummary run_recover_job(const RecoverJobOptions& options);

}  // namespace npeff::recovery
