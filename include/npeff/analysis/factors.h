// Scoring components against planted factors (the ground-truth benchmark, docs/ground-truth.md).
// For each factor: the best top-k precision of any component (the share of its top k examples,
// ranked as tune-report ranks them, that carry the factor; components with fewer than k non-zero
// examples are skipped) and the best ROC AUC of any component's coefficients for telling the
// examples with the factor from those without it.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace npeff::analysis {

struct FactorScore {
  std::int64_t present = 0;               ///< examples carrying the factor
  std::int64_t precision_component = -1;  ///< best by top-k precision (ties: lower id)
  double top_precision = 0;
  std::int64_t auc_component = -1;  ///< best by AUC (ties: lower id)
  double auc = 0.5;
};

/// `w` [m, C]; `presence` bool [m, F] (rows aligned with w).
std::vector<FactorScore> score_factors(const at::Tensor& w, const at::Tensor& presence,
                                       std::int64_t top_k);

/// ROC AUC = P(score of a positive > score of a negative) + P(equal) / 2 (Mann-Whitney U).
/// 0.5 when either class is empty.
double roc_auc(const std::vector<double>& scores, const std::vector<bool>& positive);

}  // namespace npeff::analysis
