// The TopK sparse-autoencoder baseline of paper Section 3.1 / Appendix I (Gao et al. 2024):
//   z = ReLU(TopK_k(W_enc (x - b_dec) + b_enc)),   x_hat = W_dec z + b_dec,
// loss = mean over the batch of ||x - x_hat||^2. Rows of W_enc and columns of W_dec have unit
// L2 norm; their gradients are projected onto the tangent space of that sphere before Adam and
// the rows/columns are renormalised after each step (Bricken et al. 2023). W_dec starts as
// W_enc^T, b_dec as the data mean. Inputs are per-example activations normalised to unit norm.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace npeff::io {
class ResumeDir;
}

namespace npeff::analysis {

struct SaeOptions {
  std::int64_t latents = 0;         ///< C (required; the paper: the number of NPEFF components)
  std::int64_t k = 32;              ///< active latents per input
  double lr = 1e-3;                 ///< Adam learning rate (App. I)
  std::int64_t batch_size = 4096;   ///< App. I (capped at the number of examples)
  std::int64_t steps = 51200;       ///< App. I: 51,200 batches
  std::uint64_t seed = 0;           ///< encoder initialisation and batch order
  std::int64_t record_every = 100;  ///< FVU history interval (steps)
  /// Steps between checkpoints when training with an io::ResumeDir (0: none). Does not change
  /// the result: a run resumed from any checkpoint ends with the same bits.
  std::int64_t checkpoint_every = 1000;
  /// Where training runs (the batches, the SAE and Adam's moments); the initialisation, the
  /// batch order and the checkpoints are the same on every device, and the returned model is on
  /// the CPU. CUDA results equal the CPU's up to float32 summation order.
  c10::Device device = c10::Device(c10::kCPU);
};

struct SaeModel {
  at::Tensor w_enc;  ///< float32 [C, h], unit rows
  at::Tensor b_enc;  ///< float32 [C]
  at::Tensor w_dec;  ///< float32 [h, C], unit columns
  at::Tensor b_dec;  ///< float32 [h]
  std::int64_t k = 0;
};

struct SaeCodes {
  at::Tensor codes;           ///< float32 [m, C]: z (at most k non-zero per row)
  at::Tensor active;          ///< int64 [m, k]: the TopK indices (exactly k per row)
  at::Tensor reconstruction;  ///< float32 [m, h]
};
SaeCodes sae_encode(const SaeModel& model, const at::Tensor& x);

/// Gradients of the batch loss with respect to every parameter (exposed for testing against
/// finite differences), and the loss itself.
struct SaeGradients {
  at::Tensor w_enc, b_enc, w_dec, b_dec;
  double loss = 0;
};
SaeGradients sae_gradients(const SaeModel& model, const at::Tensor& x);

struct SaeTrainResult {
  SaeModel model;
  std::vector<std::int64_t> steps;  ///< recorded steps
  std::vector<double> fvu;          ///< FVU over the whole data at those steps
  std::vector<double> seconds;
  double final_fvu = 0;
  std::int64_t dead_latents = 0;  ///< latents that are non-zero for no example at the end
};

/// Rows of x divided by their L2 norm (zero rows stay zero).
at::Tensor normalize_rows(const at::Tensor& x);
/// Fraction of variance unexplained: sum ||x - x_hat||^2 / sum ||x - mean(x)||^2.
double fraction_of_variance_unexplained(const at::Tensor& x, const at::Tensor& x_hat);
/// Initial model: W_enc rows drawn N(0, 1) from `seed` and normalised; W_dec = W_enc^T;
/// b_enc = 0; b_dec = mean of x.
SaeModel init_sae(const at::Tensor& x, std::int64_t latents, std::int64_t k, std::uint64_t seed);
/// The io::ResumeDir settings of training on the activations of `inputs` (their fingerprints)
/// with `options`: everything that determines the result (all options but checkpoint_every).
nlohmann::json sae_resume_settings(const std::vector<std::string>& inputs,
                                   const SaeOptions& options);

/// Trains on x [m, h] (already normalised). `on_step(step)` is called after every step run by
/// this call (1-based; a resumed run starts after its checkpoint's step).
/// Batches: with B = min(batch_size, m) and E = floor(m / B) batches per epoch, step s (1-based)
/// takes rows [j B, (j + 1) B) of epoch e's permutation, e = (s - 1) / E, j = (s - 1) mod E;
/// epoch e's permutation is std::shuffle of 0..m-1 with std::mt19937_64(std::seed_seq(seed, e)).
/// The batch order is thus a pure function of (seed, step).
/// `resume` (optional, docs/formats.md "Resuming"): every `checkpoint_every` steps the piece
/// checkpoint.h5 (schema npeff.sae_checkpoint: the step, the SAE, Adam's moments, the FVU
/// history) replaces the previous one atomically; training starts from it when present, so a
/// rerun after kill -9 gives the same bits as an uninterrupted run (same --threads). The caller
/// builds the io::ResumeDir from settings that include x's source and `options` (all but
/// checkpoint_every), and calls its finish() once its output is written.
SaeTrainResult train_sae(const at::Tensor& x, const SaeOptions& options,
                         const std::function<void(std::int64_t)>& on_step = {},
                         io::ResumeDir* resume = nullptr);

}  // namespace npeff::analysis
