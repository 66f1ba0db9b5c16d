// Per-example Fisher matrices of a task's examples (paper Sections 2.1, 2.1.1, 2.1.2, 2.2.1):
// low-rank PEF rows from the per-example gradient engine, streamed one parameter tensor at a
// time through the sparse random projection, optionally SVD-reduced, normalised.
//
// PEF kinds (rows of G_i, before projection; p = p(y|x) of the task, r categories):
//   exact        sqrt(p_c) grad log p_c for every category c (or the top_k categories by p):
//                G^T G is the PEF of eq. 1 exactly (restricted to those categories);
//   expectation  grad (A q) with q_c = stopgrad(sqrt p_c) log p_c and A a K x r random sign
//                matrix with entries +-1/sqrt(K) (so E[A^T A] = I, Appendix B): K rows whose
//                G'^T G' estimates the PEF with error falling like 1/sqrt(K). A is the dense
//                npeff projection with (eps_seed, d = K) over the category index: a pure
//                function of (seed, category, row), the same for every example and device;
//   gradient     the single row grad log p_{argmax} (G-NPEFF, Section 2.2.2).
// Then y = P g for every row (P: the sparse projection over the selected-parameter vector),
// optional rank reduction to the top svd_rank singular directions (G' = Sigma' V'^T), and
// normalisation to ||G^T G||_F = 1 (Section 2.2; the raw norm is kept).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "npeff/model/causal_lm.h"
#include "npeff/model/per_example_grad.h"
#include "npeff/projection/projection.h"
#include "npeff/task/task.h"
#include "npeff/tokenizer/tokenizer.h"

namespace npeff::task {
struct TaskBatch;
}  // namespace npeff::task

namespace npeff::pef {

enum class PefKind { kExact, kExpectation, kGradient };
const char* pef_kind_name(PefKind kind);
PefKind parse_pef_kind(const std::string& text);  // exact | expectation | gradient

struct PefOptions {
  PefKind kind = PefKind::kExact;
  int64_t top_k = 0;       ///< exact: only the top-k categories by p (0: all; vocab tasks need it)
  int64_t eps = 0;         ///< expectation: K, the number of rows (> 0)
  uint64_t eps_seed = 0;   ///< expectation: seed of A
  int64_t svd_rank = 0;    ///< keep the top-R singular directions after projection (0: all rows)
  int64_t vocab_top = 10;  ///< vocab tasks: how many of p's top entries to keep in the output
  bool activations = false;  ///< also return the final-token hidden state
};

struct PefTimings {
  double forward_backward = 0;  ///< the engine's batched forward + k backward passes
  double contraction = 0;       ///< per-example weight-gradient sums
  double projection = 0;        ///< sparse projection of the gradient rows
  double total = 0;             ///< all of compute(), batch building and SVD included
};

// Everything computed for a batch of examples.
struct PefBatch {
  at::Tensor pefs;         ///< float32 [G, rank, d], ||G^T G||_F = 1 (zero PEFs stay zero)
  at::Tensor raw_norms;    ///< float64 [G]: ||G^T G||_F in projected space before normalising
  at::Tensor param_norms;  ///< float64 [G]: ||G^T G||_F of the unprojected rows (parameter space)
  at::Tensor probs;        ///< float32 [G, r] (vocab tasks: the top vocab_top entries of p)
  at::Tensor top_ids;      ///< vocab tasks: int64 [G, vocab_top] token ids of probs
  at::Tensor prediction;   ///< int64 [G]: argmax category (vocab: token id)
  at::Tensor activations;  ///< float32 [G, hidden] when requested
  PefTimings timings;
};

class PefComputer {
 public:
  PefComputer(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer, task::Task task,
              model::ParameterSelection selection, const projection::Projection& projection,
              PefOptions options);

  int64_t categories() const { return categories_; }  ///< r
  int64_t rows() const;                               ///< rows of G before SVD reduction
  int64_t rank() const;                               ///< rows stored per PEF
  int64_t probs_width() const;                        ///< columns of PefBatch::probs
  const model::ParameterSelection& selection() const { return selection_; }

  PefBatch compute(const std::vector<task::Example>& examples) const;

 private:
  model::Objectives objectives(at::Tensor* log_probs, at::Tensor* hidden,
                               const task::TaskBatch& tb) const;

  const model::CausalLM& model_;
  const tokenizer::Tokenizer& tokenizer_;
  task::Task task_;
  model::ParameterSelection selection_;
  projection::Projection projection_;
  PefOptions options_;
  std::vector<std::vector<int32_t>> labels_;
  int64_t categories_ = 0;
  at::Tensor eps_matrix_;  // expectation: A, float32 [K, r]
};

// Rank reduction (Section 2.1.2): for G [B, k, d] returns Sigma' V'^T [B, R, d] with the top-R
// singular values and right singular vectors of each G (computed in float64). R >= k: G itself.
at::Tensor svd_reduce(const at::Tensor& g, int64_t rank);

}  // namespace npeff::pef
