// The NPEFF decomposition (paper Section 2.2, Algorithm 1, Appendix C) on a device through
// LibTorch ops. Given LRM-PEFs G_i (r x n, stacked as G [m, r, n]) it fits non-negative
// coefficients W [m, C] and pseudo-Fisher vectors H [C, n] minimising
//   L = sum_i || G_i^T G_i - sum_j W_ij h_j h_j^T ||_F^2                      (eq. 3/4)
// without ever forming an n x n matrix. Each step costs two large products sharing
//   B = G H^T            ([m r, n] x [n, C])
//   T2 = -4 E^T G        (E[(i,k), j] = W_ij B_ikj; [C, m r] x [m r, n]).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace npeff::dist {
class Communicator;
}

namespace npeff::decomposition {

/// Precision of the two large products (B = G H^T and E^T G). W, H and everything else stay
/// float32. kTf32: TensorFloat-32 tensor cores (CUDA only); kBf16: G is held in bfloat16 (half the
/// memory) and both products take bfloat16 inputs with float32 accumulation.
enum class ComputeDtype { kFp32, kTf32, kBf16 };
ComputeDtype parse_compute_dtype(const std::string& text);  // "fp32" | "tf32" | "bf16"

/// Hyperparameters of `npeff decompose`; defaults are the paper's (Section 2.2, Appendix C).
struct DecomposeOptions {
  std::int64_t components = 0;       ///< C (required, <= number of examples)
  std::int64_t h_only_steps = 1000;  ///< N1: steps updating only H (Appendix C.4)
  double h_only_lr = 1e-5;           ///< learning rate during the H-only steps
  std::int64_t steps = 3000;         ///< N2: joint steps (W multiplicative, H gradient)
  double lr = 3e-4;                  ///< learning rate of the joint steps
  std::uint64_t seed = 0;            ///< initialisation seed (W ~ U[0,1], H ~ N(0, 2/(C n)))
  std::int64_t log_every = 50;       ///< loss is evaluated every this many steps (and at the end)
  ComputeDtype compute_dtype = ComputeDtype::kFp32;  ///< precision of the two large products
};

/// Scales every G_i in place so that ||G_i^T G_i||_F = 1 (paper Section 2.2) and returns the
/// original norms ||G_i^T G_i||_F, float64 [m]. G: float32 [m, r, n]. Zero PEFs stay zero
/// (their norm 0 is returned; callers decide whether to refuse them).
at::Tensor normalize_pefs(at::Tensor& pefs);

/// Sum of squared Frobenius norms ||G_i^T G_i||_F^2 (computed in the r x r space as
/// ||G_i G_i^T||_F^2), float64.
double pef_sq_norm_sum(const at::Tensor& pefs);

/// The loss of eq. 4 by the C-space identity
///   L = sum_i ||G_i^T G_i||^2 - 2 sum_ij W_ij ||G_i h_j||^2 + sum_i w_i^T ((H H^T) o (H H^T)) w_i.
double npeff_loss(const at::Tensor& pefs, const at::Tensor& w, const at::Tensor& h);
/// Per-example losses of eq. 4, float64 [m] on the CPU. pefs: float32 [m, r, n] on any device;
/// w: [m, C]; h: [C, n]. Computed in float64 by blocks of examples (a float64 copy of at most
/// 64 MiB of G at a time): the identity subtracts terms of size ||G_i^T G_i||^2 from each other,
/// so float32 products would swamp the loss of a good fit. Throws npeff::Error on shape mismatch.
at::Tensor npeff_example_losses(const at::Tensor& pefs, const at::Tensor& w, const at::Tensor& h);

/// The per-example terms of that identity for a block of examples, float64 on g's device:
/// g_sq = ||G_i^T G_i||^2 [k] and n = ||G_i h_j||^2 summed over G_i's rows [k, C]. g: [k, r, d]
/// (any float dtype; upcast here); h64: float64 [C, d] on g's device. Shared by
/// npeff_example_losses and fit-coeffs' streamed pass (fit_coeffs_job.h).
struct LossTerms {
  at::Tensor g_sq, n;
};
LossTerms example_loss_terms(const at::Tensor& g, const at::Tensor& h64);
/// loss_i = g_sq_i - 2 sum_j W_ij n_ij + w_i^T M w_i (not clamped) for w64 float64 [k, C] and
/// m64 = (H H^T) o (H H^T) float64 [C, C], all on one device.
at::Tensor example_losses_from_terms(const LossTerms& t, const at::Tensor& w64,
                                     const at::Tensor& m64);

/// Where a Decomposer reads its examples' normalised PEFs, one block of examples at a time: from
/// memory (float32, or float16/bfloat16 upcast per block) or streamed from files that do not
/// fit in memory (io::FilePefSource). One pass over the blocks per step (B and E^T G both
/// decompose over examples).
class PefSource {
 public:
  virtual ~PefSource() = default;
  virtual std::int64_t examples() const = 0;
  virtual std::int64_t rank() const = 0;
  virtual std::int64_t dim() const = 0;
  virtual c10::Device device() const = 0;
  /// float32 [count, r, n] on device() for local examples [first, first + count).
  virtual at::Tensor block(std::int64_t first, std::int64_t count) = 0;
  /// sum_i ||G_i^T G_i||^2 over the local examples when the source already knows it (a file
  /// source computes it in its setup pass), so that the Decomposer needs no pass of its own;
  /// negative when unknown.
  virtual double known_sq_norm_sum() const { return -1; }
};
/// A source over an in-memory tensor [m, r, n] (float32, float16 or bfloat16; normalised).
std::unique_ptr<PefSource> memory_source(at::Tensor pefs);

/// The state of one decomposition and Algorithm 1's update step.
class Decomposer {
 public:
  /// `pefs`: float32 [m, r, n] (normalised), on the compute device. Validates C <= m.
  Decomposer(at::Tensor pefs, std::int64_t components);
  /// Data-parallel form (Appendix C.3): this process holds examples [first, first + m_local) of
  /// `total_examples`; W is partitioned like the PEFs, H replicated, and the H-gradient and loss
  /// are summed over `comm` once per step. Results equal the single-process run up to float
  /// summation order.
  Decomposer(at::Tensor local_pefs, std::int64_t components, dist::Communicator& comm,
             std::int64_t total_examples, std::int64_t first);
  /// The same over any source of the local examples' PEFs.
  Decomposer(std::unique_ptr<PefSource> source, std::int64_t components, dist::Communicator& comm,
             std::int64_t total_examples, std::int64_t first);

