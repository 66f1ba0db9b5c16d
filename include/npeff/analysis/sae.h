// The TopK sparse-autoencoder baseline of paper Section 3.1 / Appendix I (Gao et al. 2024):
//   z = ReLU(TopK_k(W_enc (x - b_dec) + b_enc)),   x_hat = W_dec z + b_dec,
// loss = mean over the batch of ||x - x_hat||^2. Rows of W_enc and columns of W_dec have unit
// L2 norm; their gradients are projected onto the tangent space of that sphere before Adam and
// the rows/columns are renormalised after each step (Bricken et al. 2023). W_dec starts as
// W_enc^T, b_dec as the data mean. Inputs are per-example activations normalised to unit norm.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace npeff::analysis {

struct SaeOptions {
  std::int64_t latents = 0;         ///< C (required; the paper: the number of NPEFF components)
  std::int64_t k = 32;              ///< active latents per input
  double lr = 1e-3;                 ///< Adam learning rate (App. I)
  std::int64_t batch_size = 4096;   ///< App. I (capped at the number of examples)
  std::int64_t steps = 51200;       ///< App. I: 51,200 batches
  std::uint64_t seed = 0;           ///< encoder initialisation and batch order
  std::int64_t record_every = 100;  ///< FVU history interval (steps)
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
/// Trains on x [m, h] (already normalised). `on_step(step)` is called after every step.
SaeTrainResult train_sae(const at::Tensor& x, const SaeOptions& options,
                         const std::function<void(std::int64_t)>& on_step = {});

}  // namespace npeff::analysis
