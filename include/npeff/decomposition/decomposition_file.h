// Files of the decomposition stage (docs/formats.md): `npeff.decomposition` (decompose's
// result), `npeff.decomposition_checkpoint` (its resumable state) and `npeff.coefficients`
// (fit-coeffs' result).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "npeff/decomposition/decomposition.h"
#include "npeff/projection/projection_record.h"

namespace npeff::decomposition {

/// Loss history: the loss at the start of step `steps[k]`, `seconds[k]` after the run began.
struct LossHistory {
  std::vector<std::int64_t> steps;
  std::vector<double> values;
  std::vector<double> seconds;
};

struct DecompositionData {
  at::Tensor w;            ///< float32 [m, C]
  at::Tensor h;            ///< float32 [C, d], unit-norm rows
  at::Tensor example_ids;  ///< int64 [m]
  LossHistory loss;
  bool has_projection = false;
  projection::ProjectionRecord projection;
  /// Root attribute `method`: "npeff" (decompose), "kmeans" (cluster: W = proximity of members
  /// to their centroid, H = unit centroids), "sae" (sae: W = latent codes, H = unit decoder
  /// columns). Files without the attribute are "npeff".
  std::string method = "npeff";
};

/// Writes W, H, example_ids, the loss history, `method` and /projection: the part of an
/// npeff.decomposition every producer shares (header written by the caller).
void write_factors(io::File& file, const DecompositionData& data);

/// Writes the body of an npeff.decomposition file (header written by the caller).
void write_decomposition(io::File& file, const DecomposeOptions& options,
                         const DecompositionData& data, double final_loss, double relative_loss);
/// Reads and validates an npeff.decomposition file. `with_w` false leaves W undefined (its shape
/// is still checked): recover needs only H, and W is m x C (0.8 GB at m = 10^5, C = 2,048).
DecompositionData read_decomposition(const std::string& path, bool with_w = true);

/// The resumable state of a running decompose (schema npeff.decomposition_checkpoint version 2,
/// the piece OUT.partial.d/checkpoint.h5 of an io::ResumeDir, whose settings.json says which
/// inputs and settings it belongs to).
struct Checkpoint {
  std::int64_t next_step = 0;  ///< the first step still to run
  at::Tensor w;                ///< float32 [m, C], all examples
  at::Tensor h;                ///< float32 [C, d]
  LossHistory loss;
};
/// Writes `checkpoint` (header and body) into `file` (from io::ResumeDir::create; the caller
/// commits it, which replaces the previous checkpoint atomically).
void write_checkpoint(io::File& file, const Checkpoint& checkpoint);
/// Reads and validates a checkpoint (npeff::Error on another schema or a malformed file).
Checkpoint read_checkpoint(const io::File& file);

}  // namespace npeff::decomposition