  /// Examples per block in each pass (0: all local examples at once, the default).
  void set_block_examples(std::int64_t examples);

  /// Chooses the precision of the two large products (default fp32). tf32 requires CUDA.
  void set_compute_dtype(ComputeDtype dtype);

  /// Appendix C.4 initialisation from `seed` (drawn on the CPU, then moved: device-independent;
  /// every rank draws the full W and keeps its rows, so the partition does not change it).
  void initialize(std::uint64_t seed);
  /// Sets this process's W rows and H (e.g. from a checkpoint). float32 [m_local, C], [C, n].
  void set_state(const at::Tensor& w, const at::Tensor& h);

  /// One step of Algorithm 1: B = G H^T; if `update_w`, the multiplicative W update (C.1); then
  /// the gradient step on H with learning rate `lr` (C.2). When `loss` is non-null it receives
  /// the loss at the start of the step (before either update), computed from the same B.
  void step(bool update_w, double lr, double* loss = nullptr);

  /// The loss of eq. 4 at the current state (summed over all processes).
  double loss();

  /// Only the multiplicative W update (C.1) with H fixed; never increases the loss (Lee & Seung).
  void update_coefficients();

  /// Rescales every component to ||h_j h_j^T||_F = ||h_j||^2 = 1 and W to match (Section 2.2).
  void normalize_components();

  const at::Tensor& w() const { return w_; }
  const at::Tensor& h() const { return h_; }
  std::int64_t examples() const { return m_; }       ///< held by this process
  double pef_sq_norm() const { return g_sq_norm_; }  ///< sum_i ||G_i^T G_i||^2, all examples
  std::int64_t first_example() const { return first_; }
  std::int64_t total_examples() const { return total_; }
  std::int64_t rank() const { return r_; }
  std::int64_t dim() const { return n_; }

 private:
  // Calls fn(first, count, g_flat [count r, n] in the compute dtype) for each block in order.
  template <typename Fn>
  void for_each_block(Fn&& fn);

  std::unique_ptr<PefSource> source_;
  std::int64_t block_examples_ = 0;
  ComputeDtype dtype_ = ComputeDtype::kFp32;
  at::Tensor w_, h_;  // [m, C], [C, n]
  std::int64_t m_, r_, n_, c_;
  std::int64_t total_, first_;
  dist::Communicator* comm_ = nullptr;  // null: single process
  double g_sq_norm_;                    // sum_i ||G_i^T G_i||^2 over all examples
};

/// Fits W to fixed components H by `steps` multiplicative updates from W ~ U[0,1] (seed), as in
/// Section 2.2 ("fit coefficients to an arbitrary set of PEFs"). Returns float32 [m, C].
at::Tensor fit_coefficients(const at::Tensor& pefs, const at::Tensor& h, std::int64_t steps,
                            std::uint64_t seed);

}  // namespace npeff::decomposition
