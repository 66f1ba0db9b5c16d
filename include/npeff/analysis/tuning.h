// Component tunings (paper Section 3.1, Table 1) and the ICL-style linear classifier built from
// them (Section 3.3, Table 3).
//
// A component's top examples are its top_k rows by coefficient, descending; ties are broken by
// the lower row (the order of the decomposition's /example_ids). Only rows with a coefficient
// > 0 count; a component with fewer than top_k such rows is excluded from the tuning fractions
// (and from the classifier). A component is prediction-tuned when all its top examples share
// the model's prediction, label-tuned when they all share a gold label, LnP when label- but not
// prediction-tuned.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace npeff::analysis {

struct ComponentTuning {
  std::int64_t component = 0;
  std::int64_t nonzero = 0;            ///< rows with coefficient > 0
  bool included = false;               ///< nonzero >= top_k
  std::vector<std::int64_t> top_rows;  ///< min(top_k, nonzero) rows, best first
  std::vector<double> top_values;
  bool prediction_tuned = false;
  bool label_tuned = false;
  bool lnp = false;                       ///< label_tuned && !prediction_tuned
  std::int64_t majority_prediction = -1;  ///< most frequent prediction among top rows (ties: lower)
  double majority_prediction_fraction = 0;
  std::int64_t majority_label = -1;  ///< most frequent gold label (>= 0) among top rows
  double majority_label_fraction = 0;
};

/// Tunings of every column of `w` [m, C] (any real dtype, CPU). `labels` and `predictions` are
/// per row of w; a label of -1 (unknown) never matches, so label tuning needs labels.
std::vector<ComponentTuning> component_tunings(const at::Tensor& w,
                                               const std::vector<std::int64_t>& labels,
                                               const std::vector<std::int64_t>& predictions,
                                               std::int64_t top_k);

struct TuningSummary {
  std::int64_t components = 0;
  std::int64_t included = 0;  ///< components with >= top_k non-zero examples
  std::int64_t excluded = 0;
  std::int64_t prediction_tuned = 0, label_tuned = 0, lnp = 0;
  double prediction_fraction = 0, label_fraction = 0, lnp_fraction = 0;  ///< of `included`
  bool has_labels = false;  ///< label fractions are meaningful
};
TuningSummary summarize_tunings(const std::vector<ComponentTuning>& tunings, bool has_labels);

/// The classifier of Section 3.3: M [num_labels, C] with M_lj = 1 when at least
/// `label_fraction` of component j's top examples have gold label l (included components only);
/// an example's prediction is argmax_l (M w_i), ties to the lower label. `one_hot` replaces the
/// coefficients by w_ij > 0 (the paper's rule for gradient clusters).
struct IclClassifier {
  at::Tensor matrix;                      ///< float64 [num_labels, C]
  std::vector<std::int64_t> predictions;  ///< per row of w
  std::int64_t tuned_components = 0;      ///< columns of M with a 1
  std::int64_t undecided = 0;             ///< rows whose scores are all zero (predicted 0)
  double accuracy = 0;                    ///< vs gold labels (rows with a label)
  double agreement = 0;                   ///< vs the model's own predictions
};
IclClassifier icl_classifier(const at::Tensor& w, const std::vector<ComponentTuning>& tunings,
                             const std::vector<std::int64_t>& labels,
                             const std::vector<std::int64_t>& predictions, std::int64_t num_labels,
                             double label_fraction, bool one_hot);

}  // namespace npeff::analysis
