// The whole `npeff decompose` stage as one call: read the PEF files, refuse or drop bad PEFs,
// split the examples over the processes, run Algorithm 1 with checkpoints, gather W and write
// the npeff.decomposition file (docs/decomposition.md).
//
// Resuming (docs/formats.md, "Resuming"): the job's io::ResumeDir is OUT.partial.d/; every
// `checkpoint_every` steps rank 0 replaces the piece checkpoint.h5 (W of all examples, H, the
// next step and the loss history) atomically. A rerun with the same settings (inputs by path,
// size and content hash, every hyperparameter that changes a bit of the result, the process count)
// starts from it and ends with the same bits as an uninterrupted run (same --threads and device);
// one with other settings is refused (npeff::Error). The folder is removed once OUT is written.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "npeff/decomposition/decomposition.h"

namespace npeff::dist {
class Communicator;
}

namespace npeff::decomposition {

struct DecomposeJobOptions {
  std::vector<std::string> pefs;        ///< input npeff.pefs files (required), in order
  std::string out;                      ///< output npeff.decomposition file (required)
  DecomposeOptions algo;                ///< components, steps, learning rates, seed, log_every
  std::int64_t checkpoint_every = 500;  ///< steps between checkpoints; 0 = none
  bool drop_nonfinite = false;          ///< drop PEFs with NaN/Inf instead of refusing
  bool drop_zero = false;               ///< drop all-zero PEFs instead of refusing
  std::string compute_dtype = "fp32";   ///< fp32 | tf32 | bf16 for the two large products
  std::string storage_dtype = "fp32";   ///< fp32 | fp16 | bf16: in-memory copy of G
  bool out_of_core = false;             ///< stream G from the files every step
  std::int64_t block_examples = 4096;   ///< examples per streamed block (out_of_core)
  /// In memory: device bytes for one block's temporaries in a step (B, B o B, E, upcasts);
  /// blocks of examples are sized to it (docs/decomposition.md, "Memory"). 0: 128 MiB on the
  /// CPU, 1 GiB on a GPU.
  std::int64_t max_block_bytes = 0;
  std::string device = "cpu";  ///< --device text (select_device)
};

/// What the run did (the same on every rank).
struct DecomposeJobSummary {
  std::int64_t examples = 0;    ///< after dropped PEFs
  std::int64_t steps = 0;       ///< H-only + joint steps
  std::int64_t resumed_at = 0;  ///< first step run by this process (0: not resumed)
  int processes = 1;
  double final_loss = 0;     ///< eq. 4 over the normalised PEFs
  double relative_loss = 0;  ///< final_loss / sum_i ||G_i^T G_i||^2
  double seconds = 0;        ///< of this run (not counting the resumed part)
};

/// Runs the stage on every rank of `comm` (collective); rank 0 writes `out` and the
/// checkpoints. Throws npeff::Error on bad options or inputs (before any long work), on bad
/// PEFs that are not to be dropped, and on a working folder of other settings.
DecomposeJobSummary run_decompose_job(const DecomposeJobOptions& options, dist::Communicator& comm);

}  // namespace npeff::decomposition
