// Parameter perturbations along recovered component directions and their effect on a task's
// predictive distribution (paper Sections 2.2.1, 3.2, Appendix G): theta -> theta + scale * u on
// the selected parameters, and the per-example KL(p_theta || p_theta+delta).
#pragma once

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "npeff/model/causal_lm.h"
#include "npeff/model/per_example_grad.h"
#include "npeff/task/task.h"
#include "npeff/tokenizer/tokenizer.h"

namespace npeff::perturbation {

// A sparse vector over the selected-parameter vector: sorted unique int64 indices, float32
// values.
struct SparseVector {
  at::Tensor indices;
  at::Tensor values;
  double norm() const;
};

// Adds scale * v to the model's selected parameters for the lifetime of the object; the
// destructor writes back the original values exactly (not by subtraction).
class ParameterPatch {
 public:
  ParameterPatch(const model::CausalLM& model, const model::ParameterSelection& selection,
                 const SparseVector& v, double scale);
  ~ParameterPatch();
  ParameterPatch(const ParameterPatch&) = delete;
  ParameterPatch& operator=(const ParameterPatch&) = delete;

 private:
  struct Piece {
    at::Tensor flat;      // view of one parameter tensor, flattened
    at::Tensor local;     // int64 indices within it
    at::Tensor original;  // values before the patch
  };
  std::vector<Piece> pieces_;
};

// log p(y|x) of the task for each example, float32 [m, r] on the CPU (r = labels; vocab tasks:
// the whole vocabulary), batched, without autograd.
at::Tensor task_log_probs(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer,
                          const task::Task& task, const std::vector<task::Example>& examples,
                          int64_t batch_size);

// KL(p || q) per row from log-probabilities [m, r], in float64: sum_c p_c (log p_c - log q_c).
at::Tensor kl_divergence(const at::Tensor& log_p, const at::Tensor& log_q);

// The selectivity of one direction (Section 3.2): delta = +-magnitude * v / ||v||, per-example
// KL(p_theta || p_theta+delta) on the component's top examples and on a baseline set; the KL
// ratio is mean(top) / mean(baseline) (1 when both are 0), for each sign.
struct Selectivity {
  double kl_top[2] = {0, 0}, kl_baseline[2] = {0, 0};  // [+delta, -delta]
  double ratio[2] = {1, 1};
  at::Tensor kl_top_examples[2];  // float64 [k]
  double best_ratio() const { return std::max(ratio[0], ratio[1]); }
  int best_sign() const { return ratio[0] >= ratio[1] ? +1 : -1; }
};

// `base_top`, `base_baseline`: log p of the unperturbed model on the two example sets
// (task_log_probs), so that they are computed once for many directions.
Selectivity measure_selectivity(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer,
                                const task::Task& task, const model::ParameterSelection& selection,
                                const SparseVector& v, double magnitude,
                                const std::vector<task::Example>& top, const at::Tensor& base_top,
                                const std::vector<task::Example>& baseline,
                                const at::Tensor& base_baseline, int64_t batch_size);

double mean_ratio(double top, double baseline);

// Rows of the k largest entries of `coefficients` [m] (descending; ties: lower row first).
std::vector<int64_t> top_rows(const at::Tensor& coefficients, int64_t k);

// Geometric mean of positive values (0 when empty).
double geometric_mean(const std::vector<double>& values);  // top / baseline; 1 when both are 0

}  // namespace npeff::perturbation
